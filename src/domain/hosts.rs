//! Which hosts a webhook URL given over the API may point at (`WEBHOOK_ALLOWED_HOSTS`): without
//! this list, anyone holding the admin token could make the service POST to any address it can
//! reach, internal ones included.
//!
//! A value of the domain, not of the API: the configuration parses it and the API only asks it,
//! so neither has to import the other.

use url::Url;

/// `WEBHOOK_ALLOWED_HOSTS`: `host` or `host:port` entries, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts(Vec<(String, Option<u16>)>);

impl AllowedHosts {
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut hosts = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            // Parse as the authority of a URL so `host`, `host:port` and `[::1]:8080` all work.
            let url = Url::parse(&format!("http://{entry}/"))
                .ok()
                .filter(|u| u.host_str().is_some() && u.path() == "/" && u.username().is_empty())
                .ok_or_else(|| format!("{entry:?} is not a host or host:port"))?;
            let host = url.host_str().expect("checked").to_ascii_lowercase();
            hosts.push((host, url.port()));
        }
        Ok(Self(hosts))
    }

    /// Whether `url`'s host (and port, when the entry names one) is listed.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let port = url.port_or_known_default();
        self.0
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| Some(p) == port))
    }
}

pub const DEFAULT_ALLOWED_HOSTS: &str =
    "hooks.slack.com,discord.com,discordapp.com,ptb.discord.com,canary.discord.com";
