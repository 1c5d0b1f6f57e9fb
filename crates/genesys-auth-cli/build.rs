//! Tells the tests which real parts this machine has, so that a test needing one that is absent
//! shows as *ignored*, never as passed. Under `CI=true` every part counts as present: a missing
//! one then fails its tests instead of hiding them.

const BASH_COMPLETION: &str = "/usr/share/bash-completion/bash_completion";

fn main() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    for (cfg, tool) in [
        ("redis_server", "redis-server"),
        ("openssl_cli", "openssl"),
        ("tinyproxy", "tinyproxy"),
        ("shell_zsh", "zsh"),
        ("shell_fish", "fish"),
        ("prometheus", "prometheus"),
        ("wrk", "wrk"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let found = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path)
                .chain(["/usr/sbin".into(), "/usr/bin".into()])
                .any(|dir| dir.join(tool).is_file())
        });
        if ci || found {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    // bash's completion framework, for the test that installs the bash script as a user would.
    println!("cargo::rustc-check-cfg=cfg(bash_completion)");
    println!("cargo::rerun-if-changed={BASH_COMPLETION}");
    if ci || std::path::Path::new(BASH_COMPLETION).is_file() {
        println!("cargo::rustc-cfg=bash_completion");
    }
    // Python's `requests`, in scripts/python-setup's virtualenv or the system's python3.
    println!("cargo::rustc-check-cfg=cfg(python_requests)");
    let venv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python");
    println!("cargo::rerun-if-changed={}", venv.display());
    let has_requests = [venv.as_os_str(), std::ffi::OsStr::new("python3")]
        .iter()
        .any(|py| {
            std::process::Command::new(py)
                .args(["-c", "import requests"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if ci || has_requests {
        println!("cargo::rustc-cfg=python_requests");
    }
    // Genesys' SDKs, installed by scripts/sdk-setup.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (cfg, path) in [
        ("sdk_python", "target/sdk-venv/bin/python"),
        (
            "sdk_js",
            "tests/sdk/js/node_modules/purecloud-platform-client-v2/package.json",
        ),
    ] {
        let path = root.join(path);
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-changed={}", path.display());
        if ci || path.exists() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
