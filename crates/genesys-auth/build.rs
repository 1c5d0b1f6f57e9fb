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
}
