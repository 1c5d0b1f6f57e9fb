//! `genesys-auth revoke`: revokes the cached token and removes it from the cache; the tokens of
//! every slot of a token pool too.

use genesys_auth::{Error, Revocation};

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
    // Every slot a token pool may have cached, whatever --pool says now: a pool used earlier
    // (or by another process) leaves its tokens under keys of their own, and `revoke` means
    // every token of the client. A slot that holds none costs one read of the cache.
    context::pool(global)?;
    let provider = context::provider_sized(global, settings, genesys_auth::MAX_POOL)?;
    if provider.is_fixed() {
        return Err(CliError::new(
            Exit::Config,
            "a ready-made access token is configured: there is no cached token to revoke",
        ));
    }
    match provider.revoke().await {
        Ok(Revocation::Revoked { .. }) => {
            eprintln!("revoked the cached token and removed it from the cache");
        }
        Ok(Revocation::AlreadyInvalid) => {
            eprintln!("the cached token was already invalid; removed it from the cache");
        }
        Ok(_) => eprintln!("no cached token for these settings; nothing to revoke"),
        Err(Error::Api {
            endpoint, status, ..
        }) => {
            let shown = reqwest::StatusCode::from_u16(status)
                .map_or_else(|_| status.to_string(), |s| s.to_string());
            return Err(CliError::new(
                if status >= 500 {
                    Exit::Network
                } else {
                    Exit::Api
                },
                format!(
                    "{endpoint} answered HTTP {shown}; the token was removed from the cache but may still be valid"
                ),
            ));
        }
        Err(Error::Store(e)) => return Err(CliError::new(Exit::Network, e.to_string())),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
