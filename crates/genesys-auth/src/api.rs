//! The authenticated API client for `{api}/api/v2/...`: attaches the bearer token, speaks JSON,
//! and recovers from what can be recovered from. On a 401 it invalidates the token that was sent,
//! refreshes once and retries once; on 429 it waits `Retry-After` (capped) and retries; on
//! 502/503/504 and transport failures it retries idempotent methods. Every other answer is
//! returned as it is: callers see the status, the headers (`inin-ratelimit-*` included) and the
//! body.
//!
//! Each attempt takes its token from [`TokenProvider::lease`] and reports the answer to it, so
//! that requests are paced by the `inin-ratelimit-*` limits the API states: with a token pool
//! ([`ProviderBuilder::pool`](crate::ProviderBuilder::pool)), the token with the most headroom,
//! and a 429 rests that token while the retry goes at once to another; with a single token, a
//! wait for the window's reset instead of a request the server would refuse. A wait for headroom
//! longer than the deadline's rest (or the policy's `max_retry_after`) is not begun: the call
//! fails at once with [`Error::RateLimited`] and the wait.

use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::clock::Clock;
use crate::config::RetryPolicy;
use crate::error::Error;

use crate::provider::{NoLease, RateLimit, TokenProvider};
use crate::retry::{Attempt, Outcome, WaitCause, parse_retry_after};
use crate::transport::{LazyClient, correlation_id, excerpt, read_capped};

/// At most this many pages are followed, against a server that never stops.
const MAX_PAGES: usize = 100_000;

/// API responses are read up to this size (Genesys pages are at most a few MiB).
pub(crate) const MAX_API_BODY: usize = 64 << 20;

/// One API request.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// `/api/v2/...`, `api/v2/...`, a short `users` (taken as `/api/v2/users`), or an absolute
    /// URL on the API origin (as `nextUri` sometimes is).
    pub path: String,
    /// Query parameters, added to any already in `path`.
    pub query: Vec<(String, String)>,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A JSON body.
    pub body: Option<Vec<u8>>,
    /// Send no token: for a caller that sets its own `Authorization` header.
    pub no_auth: bool,
}

impl ApiRequest {
    /// A request with no query, headers or body.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            no_auth: false,
        }
    }

    /// A GET.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Sends the request without a token (the caller's own `Authorization` header, if any, is
    /// sent instead).
    pub fn without_auth(mut self) -> Self {
        self.no_auth = true;
        self
    }

    /// This request for page `n` of a list paged by page number: `pageNumber=n`, in place of
    /// any `pageNumber` in the query or the path.
    pub fn with_page_number(&self, n: u64) -> Self {
        let mut req = self.clone();
        if let Some((path, query)) = req.path.split_once('?') {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| pair.split('=').next() != Some("pageNumber"))
                .collect();
            req.path = match kept.is_empty() {
                true => path.to_owned(),
                false => format!("{path}?{}", kept.join("&")),
            };
        }
        req.query.retain(|(k, _)| k != "pageNumber");
        req.query.push(("pageNumber".into(), n.to_string()));
        req
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &impl serde::Serialize) -> Result<Self, Error> {
        self.body = Some(serde_json::to_vec(body).map_err(|e| Error::Usage(e.to_string()))?);
        Ok(self)
    }
}

/// A response as the server sent it.
#[derive(Clone, Debug)]
pub struct ApiResponse {
    /// The method and URL asked (for messages).
    pub endpoint: String,
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// The body as JSON of type `T`, if the status is a success.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.error_for_status()?;
        serde_json::from_slice(&self.body).map_err(|e| Error::BadResponse {
            endpoint: self.endpoint.clone(),
            reason: format!("not the expected JSON ({e})"),
            excerpt: excerpt(&self.body),
            correlation_id: self.correlation_id(),
        })
    }

    /// An error for a status outside 2xx, typed as the token endpoint's are where it applies.
    pub fn error_for_status(&self) -> Result<(), Error> {
        let status = self.status.as_u16();
        let endpoint = self.endpoint.clone();
        let correlation_id = self.correlation_id();
        match status {
            200..=299 => Ok(()),
            403 => Err(Error::Forbidden {
                endpoint,
                excerpt: excerpt(&self.body),
                correlation_id,
            }),
            429 => Err(Error::RateLimited {
                endpoint,
                retry_after: self.retry_after(),
                attempts: 1,
                correlation_id,
            }),
            500..=599 => Err(Error::Server {
                endpoint,
                status,
                excerpt: excerpt(&self.body),
                attempts: 1,
                correlation_id,
            }),
            _ => Err(Error::Api {
                endpoint,
                status,
                excerpt: excerpt(&self.body),
                correlation_id,
            }),
        }
    }

    /// The `ININ-Correlation-Id` Genesys gives every response: quote it to Genesys support.
    pub fn correlation_id(&self) -> Option<String> {
        correlation_id(&self.headers)
    }

    /// `Retry-After`, in seconds (an HTTP date is read against the system clock).
    pub fn retry_after(&self) -> Option<Duration> {
        let v = self
            .headers
            .get(reqwest::header::RETRY_AFTER)?
            .to_str()
            .ok()?;
        parse_retry_after(v, std::time::SystemTime::now())
    }

    /// The `inin-ratelimit-*` headers, when all three are present.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        RateLimit::from_headers(&self.headers)
    }
}

