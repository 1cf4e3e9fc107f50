//! Work repeated in the background for as long as a guard lives: renewing a claim, a hold
//! or a job's sign of life while the request, backup or job that needs it runs.

use std::future::Future;
use std::time::Duration;

/// A task running a step every period; stopped when dropped.
pub(crate) struct Repeating(tokio::task::JoinHandle<()>);

impl Repeating {
    /// Runs `step` every `period`, the first time one period from now, until the returned
    /// guard is dropped.
    pub(crate) fn every<F, Fut>(period: Duration, mut step: F) -> Repeating
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Repeating(tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                step().await;
            }
        }))
    }
}

impl Drop for Repeating {
    fn drop(&mut self) {
        self.0.abort();
    }
}
