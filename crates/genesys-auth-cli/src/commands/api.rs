//! `genesys-auth api PATH`, in the manner of `gh api`.

use genesys_auth::{ApiClient, ApiRequest, ApiResponse};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::cli::{ApiArgs, Global};
use crate::context;
use crate::exit::{CliError, Exit};
use crate::output::{print_json, print_line};

fn usage(msg: String) -> CliError {
    CliError::new(Exit::Usage, msg)
}

/// A request body (`-d`, `-F x=@file`, standard input) is read up to this size.
pub const MAX_BODY: u64 = 64 << 20;

/// The body of `-d`: JSON text, `@file` or `@-`, checked to be JSON.
fn read_body(data: &str) -> Result<Vec<u8>, CliError> {
    use genesys_auth::input;
    let bytes = match data.strip_prefix('@') {
        Some("-") => input::read_stdin(MAX_BODY).map_err(|e| {
            usage(format!(
                "-d @-: cannot read the body from standard input: {e}"
            ))
        })?,
        Some(path) => input::read_file(std::path::Path::new(path), MAX_BODY)
            .map_err(|e| usage(format!("-d: cannot read the body from {path}: {e}")))?,
        None => data.as_bytes().to_vec(),
    };
    serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| usage(format!("the body given with -d is not JSON: {e}")))?;
    Ok(bytes)
}

/// Headers that decide how the request is framed or routed: the HTTP client sets them, and a
/// second copy can hang the request or split it in two.
const FRAMING_HEADERS: [&str; 11] = [
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    // Meant for a proxy, which never sees them inside the tunnel: a credential sent to the API.
    "proxy-authorization",
    // The client would have to wait for a `100 Continue` that it does not handle.
    "expect",
];

/// Parses `-H 'Name: value'`. Never echoes the value: it may be a credential.
pub fn parse_header(h: &str, no_auth: bool) -> Result<(HeaderName, HeaderValue), CliError> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| usage("a header given with -H should look like 'Name: value'".into()))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        usage("a header name given with -H has characters a header name cannot carry".into())
    })?;
    if FRAMING_HEADERS.contains(&name.as_str()) {
        return Err(usage(format!(
            "-H {name}: this header is set by the HTTP client from the request itself; drop it"
        )));
    }
    if name == reqwest::header::AUTHORIZATION && !no_auth {
        return Err(usage(
            "-H Authorization: the token is attached for you; add --no-auth to send your own instead"
                .into(),
        ));
    }
    let value = HeaderValue::from_str(value.trim()).map_err(|_| {
        usage(format!(
            "the value of header {name} has characters a header cannot carry"
        ))
    })?;
    Ok((name, value))
}

/// A `-F` value as gh types it: `true`, `false`, `null` and numbers as JSON, `@FILE` as the
/// file's text, anything else a string.
fn typed_value(v: &str) -> Result<Value, CliError> {
    if let Some(path) = v.strip_prefix('@') {
        let bytes = genesys_auth::input::read_file(std::path::Path::new(path), MAX_BODY)
            .map_err(|e| usage(format!("-F: cannot read {path}: {e}")))?;
        let text =
            String::from_utf8(bytes).map_err(|_| usage(format!("-F: {path} is not UTF-8 text")))?;
        return Ok(Value::String(
            text.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    Ok(match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match serde_json::from_str::<serde_json::Number>(v) {
            Ok(n) => Value::Number(n),
            Err(_) => Value::String(v.to_owned()),
        },
    })
}

/// The `-f`/`-F` fields, in order.
fn fields(args: &ApiArgs) -> Result<Vec<(String, Value)>, CliError> {
    let mut out: Vec<(String, Value)> = args
        .raw_fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    for (k, v) in &args.fields {
        out.push((k.clone(), typed_value(v)?));
    }
    Ok(out)
}

pub fn request(args: &ApiArgs) -> Result<ApiRequest, CliError> {
    let mut body = args.data.as_deref().map(read_body).transpose()?;
    let fields = fields(args)?;
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| usage(format!("`{m}` is not an HTTP method")))?,
        None if body.is_some() || !fields.is_empty() => Method::POST,
        None => Method::GET,
    };
    let mut query = args.query.clone();
    if !fields.is_empty() {
        if method == Method::GET || method == Method::HEAD {
            // As gh does: fields of a GET are its query.
            for (k, v) in fields {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                query.push((k, text));
            }
        } else {
            let object: serde_json::Map<String, Value> = fields.into_iter().collect();
            body = Some(serde_json::to_vec(&Value::Object(object)).unwrap_or_default());
        }
    }
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h, args.no_auth))
        .collect::<Result<_, _>>()?;
    Ok(ApiRequest {
        method,
        path: args.path.clone(),
        query,
        headers,
        body,
        no_auth: args.no_auth,
    })
}

fn print_head(resp: &ApiResponse) {
    eprintln!("HTTP {}", resp.status);
    for (k, v) in &resp.headers {
        eprintln!("{k}: {}", v.to_str().unwrap_or("(binary)"));
    }
    eprintln!();
}

pub(crate) fn print_body(body: &[u8], args: &ApiArgs) -> Result<(), CliError> {
    if args.silent || body.is_empty() {
        return Ok(());
    }
    if let Some(expr) = &args.jq {
        crate::output::print_raw(&crate::jq::run(expr, body)?);
        return Ok(());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => print_json(&v),
        Err(_) => print_line(String::from_utf8_lossy(body).trim_end()),
    }
    Ok(())
}

