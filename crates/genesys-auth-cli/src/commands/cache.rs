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
                            "slot": slot(&e.path),
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
            // Scopes came from the login host: cleaned like any server text.
            let c = |t: &str| crate::output::clean(t).into_owned();
            let head = ["CLIENT ID", "LOGIN URL", "SCOPES", "EXPIRES"].map(str::to_owned);
            let body: Vec<([String; 4], u32)> = entries
                .iter()
                .map(|e| {
                    let cells = [
                        c(&e.client_id),
                        c(&e.login_url),
                        c(&e.scopes.join(" ")),
                        at(e.expires_at),
                    ];
                    (cells, slot(&e.path))
                })
                .collect();
            // A token pool's slots are one client's tokens side by side: the column that tells
            // them apart shows only when there is one.
            let lines = if body.iter().any(|(_, n)| *n > 0) {
                let with_slot = |[a, b, c, d]: [String; 4], s: String| [a, b, c, d, s];
                let mut rows = vec![with_slot(head, "POOL SLOT".into())];
                rows.extend(body.into_iter().map(|(r, n)| with_slot(r, n.to_string())));
                table(&rows)
            } else {
                let mut rows = vec![head];
                rows.extend(body.into_iter().map(|(r, _)| r));
                table(&rows)
            };
            for l in lines {
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

/// The token pool slot an entry holds, from its file's name: the store key's id, which ends in
/// `-N` for slot N of a pool (see `StoreKey::slot`); 0 for a single token.
fn slot(path: &std::path::Path) -> u32 {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit_once('-'))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pool_slot_is_read_from_the_entry_file_name() {
        let slot = |p: &str| super::slot(std::path::Path::new(p));
        assert_eq!(slot("/c/0123456789abcdef0123456789abcdef.json"), 0);
        assert_eq!(slot("/c/0123456789abcdef0123456789abcdef-7.json"), 7);
        assert_eq!(slot("/c/odd-name.json"), 0);
    }
}
