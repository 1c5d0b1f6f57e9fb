//! Genesys' official SDKs, unmodified and pinned (installed by `scripts/sdk-setup` from PyPI and
//! npm), against the emulator: client-credentials login, tokens/me, organizations/me, users/me
//! refused, paged lists, a 429 with `Retry-After`, and revoke. The checks themselves are in
//! `tests/sdk/python/check_sdk.py` and `tests/sdk/js/check_sdk.js`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use genesys_emulator::{ClientSpec, Emulator};

const ID: &str = "sdk-client-0001";
const SECRET: &str = "sdk-secret-Lm4-never-printed";

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("runtime"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs one SDK's check script against a fresh emulator and fails with its output.
fn check(program: PathBuf, script: PathBuf) {
    let emu = rt()
        .block_on(
            Emulator::builder()
                .client(ClientSpec::new(ID, SECRET))
                .users(60)
                .start(),
        )
        .expect("emulator");
    let out = Command::new(&program)
        .arg(&script)
        .args([emu.base_url().as_str(), ID, SECRET])
        .current_dir(script.parent().unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} cannot run: {e}; run scripts/sdk-setup",
                program.display()
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{}:\n{text}", script.display());
    for step in [
        "login",
        "tokens/me",
        "organizations/me",
        "users/me refused",
        "paged lists",
        "429 with Retry-After",
        "revoke",
    ] {
        assert!(
            text.contains(&format!("ok {step}")),
            "{step} not checked:\n{text}"
        );
    }
    // The SDK logged in once.
    assert_eq!(emu.counters().tokens_issued, 1);
}

#[test]
#[cfg_attr(
    not(sdk_python),
    ignore = "the Python SDK is not installed: run scripts/sdk-setup"
)]
fn the_official_python_sdk_runs_against_the_emulator() {
    check(
        root().join("target/sdk-venv/bin/python"),
        root().join("tests/sdk/python/check_sdk.py"),
    );
}

#[test]
#[cfg_attr(
    not(sdk_js),
    ignore = "the JavaScript SDK is not installed: run scripts/sdk-setup"
)]
fn the_official_javascript_sdk_runs_against_the_emulator() {
    check(
        PathBuf::from("node"),
        root().join("tests/sdk/js/check_sdk.js"),
    );
}
