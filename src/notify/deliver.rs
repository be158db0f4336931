//! Posting one message to one webhook, with the platforms' success rules and retries.
//!
//! Success is what each platform says it is (Slack: 200 with the body `ok`; Discord: any 2xx).
//! 5xx answers, timeouts and connection errors are retried with jittered exponential backoff
//! (backon); a 429 waits what the platform asked for; any other 4xx is final, because sending
//! the same payload to the same URL will get the same answer.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use std::future::Future;

use futures::future::BoxFuture;
use reqwest::header::RETRY_AFTER;
use serde::Deserialize;

use super::{Platform, Webhook, text};
use crate::util::root_cause;

/// Answer bodies are cut to this many characters before they reach a log line.
const MAX_ANSWER_CHARS: usize = 200;

/// How hard to try before giving up on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff delay; each further one doubles, with jitter, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Retries after the first attempt (429s included).
    pub max_retries: usize,
    /// The longest `Retry-After` honoured; a longer one is waited for this long and retried.
    pub max_rate_limit_wait: Duration,
    /// One request's time limit.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// About two minutes of retrying: long enough for a platform hiccup, short enough that the
    /// in-memory queue does not grow without bound.
    fn default() -> Self {
        Self {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_retries: 6,
            max_rate_limit_wait: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// 429: try again after the given time.
    #[error("rate limited (HTTP 429), retry after {0:?}")]
    RateLimited(Duration),
    /// 5xx, timeout or connection error: worth retrying.
    #[error("{0}")]
    Transient(String),
    /// Any other answer: retrying will not help.
    #[error("{0}")]
    Permanent(String),
}

impl DeliveryError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Permanent(_))
    }
}

/// Waits for a backoff delay. Swappable so tests can record the waits instead of sleeping.
pub type SleepFn = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    policy: RetryPolicy,
    sleep: SleepFn,
}

#[derive(Deserialize)]
struct DiscordRateLimit {
    retry_after: f64,
}

impl Sender {
    pub fn new(policy: RetryPolicy) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(crate::ravan::USER_AGENT)
            .timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            policy,
            sleep: Arc::new(|d| Box::pin(tokio::time::sleep(d))),
        })
    }

    /// Replaces how backoff delays are waited (tests).
    pub fn with_sleep(mut self, sleep: SleepFn) -> Self {
        self.sleep = sleep;
        self
    }

    /// Posts `body` until the platform accepts it, retrying what is worth retrying.
    /// Returns the last error when it gives up.
    ///
    /// The returned future owns everything it uses: a retry future that borrows trips rustc's
    /// higher-ranked `Send` check when a worker spawns it (rust-lang/rust#102211).
    pub fn deliver(
        &self,
        hook: &Webhook,
        body: &serde_json::Value,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send + use<> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.min_delay)
            .with_max_delay(self.policy.max_delay)
            .with_max_times(self.policy.max_retries)
            .with_jitter();
        let sleep = self.sleep.clone();
        let max_wait = self.policy.max_rate_limit_wait;
        let name = hook.to_string();
        let (this, hook, body) = (self.clone(), hook.clone(), body.clone());
        let attempt = move || this.send_once(&hook, &body);
        attempt
            .retry(backoff)
            .sleep(move |d| sleep(d))
            .when(|e: &DeliveryError| e.is_retryable())
            .adjust(move |err: &DeliveryError, next: Option<Duration>| match (err, next) {
                // Still bounded by the retry count: `next` is None once it is used up.
                (DeliveryError::RateLimited(wait), Some(_)) => Some((*wait).min(max_wait)),
                _ => next,
            })
            .notify(move |err: &DeliveryError, wait: Duration| {
                tracing::warn!(webhook = %name, error = %err, "delivery failed, retrying in {wait:?}");
            })
    }

    /// One POST, classified. The request is built before the future starts, so the future
    /// owns everything it touches (and is `Send + 'static`, as the retry loop needs).
    pub fn send_once(
        &self,
        hook: &Webhook,
        body: &serde_json::Value,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send + use<> {
        let request = self.http.post(hook.url.expose().clone()).json(body);
        let (platform, timeout) = (hook.platform, self.policy.timeout);
        async move {
            let response = request
                .send()
                .await
                .map_err(|e| transport_error(e, timeout))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok());
            let text = response
                .text()
                .await
                .map_err(|e| transport_error(e, timeout))?;
            classify(platform, status, retry_after, &text)
        }
    }
}

