//! Shared helpers: an emulator with a known client, isolated settings, a manual clock, and the
//! check that no secret or token leaks into text.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use genesys_auth::SettingsLoader as Loader;
use genesys_auth::{Clock, ManualClock, RetryPolicy, Settings};
use genesys_emulator::{ClientSpec, Emulator};

pub const ID: &str = "test-client-0001";
pub const SECRET: &str = "test-secret-Zq9-never-shown";

pub async fn emulator() -> Emulator {
    emulator_with(|b| b).await
}

pub async fn emulator_with(
    f: impl FnOnce(genesys_emulator::EmulatorBuilder) -> genesys_emulator::EmulatorBuilder,
) -> Emulator {
    f(Emulator::builder()
        .client(ClientSpec::new(ID, SECRET).scopes(["users:read", "organization:readonly"]))
        .token_rate_limit(None))
    .start()
    .await
    .expect("emulator starts")
}

/// Settings for the emulator, reading nothing from the process or the disk.
pub fn loader(emu: &Emulator) -> Loader {
    Settings::loader()
        .isolated()
        .region(emu.base_url())
        .client_id(ID)
        .client_secret(SECRET)
        .timeout(Duration::from_secs(5))
}

pub fn settings(emu: &Emulator) -> Settings {
    loader(emu).load().expect("settings")
}

/// Settings with retries quick to reason about: 4 attempts, 1 s steps.
pub fn settings_retrying(emu: &Emulator) -> Settings {
    loader(emu)
        .retry(RetryPolicy::default().with_base_delay(Duration::from_secs(1)))
        .load()
        .expect("settings")
}

pub fn clock() -> (ManualClock, Arc<dyn Clock>) {
    let c = ManualClock::new();
    (c.clone(), Arc::new(c))
}

/// Fails if `text` holds the client secret or `token`.
pub fn assert_clean(text: &str, token: Option<&str>) {
    assert!(
        !text.contains(SECRET),
        "the client secret leaked into: {text}"
    );
    if let Some(t) = token {
        assert!(!text.contains(t), "a token leaked into: {text}");
    }
}