/// One page of a paged list endpoint.
#[derive(Clone, Debug)]
pub struct Page {
    /// The page's entities.
    pub entities: Vec<Value>,
    /// `pageNumber`, when the endpoint gives it.
    pub page_number: Option<u64>,
    /// `pageCount`, when the endpoint gives it.
    pub page_count: Option<u64>,
    /// `total`, when the endpoint gives it.
    pub total: Option<u64>,
    /// `pageSize`, when the endpoint gives it.
    pub page_size: Option<u64>,
    /// `nextUri`, when the endpoint gives it.
    pub next_uri: Option<String>,
    /// The answer's `inin-ratelimit-*` headers: how much of the rate-limit window is left.
    pub rate_limit: Option<RateLimit>,
}

impl Page {
    /// The pages after this one, by number, when they can be fetched in any order: the list is
    /// paged by page number (`pageNumber`), this page says how many pages there are
    /// (`pageCount`, or `total` and `pageSize`), and its `nextUri`, if any, only names the next
    /// page number (no `cursor` or `after`). Fetch each with [`ApiRequest::with_page_number`].
    /// `None` when the list must be followed one page at a time (cursor paging) or this is the
    /// last page.
    pub fn numbered_rest(&self) -> Option<std::ops::RangeInclusive<u64>> {
        if self.entities.is_empty() {
            return None;
        }
        let n = self.page_number?;
        let count = self.page_count.or_else(|| {
            let (total, size) = (self.total?, self.page_size?);
            (size > 0).then(|| total.div_ceil(size))
        })?;
        if let Some(next) = &self.next_uri {
            // A relative nextUri is read against any origin: only its query matters here.
            let url = url::Url::parse("https://api.invalid/")
                .and_then(|base| base.join(next))
                .ok()?;
            let mut numbered = false;
            for (k, v) in url.query_pairs() {
                match k.as_ref() {
                    "cursor" | "after" | "before" => return None,
                    "pageNumber" if v.parse::<u64>().ok() == n.checked_add(1) => numbered = true,
                    "pageNumber" => return None,
                    _ => {}
                }
            }
            if !numbered {
                return None;
            }
        }
        // As many pages as `pages` would follow, against a server that never stops.
        let last = count.min(MAX_PAGES as u64);
        (n < last).then(|| n + 1..=last)
    }
}

