//! Turning alerts into chat messages and getting them delivered.
//!
//! Each destination is one module behind one trait ([`destination::Destination`]): [`slack`],
//! [`discord`], [`teams`]. Formatting (those, [`text`], a digest's wording [`digest`]) and a dead
//! webhook's announcement ([`dead`]) are pure; [`deliver`] is the only place that talks to a
//! webhook; [`outbox`] sends what the store's outbox holds, in order per destination, so a slow
//! or rate-limited destination never holds up another and nothing is lost across a restart.

pub mod dead;
pub mod deliver;
pub mod destination;
pub mod digest;
pub mod discord;
pub mod outbox;
pub mod signed;
pub mod slack;
pub mod teams;
pub mod text;

pub use deliver::{DeliveryError, RetryPolicy, Sender};
pub use destination::{Destination, Item, Request, destination};
pub use outbox::{Outbox, Worker};

use crate::domain::{Alert, Digest, Platform, Webhook, Zone};

/// The platform's message for this alert, its times written in `zone`.
pub fn message(hook: &Webhook, alert: &Alert, zone: Zone) -> serde_json::Value {
    destination(hook.platform).message(Item::bare(alert), zone)
}

/// One message for several alerts of the same poll cycle.
pub fn group_message(hook: &Webhook, alerts: &[Alert], zone: Zone) -> serde_json::Value {
    let items: Vec<Item<'_>> = alerts.iter().map(Item::bare).collect();
    destination(hook.platform).group_message(&items, zone)
}

/// The platform's message for a digest, its times written in `zone`.
pub fn digest_message(hook: &Webhook, digest: &Digest, zone: Zone) -> serde_json::Value {
    destination(hook.platform).digest_message(digest, zone)
}

/// The alerts of `items`, for renderers that need no event ids.
pub fn alerts_of(items: &[Item<'_>]) -> Vec<Alert> {
    items.iter().map(|i| i.alert.clone()).collect()
}
