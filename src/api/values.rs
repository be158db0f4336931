//! The small typed values a request body is parsed into. Each constructor is the only way to get
//! one, so a handler holding an [`AgentName`] or a [`WebhookUrl`] holds a valid one. Error
//! messages name the field and the rule, and never echo a webhook URL's path (its secret part).

use chrono::{DateTime, Utc};
use url::{Host, Url};

use super::error::ApiError;
use crate::domain::AllowedHosts;

/// An operator's label for an agent: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentName(String);

impl AgentName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(ApiError::invalid_field(
                "name",
                format!(
                    "must be 1 to {} characters after trimming spaces (it has {chars}); \
                     send null for no name",
                    Self::MAX_CHARS
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                "name",
                "must not contain control characters such as line breaks",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A webhook URL a client may set: `https` (or `http` to a loopback host), no credentials in
/// it, and a host (or host:port) listed in `WEBHOOK_ALLOWED_HOSTS`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&crate::domain::secret::SecretUrl::new(self.0.clone()), f)
    }
}

impl WebhookUrl {
    pub fn parse(field: &str, raw: &str, allowed: &AllowedHosts) -> Result<Self, ApiError> {
        // The parser's message never contains the input, so it is safe to pass on.
        let url = Url::parse(raw)
            .map_err(|e| ApiError::invalid_field(field, format!("is not a URL ({e})")))?;
        let host = match url.host() {
            Some(host) => host,
            None => {
                return Err(ApiError::invalid_field(
                    field,
                    "must be an https:// URL with a host",
                ));
            }
        };
        let secure = match url.scheme() {
            "https" => true,
            "http" if is_loopback(&host) => true,
            "http" => false,
            _ => false,
        };
        if !secure {
            return Err(ApiError::invalid_field(
                field,
                "must use https (http is accepted only for a loopback host)",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ApiError::invalid_field(
                field,
                "must not contain a user name or password",
            ));
        }
        if !allowed.allows(&url) {
            // Host and port are not secret; the path is.
            let authority = match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            };
            return Err(ApiError::invalid_field(
                field,
                format!("host {authority:?} is not in WEBHOOK_ALLOWED_HOSTS"),
            ));
        }
        Ok(Self(url))
    }

    pub fn into_inner(self) -> Url {
        self.0
    }
}

/// `127.0.0.0/8`, `::1` and the name `localhost`.
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    }
}

/// An RFC 3339 time (`2025-01-01T00:00:00Z`, any offset), as UTC.
pub fn parse_rfc3339(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::invalid_field(
                field,
                "must be an RFC 3339 time such as 2025-01-01T09:30:00Z, or null",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> AllowedHosts {
        AllowedHosts::parse(
            "hooks.slack.com,discord.com,127.0.0.1:9000,localhost,[::1],*.logic.azure.com",
        )
        .unwrap()
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(AgentName::parse("  Sales  ").unwrap().into_inner(), "Sales");
        assert_eq!(
            AgentName::parse(&"é".repeat(100))
                .unwrap()
                .0
                .chars()
                .count(),
            100
        );
        for bad in ["", "   ", &"x".repeat(101), "a\nb"] {
            let e = AgentName::parse(bad).unwrap_err();
            assert!(e.message().starts_with("name: "), "{}", e.message());
        }
    }

    #[test]
    fn webhook_urls_follow_the_rules_without_echoing_the_path() {
        let ok = |u: &str| WebhookUrl::parse("slack_webhook_url", u, &hosts());
        assert!(ok("https://hooks.slack.com/services/T/B/SECRET").is_ok());
        assert!(ok("HTTPS://Hooks.Slack.com/services/T/B/SECRET").is_ok());
        assert!(ok("http://127.0.0.1:9000/hook/SECRET").is_ok());
        assert!(ok("http://localhost/hook/SECRET").is_ok());
        assert!(ok("http://[::1]/hook/SECRET").is_ok());
        assert!(ok("https://prod-1.westeurope.logic.azure.com/workflows/SECRET").is_ok());
        assert!(
            ok("https://logic.azure.com/workflows/SECRET").is_err(),
            "*. is not the domain"
        );
        assert!(
            ok("http://prod-1.westeurope.logic.azure.com/SECRET").is_err(),
            "https only"
        );
        for (bad, rule) in [
            ("not a url SECRET", "is not a URL"),
            (
                "http://hooks.slack.com/services/T/B/SECRET",
                "must use https",
            ),
            ("ftp://hooks.slack.com/SECRET", "must use https"),
            ("mailto:SECRET@hooks.slack.com", "with a host"),
            (
                "https://u:SECRET@hooks.slack.com/x",
                "user name or password",
            ),
            ("https://evil.example/SECRET", "\"evil.example\" is not in"),
            (
                "http://127.0.0.1:9001/SECRET",
                "\"127.0.0.1:9001\" is not in",
            ),
            ("https://hooks.slack.com.evil.example/SECRET", "is not in"),
        ] {
            let e = ok(bad).unwrap_err();
            assert!(
                e.message().starts_with("slack_webhook_url: "),
                "{bad}: {}",
                e.message()
            );
            assert!(e.message().contains(rule), "{bad}: {}", e.message());
            assert!(!e.message().contains("SECRET"), "{bad}: {}", e.message());
        }
    }

    #[test]
    fn times_are_rfc3339() {
        let t = parse_rfc3339("muted_until", "2025-01-01T10:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-01-01T09:00:00+00:00");
        for bad in ["2025-01-01", "tomorrow", "2025-01-01 10:00", ""] {
            assert!(parse_rfc3339("muted_until", bad).is_err(), "{bad}");
        }
    }
}
