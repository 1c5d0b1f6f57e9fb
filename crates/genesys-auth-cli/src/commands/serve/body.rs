//! Bodies passed through chunk by chunk, never held whole, and cut off past a size cap.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The error a body past its cap ends with (the connection is then closed mid-body, so the
/// other side cannot take a truncated body for a whole one).
#[derive(Debug)]
pub(crate) struct TooLarge(pub u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the body is larger than the cap of {} bytes", self.0)
    }
}

impl std::error::Error for TooLarge {}

/// `inner`'s data frames, counted against `cap`. Trailers are dropped: `Trailer` is a hop-by-hop
/// matter. Held in a `Mutex` only to be `Sync`, as reqwest's request bodies must be; it is only
/// ever reached through `&mut` (`get_mut`), so it never locks.
pub(crate) struct Capped<B> {
    inner: std::sync::Mutex<B>,
    seen: u64,
    cap: u64,
}

impl<B> Capped<B> {
    pub fn new(inner: B, cap: u64) -> Self {
        Self {
            inner: std::sync::Mutex::new(inner),
            seen: 0,
            cap,
        }
    }
}

impl<B> Body for Capped<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let inner = match this.inner.get_mut() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        loop {
            return match Pin::new(&mut *inner).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.seen = this.seen.saturating_add(data.len() as u64);
                        if this.seen > this.cap {
                            Poll::Ready(Some(Err(Box::new(TooLarge(this.cap)))))
                        } else {
                            Poll::Ready(Some(Ok(Frame::data(data))))
                        }
                    }
                    // A trailers frame: not passed on.
                    Err(_) => continue,
                },
            };
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.inner.lock() {
            Ok(b) => b.size_hint(),
            Err(_) => SizeHint::default(),
        }
    }
}
