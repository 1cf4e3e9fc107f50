//! [`Pager`]: a lazy, auto-paging [`Stream`] over a `limit`/`offset` list endpoint.

use crate::error::Result;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

type Fetch<T> = Arc<dyn Fn(usize, usize) -> BoxFuture<'static, Result<Vec<T>>> + Send + Sync>;

/// Pages through a list: fetches `page_size` items at a time, starting at offset 0, until a
/// short or empty page, or until `max_total` items were yielded. Nothing is fetched before the
/// first poll.
///
/// ```no_run
/// # async fn run(client: pictograph::Client) -> pictograph::Result<()> {
/// use futures::TryStreamExt;
/// let mut pages = client.datasets().iter().page_size(50).max_total(120);
/// while let Some(ds) = pages.try_next().await? {
///     println!("{}", ds.name);
/// }
/// let all = client.datasets().iter().all().await?;
/// # Ok(()) }
/// ```
pub struct Pager<T> {
    fetch: Fetch<T>,
    page_size: usize,
    /// The largest page the server serves.
    max_page: usize,
    max_total: Option<usize>,
    stream: Option<BoxStream<'static, Result<T>>>,
}

impl<T> fmt::Debug for Pager<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pager")
            .field("page_size", &self.page_size)
            .field("max_total", &self.max_total)
            .field("started", &self.stream.is_some())
            .finish()
    }
}

struct State<T> {
    fetch: Fetch<T>,
    page_size: usize,
    remaining: Option<usize>,
    offset: usize,
    buffer: VecDeque<T>,
    done: bool,
}

impl<T: Send + 'static> Pager<T> {
    /// A pager of `page_size` items a page, over a listing that serves at most `max_page`.
    pub(crate) fn new(
        page_size: usize,
        max_page: usize,
        fetch: impl Fn(usize, usize) -> BoxFuture<'static, Result<Vec<T>>> + Send + Sync + 'static,
    ) -> Pager<T> {
        Pager {
            fetch: Arc::new(fetch),
            page_size,
            max_page: max_page.max(1),
            max_total: None,
            stream: None,
        }
    }

    /// Items per request: at least 1, and at most what the server serves in one page (1000
    /// datasets or projects); a larger value asks for that many.
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, self.max_page);
        self
    }

    /// Stops after `n` items.
    pub fn max_total(mut self, n: usize) -> Self {
        self.max_total = Some(n);
        self
    }

    /// Collects every item.
    pub async fn all(self) -> Result<Vec<T>> {
        self.try_collect().await
    }

    /// The first item, fetching a single page.
    pub async fn first(self) -> Result<Option<T>> {
        let mut s = self;
        s.try_next().await
    }

    fn start(&mut self) -> BoxStream<'static, Result<T>> {
        let state = State {
            fetch: self.fetch.clone(),
            page_size: self.page_size.clamp(1, self.max_page),
            remaining: self.max_total,
            offset: 0,
            buffer: VecDeque::new(),
            done: false,
        };
        futures::stream::try_unfold(state, |mut s| async move {
            loop {
                if s.remaining == Some(0) {
                    return Ok(None);
                }
                if let Some(item) = s.buffer.pop_front() {
                    if let Some(r) = s.remaining.as_mut() {
                        *r -= 1;
                    }
                    return Ok(Some((item, s)));
                }
                if s.done {
                    return Ok(None);
                }
                // Never more than is still to be yielded.
                let want = s.remaining.map_or(s.page_size, |r| r.min(s.page_size));
                let page = (s.fetch)(s.offset, want).await?;
                s.done = page.len() < want;
                s.offset += page.len();
                s.buffer.extend(page);
            }
        })
        .boxed()
    }
}

impl<T: Send + 'static> Stream for Pager<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.stream.is_none() {
            let s = self.start();
            self.stream = Some(s);
        }
        self.stream
            .as_mut()
            .expect("started above")
            .poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn pager(total: usize, calls: Arc<Mutex<Vec<(usize, usize)>>>) -> Pager<usize> {
        Pager::new(100, 1000, move |offset, limit| {
            calls.lock().unwrap().push((offset, limit));
            let items: Vec<usize> = (offset..total.min(offset + limit)).collect();
            Box::pin(async move { Ok(items) })
        })
    }

    #[tokio::test]
    async fn pages_until_a_short_page_and_honours_max_total() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let all = pager(5, calls.clone()).page_size(2).all().await.unwrap();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        assert_eq!(*calls.lock().unwrap(), vec![(0, 2), (2, 2), (4, 2)]);

        calls.lock().unwrap().clear();
        let all = pager(4, calls.clone()).page_size(2).all().await.unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(
            calls.lock().unwrap().len(),
            3,
            "an exact multiple ends on an empty page"
        );

        calls.lock().unwrap().clear();
        let some = pager(50, calls.clone())
            .page_size(10)
            .max_total(15)
            .all()
            .await
            .unwrap();
        assert_eq!(some.len(), 15);
        assert_eq!(
            *calls.lock().unwrap(),
            vec![(0, 10), (10, 5)],
            "the last page asks only for what is left"
        );

        calls.lock().unwrap().clear();
        assert!(pager(50, calls.clone())
            .max_total(0)
            .all()
            .await
            .unwrap()
            .is_empty());
        assert!(calls.lock().unwrap().is_empty());
        assert_eq!(pager(50, calls.clone()).first().await.unwrap(), Some(0));
    }
}
