//! Turning alerts into chat messages and getting them delivered.
//!
//! Formatting ([`slack`], [`discord`], [`text`], a digest's wording [`digest`]) and a dead webhook's announcement ([`dead`])
//! are pure; [`deliver`] is the only place that
//! talks to a webhook; [`outbox`] sends what the store's outbox holds, in order per
//! destination, so a slow or rate-limited destination never holds up another and nothing is
//! lost across a restart.

pub mod dead;
pub mod deliver;
pub mod digest;
pub mod discord;
pub mod outbox;
pub mod signed;
pub mod slack;
pub mod text;

pub use deliver::{DeliveryError, RetryPolicy, Sender};
pub use outbox::{Outbox, Worker};

use crate::domain::{Alert, Digest, Platform, Webhook, Zone};

/// The platform's message for this alert, its times written in `zone`.
pub fn message(hook: &Webhook, alert: &Alert, zone: Zone) -> serde_json::Value {
    match hook.platform {
        Platform::Slack => slack::message(alert, zone),
        Platform::Discord => discord::message(alert, zone),
    }
}

/// One message for several alerts of the same poll cycle.
pub fn group_message(hook: &Webhook, alerts: &[Alert], zone: Zone) -> serde_json::Value {
    match hook.platform {
        Platform::Slack => slack::group_message(alerts, zone),
        Platform::Discord => discord::group_message(alerts, zone),
    }
}

/// The platform's message for a digest, its times written in `zone`.
pub fn digest_message(hook: &Webhook, digest: &Digest, zone: Zone) -> serde_json::Value {
    match hook.platform {
        Platform::Slack => slack::digest(digest, zone),
        Platform::Discord => discord::digest(digest, zone),
    }
}
