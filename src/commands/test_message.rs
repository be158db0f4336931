//! `ravan-watch notify-test`: one clearly marked test message to each default webhook
//! (`SLACK_WEBHOOK_URL`, `DISCORD_WEBHOOK_URL`), sent with the same client and the same reading
//! of the platforms' answers as real alerts, and one line per webhook saying what it answered.
//!
//! Retries are short, because someone is waiting at a terminal: a `429` is waited out once (up
//! to [`Limits::max_rate_limit_wait`]), a `5xx`, timeout or connection error is retried twice,
//! and the whole attempt for one webhook is bounded by [`Limits::total`].

use std::process::ExitCode;

use crate::config::ConfigError;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::domain::{Platform, Webhook, Zone};
use crate::notify::RetryPolicy;
use crate::notify::deliver::{DeliveryError, Sender};
use crate::notify::{teams, text};

/// What every test message says, so nobody mistakes it for an alert.
pub const TEST_TEXT: &str = "ravan-watch test message — no agent is affected";

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Everything for one webhook: requests, waits and retries.
    pub total: Duration,
    /// One request's time limit.
    pub timeout: Duration,
    /// A `429` asking for longer than this is reported, not waited out.
    pub max_rate_limit_wait: Duration,
    /// Retries after a `5xx`, timeout or connection error, with the alerts' jittered
    /// exponential backoff from [`Limits::first_retry_delay`].
    pub transient_retries: u32,
    /// The first retry's delay; each further one doubles, with jitter.
    pub first_retry_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            total: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            max_rate_limit_wait: Duration::from_secs(10),
            transient_retries: 2,
            first_retry_delay: Duration::from_secs(1),
        }
    }
}

/// What one webhook did with its test message.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub webhook: Webhook,
    /// `Ok(answer)` when delivered (`HTTP 200: ok`); `Err(why)` otherwise, with the answer.
    pub result: Result<String, String>,
}

impl Outcome {
    /// One line: platform, masked URL, what it answered. Never the full URL.
    pub fn line(&self) -> String {
        let (verdict, detail) = match &self.result {
            Ok(answer) => ("delivered", format!("answered {answer}")),
            Err(why) => ("NOT delivered", why.clone()),
        };
        format!(
            "{:<8} {}  {verdict}: {detail}",
            self.webhook.platform,
            self.webhook.url.masked()
        )
    }
}

/// Exit status: 0 when every message was delivered, else 1.
pub fn exit_code(outcomes: &[Outcome]) -> u8 {
    if outcomes.iter().all(|o| o.result.is_ok()) {
        0
    } else {
        1
    }
}

/// The name of this machine, as far as it is safe to print in a chat message.
pub fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .take(64)
        .collect();
    if clean.is_empty() {
        "unknown host".into()
    } else {
        clean
    }
}

fn version() -> String {
    format!("ravan-watch {}", env!("CARGO_PKG_VERSION"))
}

/// The Slack test message: the alerts' layout (blocks in a coloured attachment), no mentions.
pub fn slack_message(host: &str, now: DateTime<Utc>, zone: Zone) -> Value {
    let sent = text::timestamp(now, zone);
    json!({
        "text": format!("🧪 {TEST_TEXT}"),
        "attachments": [{
            "color": format!("#{:06X}", text::GREEN),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "🧪 ravan-watch test message", "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text": format!(
                    "This is a test message from ravan-watch — *no agent is affected*.\nAlerts about your Ravan agents' Cal.com connections will arrive here like this one."
                )}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
                    "{} · host {host} · sent {sent}", version()
                )}]},
            ],
        }],
    })
}

/// The Discord test message: the alerts' layout (one embed), `allowed_mentions` off.
pub fn discord_message(host: &str, now: DateTime<Utc>) -> Value {
    json!({
        "username": "ravan-watch",
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": format!("🧪 {TEST_TEXT}"),
            "description": "This is a test message from ravan-watch — **no agent is affected**.\nAlerts about your Ravan agents' Cal.com connections will arrive here like this one.",
            "color": text::GREEN,
            "fields": [
                {"name": "Host", "value": format!("`{host}`"), "inline": true},
                {"name": "Version", "value": version(), "inline": true},
            ],
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "footer": {"text": "ravan-watch"},
        }],
    })
}

/// The Microsoft Teams test message: the alerts' layout (one Adaptive Card), green headline.
pub fn teams_message(host: &str, now: DateTime<Utc>, zone: Zone) -> Value {
    teams::card(vec![
        json!({"type": "TextBlock", "text": format!("🧪 {TEST_TEXT}"), "weight": "Bolder", "size": "Medium", "color": "good", "wrap": true}),
        json!({"type": "TextBlock", "wrap": true, "text": "This is a test message from ravan-watch — **no agent is affected**.\n\nAlerts about your Ravan agents' Cal.com connections will arrive here like this one."}),
        json!({"type": "FactSet", "facts": [
            {"title": "Host", "value": host},
            {"title": "Version", "value": version()},
            {"title": "Sent", "value": text::timestamp(now, zone)},
        ]}),
    ])
}