pub async fn run(global: &Global, args: ApiArgs) -> Result<(), CliError> {
    if global.client_secret_stdin && args.data.as_deref() == Some("@-") {
        return Err(usage(
            "--client-secret-stdin and -d @- both read standard input; give the body in a file (-d @body.json) or the secret another way (--client-secret-file)".into(),
        ));
    }
    let req = request(&args)?;
    let settings = context::settings(global)?;
    let api = ApiClient::new(context::provider(global, settings)?);
    if args.paginate {
        let progress =
            crate::progress::Progress::new(crate::progress::wanted(global.verbose, args.silent));
        let result = super::paginate::run(&api, req, &args, progress).await;
        return result.map_err(|e| pool_hint(e, &api));
    }
    let revokes_own = revokes_own_token(&api, &req);
    let resp = api.send(req).await.map_err(|e| pool_hint(e.into(), &api))?;
    if args.include {
        print_head(&resp);
    }
    if !resp.status.is_success() {
        let mut e = super::verify::status_error(&resp);
        let fields_made_post = args.method.is_none()
            && args.data.is_none()
            && !(args.raw_fields.is_empty() && args.fields.is_empty());
        if resp.status == reqwest::StatusCode::METHOD_NOT_ALLOWED && fields_made_post {
            e.message.push_str(
                "\n-f/-F made this request a POST (as in gh); to send the fields as the query of a GET, add -X GET (or give them with -q KEY=VALUE)",
            );
        }
        return Err(e);
    }
    // The server revoked the token this command sent: no cache keeps it, as after `revoke`.
    if revokes_own {
        api.provider()
            .forget()
            .await
            .map_err(|e| CliError::new(Exit::Network, e.to_string()))?;
    }
    print_body(&resp.body, &args)
}

/// The API's rate limit met with a single token: one way past it is more tokens, which the
/// library's message cannot name (it knows no flags). Not the token endpoint's limit (its
/// URL is in the message), which more tokens would only make worse.
fn pool_hint(mut e: CliError, api: &ApiClient) -> CliError {
    let provider = api.provider();
    if e.exit == Exit::RateLimited
        && !e.message.contains("/oauth/token")
        && provider.pool_size() == 1
        && !provider.is_fixed()
    {
        e.message.push_str(
            "\nto go past one token's limit, spread the requests over several tokens of the client: --pool N (or GENESYS_TOKEN_POOL=N)",
        );
    }
    e
}

/// Whether `req` is `DELETE /api/v2/tokens/me` with the cached token, which revokes it.
fn revokes_own_token(api: &ApiClient, req: &ApiRequest) -> bool {
    let without_query = |u: &str| u.split(['?', '#']).next().unwrap_or_default().to_owned();
    req.method == Method::DELETE
        && !req.no_auth
        && matches!(
            (api.url_for(&req.path), api.url_for("tokens/me")),
            (Ok(asked), Ok(me)) if without_query(&asked).trim_end_matches('/') == me
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(argv: &[&str]) -> ApiArgs {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        match cli.command {
            crate::cli::Command::Api(a) => a,
            _ => unreachable!("an api command line"),
        }
    }

    #[test]
    fn fields_build_a_typed_json_body_or_a_query() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.txt");
        std::fs::write(&file, "from a file\n").unwrap();
        let at = format!("d=@{}", file.display());
        let req = request(&args(&[
            "genesys-auth",
            "api",
            "groups",
            "-f",
            "name=Support",
            "-f",
            "n=7",
            "-F",
            "size=3",
            "-F",
            "ok=true",
            "-F",
            "none=null",
            "-F",
            "ratio=0.5",
            "-F",
            "word=yes",
            "-F",
            &at,
        ]))
        .unwrap();
        assert_eq!(req.method, Method::POST);
        let body: Value = serde_json::from_slice(&req.body.unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"name": "Support", "n": "7", "size": 3, "ok": true, "none": null,
                "ratio": 0.5, "word": "yes", "d": "from a file"})
        );
        let req = request(&args(&[
            "genesys-auth",
            "api",
            "-X",
            "get",
            "users",
            "-F",
            "pageSize=5",
        ]))
        .unwrap();
        assert_eq!(req.method, Method::GET);
        assert!(req.body.is_none());
        assert_eq!(req.query, vec![("pageSize".to_owned(), "5".to_owned())]);
        let e = request(&args(&[
            "genesys-auth",
            "api",
            "x",
            "-F",
            "a=@/nonexistent/file",
        ]))
        .unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any -H text gives a header or a usage error; never a panic, never a framing header,
        /// and the error never repeats the value (it may be a credential).
        #[test]
        fn header_arguments(name in "[ -~\r\n]{0,20}", value in "[ -~\r\n\t]{0,40}") {
            let text = format!("{name}:VALUE-{value}");
            match parse_header(&text, false) {
                Ok((n, v)) => {
                    prop_assert!(!FRAMING_HEADERS.contains(&n.as_str()));
                    prop_assert!(n != reqwest::header::AUTHORIZATION);
                    prop_assert!(!v.as_bytes().iter().any(|b| *b == b'\r' || *b == b'\n'));
                }
                Err(e) => {
                    prop_assert_eq!(e.exit, Exit::Usage);
                    prop_assert!(!e.message.contains("VALUE-"), "{}", e.message);
                }
            }
        }

        #[test]
        fn query_arguments(text in "\\PC{0,40}") {
            match crate::cli::parse_pair(&text) {
                Ok((k, _)) => prop_assert!(!k.trim().is_empty() && text.contains('=')),
                Err(e) => prop_assert!(e.contains("KEY=VALUE")),
            }
        }
    }
}