/// Calls the Genesys Cloud API with tokens from a [`TokenProvider`]. Cheap to clone.
///
/// ```no_run
/// # async fn f() -> Result<(), genesys_auth::Error> {
/// use genesys_auth::{ApiClient, TokenProvider};
///
/// let api = ApiClient::new(TokenProvider::from_env()?);
/// let org: serde_json::Value = api.get_json("organizations/me").await?;
/// println!("{}", org["name"]);
///
/// // Every entity of a paged list, page-number or cursor paged alike.
/// let users = api.all_entities(genesys_auth::ApiRequest::get("users").query("pageSize", "100")).await?;
/// println!("{} users", users.len());
///
/// // Writes: the JSON body is serialized for you; the answer comes back as it is.
/// let resp = api.post("groups", &serde_json::json!({"name": "Support"})).await?;
/// println!("{}", resp.status);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ApiClient {
    /// The token source: tokens, and the one way to drop a token the API refused.
    tokens: TokenProvider,
    /// The HTTP client, shared with the token source (one connection pool, one proxy and TLS
    /// setup).
    transport: LazyClient,
    base: String,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl ApiClient {
    /// A client on the provider's region, sharing its HTTP client and retry policy.
    pub fn new(provider: TokenProvider) -> Self {
        let settings = provider.settings();
        Self {
            transport: provider.transport(),
            base: settings.region.value.api_base_url(),
            retry: settings.retry.clone(),
            clock: provider.clock().clone(),
            tokens: provider,
        }
    }

    /// The provider in use.
    pub fn provider(&self) -> &TokenProvider {
        &self.tokens
    }

    /// The API origin, e.g. `https://api.mypurecloud.ie`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The URL for a path as [`ApiRequest::path`] accepts it. An absolute URL must be on the API
    /// origin: the token is never sent anywhere else.
    pub fn url_for(&self, path: &str) -> Result<String, Error> {
        let path = path.trim();
        if path.starts_with("//") {
            return Err(Error::Usage(format!(
                "{path} is a scheme-relative address; it is never followed: the token is only sent to {}",
                self.base
            )));
        }
        if path.contains("://") {
            return if path.starts_with(&format!("{}/", self.base)) {
                Ok(path.to_owned())
            } else {
                Err(Error::Usage(format!(
                    "{path} is not on the API origin {}; the token is only sent there",
                    self.base
                )))
            };
        }
        let rel = path.trim_start_matches('/');
        if rel.starts_with("api/") {
            Ok(format!("{}/{rel}", self.base))
        } else {
            Ok(format!("{}/api/v2/{rel}", self.base))
        }
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> Result<ApiResponse, Error> {
        self.send(ApiRequest::get(path)).await
    }

    /// POST a JSON body to a path.
    pub async fn post(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<ApiResponse, Error> {
        self.send(ApiRequest::new(Method::POST, path).json(body)?)
            .await
    }

    /// PUT a JSON body to a path.
    pub async fn put(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<ApiResponse, Error> {
        self.send(ApiRequest::new(Method::PUT, path).json(body)?)
            .await
    }

    /// PATCH a path with a JSON body.
    pub async fn patch(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<ApiResponse, Error> {
        self.send(ApiRequest::new(Method::PATCH, path).json(body)?)
            .await
    }

    /// DELETE a path.
    pub async fn delete(&self, path: &str) -> Result<ApiResponse, Error> {
        self.send(ApiRequest::new(Method::DELETE, path)).await
    }

    /// Every entity of a paged list, all pages followed (as `genesys-auth api --paginate`
    /// does): no stream to pin, no `futures-util` to add.
    pub async fn all_entities(&self, req: ApiRequest) -> Result<Vec<Value>, Error> {
        use futures_util::StreamExt as _;
        let mut all = Vec::new();
        let mut pages = std::pin::pin!(self.pages(req));
        while let Some(page) = pages.next().await {
            all.extend(page?.entities);
        }
        Ok(all)
    }

    /// GET a path and decode its JSON; an error status is an error.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.get(path).await?.json()
    }

    /// Sends a request, with the recovery described at the top of this module.
    pub async fn send(&self, req: ApiRequest) -> Result<ApiResponse, Error> {
        let url = self.url_for(&req.path)?;
        let endpoint = format!("{} {}", req.method, strip_query(&url));
        let idempotent = matches!(
            req.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let start = self.clock.now();
        let attempt = |a: Attempt| self.attempt(&req, &url, &endpoint, idempotent, start, a);
        self.retry.drive(&self.clock, attempt).await
    }

    /// One attempt of `send`, and what its answer means for the retry driver.
    async fn attempt(
        &self,
        req: &ApiRequest,
        url: &str,
        endpoint: &str,
        idempotent: bool,
        start: std::time::Instant,
        attempt: Attempt,
    ) -> Outcome<ApiResponse> {
        // A failure that only an idempotent request may retry.
        let transient = |e: Error| match idempotent {
            true => Outcome::from_error(e),
            false => Outcome::GiveUp(e),
        };
        let lease = match req.no_auth {
            true => None,
            // Headroom is waited for within the deadline and the longest wait the policy
            // honours (a reset is waited a second past, as the pool counts it); a pool (or a
            // single token) spent for longer fails now, with the wait, rather than send a
            // request into a 429.
            false => match self
                .tokens
                .lease_within(
                    attempt.time_left.min(
                        self.retry
                            .max_retry_after
                            .saturating_add(Duration::from_secs(1)),
                    ),
                )
                .await
            {
                Ok(l) => Some(l),
                Err(e @ NoLease::Failed(_)) => return Outcome::Done(Err(e.into_error(endpoint))),
                Err(e) => return Outcome::GiveUp(e.into_error(endpoint)),
            },
        };
        let token = lease.as_ref().map(|l| l.token().clone());
        let http = match self.transport.get() {
            Ok(h) => h,
            Err(e) => return Outcome::Done(Err(e)),
        };
        let mut builder = http
            .request(req.method.clone(), url)
            .timeout(attempt.request_timeout(self.transport.timeout()))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &token {
            builder = builder.bearer_auth(token.secret());
        }
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        for (k, v) in &req.headers {
            builder = builder.header(k.clone(), v.clone());
        }
        if let Some(body) = &req.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let resp = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                return transient(self.transport.request_error(endpoint, e));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let pooled = lease.as_ref().is_some_and(|l| l.is_pooled());
        if let Some(lease) = lease {
            if status == StatusCode::UNAUTHORIZED && !attempt.refreshed {
                lease.refused();
            }
            lease.answered(status.as_u16(), &headers);
        }
        tracing::info!(
            endpoint = %endpoint,
            status = status.as_u16(),
            elapsed_ms = self.clock.now().saturating_duration_since(start).as_millis() as u64,
            correlation_id = correlation_id(&headers).as_deref().unwrap_or("-"),
            "API answered"
        );
        crate::metrics::api_answer(status.as_u16(), self.clock.now() - start, &headers);
        let body = match read_capped(endpoint, resp, MAX_API_BODY).await {
            Ok(b) => b,
            Err(e @ Error::Transport { .. }) => return transient(e),
            Err(e) => return Outcome::Done(Err(e)),
        };
        let response = ApiResponse {
            endpoint: endpoint.to_owned(),
            status,
            headers,
            body,
        };
        match (status.as_u16(), &token) {
            (_, None) => Outcome::Done(Ok(response)),
            (401, _) if self.tokens.is_fixed() => Outcome::Done(Err(Error::AccessTokenRejected {
                source_name: self.tokens.fixed_source().unwrap_or("settings").into(),
            })),
            (401, Some(token)) if !attempt.refreshed => {
                // The lease dropped the token sent from its slot, above.
                tracing::debug!(endpoint = %endpoint, "401: invalidated the token sent; retrying once");
                Outcome::RefreshOnce {
                    otherwise: Ok(response),
                }
            }
            // The pool rests the token that met it: the retry takes another at once, or waits
            // for a reset in the lease, without sending.
            (429, _) if pooled => Outcome::Retry {
                cause: WaitCause::Elsewhere,
                otherwise: Ok(response),
            },
            (429, _) => Outcome::Retry {
                cause: response
                    .retry_after()
                    .map_or(WaitCause::RateLimited, WaitCause::Asked),
                otherwise: Ok(response),
            },
            (502..=504, _) if idempotent => Outcome::Retry {
                cause: WaitCause::Failure,
                otherwise: Ok(response),
            },
            _ => Outcome::Done(Ok(response)),
        }
    }

    /// Every page of a paged list endpoint, following `nextUri`, or `pageNumber` up to
    /// `pageCount`. Ends after the last page or at the first error.
    pub fn pages(&self, req: ApiRequest) -> impl Stream<Item = Result<Page, Error>> + Send + '_ {
        self.follow(FollowState {
            next: Some(req),
            pages: 0,
            seen: Default::default(),
        })
    }

    /// The pages after `first`, the answer to `req`, followed one at a time as [`pages`]
    /// follows them: for a caller that fetched the first page itself (with [`page`]) to see
    /// how the list is paged.
    ///
    /// [`pages`]: ApiClient::pages
    /// [`page`]: ApiClient::page
    pub fn pages_after<'a>(
        &'a self,
        req: ApiRequest,
        first: &Page,
    ) -> impl Stream<Item = Result<Page, Error>> + Send + use<'a> {
        let seen = std::iter::once(self.page_address(&req)).collect();
        self.follow(FollowState {
            next: next_request(&req, first),
            pages: 1,
            seen,
        })
    }

    /// One page of a paged list endpoint: an error status is an error, and so is an answer
    /// that is not a list ([`Error::NotPaged`]).
    pub async fn page(&self, req: ApiRequest) -> Result<Page, Error> {
        let r = self.send(req).await?;
        let v: Value = r.json()?;
        let Some(entities) = v.get("entities").and_then(Value::as_array).cloned() else {
            return Err(Error::NotPaged {
                endpoint: r.endpoint,
            });
        };
        let num = |k: &str| v.get(k).and_then(Value::as_u64);
        Ok(Page {
            page_number: num("pageNumber"),
            page_count: num("pageCount"),
            total: num("total"),
            page_size: num("pageSize"),
            next_uri: v.get("nextUri").and_then(Value::as_str).map(str::to_owned),
            rate_limit: r.rate_limit(),
            entities,
        })
    }

    fn follow(&self, state: FollowState) -> impl Stream<Item = Result<Page, Error>> + Send + '_ {
        futures_util::stream::unfold(state, move |mut st| async move {
            let req = st.next.take()?;
            st.pages += 1;
            if st.pages > 1
                && let Err(e) = self.check_next_page(&req.path)
            {
                return Some((Err(e), st));
            }
            let address = self.page_address(&req);
            if !st.seen.insert(address.clone()) {
                // Following it again would fetch the same pages for ever; stopping quietly would
                // pass a part of the list off as all of it.
                return Some((
                    Err(Error::BadResponse {
                        endpoint: format!("{} {}", req.method, strip_query(&address)),
                        reason: format!(
                            "page {} points back to a page already fetched (its nextUri repeats), so the list cannot be followed to its end",
                            st.pages - 1
                        ),
                        excerpt: "(the entities before it were fetched)".into(),
                        correlation_id: None,
                    }),
                    st,
                ));
            }
            let page = match self.page(req.clone()).await {
                Ok(p) => p,
                Err(e) => return Some((Err(e), st)),
            };
            st.next = next_request(&req, &page).filter(|_| st.pages < MAX_PAGES);
            Some((Ok(page), st))
        })
    }
}

