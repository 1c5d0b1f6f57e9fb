//! N concurrent callers on a cold provider against any base URL; prints one JSON line with the
//! number of tasks, the wall time and how many distinct tokens they received. Count the token
//! requests on the server (the emulator's `/__emulator/counters`).
//!
//! `cargo run --release -p genesys-auth --features redis --example herd -- --base-url URL
//!  --client-id ID --client-secret-env VAR --tasks N [--store redis://host:port/db]`
//!
//! With `--store`, the provider shares through Redis: run several herds at once to see a fleet.

use std::collections::HashSet;
use std::time::Instant;

use std::sync::Arc;

use genesys_auth::RedisStore;
use genesys_auth::{Settings, TokenProvider, TokenStore};

fn usage() -> ! {
    eprintln!(
        "usage: herd --base-url URL --client-id ID --client-secret-env VAR [--tasks N (default 1000)] [--store redis://…]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut base, mut id, mut secret_var, mut tasks, mut store) =
        (None, None, None, 1000usize, None);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--base-url" => base = Some(value()),
            "--client-id" => id = Some(value()),
            "--client-secret-env" => secret_var = Some(value()),
            "--tasks" => tasks = value().parse().unwrap_or_else(|_| usage()),
            "--store" => store = Some(value()),
            _ => usage(),
        }
    }
    let (Some(base), Some(id), Some(var)) = (base, id, secret_var) else {
        usage()
    };
    let secret =
        std::env::var(&var).map_err(|_| format!("environment variable {var} is not set"))?;
    let mut builder = TokenProvider::builder(Settings::for_base_url(&base, &id, &secret)?);
    if let Some(url) = store {
        builder = builder.store(Arc::new(RedisStore::new(&url)?) as Arc<dyn TokenStore>);
    }
    let provider = builder.build()?;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.token().await.map(|t| t.secret().to_owned()) })
        })
        .collect();
    let mut distinct = HashSet::new();
    let mut errors = 0usize;
    for h in handles {
        match h.await? {
            Ok(t) => {
                distinct.insert(t);
            }
            Err(_) => errors += 1,
        }
    }
    let wall = start.elapsed();
    println!(
        "{{\"tasks\":{tasks},\"wall_ms\":{:.3},\"distinct_tokens\":{},\"errors\":{errors}}}",
        wall.as_secs_f64() * 1000.0,
        distinct.len()
    );
    Ok(())
}
