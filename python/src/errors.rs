//! The exception classes, and the library's errors turned into them with what a caller may
//! branch on as attributes: `status` (the HTTP status), `error` (the server's error code),
//! `correlation_id` (to quote to Genesys support) and `retry_after` (seconds), each None when
//! not known.
//!
//! The classes belong to `genesys_auth`, where they are exported, so that they print as
//! `genesys_auth.AuthError` and pickle by reference (a traceback from a worker process, a
//! `concurrent.futures` result) to the same class; the attributes travel with them (they live
//! in the instance's `__dict__`, which exceptions pickle).

use genesys_auth::Error as LibError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(genesys_auth, Error, PyException, "Any genesys-auth error.");
create_exception!(
    genesys_auth,
    ConfigError,
    Error,
    "Missing or invalid settings (CLI exit 3)."
);
create_exception!(
    genesys_auth,
    AuthError,
    Error,
    "The client or token was rejected (CLI exit 4)."
);
create_exception!(
    genesys_auth,
    ForbiddenError,
    Error,
    "Forbidden: a missing scope or permission (CLI exit 5)."
);
create_exception!(
    genesys_auth,
    RateLimitedError,
    Error,
    "Rate limited, after retries (CLI exit 6)."
);
create_exception!(
    genesys_auth,
    NetworkError,
    Error,
    "Network, timeout, server error or unreadable response (CLI exit 7)."
);
create_exception!(
    genesys_auth,
    ApiError,
    Error,
    "The API answered another error status (CLI exit 8)."
);

/// The attributes every exception of the family has, None unless the error says.
pub(crate) const ATTRIBUTES: [&str; 4] = ["status", "error", "correlation_id", "retry_after"];

/// Adds the classes to the module, with the attributes' defaults on the base class.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base = py.get_type::<Error>();
    for name in ATTRIBUTES {
        base.setattr(name, py.None())?;
    }
    m.add("Error", base)?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("AuthError", py.get_type::<AuthError>())?;
    m.add("ForbiddenError", py.get_type::<ForbiddenError>())?;
    m.add("RateLimitedError", py.get_type::<RateLimitedError>())?;
    m.add("NetworkError", py.get_type::<NetworkError>())?;
    m.add("ApiError", py.get_type::<ApiError>())?;
    Ok(())
}

/// What an error says of the server's answer.
#[derive(Default)]
struct Details {
    status: Option<u16>,
    error: Option<String>,
    correlation_id: Option<String>,
    retry_after: Option<f64>,
}

/// The server's error code from the start of its body: OAuth's `error`, or the API's `code`.
/// An excerpt cut short is not JSON, and then there is none.
fn code_in(excerpt: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(excerpt).ok()?;
    ["error", "code"]
        .iter()
        .find_map(|k| v.get(k).and_then(|c| c.as_str()).map(str::to_owned))
}

fn details(e: &LibError) -> Details {
    match e {
        LibError::InvalidClient {
            status,
            correlation_id,
            ..
        } => Details {
            status: Some(*status),
            error: Some("invalid_client".into()),
            correlation_id: correlation_id.clone(),
            ..Details::default()
        },
        LibError::Forbidden {
            excerpt,
            correlation_id,
            ..
        } => Details {
            status: Some(403),
            error: code_in(excerpt),
            correlation_id: correlation_id.clone(),
            ..Details::default()
        },
        LibError::RateLimited {
            retry_after,
            correlation_id,
            ..
        } => Details {
            retry_after: retry_after.map(|d| d.as_secs_f64()),
            correlation_id: correlation_id.clone(),
            ..Details::default()
        },
        LibError::Server {
            status,
            excerpt,
            correlation_id,
            ..
        }
        | LibError::Rejected {
            status,
            excerpt,
            correlation_id,
            ..
        }
        | LibError::Api {
            status,
            excerpt,
            correlation_id,
            ..
        } => Details {
            status: Some(*status),
            error: code_in(excerpt),
            correlation_id: correlation_id.clone(),
            ..Details::default()
        },
        LibError::BadResponse { correlation_id, .. } => Details {
            correlation_id: correlation_id.clone(),
            ..Details::default()
        },
        LibError::AccessTokenRejected { .. } => Details {
            status: Some(401),
            ..Details::default()
        },
        _ => Details::default(),
    }
}

/// The library's error as the matching Python exception, with its (secret-free) message and
/// its attributes.
pub(crate) fn to_py(py: Python<'_>, e: LibError) -> PyErr {
    let msg = e.to_string();
    let d = details(&e);
    let err = match e {
        LibError::Config(_) | LibError::Usage(_) => ConfigError::new_err(msg),
        LibError::InvalidClient { .. }
        | LibError::AccessTokenRejected { .. }
        | LibError::Rejected { .. } => AuthError::new_err(msg),
        LibError::Forbidden { .. } => ForbiddenError::new_err(msg),
        LibError::RateLimited { .. } => RateLimitedError::new_err(msg),
        LibError::Api { .. } | LibError::OffOrigin { .. } => ApiError::new_err(msg),
        _ => NetworkError::new_err(msg),
    };
    let value = err.value(py);
    // Setting an attribute on a fresh exception cannot fail short of memory exhaustion; the
    // exception is still raised without it then.
    let _ = value.setattr("status", d.status);
    let _ = value.setattr("error", d.error);
    let _ = value.setattr("correlation_id", d.correlation_id);
    let _ = value.setattr("retry_after", d.retry_after);
    err
}