/// Where [`ApiClient::pages`] is in a list.
struct FollowState {
    next: Option<ApiRequest>,
    pages: usize,
    /// Every page address asked so far: a server that sends one back again is looping.
    seen: std::collections::HashSet<String>,
}

impl ApiClient {
    /// A request's full address, its query included, the same however the path was written
    /// (`users?x=1`, `/api/v2/users` with the query apart, an absolute `nextUri`).
    fn page_address(&self, req: &ApiRequest) -> String {
        let Ok(mut url) = self.url_for(&req.path).map(|u| url::Url::parse(&u)) else {
            return req.path.clone();
        };
        if let Ok(u) = url.as_mut() {
            if !req.query.is_empty() {
                u.query_pairs_mut().extend_pairs(&req.query);
            }
            let mut pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
            pairs.sort();
            u.set_query(None);
            if !pairs.is_empty() {
                u.query_pairs_mut().extend_pairs(&pairs);
            }
        }
        url.map_or_else(|_| req.path.clone(), String::from)
    }

    /// A `nextUri` is followed only on the API origin, and never when scheme-relative.
    fn check_next_page(&self, path: &str) -> Result<(), Error> {
        let p = path.trim();
        let off_origin = p.starts_with("//")
            || (p.contains("://") && !p.starts_with(&format!("{}/", self.base)));
        if !off_origin {
            return Ok(());
        }
        let host = url::Url::parse(p)
            .or_else(|_| url::Url::parse(&format!("https:{p}")))
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "an unreadable address".into());
        Err(Error::OffOrigin {
            host,
            origin: self.base.clone(),
        })
    }
}

