//! `api --paginate`: every page of a list, merged into one JSON array in page order.
//!
//! The first page is fetched alone; it says how the list is paged. A list paged by page number
//! whose first answer gives `pageCount` (or `total` and `pageSize`) has its other pages fetched
//! `--parallel` at a time, each by its number, and merged in page order. A cursor-paged list
//! (`nextUri` with a cursor) is followed one page at a time, as is every list with
//! `--parallel 1`. The rate limit's headers shrink the window when the window is nearly spent,
//! rather than meet 429s; the API client still waits out any 429 it gets. With a token pool
//! (`--pool`) the window stays whole: the pool sends each page with the token that has the
//! most headroom and waits for a reset itself.
//!
//! A page that fails ends the command with that page's error, named by its number. The pages
//! before it are printed, in order, as one complete JSON array (with a warning that the list
//! stops there): the same output a one-at-a-time run gives, and never a page after a gap.

use std::cell::Cell;

use futures_util::StreamExt as _;
use genesys_auth::{ApiClient, ApiRequest, Page, RateLimit};
use serde_json::Value;

use crate::cli::ApiArgs;
use crate::exit::{CliError, Exit};
use crate::progress::Progress;

/// The merged entities are kept up to this size.
const MAX_MERGED: usize = 256 << 20;

/// The entities merged so far, within a size cap.
struct Merged {
    all: Vec<Value>,
    size: usize,
    pages: u64,
    cap: usize,
}

/// Why the merge stopped.
enum Stop {
    /// The entities would pass the cap.
    Full,
    /// A page failed.
    Failed(CliError),
}

impl Merged {
    fn new(cap: usize) -> Self {
        Self {
            all: Vec::new(),
            size: 0,
            pages: 0,
            cap,
        }
    }

    /// Adds the next page's entities, unless they would take the merged list past the cap.
    fn add(&mut self, page: Page) -> Result<(), Stop> {
        let size: usize = page.entities.iter().map(|e| e.to_string().len() + 1).sum();
        if self.size + size > self.cap {
            return Err(Stop::Full);
        }
        self.size += size;
        self.pages += 1;
        self.all.extend(page.entities);
        Ok(())
    }
}

/// The window for the next launches: `parallel`, less when the rate-limit window is nearly
/// spent (half of what is left, so that the requests already in flight do not use it up), and
/// never less than one.
pub fn window_for(limit: Option<RateLimit>, parallel: usize) -> usize {
    match limit {
        None => parallel,
        Some(l) => usize::try_from(l.allowed.saturating_sub(l.count) / 2)
            .unwrap_or(usize::MAX)
            .clamp(1, parallel.max(1)),
    }
}

/// Fetches the pages after `first` into `merged`: by number, a window at a time, where the
/// list allows; else one at a time.
async fn fetch_rest(
    api: &ApiClient,
    req: &ApiRequest,
    first: Page,
    parallel: usize,
    merged: &mut Merged,
    progress: &Progress,
) -> Result<(), Stop> {
    // With a token pool the client paces each token itself, by the headers of that token's
    // own answers: one token's count says nothing of the others', so it must not narrow the
    // window for all of them.
    let pooled = api.provider().pool_size() > 1;
    let limit_of = |p: &Page| p.rate_limit.filter(|_| !pooled);
    let window = Cell::new(window_for(limit_of(&first), parallel));
    let numbered = first.numbered_rest().filter(|_| parallel > 1);
    let mut of = numbered.as_ref().map(|r| *r.end()).or(first.page_count);
    let follow = match numbered {
        Some(_) => None,
        None => Some(api.pages_after(req.clone(), &first)),
    };
    merged.add(first)?;
    progress.update(merged.pages, of, merged.all.len());
    if let Some(follow) = follow {
        let mut follow = std::pin::pin!(follow);
        while let Some(page) = follow.next().await {
            let page = page.map_err(|e| Stop::Failed(at_page(merged.pages + 1, e.into())))?;
            of = of.or(page.page_count);
            merged.add(page)?;
            progress.update(merged.pages, of, merged.all.len());
        }
        return Ok(());
    }
    let Some(rest) = numbered else {
        return Ok(());
    };
    let fetch = |n: u64| {
        let window = &window;
        async move {
            let page = api
                .page(req.with_page_number(n))
                .await
                .map_err(|e| Stop::Failed(at_page(n, e.into())))?;
            window.set(window_for(limit_of(&page), parallel));
            match page.page_number {
                Some(m) if m != n => Err(Stop::Failed(CliError::new(
                    Exit::Network,
                    format!(
                        "page {n}: the server answered page {m} instead, so this list cannot be fetched by page number; add --parallel 1 to follow it one page at a time"
                    ),
                ))),
                _ => Ok(page),
            }
        }
    };
    crate::window::in_order(rest, &window, fetch, |_, page| {
        merged.add(page)?;
        progress.update(merged.pages, of, merged.all.len());
        Ok(())
    })
    .await
}