/// The test message for `hook`'s platform, sent at `now` (written in `zone`).
pub fn message(hook: &Webhook, host: &str, now: DateTime<Utc>, zone: Zone) -> Value {
    match hook.platform {
        Platform::Slack => slack_message(host, now, zone),
        Platform::Discord => discord_message(host, now),
        Platform::Teams => teams_message(host, now, zone),
        // A signed body with no event: what a receiver must accept and check, and nothing
        // it could mistake for an alert.
        Platform::Webhook => json!({"version": crate::notify::signed::VERSION, "events": []}),
    }
}

/// Sends the test message to every webhook at once; outcomes in the webhooks' order.
pub async fn send_all(
    webhooks: &[Webhook],
    limits: Limits,
    zone: Zone,
    signing: Option<crate::notify::signed::SigningSecret>,
) -> reqwest::Result<Vec<Outcome>> {
    let sender = Sender::new(limits.timeout)?.with_signing(signing);
    let host = hostname();
    let outcomes = futures::future::join_all(webhooks.iter().map(|hook| {
        let sender = sender.clone();
        let body = message(hook, &host, Utc::now(), zone);
        async move {
            let result =
                match tokio::time::timeout(limits.total, send_one(&sender, hook, &body, limits))
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Err(format!("no delivery within {:?} in all", limits.total)),
                };
            Outcome {
                webhook: hook.clone(),
                result,
            }
        }
    }))
    .await;
    Ok(outcomes)
}

async fn send_one(
    sender: &Sender,
    hook: &Webhook,
    body: &Value,
    limits: Limits,
) -> Result<String, String> {
    let deadline = Instant::now() + limits.total;
    // The delays are the alerts' own (backoff, or what a 429 asked for); only how many
    // retries a person at a terminal waits for is this command's.
    let policy = RetryPolicy {
        min_delay: limits.first_retry_delay,
        max_rate_limit_wait: limits.max_rate_limit_wait,
        timeout: limits.timeout,
        ..RetryPolicy::default()
    };
    let mut waited_for_rate_limit = false;
    let mut retries = 0;
    loop {
        let err = match sender.send_answered(hook, body).await {
            Ok((_, answer)) => return Ok(answer),
            Err(err) => err,
        };
        let retry = match &err {
            DeliveryError::RateLimited(wait) => {
                !std::mem::replace(&mut waited_for_rate_limit, true)
                    && *wait <= limits.max_rate_limit_wait
            }
            DeliveryError::Transient(_) => {
                retries += 1;
                retries <= limits.transient_retries
            }
            DeliveryError::Permanent(_) | DeliveryError::Dead(_) => false,
        };
        let wait = policy.delay_after(retries, &err);
        if !retry || Instant::now() + wait >= deadline {
            return Err(describe(&err));
        }
        tokio::time::sleep(wait).await;
    }
}

fn describe(err: &DeliveryError) -> String {
    match err {
        DeliveryError::Dead(answer) => format!(
            "answered {answer} (the webhook is gone: deleted, revoked or its channel archived)"
        ),
        DeliveryError::Permanent(why) | DeliveryError::Transient(why)
            if why.starts_with("HTTP") =>
        {
            format!("answered {why}")
        }
        DeliveryError::Permanent(why) | DeliveryError::Transient(why) => why.clone(),
        DeliveryError::RateLimited(_) => format!("{err}; still rate limited, try again later"),
    }
}

/// Sends the test message to each default webhook and prints what each answered.
pub fn main() -> ExitCode {
    let (config, runtime) = match super::start(crate::telemetry::DEFAULT_FILTER) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let webhooks = config.default_webhooks();
    if webhooks.is_empty() {
        return super::config_error(&ConfigError {
            var: "SLACK_WEBHOOK_URL",
            reason: "not set, nor DISCORD_WEBHOOK_URL, TEAMS_WEBHOOK_URL or WEBHOOK_URL: notify-test needs at least one default webhook"
                .into(),
        });
    }
    match runtime.block_on(send_all(
        &webhooks,
        Limits::default(),
        config.timezone.into(),
        config.webhook_secret.clone(),
    )) {
        Ok(outcomes) => {
            for outcome in &outcomes {
                println!("{}", outcome.line());
            }
            ExitCode::from(exit_code(&outcomes))
        }
        Err(e) => {
            eprintln!("ravan-watch: cannot build the webhook client: {e}");
            ExitCode::FAILURE
        }
    }
}