/// The request for the page after `page`, if there is one.
fn next_request(current: &ApiRequest, page: &Page) -> Option<ApiRequest> {
    if page.entities.is_empty() {
        return None;
    }
    if let Some(next) = &page.next_uri {
        // nextUri carries its own query; extra parameters would be repeated. One that points
        // back to a page already fetched is caught by `pages`, as an error.
        return Some(ApiRequest {
            path: next.to_owned(),
            query: Vec::new(),
            ..current.clone()
        });
    }
    let (n, count) = (page.page_number?, page.page_count?);
    if n >= count {
        return None;
    }
    Some(current.with_page_number(n + 1))
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(body: &Value) -> Page {
        Page {
            entities: body["entities"].as_array().cloned().unwrap_or_default(),
            page_number: body["pageNumber"].as_u64(),
            page_count: body["pageCount"].as_u64(),
            total: body["total"].as_u64(),
            page_size: body["pageSize"].as_u64(),
            next_uri: body["nextUri"].as_str().map(str::to_owned),
            rate_limit: None,
        }
    }

    #[test]
    fn without_next_uri_page_numbers_lead_to_the_last_page() {
        let req = ApiRequest::get("/api/v2/things").query("pageSize", "2");
        let body = json!({"entities": [1, 2], "pageNumber": 1, "pageCount": 3});
        let next = next_request(&req, &page(&body)).expect("a next page");
        assert_eq!(
            next.query,
            vec![
                ("pageSize".into(), "2".into()),
                ("pageNumber".into(), "2".into())
            ]
        );
        let last = json!({"entities": [5], "pageNumber": 3, "pageCount": 3});
        assert!(next_request(&next, &page(&last)).is_none());
    }

    #[test]
    fn next_uri_wins_and_an_empty_page_ends_it() {
        let req = ApiRequest::get("/api/v2/things").query("pageSize", "2");
        let body = json!({"entities": [1], "nextUri": "/api/v2/things?cursor=abc"});
        let next = next_request(&req, &page(&body)).expect("a next page");
        assert_eq!(next.path, "/api/v2/things?cursor=abc");
        assert!(next.query.is_empty());
        let empty = json!({"entities": [], "nextUri": "/api/v2/things?cursor=def"});
        assert!(next_request(&next, &page(&empty)).is_none());
    }

    #[test]
    fn page_numbered_lists_say_which_pages_remain() {
        let numbered = |body: Value| page(&body).numbered_rest();
        // pageCount, or total and pageSize; a nextUri that only names the next number.
        assert_eq!(
            numbered(json!({"entities": [1], "pageNumber": 1, "pageCount": 4,
                "nextUri": "/api/v2/users?pageSize=1&pageNumber=2"})),
            Some(2..=4)
        );
        assert_eq!(
            numbered(json!({"entities": [1, 2], "pageNumber": 2, "total": 7, "pageSize": 2})),
            Some(3..=4)
        );
        // The last page, an empty page, cursors, a nextUri elsewhere in the list, no count.
        for body in [
            json!({"entities": [1], "pageNumber": 4, "pageCount": 4}),
            json!({"entities": [], "pageNumber": 1, "pageCount": 4}),
            json!({"entities": [1], "pageNumber": 1, "pageCount": 4,
                "nextUri": "/api/v2/things?cursor=abc&pageNumber=2"}),
            json!({"entities": [1], "pageNumber": 1, "pageCount": 4,
                "nextUri": "/api/v2/things?after=abc"}),
            json!({"entities": [1], "pageNumber": 1, "pageCount": 4,
                "nextUri": "/api/v2/things?pageNumber=3"}),
            json!({"entities": [1], "pageNumber": 1}),
            json!({"entities": [1], "nextUri": "/api/v2/things?cursor=abc"}),
        ] {
            assert_eq!(numbered(body.clone()), None, "{body}");
        }
        // Never more pages than `pages` would follow.
        let huge = numbered(json!({"entities": [1], "pageNumber": 1, "pageCount": u64::MAX}));
        assert_eq!(huge, Some(2..=MAX_PAGES as u64));
    }

    #[test]
    fn a_page_number_replaces_the_one_in_the_query_or_the_path() {
        let req = ApiRequest::get("users?pageNumber=1&expand=x")
            .query("pageSize", "5")
            .query("pageNumber", "1");
        let p = req.with_page_number(3);
        assert_eq!(p.path, "users?expand=x");
        assert_eq!(
            p.query,
            vec![
                ("pageSize".into(), "5".into()),
                ("pageNumber".into(), "3".into())
            ]
        );
        assert_eq!(
            ApiRequest::get("users?pageNumber=9")
                .with_page_number(2)
                .path,
            "users"
        );
    }

    proptest::proptest! {
        /// Whatever a server puts in `nextUri` and the counts, the pages said to remain follow
        /// this one and stay within the bound; nothing panics.
        #[test]
        fn numbered_rest_stays_in_bounds(
            next in proptest::option::of("\\PC{0,60}"),
            number in proptest::option::of(0u64..u64::MAX),
            count in proptest::option::of(0u64..u64::MAX),
            total in proptest::option::of(0u64..u64::MAX),
            size in proptest::option::of(0u64..1000),
        ) {
            let p = Page {
                entities: vec![json!(1)],
                page_number: number,
                page_count: count,
                total,
                page_size: size,
                next_uri: next,
                rate_limit: None,
            };
            if let Some(rest) = p.numbered_rest() {
                let n = number.unwrap_or_default();
                proptest::prop_assert_eq!(*rest.start(), n + 1);
                proptest::prop_assert!(*rest.end() <= MAX_PAGES as u64);
                proptest::prop_assert!(rest.start() <= rest.end());
            }
        }
    }
}
