//! `genesys-auth verify`: the token checked against `GET /api/v2/tokens/me` and
//! `GET /api/v2/organizations/me` (not `/users/me`, which a client-credentials token can never
//! call).

use std::time::SystemTime;

use genesys_auth::{ApiClient, ApiResponse};
use serde_json::{Value, json};

use crate::cli::{Global, JsonArg};
use crate::context;
use crate::exit::{CliError, Exit};
use crate::output::{human_duration, local_time, print_json, print_line, rfc3339};

/// What verification found.
pub struct Report {
    pub region: String,
    pub login_host: String,
    pub org_id: String,
    pub org_name: String,
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<SystemTime>,
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "valid": true,
            "region": self.region,
            "login_host": self.login_host,
            "organization": {"id": self.org_id, "name": self.org_name},
            "oauth_client": {"id": self.client_id, "name": self.client_name},
            "scopes": self.scopes,
            "expires_at": self.expires_at.map(rfc3339),
            "expires_in": self.expires_at.map(|t| t.duration_since(SystemTime::now()).unwrap_or_default().as_secs()),
        })
    }

    pub fn lines(&self) -> Vec<String> {
        let expiry = match self.expires_at {
            Some(t) => format!(
                "{} (in {})",
                local_time(t),
                human_duration(t.duration_since(SystemTime::now()).unwrap_or_default())
            ),
            None => "unknown (a ready-made token)".into(),
        };
        // Names and scopes are the server's text: cleaned of escape sequences.
        let c = crate::output::clean;
        vec![
            format!("region:        {}", self.region),
            format!("login host:    {}", self.login_host),
            format!("organization:  {} ({})", c(&self.org_name), c(&self.org_id)),
            format!(
                "OAuth client:  {} ({})",
                c(&self.client_name),
                c(&self.client_id)
            ),
            format!(
                "scopes:        {}",
                if self.scopes.is_empty() {
                    "(none)".to_owned()
                } else {
                    c(&self.scopes.join(" ")).into_owned()
                }
            ),
            format!("expires:       {expiry}"),
        ]
    }
}

/// An API error status as the CLI reports it: the body on stdout, the code by status.
pub fn status_error(resp: &ApiResponse) -> CliError {
    let body = String::from_utf8_lossy(&resp.body);
    if !body.trim().is_empty() {
        print_line(body.trim_end());
    }
    let exit = match resp.status.as_u16() {
        401 => Exit::Auth,
        403 => Exit::Forbidden,
        429 => Exit::RateLimited,
        500..=599 => Exit::Network,
        _ => Exit::Api,
    };
    CliError::new(
        exit,
        format!("{} answered HTTP {}", resp.endpoint, resp.status),
    )
}

/// A field that verification reports: it must be there and be a non-empty string, or the
/// answer is unreadable (exit 7) and the message names the field, never the body.
fn field<'a>(v: &'a Value, path: &[&str], endpoint: &str) -> Result<&'a str, CliError> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            CliError::new(
                Exit::Network,
                format!(
                    "{endpoint} answered without `{}` (a string); the response cannot be read, so the token is not confirmed",
                    path.join(".")
                ),
            )
        })
}

const TOKENS_ME: &str = "GET /api/v2/tokens/me";
const ORG_ME: &str = "GET /api/v2/organizations/me";

pub async fn check(api: &ApiClient) -> Result<Report, CliError> {
    let token = api.provider().token().await?;
    super::token::warn_narrowed(api.provider(), &token);
    let me = api.get("/api/v2/tokens/me").await?;
    if !me.status.is_success() {
        return Err(status_error(&me));
    }
    let me: Value = me.json()?;
    let org = api.get("/api/v2/organizations/me").await?;
    if !org.status.is_success() {
        return Err(status_error(&org));
    }
    let org: Value = org.json()?;
    let region = &api.provider().settings().region.value;
    let scopes = match me.get("authorizedScope") {
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => {
            return Err(CliError::new(
                Exit::Network,
                format!(
                    "{TOKENS_ME} answered without `authorizedScope` (a list of strings); the response cannot be read, so the token is not confirmed"
                ),
            ));
        }
    };
    Ok(Report {
        region: region.name().to_owned(),
        login_host: region.login_host(),
        org_id: field(&org, &["id"], ORG_ME)?.to_owned(),
        org_name: field(&org, &["name"], ORG_ME)?.to_owned(),
        client_id: field(&me, &["OAuthClient", "id"], TOKENS_ME)?.to_owned(),
        client_name: field(&me, &["OAuthClient", "name"], TOKENS_ME)?.to_owned(),
        scopes,
        expires_at: token.lifetime_known().then(|| token.expires_wall()),
    })
}

pub async fn run(global: &Global, args: JsonArg) -> Result<(), CliError> {
    let settings = context::settings(global)?;
    let provider = context::provider(global, settings)?;
    let report = check(&ApiClient::new(provider)).await?;
    if args.json {
        print_json(&report.to_json());
    } else {
        for line in report.lines() {
            print_line(&line);
        }
    }
    Ok(())
}