/// The error of page `n`, named by its number.
fn at_page(n: u64, e: CliError) -> CliError {
    CliError::new(e.exit, format!("page {n}: {}", e.message))
}

/// Prints the merged entities as `api` prints an answer (`--jq`, `--silent`).
fn print_all(all: Vec<Value>, args: &ApiArgs) -> Result<(), CliError> {
    let text = serde_json::to_vec(&Value::Array(all)).unwrap_or_default();
    super::api::print_body(&text, args)
}

/// Fetches every page of `req` and prints the merged entities as `api` prints an answer.
pub async fn run(
    api: &ApiClient,
    req: ApiRequest,
    args: &ApiArgs,
    progress: Progress,
) -> Result<(), CliError> {
    let parallel = usize::from(args.parallel).max(1);
    let mut merged = Merged::new(MAX_MERGED);
    let first = match api.page(req.clone()).await {
        Ok(p) => p,
        Err(genesys_auth::Error::NotPaged { endpoint }) => {
            return Err(CliError::new(
                Exit::Usage,
                format!("{endpoint} answered a single object, not a paged list; drop --paginate"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let result = fetch_rest(api, &req, first, parallel, &mut merged, &progress).await;
    progress.clear();
    tracing::info!(
        pages = merged.pages,
        entities = merged.all.len(),
        "paginated"
    );
    let error = match result {
        Ok(()) => return print_all(merged.all, args),
        Err(Stop::Full) => CliError::new(
            Exit::Network,
            format!(
                "the pages hold more than {} MiB of entities, more than --paginate keeps in memory; ask for fewer with query parameters (-q) and page through them in parts",
                MAX_MERGED >> 20
            ),
        ),
        Err(Stop::Failed(e)) => e,
    };
    // What was fetched before the failure is printed, not lost; the error sets the exit code.
    crate::output::warn(&format!(
        "stopped after {} page(s); printing the {} entities fetched so far",
        merged.pages,
        merged.all.len()
    ));
    print_all(merged.all, args)?;
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(count: u64, allowed: u64) -> Option<RateLimit> {
        Some(RateLimit {
            count,
            allowed,
            reset: 30,
        })
    }

    #[test]
    fn the_window_shrinks_as_the_rate_limit_window_is_spent() {
        assert_eq!(window_for(None, 4), 4);
        assert_eq!(window_for(limit(10, 300), 4), 4);
        assert_eq!(window_for(limit(292, 300), 8), 4);
        assert_eq!(window_for(limit(296, 300), 8), 2);
        assert_eq!(window_for(limit(299, 300), 8), 1);
        // Over the limit, and a server that counts past it: one at a time, never none.
        assert_eq!(window_for(limit(400, 300), 8), 1);
        assert_eq!(window_for(limit(0, u64::MAX), 8), 8);
        assert_eq!(window_for(limit(0, 0), 0), 1);
    }

    fn page(entities: Vec<Value>) -> Page {
        Page {
            entities,
            page_number: None,
            page_count: None,
            total: None,
            page_size: None,
            next_uri: None,
            rate_limit: None,
        }
    }

    /// The cap counts each entity's JSON and a separator; the page that would pass it is not
    /// merged, and what was merged stays.
    #[test]
    fn the_merged_entities_stop_at_the_cap() {
        let entity = serde_json::json!({"name": "User 1"});
        let each = entity.to_string().len() + 1;
        let mut m = Merged::new(each * 5);
        assert!(m.add(page(vec![entity.clone(); 3])).is_ok());
        assert!(m.add(page(vec![entity.clone(); 2])).is_ok());
        assert!(matches!(m.add(page(vec![entity.clone()])), Err(Stop::Full)));
        assert_eq!((m.pages, m.all.len(), m.size), (2, 5, each * 5));
        assert_eq!(MAX_MERGED, 256 << 20);
    }
}
