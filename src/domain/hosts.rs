//! Which hosts a webhook URL given over the API may point at (`WEBHOOK_ALLOWED_HOSTS`): without
//! this list, anyone holding the admin token could make the service POST to any address it can
//! reach, internal ones included.
//!
//! A value of the domain, not of the API: the configuration parses it and the API only asks it,
//! so neither has to import the other.

use url::Url;

/// `WEBHOOK_ALLOWED_HOSTS`: `host`, `host:port` or `*.domain` (any host under the domain, not
/// the domain itself: Teams Workflows URLs name a regional host) entries, compared
/// case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts(Vec<Allowed>);

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    /// The host, or for `*.domain` the domain, lowercase.
    host: String,
    port: Option<u16>,
    /// `*.domain`: hosts under `host` match, `host` itself does not.
    under: bool,
}

impl Allowed {
    fn parse(entry: &str) -> Result<Self, String> {
        let (under, rest) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        // Parse as the authority of a URL so `host`, `host:port` and `[::1]:8080` all work.
        let url = Url::parse(&format!("http://{rest}/"))
            .ok()
            .filter(|u| u.path() == "/" && u.username().is_empty())
            .ok_or_else(|| format!("{entry:?} is not a host, host:port or *.domain"))?;
        let host = match url.host() {
            Some(url::Host::Domain(d))
                if d.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c)) =>
            {
                d.to_ascii_lowercase()
            }
            Some(url::Host::Domain(_)) | None => {
                return Err(format!("{entry:?} is not a host, host:port or *.domain"));
            }
            Some(ip) if !under => ip.to_string(),
            _ => return Err(format!("{entry:?}: only a domain name can follow \"*.\"")),
        };
        if under && !host.contains('.') {
            return Err(format!(
                "{entry:?}: \"*.\" must be followed by a domain of two labels or more"
            ));
        }
        Ok(Self {
            host,
            port: url.port(),
            under,
        })
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let named = if self.under {
            host.strip_suffix(self.host.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
        } else {
            host == self.host
        };
        named && self.port.is_none_or(|p| Some(p) == port)
    }
}

impl AllowedHosts {
    pub fn parse(value: &str) -> Result<Self, String> {
        let entries = value.split(',').map(str::trim).filter(|e| !e.is_empty());
        Ok(Self(entries.map(Allowed::parse).collect::<Result<_, _>>()?))
    }

    /// Whether `url`'s host (and port, when the entry names one) is listed.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let port = url.port_or_known_default();
        self.0.iter().any(|a| a.matches(&host, port))
    }
}

/// The chat platforms' webhook hosts: Slack, Discord's, and Microsoft Teams Workflows' (whose
/// URLs name a regional host under these domains).
pub const DEFAULT_ALLOWED_HOSTS: &str = "hooks.slack.com,discord.com,discordapp.com,ptb.discord.com,canary.discord.com,*.logic.azure.com,*.api.powerplatform.com,api.powerautomate.com";

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(list: &str, url: &str) -> bool {
        AllowedHosts::parse(list)
            .unwrap()
            .allows(&url.parse().unwrap())
    }

    #[test]
    fn a_wildcard_allows_hosts_under_its_domain_and_nothing_else() {
        let list = "*.logic.azure.com";
        assert!(allows(
            list,
            "https://prod-12.westeurope.logic.azure.com/workflows/x"
        ));
        assert!(allows(list, "https://A.B.Logic.Azure.com/x"));
        assert!(
            !allows(list, "https://logic.azure.com/x"),
            "not the domain itself"
        );
        assert!(!allows(list, "https://evillogic.azure.com/x"));
        assert!(!allows(list, "https://logic.azure.com.evil.example/x"));
        assert!(!allows(list, "https://x.azure.com/x"));
        assert!(allows("*.example.com:8443", "https://a.example.com:8443/x"));
        assert!(
            !allows("*.example.com:8443", "https://a.example.com/x"),
            "port"
        );
    }

    #[test]
    fn the_default_list_allows_teams_workflows_hosts() {
        let d = DEFAULT_ALLOWED_HOSTS;
        assert!(allows(
            d,
            "https://prod-00.westus.logic.azure.com:443/workflows/1/triggers/manual/paths/invoke?sig=s"
        ));
        assert!(allows(
            d,
            "https://default123.4f.environment.api.powerplatform.com/powerautomate/x"
        ));
        assert!(allows(d, "https://api.powerautomate.com/x"));
        assert!(allows(d, "https://hooks.slack.com/services/T/B/x"));
        assert!(!allows(d, "https://powerplatform.com.evil.example/x"));
    }

    #[test]
    fn a_bad_wildcard_is_refused_naming_it() {
        for bad in [
            "*.com",
            "*.",
            "*",
            "*.127.0.0.1",
            "*.[::1]",
            "a.*.com",
            "*.a b.com",
        ] {
            let err = AllowedHosts::parse(bad).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
}
