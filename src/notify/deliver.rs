//! Posting one message to one webhook, and the platforms' rules for what comes next.
//!
//! Success is what each platform says it is (Slack: 200 with the body `ok`; Discord: any 2xx).
//! 5xx answers, timeouts and connection errors are worth retrying after a jittered exponential
//! backoff (backon computes it); a 429 waits what the platform asked for. A webhook is gone only
//! when the platform says so in its own words (Slack `no_service`, Discord code 10015 …): a bare
//! 401/403/404/410 may come from a proxy or a CDN in the way, and is retried like a 5xx. Any
//! other 4xx is final, because the same payload to the same URL gets the same answer. The retries
//! themselves are scheduled durably by the outbox ([`super::outbox`]), not in memory here.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use std::future::Future;

use reqwest::header::RETRY_AFTER;
use serde::Deserialize;

use chrono::Utc;

use super::destination::{Request, destination};
use super::signed::SigningSecret;
use super::{Platform, Webhook, text};
use crate::util::{bounded_secs, read_prefix, root_cause};

/// A webhook's answer is read up to this many bytes: enough for any platform's own words, and
/// the rest (a proxy's page, a body without end) is left unread.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Answer bodies are cut to this many characters before they reach a log line.
const MAX_ANSWER_CHARS: usize = 200;

/// How hard to try before giving up on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff delay; each further one doubles, with jitter, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// A message still failing this long after it was produced is marked failed.
    pub max_age: Duration,
    /// The longest `Retry-After` honoured; a longer one is waited for this long and retried.
    pub max_rate_limit_wait: Duration,
    /// One request's time limit. Shutdown lets a send in progress run its whole limit, so it
    /// is short enough (5 s) for that to fit in Docker's stop timeout; Slack and Discord answer
    /// in well under a second.
    pub timeout: Duration,
    /// Slack allows about one message a second per webhook: the least time between two.
    pub slack_interval: Duration,
    /// Recording a delivery the database refused (busy, restarting) is tried again after this,
    /// doubling each time, `record_retries` times; the message is not sent again meanwhile.
    pub record_delay: Duration,
    pub record_retries: usize,
}

impl Default for RetryPolicy {
    /// Retries every 1 s, 2 s, 4 s … up to 5 minutes apart, for a day: a chat platform's bad
    /// hour costs no alert, and a webhook that stays broken is reported instead of retried
    /// forever.
    fn default() -> Self {
        Self {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            max_age: Duration::from_secs(24 * 3600),
            max_rate_limit_wait: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            slack_interval: Duration::from_secs(1),
            // 0.25 s, 0.5 s … 4 s: a database busy for under 8 s costs no second send.
            record_delay: Duration::from_millis(250),
            record_retries: 5,
        }
    }
}

impl RetryPolicy {
    /// The waits between attempts to record a delivery.
    pub fn record_backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.record_delay)
            .with_max_times(self.record_retries)
    }

    /// How long to wait after the `attempt`-th failure (1-based) of one message: `Retry-After`
    /// for a 429, else the jittered exponential backoff.
    pub fn delay_after(&self, attempt: u32, error: &DeliveryError) -> Duration {
        if let DeliveryError::RateLimited(wait) = error {
            return (*wait).min(self.max_rate_limit_wait);
        }
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .without_max_times()
            .with_jitter()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay)
    }
}

/// What a successful answer says about the next request to the same webhook (Discord's
/// `X-RateLimit-Remaining` / `X-RateLimit-Reset-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    Free,
    /// The bucket is empty: wait this long before the next message.
    WaitBeforeNext(Duration),
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
    /// The message was refused (e.g. Slack `400 invalid_payload`): retrying will not help.
    #[error("{0}")]
    Permanent(String),
    /// The platform says the webhook itself is gone or refused (Slack `no_service`,
    /// `channel_is_archived`, `invalid_token` …; Discord codes 10015, 50027): nothing more
    /// should be sent to it.
    #[error("{0}")]
    Dead(String),
}

