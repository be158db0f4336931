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
///
/// Boxed: every agent's record holds two optional webhooks that most agents leave unset, and
/// an unset boxed one is a null pointer instead of a whole `Url`'s worth of inline space.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Box<Url>);

impl SecretUrl {
    pub fn new(url: Url) -> Self {
        Self(Box::new(url))
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

/// `DATABASE_URL`: `sqlite:…`, or `postgres://user:password@host/db`, whose password is
/// secret. Printing it prints the password (and a `password=` query parameter) as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// A `sqlite:` URL, or a `postgres://` / `postgresql://` one that parses as a URL; the
    /// error never repeats the value (it may hold a password).
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.starts_with("sqlite:") {
            return Ok(Self(value.to_owned()));
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            let url =
                Url::parse(value).map_err(|e| format!("is not a valid postgres:// URL ({e})"))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err("names no host: postgres://user:password@host:5432/database".to_owned());
            }
            return Ok(Self(value.to_owned()));
        }
        Err("must be a sqlite: or postgres:// URL, e.g. sqlite:///data/ravan-watch.db or postgres://user:password@host:5432/ravan_watch".to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_postgres(&self) -> bool {
        !self.0.starts_with("sqlite:")
    }

    /// The URL with its password masked: for logs and error lines.
    pub fn masked(&self) -> String {
        masked_database_url(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A database URL fit to print: the password in its user info (`postgres://user:pw@host/db`)
/// and any `password` query parameter (`…?password=pw`) replaced by `***`. Works on the text,
/// so a URL that does not parse is masked too.
pub fn masked_database_url(url: &str) -> String {
    let mut out = match userinfo_password(url) {
        Some((start, end)) => format!("{}***{}", &url[..start], &url[end..]),
        None => url.to_owned(),
    };
    if let Some((start, end)) = query_span(&out) {
        let masked: Vec<String> = out[start..end]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.replace_range(start..end, &masked.join("&"));
    }
    out
}

/// `text` (an error message that may quote `url`) with the URL's passwords, as written and
/// percent-decoded, replaced by `***`, and the URL itself by [`masked_database_url`].
pub fn redact_database_url(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &masked_database_url(url));
    let mut passwords = Vec::new();
    if let Some((start, end)) = userinfo_password(url) {
        passwords.push(&url[start..end]);
    }
    if let Some((start, end)) = query_span(url) {
        passwords.extend(url[start..end].split('&').filter_map(|pair| {
            pair.split_once('=')
                .filter(|(key, _)| key.eq_ignore_ascii_case("password"))
                .map(|(_, value)| value)
        }));
    }
    for password in passwords.into_iter().filter(|p| !p.is_empty()) {
        for form in [password.to_owned(), percent_decoded(password)] {
            if !form.is_empty() {
                out = out.replace(&form, "***");
            }
        }
    }
    out
}

/// Where the password of `scheme://user:password@host…` is (byte offsets), if it has one.
fn userinfo_password(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let colon = userinfo.find(':')?;
    Some((start + colon + 1, start + userinfo.len()))
}

/// Where the query of `url` is (byte offsets, without `?` and any `#fragment`).
fn query_span(url: &str) -> Option<(usize, usize)> {
    let start = url.find('?')? + 1;
    let end = url[start..].find('#').map_or(url.len(), |i| start + i);
    Some((start, end))
}

fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

    #[test]
    fn a_database_urls_password_is_masked_wherever_it_is() {
        let url = DatabaseUrl::parse(
            "postgres://rw:hunter2@db.internal:5432/rw?sslmode=require&password=hunter3",
        )
        .unwrap();
        let shown = format!("{url} {url:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://rw:***@db.internal:5432/rw"),
            "{shown}"
        );
        assert!(shown.contains("sslmode=require"), "{shown}");
        assert_eq!(
            url.expose(),
            "postgres://rw:hunter2@db.internal:5432/rw?sslmode=require&password=hunter3"
        );
        let sqlite = DatabaseUrl::parse("sqlite:///data/rw.db").unwrap();
        assert_eq!(sqlite.masked(), "sqlite:///data/rw.db");
        assert!(!sqlite.is_postgres() && url.is_postgres());
    }

    #[test]
    fn a_bad_database_url_is_refused_without_repeating_it() {
        for bad in [
            "mysql://u:hunter2@h/db",
            "postgres://u:hunter2@/db",
            "postgres://u:hunter2@[bad/db",
            "hunter2",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err();
            assert!(!err.contains("hunter2"), "{bad}: {err}");
        }
        assert!(!masked_database_url("postgres://u:hunter2@[bad/db").contains("hunter2"));
    }

    #[test]
    fn database_urls_lose_their_password() {
        for (url, masked) in [
            (
                "postgres://user:hunter2@db.example:5432/watch",
                "postgres://user:***@db.example:5432/watch",
            ),
            (
                "postgresql://u:p%40ss:w@h/db?sslmode=require",
                "postgresql://u:***@h/db?sslmode=require",
            ),
            (
                "postgres://h/db?user=u&password=hunter2&sslmode=disable",
                "postgres://h/db?user=u&password=***&sslmode=disable",
            ),
            ("postgres://user@h/db", "postgres://user@h/db"),
            ("sqlite://ravan-watch.db", "sqlite://ravan-watch.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("not a url:x@y", "not a url:x@y"),
        ] {
            assert_eq!(masked_database_url(url), masked, "{url}");
        }
    }

    #[test]
    fn errors_quoting_a_database_url_lose_its_password() {
        let url = "postgres://user:p%40ss@h/db?password=other";
        let text = format!("cannot open {url}: user p@ss, other, p%40ss");
        let redacted = redact_database_url(&text, url);
        for secret in ["p@ss", "p%40ss", "other"] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
        assert!(
            redacted.contains("postgres://user:***@h/db?password=***"),
            "{redacted}"
        );
    }
}
