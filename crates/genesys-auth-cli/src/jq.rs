//! `--jq EXPR`: a jq filter over the response, through the jaq crates (no jq needed). Strings
//! are printed raw, as `gh api --jq` prints them; other values as JSON.
//!
//! A filter is a program, and a program can recurse without end (`def f: 1+f; f` overflows the
//! stack, which no thread can survive), run forever (`[range(1e18)]`) or print without end. So
//! the filter runs in a child process, this same binary started as a jq worker: its memory is
//! capped, it is killed at the command's deadline (ten seconds at most), its output is read up
//! to a cap, and whatever becomes of it, the command reports it in one line.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

use crate::exit::{CliError, Exit};

/// The first argument that makes this binary a jq worker. Not an option a user would type.
const WORKER: &str = "\u{1}jq-worker";

/// How long a filter may run when --timeout does not say less.
const LIMIT: Duration = Duration::from_secs(10);

/// The worker reads an answer up to this size (a merged `--paginate` list included).
const MAX_INPUT: u64 = 256 << 20;

/// A filter's output is read up to this size.
const MAX_OUTPUT: u64 = 256 << 20;

/// The worker's address space: several times the largest answer it can be given.
const MAX_MEMORY: u64 = 4 << 30;

/// The worker's exit code for a filter that failed with a message of its own.
const FAILED: i32 = 3;

fn usage(m: String) -> CliError {
    CliError::new(Exit::Usage, m)
}

/// Runs `expr` over the JSON `input` in a worker process and returns its output: one line per
/// value.
pub fn run(expr: &str, input: &[u8]) -> Result<String, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| usage(format!("--jq cannot start its worker: {}", e.kind())))?;
    let limit = crate::deadline::within(LIMIT);
    let deadline = Instant::now() + limit;
    let mut child = Command::new(exe)
        .arg(WORKER)
        .arg(expr)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| usage(format!("--jq cannot start its worker: {}", e.kind())))?;
    let mut stdin = child.stdin.take();
    let body = input.to_vec();
    std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&body);
        }
    });
    let (send, output) = mpsc::channel();
    let stdout = child.stdout.take();
    std::thread::spawn(move || {
        let out = stdout.map(|s| genesys_auth::input::read_capped(s, MAX_OUTPUT));
        let _ = send.send(out);
    });
    let mut stderr = child.stderr.take();
    let too_large = |cap: u64| {
        usage(format!(
            "--jq `{expr}` printed more than {} MiB; narrow the filter",
            cap >> 20
        ))
    };
    let mut out = None;
    let status = loop {
        if out.is_none()
            && let Ok(o) = output.try_recv()
        {
            if let Some(Err(genesys_auth::input::InputError::TooLarge { cap })) = o {
                let _ = child.kill();
                let _ = child.wait();
                return Err(too_large(cap));
            }
            out = Some(o);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let why = match crate::deadline::command() {
                    Some(d) if d.remaining() < LIMIT => format!("within {}", d.shown()),
                    _ => format!("within {} s", LIMIT.as_secs()),
                };
                return Err(usage(format!(
                    "--jq `{expr}` did not finish {why}; a filter over one answer should take milliseconds (one that never ends, like range(1e18)?)"
                )));
            }
        }
    };
    let out = match out {
        Some(o) => o,
        None => output
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
            .flatten(),
    };
    match status.code() {
        Some(0) => match out {
            Some(Ok(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Some(Err(genesys_auth::input::InputError::TooLarge { cap })) => Err(too_large(cap)),
            _ => Err(usage(format!(
                "--jq `{expr}`: its output could not be read"
            ))),
        },
        Some(FAILED) => {
            let mut message = Vec::new();
            if let Some(e) = stderr.as_mut() {
                let _ = e.take(4096).read_to_end(&mut message);
            }
            Err(usage(
                String::from_utf8_lossy(&message).trim_end().to_owned(),
            ))
        }
        // Killed by a signal: a stack overflow aborts, and so does running out of memory.
        _ => Err(usage(format!(
            "--jq `{expr}` ran out of stack or memory (a filter that recurses without end, like def f: 1+f; f?)"
        ))),
    }
}

/// The worker's side: when this process was started as a jq worker, runs the filter given in
/// its arguments over standard input and returns the exit code; otherwise `None`.
pub fn worker() -> Option<std::process::ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != WORKER {
        return None;
    }
    let expr = args.next()?.into_string().ok()?;
    cap_memory();
    let mut out = std::io::stdout().lock();
    let mut emit = |line: &str| writeln!(out, "{line}").is_ok();
    let code = match genesys_auth::input::read_stdin(MAX_INPUT)
        .map_err(|e| usage(format!("--jq: the answer could not be read: {e}")))
        .and_then(|input| eval(&expr, &input, &mut emit))
    {
        Ok(()) => 0,
        Err(e) => {
            eprint!("{}", e.message);
            FAILED
        }
    };
    let _ = out.flush();
    Some(std::process::ExitCode::from(code as u8))
}

