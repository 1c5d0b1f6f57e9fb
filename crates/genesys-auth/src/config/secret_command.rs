//! The client secret from a command, as enterprises keep secrets in a vault
//! (`vault kv get -field=secret …`): run without a shell, its first line of output taken, within
//! a time limit. A failure names the command, never what it printed.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::{ConfigError, Source, SourcedSecret};

/// How long the command may take.
const LIMIT: Duration = Duration::from_secs(10);

pub(crate) fn run(command: &str, from: &Source) -> Result<SourcedSecret, ConfigError> {
    let fail = |reason: String| ConfigError::InvalidValue {
        what: "client secret command",
        from: from.clone(),
        reason,
    };
    let words = shell_words::split(command)
        .map_err(|_| fail("it cannot be split into words (an unclosed quote?)".into()))?;
    let Some((program, args)) = words.split_first() else {
        return Err(fail("it is empty".into()));
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("`{program}` cannot be started: {}", e.kind())))?;
    // Read in a thread so that a chatty command cannot fill the pipe and stall.
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut out);
        }
        out
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "`{program}` did not finish within {} s",
                    LIMIT.as_secs()
                )));
            }
            Err(e) => {
                return Err(fail(format!(
                    "`{program}` cannot be waited for: {}",
                    e.kind()
                )));
            }
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(fail(format!(
            "`{program}` failed ({status}); run it yourself to see why"
        )));
    }
    let text = String::from_utf8(out)
        .map_err(|_| fail(format!("`{program}` printed text that is not UTF-8")))?;
    let secret = text.lines().next().unwrap_or("").trim().to_owned();
    if secret.is_empty() {
        return Err(fail(format!(
            "`{program}` printed nothing on its first line"
        )));
    }
    Ok(SourcedSecret {
        value: SecretString::from(secret),
        source: from.clone(),
    })
}
