//! Turning alerts into chat messages and getting them delivered.
//!
//! Formatting ([`slack`], [`discord`], [`text`]) is pure; [`deliver`] is the only place that
//! talks to a webhook; [`outbox`] sends what the store's outbox holds, in order per
//! destination, so a slow or rate-limited destination never holds up another and nothing is
//! lost across a restart.

pub mod deliver;
pub mod discord;
pub mod outbox;
pub mod slack;
pub mod text;

use std::fmt;

pub use deliver::{DeliveryError, RetryPolicy, Sender};
pub use outbox::{Outbox, Worker};

use crate::alert::Alert;
use crate::secret::SecretUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Slack,
    Discord,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
        })
    }
}

/// A destination for alerts. Its URL is a secret: `Display` masks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub platform: Platform,
    pub url: SecretUrl,
}

impl Webhook {
    /// Discord's legacy `discordapp.com` host is rewritten to `discord.com`, as Discord asks.
    pub fn new(platform: Platform, url: SecretUrl) -> Self {
        let url = match (platform, url.expose().host_str()) {
            (Platform::Discord, Some("discordapp.com")) => {
                let mut modern = url.expose().clone();
                modern.set_host(Some("discord.com")).expect("a valid host");
                SecretUrl::new(modern)
            }
            _ => url,
        };
        Self { platform, url }
    }

    /// The platform's message for this alert.
    pub fn render(&self, alert: &Alert) -> serde_json::Value {
        match self.platform {
            Platform::Slack => slack::message(alert),
            Platform::Discord => discord::message(alert),
        }
    }
}

impl Webhook {
    /// One message for several alerts of the same poll cycle.
    pub fn render_group(&self, alerts: &[Alert]) -> serde_json::Value {
        match self.platform {
            Platform::Slack => slack::group_message(alerts),
            Platform::Discord => discord::group_message(alerts),
        }
    }
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} webhook {}", self.platform, self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_discord_host_is_rewritten() {
        let url = |s: &str| SecretUrl::new(s.parse().unwrap());
        let hook = Webhook::new(
            Platform::Discord,
            url("https://discordapp.com/api/webhooks/1/tok"),
        );
        assert_eq!(
            hook.url.expose().as_str(),
            "https://discord.com/api/webhooks/1/tok"
        );
        let hook = Webhook::new(Platform::Slack, url("https://discordapp.com/x"));
        assert_eq!(
            hook.url.expose().host_str(),
            Some("discordapp.com"),
            "only Discord's"
        );
        assert_eq!(hook.to_string(), "slack webhook https://discordapp.com/***");
    }
}