/// Caps the worker's address space, so that a filter that builds without end (`[range(1e18)]`)
/// fails its allocation and ends, rather than pressing the machine.
fn cap_memory() {
    let limit = libc::rlimit {
        rlim_cur: MAX_MEMORY as libc::rlim_t,
        rlim_max: MAX_MEMORY as libc::rlim_t,
    };
    // SAFETY: setrlimit(2) reads the struct passed by reference and affects only this process.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &limit);
    }
}

/// Runs `expr` over the JSON `input` in this process and gives `emit` one line per output
/// value; `emit` returns false to stop.
fn eval(expr: &str, input: &[u8], emit: &mut dyn FnMut(&str) -> bool) -> Result<(), CliError> {
    let input = jaq_json::read::parse_single(input)
        .map_err(|_| usage("--jq needs a JSON answer, and this one is not JSON".into()))?;
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let program = File {
        code: expr,
        path: (),
    };
    let modules = loader
        .load(&arena, program)
        .map_err(|errs| usage(syntax_error(expr, &errs)))?;
    let known: Vec<&str> = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .map(|d| d.name)
        .chain(jaq_core::funs::<data::JustLut<Val>>().map(|f| f.0))
        .chain(jaq_std::funs::<data::JustLut<Val>>().map(|f| f.0))
        .chain(jaq_json::funs::<data::JustLut<Val>>().map(|f| f.0))
        .collect();
    let filter = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| usage(undefined_error(expr, &errs, &known)))?;
    let is_array = matches!(input, Val::Arr(_));
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    for v in filter.id.run((ctx, input)).map(unwrap_valr) {
        let v = v.map_err(|e| usage(runtime_error(expr, &e.to_string(), is_array)))?;
        let text = v.to_string();
        let line = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::String(s)) => s,
            _ => text,
        };
        // A reader that went away (the output cap reached, or `| head`) ends the filter.
        if !emit(&line) {
            break;
        }
    }
    Ok(())
}

/// Where in `expr` a slice of it starts, as a 1-based character column.
fn column(expr: &str, at: &str) -> Option<usize> {
    let offset = (at.as_ptr() as usize).checked_sub(expr.as_ptr() as usize)?;
    (offset <= expr.len() && expr.is_char_boundary(offset))
        .then(|| expr[..offset].chars().count() + 1)
}

/// A filter that does not parse: where, and what was expected there.
fn syntax_error(expr: &str, errs: &jaq_core::load::Errors<&str, ()>) -> String {
    use jaq_core::load::Error;
    let first = errs.first().and_then(|(_, e)| match e {
        Error::Lex(v) => v.first().map(|(want, at)| (want.as_str(), *at)),
        Error::Parse(v) => v.first().map(|(want, at)| (want.as_str(), *at)),
        Error::Io(_) => None,
    });
    match first.and_then(|(want, at)| Some((want, at, column(expr, at)?))) {
        Some((want, at, col)) => {
            let found: String = at.chars().take(12).collect();
            let found = if found.is_empty() {
                "the end".to_owned()
            } else {
                format!("`{found}`")
            };
            format!(
                "--jq `{expr}` is not a valid jq expression: at column {col}, {want} expected, found {found}"
            )
        }
        None => format!("--jq `{expr}` is not a valid jq expression"),
    }
}

