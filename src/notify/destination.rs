//! One interface for a destination: everything that differs from one platform to another —
//! how it renders an alert, a group, a digest; which answers mean delivered or gone; how fast
//! it may be sent to — sits behind [`Destination`], one implementation per platform module
//! ([`super::slack`], [`super::discord`], [`super::teams`]). The outbox, the sender and the
//! answer rules in [`super::deliver`] only ever ask the trait, so a new destination is one
//! module, one [`Platform`] variant and one line in [`destination`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderName;
use serde_json::Value;

use super::deliver::{DeliveryError, RetryPolicy};
use super::signed::SigningSecret;
use crate::domain::{Alert, Digest, Platform, Webhook, Zone};

/// One alert of a message, with the event it delivers (`OutboxEntry.event_id`; `None` for
/// entries older than the event log): a destination that names events in its body has it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub event_id: Option<i64>,
    pub alert: &'a Alert,
}

impl<'a> Item<'a> {
    /// An alert without an event (previews, tests).
    pub fn bare(alert: &'a Alert) -> Self {
        Self {
            event_id: None,
            alert,
        }
    }
}

/// What is posted: the exact body bytes and any headers the destination adds (a signature
/// computed over those bytes, say). `Content-Type: application/json` is always sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub body: Vec<u8>,
    pub headers: Vec<(HeaderName, String)>,
}

impl Request {
    /// A JSON body and no extra headers.
    pub fn json(body: &Value) -> Self {
        Self {
            // Serialising a `Value` cannot fail.
            body: serde_json::to_vec(body).unwrap_or_default(),
            headers: Vec::new(),
        }
    }
}

/// A chat platform (or any HTTP endpoint) alerts are delivered to. Implementations are pure:
/// no I/O, the same input gives the same message.
pub trait Destination: Sync {
    /// The message for one alert, its times written in `zone`.
    fn message(&self, item: Item<'_>, zone: Zone) -> Value;

    /// One message for a poll cycle's batch (more than [`super::outbox::INDIVIDUAL_MAX`]
    /// alerts), within the platform's payload limits however many there are.
    fn group_message(&self, items: &[Item<'_>], zone: Zone) -> Value;

    /// The message for a digest, its times written in `zone`.
    fn digest_message(&self, digest: &Digest, zone: Zone) -> Value;

    /// The request that carries `body` to `hook`, sent at `now`: JSON, no extra headers unless
    /// the destination says otherwise (the signed webhook signs it with `secret`,
    /// `WEBHOOK_SECRET`). An error: it cannot be sent as it must be (no secret to sign with).
    fn request(
        &self,
        hook: &Webhook,
        body: &Value,
        now: DateTime<Utc>,
        secret: Option<&SigningSecret>,
    ) -> Result<Request, DeliveryError> {
        let _ = (hook, now, secret);
        Ok(Request::json(body))
    }

    /// What a 2xx answer means: `Ok` when delivered, an error when the platform says it was
    /// not; `None` for a status it does not treat as success (the common rules decide).
    fn success(&self, status: u16, body: &str) -> Option<Result<(), DeliveryError>> {
        let _ = body;
        (200..=299).contains(&status).then_some(Ok(()))
    }

    /// Whether an unsuccessful answer is the platform saying, in its own words, that the
    /// webhook is gone (deleted, disabled, its token revoked): only that stops sending to it.
    fn says_gone(&self, status: u16, body: &str) -> bool;

    /// The least time between two messages to one webhook of this platform, beyond what its
    /// answers ask for (429, rate-limit headers): `None` when it needs none.
    fn interval(&self, policy: &RetryPolicy) -> Option<Duration> {
        let _ = policy;
        None
    }
}

/// The destination of `platform`: the one table that names every implementation.
pub fn destination(platform: Platform) -> &'static dyn Destination {
    match platform {
        Platform::Slack => &super::slack::Slack,
        Platform::Discord => &super::discord::Discord,
        Platform::Teams => &super::teams::Teams,
        Platform::Webhook => &super::signed::Signed,
    }
}
