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
    if args.json {
        print_json(&token_json(&provider, &token));
    } else if args.header {
        print_line(&format!("Authorization: {}", token.authorization()));
    } else {
        print_line(token.secret());
    }
    Ok(())
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
        "region": region.name(),
        "api_base_url": region.api_base_url(),
    })
}