impl DeliveryError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited(_) | Self::Transient(_))
    }
}

/// The longest wait a webhook's answer can impose (a 429's `Retry-After` or `retry_after`,
/// Discord's bucket reset); the retry policy's cap on rate-limit waits is the same 5 min.
pub const MAX_PACE_WAIT: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    timeout: Duration,
    /// `WEBHOOK_SECRET`: signs every signed webhook's request.
    signing: Option<SigningSecret>,
}

#[derive(Deserialize)]
struct DiscordRateLimit {
    retry_after: f64,
}

impl Sender {
    pub fn new(timeout: Duration) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(crate::ravan::USER_AGENT)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            timeout,
            signing: None,
        })
    }

    /// Signs the signed webhooks' requests with `secret` (`WEBHOOK_SECRET`).
    pub fn with_signing(mut self, secret: Option<SigningSecret>) -> Self {
        self.signing = secret;
        self
    }

    /// One POST, classified. The request is built before the future starts, so the future
    /// owns everything it touches (and is `Send + 'static`, as the retry loop needs).
    pub fn send(
        &self,
        hook: &Webhook,
        body: &serde_json::Value,
    ) -> impl Future<Output = Result<Pace, DeliveryError>> + Send + use<> {
        let answered = self.send_answered(hook, body);
        async move { answered.await.map(|(pace, _)| pace) }
    }

    /// [`Sender::send`], also saying what the webhook answered on success (`HTTP 200: ok`),
    /// for commands that show it. Failures carry the answer in the error.
    pub fn send_answered(
        &self,
        hook: &Webhook,
        body: &serde_json::Value,
    ) -> impl Future<Output = Result<(Pace, String), DeliveryError>> + Send + use<> {
        let secret = self.signing.as_ref();
        let request = destination(hook.platform).request(hook, body, Utc::now(), secret);
        let sent = request.map(|r| self.send_request(hook, r));
        async move { sent?.await }
    }

    /// [`Sender::send_answered`] for a request the destination built: these exact body bytes,
    /// with its headers.
    pub fn send_request(
        &self,
        hook: &Webhook,
        request: Request,
    ) -> impl Future<Output = Result<(Pace, String), DeliveryError>> + Send + use<> {
        let mut builder = self
            .http
            .post(hook.url.expose().clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(request.body);
        let (platform, timeout) = (hook.platform, self.timeout);
        async move {
            let response = request
                .send()
                .await
                .map_err(|e| transport_error(e, timeout))?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
            };
            let retry_after = header(RETRY_AFTER.as_str());
            let pace = match (
                header("x-ratelimit-remaining"),
                header("x-ratelimit-reset-after"),
            ) {
                (Some(remaining), Some(reset)) if remaining < 1.0 => {
                    match bounded_secs(reset, MAX_PACE_WAIT) {
                        Some(wait) if !wait.is_zero() => Pace::WaitBeforeNext(wait),
                        _ => Pace::Free,
                    }
                }
                _ => Pace::Free,
            };
            let (body, _) = read_prefix(response, MAX_ANSWER_BYTES)
                .await
                .map_err(|e| transport_error(e, timeout))?;
            let text = String::from_utf8_lossy(&body);
            classify(platform, status, retry_after, &text).map(|()| (pace, answer(status, &text)))
        }
    }
}

/// An answer as one short line: `HTTP 404: no_service`, or `HTTP 204` with no body.
pub fn answer(status: u16, body: &str) -> String {
    let body = text::one_line(body.trim(), MAX_ANSWER_CHARS);
    if body == text::EMPTY {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    }
}

/// An answer as `HTTP 404: …`, its body cut for a log line: what errors carry.
pub fn short_answer(status: u16, body: &str) -> String {
    format!(
        "HTTP {status}: {}",
        text::truncate(body.trim(), MAX_ANSWER_CHARS)
    )
}

