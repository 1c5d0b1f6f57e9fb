//! `genesys-auth cache list|clear`.

use serde_json::json;

use crate::cli::CacheCommand;
use crate::context;
use crate::exit::{CliError, Exit};
use crate::output::{print_json, print_line, rfc3339, table};

pub fn run(cmd: CacheCommand) -> Result<(), CliError> {
    let store = context::file_store().ok_or_else(|| {
        CliError::new(
            Exit::Config,
            "neither XDG_CACHE_HOME nor HOME is set: there is no token cache",
        )
    })?;
    match cmd {
        CacheCommand::List(args) => {
            let entries = store
                .entries()
                .map_err(|e| CliError::new(Exit::Config, e.to_string()))?;
            let at = |s: u64| {
                std::time::UNIX_EPOCH
                    .checked_add(std::time::Duration::from_secs(s))
                    .map_or_else(|| "unknown".to_owned(), rfc3339)
            };
            if args.json {
                let rows: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        json!({
                            "path": e.path,
                            "login_url": e.login_url,
                            "client_id": e.client_id,
                            "scopes": e.scopes,
                            "expires_at": at(e.expires_at),
                        })
                    })
                    .collect();
                print_json(&json!(rows));
                return Ok(());
            }
            if entries.is_empty() {
                eprintln!("no cached tokens in {}", store.dir().display());
                return Ok(());
            }
            let mut rows = vec![[
                "CLIENT ID".to_owned(),
                "LOGIN URL".into(),
                "SCOPES".into(),
                "EXPIRES".into(),
            ]];
            rows.extend(entries.iter().map(|e| {
                // Scopes came from the login host: cleaned like any server text.
                let c = |t: &str| crate::output::clean(t).into_owned();
                [
                    c(&e.client_id),
                    c(&e.login_url),
                    c(&e.scopes.join(" ")),
                    at(e.expires_at),
                ]
            }));
            for l in table(&rows) {
                print_line(&l);
            }
        }
        CacheCommand::Clear => {
            let n = store
                .clear()
                .map_err(|e| CliError::new(Exit::Config, e.to_string()))?;
            eprintln!("removed {n} cached token(s) from {}", store.dir().display());
        }
    }
    Ok(())
}
