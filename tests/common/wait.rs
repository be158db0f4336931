//! Waiting on a condition with a deadline instead of sleeping: the one poll loop the tests and
//! benchmarks share. A benchmark can include this file alone
//! (`#[path = "../tests/common/wait.rs"] mod wait;`): it needs only tokio.
#![allow(dead_code)]

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// How often a condition is checked again.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Checks `check` every [`POLL_EVERY`] until it gives `Some`, and returns that; `None` once
/// `limit` has passed (on tokio's clock) without it. For a caller that reports a timeout
/// itself; the others use [`wait_until`] or [`wait_until_some`].
pub async fn poll_until<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Checks `check` until it gives `Some`, and returns that; panics naming `what` after `limit`.
pub async fn wait_until_some<T, F, Fut>(limit: Duration, what: impl Display, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_until(limit, check).await {
        Some(value) => value,
        None => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Checks `check` until it is true; panics naming `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: impl Display, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until_some(limit, what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await
}
