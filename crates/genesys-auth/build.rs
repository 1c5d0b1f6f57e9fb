//! Tells the tests which real parts this machine has, so that a test needing one that is absent
//! shows as *ignored*, never as passed. Under `CI=true` every part counts as present: a missing
//! one then fails its tests instead of hiding them.

fn main() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    for (cfg, tool) in [
        ("redis_server", "redis-server"),
        ("redis_sentinel", "redis-sentinel"),
        ("openssl_cli", "openssl"),
        ("tinyproxy", "tinyproxy"),
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
    // Tests that give a file to another user need root to chown it.
    println!("cargo::rustc-check-cfg=cfg(root_user)");
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    });
    if ci || root {
        println!("cargo::rustc-cfg=root_user");
    }
}
