//! `genesys-auth demo`: the whole flow, one line a step. Offline on the embedded emulator unless
//! `--real`, which uses the configured credentials against the real region.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use genesys_auth::{
    ApiClient, ApiRequest, FileStore, Revocation, Settings, TokenProvider, TokenStore,
};
use genesys_emulator::Emulator;

use crate::cli::{DemoArgs, Global};
use crate::context;
use crate::exit::{CliError, Exit};
use crate::output::{human_duration, millis, print_line};

/// A private, temporary token cache, removed when dropped, so that the demo shows a real fetch
/// and then a real cache hit without touching the user's cache.
struct TempCache(std::path::PathBuf);

impl TempCache {
    fn new() -> Result<Self, CliError> {
        let dir = std::env::temp_dir().join(format!(
            "genesys-auth-demo-{}-{:x}",
            std::process::id(),
            unique_suffix()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| {
            CliError::new(
                Exit::Config,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        Ok(Self(dir))
    }
}

fn unique_suffix() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.as_nanos() as u64
}

impl Drop for TempCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn step(n: u32, name: &str, detail: impl AsRef<str>) {
    print_line(&format!("{n}. {name:<13} {}", detail.as_ref()));
}

fn provider_with(settings: &Settings, cache: &TempCache) -> Result<TokenProvider, CliError> {
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(cache.0.join("genesys-auth")));
    Ok(TokenProvider::builder(settings.clone())
        .store(store)
        .build()?)
}

pub async fn run(global: &Global, args: DemoArgs) -> Result<(), CliError> {
    let cache = TempCache::new()?;
    let (settings, emulator) = if args.real {
        let s = context::settings(global)?;
        s.credentials()?;
        (s, None)
    } else {
        let emu = Emulator::builder().start().await.map_err(|e| {
            CliError::new(
                Exit::Network,
                format!("cannot start the emulator on 127.0.0.1: {e}"),
            )
        })?;
        let demo = emu.demo_client();
        let s = Settings::for_base_url(&emu.base_url(), &demo.id, &demo.secret)?;
        (s, Some(emu))
    };
    let region = &settings.region.value;
    match &emulator {
        Some(emu) => print_line(&format!(
            "genesys-auth demo: offline, on the embedded Genesys Cloud emulator at {} (--real uses your own credentials)",
            emu.base_url()
        )),
        None => print_line(&format!(
            "genesys-auth demo: against {} with your credentials",
            region.api_base_url()
        )),
    }
    let client_id = settings
        .client_id
        .as_ref()
        .map(|c| c.value.clone())
        .unwrap_or_default();
    step(
        1,
        "settings",
        format!(
            "region {} (login {}), client {}, secret set",
            region,
            region.login_host(),
            client_id
        ),
    );

    let first = provider_with(&settings, &cache)?;
    let t0 = Instant::now();
    let token = first.token().await?;
    let fetch = t0.elapsed();
    step(
        2,
        "first token",
        format!(
            "from POST {} in {} (expires in {}; scopes: {})",
            region.token_url(),
            millis(fetch),
            human_duration(token.remaining(first.clock().now())),
            if token.scopes().is_empty() {
                "the client's".to_owned()
            } else {
                token.scopes().join(" ")
            }
        ),
    );

    // A second provider over the same cache directory stands for the next process.
    let second = provider_with(&settings, &cache)?;
    let t1 = Instant::now();
    let again = second.token().await?;
    let hit = t1.elapsed();
    let requests = emulator
        .as_ref()
        .map(|e| format!(", token requests so far: {}", e.counters().token_requests))
        .unwrap_or_default();
    step(
        3,
        "second token",
        format!(
            "{} in {}{requests}",
            if again.same_token(&token) {
                "the same token, from the file cache"
            } else {
                "a new token (the cache missed)"
            },
            millis(hit)
        ),
    );

    let api = ApiClient::new(second.clone());
    let report = super::verify::check(&api).await?;
    step(
        4,
        "verify",
        format!(
            "GET /api/v2/tokens/me: organization {} ({}), OAuth client {} ({})",
            report.org_name, report.org_id, report.client_name, report.client_id
        ),
    );

    let org = api.get("/api/v2/organizations/me").await?;
    let users_me = api.get("/api/v2/users/me").await?;
    step(
        5,
        "API call",
        format!(
            "GET /api/v2/organizations/me -> {}; GET /api/v2/users/me -> {} (a client-credentials token has no user; verify uses /tokens/me)",
            org.status.as_u16(),
            users_me.status.as_u16()
        ),
    );
    if !org.status.is_success() {
        return Err(super::verify::status_error(&org));
    }

    let pages: Vec<_> = api
        .pages(ApiRequest::get("/api/v2/users").query("pageSize", "25"))
        .try_collect()
        .await?;
    let users: usize = pages.iter().map(|p| p.entities.len()).sum();
    step(
        6,
        "paged call",
        format!(
            "GET /api/v2/users: {users} users over {} pages",
            pages.len()
        ),
    );

    if emulator.is_some() || args.revoke {
        let status = match second.revoke().await? {
            Revocation::Revoked { status } => status,
            other => {
                return Err(CliError::new(
                    Exit::Api,
                    format!("DELETE /api/v2/tokens/me did not revoke the token: {other:?}"),
                ));
            }
        };
        // Checked with the plain client: the API client would answer the 401 with a new token.
        let check = genesys_auth::http_client(second.settings())?
            .head(format!("{}/api/v2/tokens/me", region.api_base_url()))
            .bearer_auth(token.secret())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        step(
            7,
            "revoke",
            format!(
                "DELETE /api/v2/tokens/me -> {status}; the token is now refused ({check}) and gone from the cache"
            ),
        );
    } else {
        step(7, "revoke", "skipped (add --revoke to revoke the token)");
    }
    print_line("done: every step passed");
    Ok(())
}
