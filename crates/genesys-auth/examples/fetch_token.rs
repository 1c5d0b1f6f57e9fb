//! The smallest use: settings from the environment, `.env` or a profile; one token.
//!
//! `cargo run -p genesys-auth --example fetch_token` (with GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET
//! and GENESYS_REGION set; with none set, it runs against the embedded emulator).

use genesys_auth::{Settings, TokenProvider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut settings = Settings::loader().load()?;
    let _emulator; // kept alive for the example's duration when used
    if settings.credentials().is_err() {
        let emu = genesys_emulator::Emulator::builder().start().await?;
        let demo = emu.demo_client();
        settings = Settings::for_base_url(&emu.base_url(), &demo.id, &demo.secret)?;
        eprintln!(
            "no credentials configured: using the embedded emulator at {}",
            emu.base_url()
        );
        _emulator = emu;
    }
    let provider = TokenProvider::new(settings)?;
    let token = provider.token().await?;
    println!(
        "got a {} token, valid for {} s, scopes: {:?}",
        token.token_type(),
        token.lifetime().as_secs(),
        token.scopes()
    );
    Ok(())
}
