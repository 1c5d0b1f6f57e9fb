//! Bounded reads of local input: the files that settings name (a secret, a CA bundle, a client
//! certificate and key, a cache entry, a request body) and standard input. Every read stops at
//! a size cap, so that `/dev/zero` or a runaway file cannot exhaust memory; a path that is not a
//! regular file (a FIFO, a device, a directory) is refused without blocking: the path is checked
//! before it is opened, it is opened with `O_NONBLOCK` (opening a FIFO would otherwise wait for a
//! writer), and the opened file is checked again, so that a swap between the two checks is caught.

use std::fs;
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;

/// Why local input could not be read. It never holds what was read.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("cannot read it: {}", describe(.0))]
    Io(#[source] Arc<std::io::Error>),
    /// The path names something other than a regular file.
    #[error("it is {kind}, not a regular file")]
    NotAFile {
        /// What it is: `a FIFO`, `a device`, `a directory`, `a socket`.
        kind: &'static str,
    },
    /// The input is larger than the cap.
    #[error("it is larger than {}", size(*.cap))]
    TooLarge {
        /// The cap, in bytes.
        cap: u64,
    },
}

impl InputError {
    /// The I/O error's kind, when reading failed on the system's side.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            InputError::Io(e) => Some(e.kind()),
            _ => None,
        }
    }

    /// The I/O error behind it, when reading failed on the system's side.
    pub(crate) fn io_cause(&self) -> Option<Arc<std::io::Error>> {
        match self {
            InputError::Io(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// The raw OS error number, when there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            InputError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

impl From<std::io::Error> for InputError {
    fn from(e: std::io::Error) -> Self {
        InputError::Io(Arc::new(e))
    }
}

/// An I/O error in words, without the path (the caller names the file).
fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.kind().to_string(),
    }
}

/// `64 KiB`, `4 MiB`.
fn size(cap: u64) -> String {
    if cap >= 1 << 20 {
        format!("{} MiB", cap >> 20)
    } else if cap >= 1 << 10 {
        format!("{} KiB", cap >> 10)
    } else {
        format!("{cap} bytes")
    }
}

/// What a file type is, in words; `None` for a regular file.
fn not_regular(t: fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_file() {
        None
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// How a file is opened: following a symbolic link in its last component or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Links {
    Follow,
    /// `O_NOFOLLOW`: a link in the last component fails with `ELOOP`.
    Refuse,
}

/// Opens a regular file for reading without ever blocking on it, and returns it with its
/// metadata (taken from the opened file). See the module's description.
pub(crate) fn open_regular(
    path: &Path,
    links: Links,
) -> Result<(fs::File, fs::Metadata), InputError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let before = match links {
        Links::Follow => fs::metadata(path),
        Links::Refuse => fs::symlink_metadata(path),
    }?;
    let file_type = before.file_type();
    // A link is left for O_NOFOLLOW to refuse, with the error callers already tell apart.
    if !(links == Links::Refuse && file_type.is_symlink())
        && let Some(kind) = not_regular(file_type)
    {
        return Err(InputError::NotAFile { kind });
    }
    let mut flags = libc::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    let meta = file.metadata()?;
    if let Some(kind) = not_regular(meta.file_type()) {
        return Err(InputError::NotAFile { kind });
    }
    Ok((file, meta))
}

/// Reads at most `cap` bytes from `reader`; more is [`InputError::TooLarge`].
pub fn read_capped(reader: impl Read, cap: u64) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    reader.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(InputError::TooLarge { cap });
    }
    Ok(bytes)
}

/// Reads a regular file of at most `cap` bytes (see the module's description).
pub fn read_file(path: &Path, cap: u64) -> Result<Vec<u8>, InputError> {
    let (file, meta) = open_regular(path, Links::Follow)?;
    if meta.len() > cap {
        return Err(InputError::TooLarge { cap });
    }
    read_capped(file, cap)
}

/// Reads standard input to its end, at most `cap` bytes.
pub fn read_stdin(cap: u64) -> Result<Vec<u8>, InputError> {
    read_capped(std::io::stdin().lock(), cap)
}

/// Reads one line (up to and without its line break) of at most `cap` bytes: enough for a
/// secret typed at a terminal (which ends with Enter, not with end of file) or piped in.
pub fn read_line_capped(mut reader: impl BufRead, cap: u64) -> Result<Vec<u8>, InputError> {
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if buf.is_empty() {
            return Ok(line);
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if (line.len() + take) as u64 > cap {
            return Err(InputError::TooLarge { cap });
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(if done { take + 1 } else { take });
        if done {
            return Ok(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO with no writer, a device and a directory are refused at once; a file over the cap
    /// is refused; a file within it is read.
    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        assert!(matches!(
            read_file(&fifo, 10),
            Err(InputError::NotAFile { kind: "a FIFO" })
        ));
        assert!(matches!(
            read_file(Path::new("/dev/zero"), 10),
            Err(InputError::NotAFile { kind: "a device" })
        ));
        assert!(matches!(
            read_file(dir.path(), 10),
            Err(InputError::NotAFile { .. })
        ));
        let file = dir.path().join("f");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_file(&file, 10).unwrap(), b"0123456789");
        let e = read_file(&file, 9).unwrap_err();
        assert!(matches!(e, InputError::TooLarge { cap: 9 }));
        assert_eq!(e.to_string(), "it is larger than 9 bytes");
        let missing = read_file(&dir.path().join("none"), 10).unwrap_err();
        assert_eq!(missing.io_kind(), Some(std::io::ErrorKind::NotFound));
    }

    #[test]
    fn an_endless_stream_stops_at_the_cap() {
        let zero = std::fs::File::open("/dev/zero").unwrap();
        assert!(matches!(
            read_capped(zero, 1000),
            Err(InputError::TooLarge { cap: 1000 })
        ));
        let zero = std::io::BufReader::new(std::fs::File::open("/dev/zero").unwrap());
        assert!(matches!(
            read_line_capped(zero, 1000),
            Err(InputError::TooLarge { cap: 1000 })
        ));
        let text: &[u8] = b"first\nsecond\n";
        assert_eq!(read_line_capped(text, 5).unwrap(), b"first");
        assert_eq!(
            read_line_capped(&b"no break"[..], 100).unwrap(),
            b"no break"
        );
    }
}
