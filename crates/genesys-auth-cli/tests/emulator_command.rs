//! `genesys-auth emulator` as a process of its own: the export lines it prints are safe to
//! source in a real shell, and the CA it writes for `--tls` lives in a private folder that is
//! gone once the command is stopped by Ctrl-C (SIGINT) or SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The running command, killed (and waited for) if a test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Sends it a signal by name (`INT`, `TERM`) and waits for its exit code.
    fn stop(mut self, name: &str) -> Option<i32> {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        self.0.wait().expect("it exits").code()
    }
}

/// Starts `genesys-auth emulator ARGS` and reads its output up to the last export line
/// (`GENESYS_CLIENT_SECRET`), returning those lines as printed.
fn start(args: &[&str]) -> (Running, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("genesys-auth"))
        .arg("emulator")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let child = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = String::new();
    loop {
        let line = lines
            .next()
            .expect("an export of GENESYS_CLIENT_SECRET")
            .expect("readable output");
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("export GENESYS_CLIENT_SECRET=") {
            return (child, printed);
        }
    }
}

/// What a real `shell` holds for `name` after sourcing `env_file` in `dir`.
fn sourced(shell: &str, dir: &Path, name: &str) -> String {
    let out = Command::new(shell)
        .arg("-c")
        .arg(format!(". ./emulator.env && printf '%s' \"${name}\""))
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{shell} cannot run: {e}"));
    assert!(out.status.success(), "{shell}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn its_export_lines_are_sourced_as_values_never_run() {
    let secret = "s$(touch x)x 'and `touch y`'";
    let (child, printed) = start(&["--client", &format!("src-bot:{secret}")]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("emulator.env"), &printed).unwrap();
    for shell in ["sh", "bash"] {
        assert_eq!(sourced(shell, dir.path(), "GENESYS_CLIENT_SECRET"), secret);
        assert_eq!(sourced(shell, dir.path(), "GENESYS_CLIENT_ID"), "src-bot");
        assert!(sourced(shell, dir.path(), "GENESYS_REGION").starts_with("http://127.0.0.1:"));
    }
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["emulator.env"], "sourcing ran a command");
    assert_eq!(child.stop("INT"), Some(0));
}

#[test]
fn its_ca_lives_in_a_private_folder_removed_on_sigint_and_sigterm() {
    for stop in ["INT", "TERM"] {
        let (child, printed) = start(&["--tls", "--client", "ca-bot:ca-pw"]);
        let ca = printed
            .lines()
            .find_map(|l| l.strip_prefix("export GENESYS_CA_FILE="))
            .expect("an export of GENESYS_CA_FILE")
            .to_owned();
        let ca = Path::new(&ca);
        let folder = ca.parent().expect("the CA's folder");
        assert!(
            std::fs::read_to_string(ca)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        let folder_meta = std::fs::symlink_metadata(folder).unwrap();
        assert!(folder_meta.is_dir() && !folder_meta.file_type().is_symlink());
        assert_eq!(
            folder_meta.permissions().mode() & 0o777,
            0o700,
            "{}",
            folder.display()
        );
        assert_eq!(
            std::fs::metadata(ca).unwrap().permissions().mode() & 0o077,
            0,
            "{}",
            ca.display()
        );
        // Its folder is not the shared temporary folder itself, where a name can be guessed.
        assert_ne!(folder, std::env::temp_dir());
        assert_eq!(child.stop(stop), Some(0), "SIG{stop}");
        assert!(
            !folder.exists(),
            "{} is left behind after SIG{stop}",
            folder.display()
        );
    }
}