/// Turns a webhook's answer into success or a [`DeliveryError`], per the platform's rules.
pub fn classify(
    platform: Platform,
    status: u16,
    retry_after_header: Option<f64>,
    body: &str,
) -> Result<(), DeliveryError> {
    let answer = || {
        format!(
            "HTTP {status}: {}",
            text::truncate(body.trim(), MAX_ANSWER_CHARS)
        )
    };
    match (platform, status) {
        (Platform::Slack, 200) if body.trim() == "ok" => Ok(()),
        (Platform::Slack, 200) => Err(DeliveryError::Permanent(format!(
            "unexpected answer {}",
            answer()
        ))),
        (Platform::Discord, 200..=299) => Ok(()),
        (_, 429) => {
            // Discord's body is more precise (milliseconds); Slack only sends the header.
            let from_body = serde_json::from_str::<DiscordRateLimit>(body)
                .ok()
                .map(|b| b.retry_after);
            let secs = from_body
                .or(retry_after_header)
                .filter(|s| s.is_finite() && *s >= 0.0);
            Err(DeliveryError::RateLimited(Duration::from_secs_f64(
                secs.unwrap_or(1.0),
            )))
        }
        (_, 500..=599) => Err(DeliveryError::Transient(answer())),
        _ => Err(DeliveryError::Permanent(answer())),
    }
}

/// reqwest's errors print the URL, which holds the webhook's token: strip it.
fn transport_error(e: reqwest::Error, timeout: Duration) -> DeliveryError {
    if e.is_timeout() {
        return DeliveryError::Transient(format!("no answer within {timeout:?}"));
    }
    let e = e.without_url();
    let cause = root_cause(&e);
    DeliveryError::Transient(format!("request failed: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryError::*;

    #[test]
    fn slack_success_is_200_ok_only() {
        assert_eq!(classify(Platform::Slack, 200, None, "ok"), Ok(()));
        assert!(matches!(
            classify(Platform::Slack, 200, None, "something"),
            Err(Permanent(_))
        ));
        assert!(matches!(
            classify(Platform::Slack, 204, None, ""),
            Err(Permanent(_))
        ));
    }

    #[test]
    fn discord_success_is_any_2xx() {
        assert_eq!(classify(Platform::Discord, 204, None, ""), Ok(()));
        assert_eq!(classify(Platform::Discord, 200, None, "{}"), Ok(()));
    }

    #[test]
    fn rate_limits_read_the_header_or_discords_body() {
        assert_eq!(
            classify(Platform::Slack, 429, Some(3.0), ""),
            Err(RateLimited(Duration::from_secs(3)))
        );
        assert_eq!(
            classify(
                Platform::Discord,
                429,
                Some(1.0),
                r#"{"message":"You are being rate limited.","retry_after":0.25,"global":false}"#
            ),
            Err(RateLimited(Duration::from_millis(250)))
        );
        assert_eq!(
            classify(Platform::Discord, 429, None, "nope"),
            Err(RateLimited(Duration::from_secs(1)))
        );
        assert_eq!(
            classify(Platform::Slack, 429, Some(-5.0), ""),
            Err(RateLimited(Duration::from_secs(1)))
        );
    }

    #[test]
    fn server_errors_are_transient_and_client_errors_permanent() {
        assert!(
            classify(Platform::Slack, 500, None, "rollup_error")
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            classify(Platform::Discord, 503, None, "")
                .unwrap_err()
                .is_retryable()
        );
        for (platform, status, body) in [
            (Platform::Slack, 400, "invalid_payload"),
            (Platform::Slack, 403, "invalid_token"),
            (Platform::Slack, 404, "no_service"),
            (Platform::Slack, 410, "channel_is_archived"),
            (
                Platform::Discord,
                401,
                r#"{"message": "Invalid Webhook Token", "code": 50027}"#,
            ),
            (
                Platform::Discord,
                404,
                r#"{"message": "Unknown Webhook", "code": 10015}"#,
            ),
        ] {
            let err = classify(platform, status, None, body).unwrap_err();
            assert!(!err.is_retryable(), "{status}");
            assert!(err.to_string().contains(&status.to_string()));
            assert!(
                err.to_string()
                    .contains(body.split('"').nth(3).unwrap_or(body))
            );
        }
    }
}
