//! `genesys-auth token`: the token alone on stdout, or as a header, or as JSON.

use genesys_auth::AccessToken;
use serde_json::json;

use crate::cli::{Global, TokenArgs};
use crate::context;
use crate::exit::CliError;
use crate::output::{print_json, print_line, rfc3339};

pub async fn run(global: &Global, args: TokenArgs) -> Result<(), CliError> {
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
