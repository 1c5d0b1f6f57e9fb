//! A service calling the API from many tasks: one provider, cloned into each task; one token
//! request however many tasks start together; each call gets a valid token without a lock.
//!
//! `cargo run -p genesys-auth --example service` (offline on the embedded emulator unless
//! credentials are configured).

use std::time::Instant;

use genesys_auth::{ApiClient, Settings, TokenProvider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut settings = Settings::loader().load()?;
    let mut emulator = None;
    if settings.credentials().is_err() {
        let emu = genesys_emulator::Emulator::builder().start().await?;
        let demo = emu.demo_client();
        settings = Settings::for_base_url(&emu.base_url(), &demo.id, &demo.secret)?;
        emulator = Some(emu);
    }
    let api = ApiClient::new(TokenProvider::new(settings)?);
    let start = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                let org: serde_json::Value = api.get_json("/api/v2/organizations/me").await?;
                Ok::<_, genesys_auth::Error>((i, org["name"].as_str().unwrap_or("").to_owned()))
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => ok += 1,
            Err(e) => eprintln!("a call failed: {e}"),
        }
    }
    println!(
        "{ok} of 64 concurrent API calls succeeded in {:?}",
        start.elapsed()
    );
    if let Some(emu) = emulator {
        println!("token requests made: {}", emu.counters().token_requests);
    }
    Ok(())
}
