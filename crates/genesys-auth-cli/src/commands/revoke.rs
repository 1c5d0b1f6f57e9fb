//! `genesys-auth revoke`: revokes the cached token and removes it from the cache.

use crate::cli::Global;
use crate::context;
use crate::exit::{CliError, Exit};

pub async fn run(global: &Global) -> Result<(), CliError> {
    let settings = context::settings(global)?;
    if global.no_cache {
        return Err(CliError::new(
            Exit::Usage,
            "revoke acts on the cached token; drop --no-cache",
        ));
    }
    let provider = context::provider(global, settings)?;
    let Some(key) = provider.store_key() else {
        return Err(CliError::new(
            Exit::Config,
            "a ready-made access token is configured: there is no cached token to revoke",
        ));
    };
    let stored = provider
        .store()
        .load(key)
        .await
        .map_err(|e| CliError::new(Exit::Network, e.to_string()))?;
    let Some(stored) = stored else {
        eprintln!("no cached token for these settings; nothing to revoke");
        return Ok(());
    };
    // The stored token itself is revoked, with the plain client: the API client would answer a
    // 401 by fetching a new token, and revoke that one instead.
    let url = format!(
        "{}/api/v2/tokens/me",
        provider.settings().region.value.api_base_url()
    );
    use secrecy::ExposeSecret as _;
    let resp = provider
        .http()?
        .delete(&url)
        .bearer_auth(stored.access_token.expose_secret())
        .send()
        .await
        .map_err(|e| CliError::new(Exit::Network, format!("cannot reach DELETE {url}: {e}")))?;
    let status = resp.status();
    provider
        .forget()
        .await
        .map_err(|e| CliError::new(Exit::Config, e.to_string()))?;
    match status.as_u16() {
        200..=299 => eprintln!("revoked the cached token and removed it from the cache"),
        401 => eprintln!("the cached token was already invalid; removed it from the cache"),
        _ => {
            return Err(CliError::new(
                if status.is_server_error() {
                    Exit::Network
                } else {
                    Exit::Api
                },
                format!(
                    "DELETE {url} answered HTTP {status}; the token was removed from the cache but may still be valid"
                ),
            ));
        }
    }
    Ok(())
}
