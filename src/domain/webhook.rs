//! Where alerts go: a chat platform and a webhook URL. A value of the domain, not of delivery,
//! because the store keeps webhooks, the API sets them and the notifiers send to them.

use std::fmt;

use super::secret::SecretUrl;

/// Named `slack`, `discord` and `teams` (`Display`, `as_str`, `FromStr`): in the store, the API,
/// metrics. Each has one [`crate::notify::destination::Destination`] (`notify::destination`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
    serde::Serialize,
    serde::Deserialize,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Slack,
    Discord,
    /// Microsoft Teams, through a Workflows (Power Automate) webhook.
    Teams,
    /// Any HTTP endpoint that takes a JSON body signed with `WEBHOOK_SECRET`
    /// ([`crate::notify::signed`]).
    Webhook,
}

/// Every platform, in the order the settings, the API and the summaries list them.
pub const PLATFORMS: [Platform; 4] = [
    Platform::Slack,
    Platform::Discord,
    Platform::Teams,
    Platform::Webhook,
];

impl Platform {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The setting of its default webhook: `SLACK_WEBHOOK_URL`, `DISCORD_WEBHOOK_URL`.
    pub fn setting(self) -> &'static str {
        match self {
            Self::Slack => "SLACK_WEBHOOK_URL",
            Self::Discord => "DISCORD_WEBHOOK_URL",
            Self::Teams => "TEAMS_WEBHOOK_URL",
            Self::Webhook => "WEBHOOK_URL",
        }
    }

    /// The field of an agent's own webhook in the API: `slack_webhook_url`, `discord_webhook_url`.
    pub fn agent_field(self) -> &'static str {
        match self {
            Self::Slack => "slack_webhook_url",
            Self::Discord => "discord_webhook_url",
            Self::Teams => "teams_webhook_url",
            Self::Webhook => "webhook_url",
        }
    }

    /// The platform's name as people write it: `Slack`, `Discord`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Slack => "Slack",
            Self::Discord => "Discord",
            Self::Teams => "Microsoft Teams",
            Self::Webhook => "signed JSON",
        }
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
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} webhook {}", self.platform, self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store and the API hold these names: they must not change.
    #[test]
    fn platform_names_read_back() {
        for (platform, name) in [
            (Platform::Slack, "slack"),
            (Platform::Discord, "discord"),
            (Platform::Teams, "teams"),
        ] {
            assert_eq!(platform.as_str(), name);
            assert_eq!(platform.to_string(), name);
            assert_eq!(name.parse::<Platform>(), Ok(platform));
        }
        assert!("Slack".parse::<Platform>().is_err());
    }

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