/// Turns a webhook's answer into success or a [`DeliveryError`]: the platform's own rules
/// ([`super::Destination::success`], [`super::Destination::says_gone`]) first, then the common ones.
pub fn classify(
    platform: Platform,
    status: u16,
    retry_after_header: Option<f64>,
    body: &str,
) -> Result<(), DeliveryError> {
    let destination = destination(platform);
    if let Some(decided) = destination.success(status, body) {
        return decided;
    }
    let answer = || short_answer(status, body);
    match status {
        429 => {
            // Discord's body is more precise (milliseconds); the others only send the header.
            let from_body = serde_json::from_str::<DiscordRateLimit>(body)
                .ok()
                .map(|b| b.retry_after);
            let wait = from_body
                .or(retry_after_header)
                .and_then(|s| bounded_secs(s, MAX_PACE_WAIT));
            Err(DeliveryError::RateLimited(
                wait.unwrap_or(Duration::from_secs(1)),
            ))
        }
        _ if destination.says_gone(status, body) => Err(DeliveryError::Dead(answer())),
        // Without the platform's words, a "not found" may be a proxy's or a CDN's.
        401 | 403 | 404 | 408 | 410 | 500..=599 => Err(DeliveryError::Transient(answer())),
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
    fn backoff_grows_with_jitter_up_to_the_cap_and_429_waits_as_asked() {
        let policy = RetryPolicy::default();
        let transient = Transient("HTTP 500".into());
        let first = policy.delay_after(1, &transient);
        assert!(
            first >= Duration::from_secs(1) && first <= Duration::from_secs(2),
            "{first:?}"
        );
        let fourth = policy.delay_after(4, &transient);
        assert!(
            fourth >= Duration::from_secs(8) && fourth <= Duration::from_secs(16),
            "{fourth:?}"
        );
        let late = policy.delay_after(40, &transient);
        assert!(late <= Duration::from_secs(600), "capped: {late:?}");
        assert_eq!(
            policy.delay_after(1, &RateLimited(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            policy.delay_after(1, &RateLimited(Duration::from_secs(9999))),
            Duration::from_secs(300)
        );
    }

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

    /// Teams: 202 (any 2xx) delivered; 429 waits `Retry-After`; 5xx and a bare 403/404
    /// retried; only the flow's own Azure code in a 4xx is dead; another 400 is permanent.
    #[test]
    fn teams_answers() {
        assert_eq!(classify(Platform::Teams, 202, None, ""), Ok(()));
        assert_eq!(classify(Platform::Teams, 200, None, "1"), Ok(()));
        assert_eq!(
            classify(Platform::Teams, 429, Some(12.0), ""),
            Err(RateLimited(Duration::from_secs(12)))
        );
        for (status, body) in [(502, ""), (404, "Not Found"), (403, "<html>")] {
            assert!(
                matches!(
                    classify(Platform::Teams, status, None, body),
                    Err(Transient(_))
                ),
                "{status} {body}"
            );
        }
        for code in super::super::teams::DEAD_CODES {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"x"}}}}"#);
            let err = classify(Platform::Teams, 404, None, &body).unwrap_err();
            assert!(matches!(err, Dead(_)), "{code}: {err:?}");
            assert!(err.to_string().contains(code));
        }
        assert!(matches!(
            classify(
                Platform::Teams,
                400,
                None,
                r#"{"error":{"code":"InvalidTemplate","message":"x"}}"#
            ),
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
            assert_eq!(matches!(err, Dead(_)), status != 400, "{status} {body}");
            assert!(err.to_string().contains(&status.to_string()));
            assert!(
                err.to_string()
                    .contains(body.split('"').nth(3).unwrap_or(body))
            );
        }
        for (platform, status, body) in [
            (Platform::Slack, 404, "Not Found"),
            (
                Platform::Discord,
                404,
                r#"{"message": "Unknown Channel", "code": 10003}"#,
            ),
            (Platform::Discord, 403, "{}"),
        ] {
            let err = classify(platform, status, None, body).unwrap_err();
            assert!(matches!(err, Transient(_)), "{status} {body}: {err:?}");
        }
    }
}
