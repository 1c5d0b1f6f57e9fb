//! The client secret from a command, as enterprises keep secrets in a vault
//! (`vault kv get -field=secret …`): run without a shell, its first line of output taken, within
//! a time limit. A failure names the command, never what it printed.
//!
//! The limit holds for everything the command starts: it runs in a process group of its own,
//! and the whole group is killed when the command ends or runs out of time, so that a child left
//! in the background (`sh -c 'echo S; sleep 25 &'`) can neither outlive the command nor keep its
//! output open; the output is read under a size cap and waited for only until the limit.

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::{ConfigError, Source, SourcedSecret};

/// How long the command may take at most (less when the caller's whole timeout is shorter).
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// At most this much of the command's output is read.
const MAX_OUTPUT: u64 = 64 * 1024;

/// Programs that are shells: their arguments may hold shell syntax.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "zsh", "ksh", "fish", "busybox"];

/// Shell syntax that, without a shell, would reach the program as a plain word.
const SHELL_SYNTAX: [&str; 4] = ["|", ">", "$(", "`"];

pub(crate) fn run(
    command: &str,
    from: &Source,
    limit: Duration,
) -> Result<SourcedSecret, ConfigError> {
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
    let name = std::path::Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    if !SHELLS.contains(&name)
        && let Some(syntax) = SHELL_SYNTAX
            .iter()
            .find(|s| args.iter().any(|a| a.contains(*s)))
    {
        return Err(fail(format!(
            "it holds `{syntax}`, but it runs without a shell, so `{program}` would get `{syntax}` as a word; use sh -c '…' to run it through a shell"
        )));
    }
    let limit = limit.min(LIMIT);
    let shown_limit = shown(limit);
    let deadline = Instant::now() + limit;
    let mut child = {
        use std::os::unix::process::CommandExt as _;
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| fail(format!("`{program}` cannot be started: {}", e.kind())))?
    };
    // Read in a thread so that a chatty command cannot fill the pipe and stall; the answer is
    // waited for only until the deadline.
    let stdout = child.stdout.take();
    let (send, output) = mpsc::channel();
    std::thread::spawn(move || {
        let out = match stdout {
            Some(s) => crate::input::read_capped(s, MAX_OUTPUT).map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        };
        let _ = send.send(out);
    });
    loop {
        match exited(&child) {
            Ok(true) => break,
            Ok(false) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(false) => {
                let _ = end_group(&mut child);
                return Err(fail(format!(
                    "`{program}` did not finish within {shown_limit}"
                )));
            }
            Err(e) => {
                let _ = end_group(&mut child);
                return Err(fail(format!(
                    "`{program}` cannot be waited for: {}",
                    e.kind()
                )));
            }
        }
    }
    // What it left running in the background ends with it, and with them the last writer of
    // the pipe.
    let status = end_group(&mut child);
    let out = match output.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(out)) => out,
        Ok(Err(why)) => return Err(fail(format!("`{program}`'s output: {why}"))),
        Err(_) => {
            return Err(fail(format!(
                "`{program}` finished, but something it started kept its output open past {shown_limit}"
            )));
        }
    };
    let status =
        status.map_err(|e| fail(format!("`{program}` cannot be waited for: {}", e.kind())))?;
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

/// Whether the command has ended, without reaping it: while it is not reaped its process id,
/// which is also its group's id, cannot be given to another process, so that killing the group
/// afterwards reaches only what the command started.
fn exited(child: &Child) -> std::io::Result<bool> {
    let pid = libc::id_t::from(child.id());
    // SAFETY: waitid(2) writes only into `info`, a zeroed siginfo_t owned here; WNOWAIT leaves
    // the child waitable, so `Child::wait` still reaps it.
    let (r, info) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        (r, info)
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: with WNOHANG, si_pid is 0 unless a child changed state, and set when one did.
    Ok(unsafe { info.si_pid() } != 0)
}

/// Kills the command's process group (the command and everything it started that stayed in
/// the group), then reaps the command and returns how it ended.
fn end_group(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals a process group and touches no memory.
        // The group is the one made for this child (process_group(0) above), and the child is
        // not reaped yet, so the id is still its own.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    child.wait()
}

/// `10 s`, `2.5 s` (to a tenth: a limit cut to what is left of a caller's timeout is a few
/// milliseconds under it).
fn shown(d: Duration) -> String {
    let text = format!("{:.1}", d.as_secs_f64());
    format!("{} s", text.strip_suffix(".0").unwrap_or(&text))
}
