//! Values that must never reach a log line or an API answer in full. The wrappers make the safe
//! thing the default: `Debug`/`Display` print a masked form and the raw value needs `expose()`.

use std::fmt;

use url::Url;

/// A credential (API token, key). Printing it prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A URL whose last path segment and query are the secret part, as in Slack's
/// `/services/T…/B…/<token>` and Discord's `/api/webhooks/<id>/<token>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Url);

impl SecretUrl {
    pub fn new(url: Url) -> Self {
        Self(url)
    }

    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// The URL with its last path segment replaced by `***` and no query: enough to tell two
    /// webhooks apart in a log, not enough to post to one.
    pub fn masked(&self) -> String {
        let url = &self.0;
        let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
        if let Some(port) = url.port() {
            out.push_str(&format!(":{port}"));
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        if let Some((_, kept)) = segments.split_last() {
            for segment in kept {
                out.push('/');
                out.push_str(segment);
            }
            out.push_str("/***");
        } else {
            out.push('/');
        }
        out
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_masked_in_debug() {
        let s = Secret::new("tok-123");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "tok-123");
    }

    #[test]
    fn webhook_urls_lose_their_token() {
        let slack = SecretUrl::new(
            "https://hooks.slack.com/services/T01/B02/abcdefSECRET?x=1"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            slack.to_string(),
            "https://hooks.slack.com/services/T01/B02/***"
        );
        let discord = SecretUrl::new(
            "https://discord.com/api/webhooks/123/tokSECRET"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            format!("{discord:?}"),
            "https://discord.com/api/webhooks/123/***"
        );
        let local = SecretUrl::new("http://127.0.0.1:9/".parse().unwrap());
        assert_eq!(local.to_string(), "http://127.0.0.1:9/");
        for u in [&slack, &discord] {
            assert!(!u.to_string().contains("SECRET"));
        }
    }
}
