//! `genesys-auth token`: the token alone on stdout, or as a header, or as JSON.

use genesys_auth::AccessToken;
use serde_json::json;

use crate::cli::{Global, TokenArgs};
use crate::context;
use crate::exit::{CliError, Exit};
use crate::output::{print_json, print_line, rfc3339};

pub async fn run(global: &Global, args: TokenArgs) -> Result<(), CliError> {
    if let Some(from) = &args.from {
        let v = from_serve(from).await?;
        let token = v["access_token"].as_str().unwrap_or_default();
        if args.json {
            print_json(&v);
        } else if args.header {
            print_line(&format!("Authorization: Bearer {token}"));
        } else {
            print_line(token);
        }
        return Ok(());
    }
    let settings = context::settings(global)?;
    let provider = context::provider(global, settings)?;
    let token = provider.token().await?;
    warn_narrowed(&provider, &token);
    if args.json {
        print_json(&token_json(&provider, &token));
    } else if args.header {
        print_line(&format!("Authorization: {}", token.authorization()));
    } else {
        print_line(token.secret());
    }
    Ok(())
}

/// The scopes asked for and not granted, if any.
fn not_granted(provider: &genesys_auth::TokenProvider, token: &AccessToken) -> Vec<String> {
    let requested = provider
        .settings()
        .scopes
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_default();
    token.scopes_not_granted(&requested)
}

/// Says so when the server granted fewer scopes than were asked for.
pub fn warn_narrowed(provider: &genesys_auth::TokenProvider, token: &AccessToken) {
    let missing = not_granted(provider, token);
    if !missing.is_empty() {
        crate::output::warn(&format!(
            "the token was granted fewer scopes than requested: not granted {}; granted {}",
            missing.join(" "),
            token.scopes().join(" ")
        ));
    }
}

/// The JSON form of a token, as `token --json` prints it.
pub fn token_json(
    provider: &genesys_auth::TokenProvider,
    token: &AccessToken,
) -> serde_json::Value {
    let region = &provider.settings().region.value;
    let now = provider.clock().now();
    let (expires_in, expires_at) = if token.lifetime_known() {
        (
            json!(token.remaining(now).as_secs()),
            json!(rfc3339(token.expires_wall())),
        )
    } else {
        (json!(null), json!(null))
    };
    json!({
        "access_token": token.secret(),
        "token_type": token.token_type(),
        "expires_in": expires_in,
        "expires_at": expires_at,
        "scope": (!token.scopes().is_empty()).then(|| token.scopes().join(" ")),
        "scopes_not_granted": not_granted(provider, token),
        "region": region.name(),
        "api_base_url": region.api_base_url(),
    })
}

/// The token JSON of a running `serve`: `GET /token` on its URL, with the bearer from
/// `GENESYS_SERVE_TOKEN` (or the file `GENESYS_SERVE_TOKEN_FILE` names), or on its unix socket.
async fn from_serve(from: &str) -> Result<serde_json::Value, CliError> {
    let network = |m: String| CliError::new(Exit::Network, m);
    let socket = from.strip_prefix("unix:").unwrap_or(from);
    let (client, url) = if socket.starts_with('/') || socket.starts_with('.') {
        let client = reqwest::Client::builder()
            .unix_socket(std::path::Path::new(socket))
            .build()
            .map_err(|e| network(format!("cannot use the socket {socket}: {e}")))?;
        (client, "http://localhost/token".to_owned())
    } else {
        let base = url::Url::parse(from).map_err(|_| {
            CliError::new(
                Exit::Usage,
                "--from takes serve's URL (GENESYS_SERVE_URL, e.g. http://127.0.0.1:8790) or its socket's path",
            )
        })?;
        let url = base
            .join("/token")
            .map_err(|e| CliError::new(Exit::Usage, format!("--from: not a base URL: {e}")))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| network(format!("cannot build the HTTP client: {e}")))?;
        (client, url.to_string())
    };
    let mut req = client.get(&url).timeout(std::time::Duration::from_secs(30));
    if let Some(bearer) = serve_bearer()? {
        req = req.bearer_auth(bearer);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| network(format!("cannot reach serve at {from}: {e}")))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.map_err(|e| {
        network(format!(
            "serve at {from} answered {status} with no JSON: {e}"
        ))
    })?;
    if !status.is_success() {
        let exit = if status.as_u16() == 401 {
            Exit::Auth
        } else {
            Exit::Network
        };
        return Err(CliError::new(
            exit,
            format!(
                "serve at {from} answered {status}: {}",
                body["message"].as_str().unwrap_or("no message")
            ),
        ));
    }
    // A token a header cannot carry (a line break) is refused wherever it comes from.
    let usable = body["access_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()));
    if !usable {
        return Err(network(format!(
            "serve at {from} answered with no usable access_token"
        )));
    }
    Ok(body)
}

/// The bearer of the serve to ask: `GENESYS_SERVE_TOKEN`, else the first line of the file
/// `GENESYS_SERVE_TOKEN_FILE` names; none for a unix socket.
fn serve_bearer() -> Result<Option<String>, CliError> {
    if let Some(t) = std::env::var("GENESYS_SERVE_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(Some(t.trim().to_owned()));
    }
    match std::env::var_os("GENESYS_SERVE_TOKEN_FILE").filter(|p| !p.is_empty()) {
        Some(path) => std::fs::read_to_string(&path)
            .map(|t| t.lines().next().map(|l| l.trim().to_owned()))
            .map_err(|e| {
                CliError::new(
                    Exit::Config,
                    format!(
                        "cannot read GENESYS_SERVE_TOKEN_FILE {}: {}",
                        std::path::Path::new(&path).display(),
                        e.kind()
                    ),
                )
            }),
        None => Ok(None),
    }
}
