//! `genesys-auth config`: the resolved settings and where each came from. No request is made,
//! and the secret and any access token show only as set or unset.

use genesys_auth::Source;
use serde_json::{Value, json};

use crate::cli::{Global, JsonArg};
use crate::context;
use crate::exit::CliError;
use crate::output::{print_json, print_line};

fn src(s: &Source) -> String {
    s.to_string()
}

pub fn run(global: &Global, args: JsonArg) -> Result<(), CliError> {
    let s = context::settings(global)?;
    let cache = context::store(global, &s)?.location();
    let (pool, pool_source) = context::pool(global)?;
    let region = &s.region;
    let set = |v: bool| if v { "set" } else { "unset" };
    if args.json {
        let opt = |v: Option<(Value, String)>| match v {
            Some((value, source)) => json!({"value": value, "source": source}),
            None => json!({"value": null, "source": null}),
        };
        print_json(&json!({
            "profile": {"value": s.profile.value, "source": src(&s.profile.source)},
            "region": {
                "value": region.value.name(),
                "source": src(&region.source),
                "api_base_url": region.value.api_base_url(),
                "login_base_url": region.value.login_base_url(),
            },
            "client_id": opt(s.client_id.as_ref().map(|c| (json!(c.value), src(&c.source)))),
            "client_secret": opt(s.client_secret.as_ref().map(|c| (json!("set"), src(&c.source)))),
            "scopes": opt(s.scopes.as_ref().map(|c| (json!(c.value), src(&c.source)))),
            "access_token": opt(s.access_token.as_ref().map(|c| (json!("set"), src(&c.source)))),
            "proxy": opt(s.proxy.as_ref().map(|p| (json!(s.proxy_shown()), src(&p.source)))),
            "no_proxy": s.no_proxy,
            "ca_file": opt(s.ca_file.as_ref().map(|c| (json!(c.value.display().to_string()), src(&c.source)))),
            "timeout_s": s.timeout.as_secs_f64(),
            "connect_timeout_s": s.connect_timeout.as_secs_f64(),
            "token_cache": cache,
            "token_pool": {"value": pool, "source": pool_source},
            "warnings": s.warnings,
            "overridden": s.overridden.iter().map(|o| json!({
                "setting": o.setting,
                "source": src(&o.source),
                "by": src(&o.by),
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let from = |source: &Source| format!("  (from {source})");
    let mut lines = vec![
        format!(
            "profile:        {}{}",
            s.profile.value,
            from(&s.profile.source)
        ),
        format!(
            "region:         {}{}",
            region.value.name(),
            from(&region.source)
        ),
        format!("api base URL:   {}", region.value.api_base_url()),
        format!("login base URL: {}", region.value.login_base_url()),
    ];
    lines.push(match &s.client_id {
        Some(c) => format!("client id:      {}{}", c.value, from(&c.source)),
        None => "client id:      unset".into(),
    });
    lines.push(match &s.client_secret {
        Some(c) => format!("client secret:  {}{}", set(true), from(&c.source)),
        None => format!("client secret:  {}", set(false)),
    });
    lines.push(match &s.scopes {
        Some(c) => format!("scopes:         {}{}", c.value.join(" "), from(&c.source)),
        None => "scopes:         (the client's own)".into(),
    });
    if let Some(t) = &s.access_token {
        lines.push(format!(
            "access token:   set, used as is{}",
            from(&t.source)
        ));
    }
    if let (Some(p), Some(shown)) = (&s.proxy, s.proxy_shown()) {
        let bypass = s
            .no_proxy
            .as_deref()
            .map(|n| format!(", not for {n}"))
            .unwrap_or_default();
        lines.push(format!(
            "proxy:          {shown} (https only{bypass}){}",
            from(&p.source)
        ));
    }
    if let Some(c) = &s.ca_file {
        lines.push(format!(
            "extra CAs:      {}{}",
            c.value.display(),
            from(&c.source)
        ));
    }
    lines.push(format!(
        "timeouts:       {} s a request, {} s connect, {} s with retries",
        s.timeout.as_secs_f64(),
        s.connect_timeout.as_secs_f64(),
        s.retry.deadline.as_secs_f64()
    ));
    lines.push(format!(
        "token cache:    {}",
        cache.unwrap_or_else(|| "off".into())
    ));
    lines.push(format!(
        "token pool:     {}",
        pool_figure(pool, &pool_source, &s)
    ));
    // Values set somewhere and not used, so that none is overridden in silence.
    for o in &s.overridden {
        lines.push(format!(
            "not used:       the {} from {} ({} wins)",
            o.setting, o.source, o.by
        ));
    }
    for l in lines {
        print_line(&l);
    }
    Ok(())
}

/// The pool's size and where it came from, as `config` and `doctor` show it.
/// A ready-made access token is one token: a pool does not apply to it, and that is said.
pub fn pool_figure(n: usize, source: &str, s: &genesys_auth::Settings) -> String {
    let figure = match (n, source) {
        (1, "default") => "1 token (the default; --pool N for more)".into(),
        (1, _) => format!("1 token (from {source})"),
        _ => format!("up to {n} tokens (from {source})"),
    };
    match (n, &s.access_token) {
        (2.., Some(_)) => format!("{figure}; not used: the ready-made access token is one token"),
        _ => figure,
    }
}