/// A filter that names what does not exist, with the closest filter that does.
fn undefined_error(
    expr: &str,
    errs: &jaq_core::compile::Errors<&str, ()>,
    known: &[&str],
) -> String {
    let Some((name, kind)) = errs.first().and_then(|(_, v)| v.first()) else {
        return format!("--jq `{expr}` names a filter that does not exist");
    };
    let at = column(expr, name)
        .map(|c| format!(" (column {c})"))
        .unwrap_or_default();
    let closest = known
        .iter()
        .filter(|k| !k.starts_with('_'))
        .map(|k| (strsim::levenshtein(name, k), *k))
        .filter(|(d, k)| *d > 0 && *d <= 2 && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    format!(
        "--jq `{expr}`: no {} named `{name}`{at}{closest}",
        kind.as_str()
    )
}

/// A filter that failed on the answer: the error without the value it quotes in full (an
/// answer can be megabytes), and, when an array was indexed like an object, how to reach into
/// it.
fn runtime_error(expr: &str, message: &str, input_is_array: bool) -> String {
    const MAX: usize = 160;
    let kind = |v: &str| match v.trim_start().chars().next() {
        Some('[') => "an array",
        Some('{') => "an object",
        Some('"') => "a string",
        Some('n') => "null",
        Some('t' | 'f') => "a boolean",
        _ => "a number",
    };
    let indexed = message
        .strip_prefix("cannot index ")
        .and_then(|rest| rest.rsplit_once(" with "));
    let (said, hint) = match indexed {
        Some((value, key)) => {
            let hint = match (kind(value), input_is_array) {
                ("an array", true) => {
                    "; the answer is one array (with --paginate, of every page's entities): start with .[] (e.g. .[].name)"
                }
                ("an array", false) => "; use .[] to go into the array (e.g. .entities[].name)",
                _ => "",
            };
            (format!("cannot index {} with {key}", kind(value)), hint)
        }
        None => (message.to_owned(), ""),
    };
    let short = match said.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &said[..i]),
        None => said,
    };
    format!("--jq `{expr}` failed: {short}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(expr: &str, input: &[u8]) -> Result<Vec<String>, CliError> {
        let mut out = Vec::new();
        eval(expr, input, &mut |l| {
            out.push(l.to_owned());
            true
        })?;
        Ok(out)
    }

    #[test]
    fn filters_print_strings_raw_and_other_values_as_json() {
        let input = br#"{"entities":[{"name":"a","n":1},{"name":"b","n":2}]}"#;
        assert_eq!(lines(".entities[].name", input).unwrap(), ["a", "b"]);
        assert_eq!(lines("[.entities[].n] | add", input).unwrap(), ["3"]);
        assert_eq!(lines(".entities | length", input).unwrap(), ["2"]);
        assert_eq!(lines("map(.n)", br#"[{"n":1}]"#).unwrap(), ["[1]"]);
        for bad in [".[", "nosuchfilter", ".entities | error(\"x\")"] {
            assert_eq!(lines(bad, input).unwrap_err().exit, Exit::Usage, "{bad}");
        }
        assert!(lines(".", b"not json").is_err());
    }

    /// Errors say where and what, never the answer itself.
    #[test]
    fn errors_point_at_the_mistake_without_the_input() {
        let big = format!(r#"[{{"name":"{}"}}]"#, "x".repeat(10_000));
        let msg = |expr: &str, input: &[u8]| lines(expr, input).unwrap_err().message;
        let m = msg(".entities", big.as_bytes());
        assert!(m.contains("cannot index an array"), "{m}");
        assert!(m.contains("--paginate") && m.contains(".[]"), "{m}");
        assert!(m.len() < 400, "{m}");
        let m = msg(".entities[", b"{}");
        assert!(m.contains("column 11"), "{m}");
        let m = msg(".entities | lenght", b"{}");
        assert!(m.contains("did you mean `length`?"), "{m}");
        assert!(m.contains("column 13"), "{m}");
    }
}
