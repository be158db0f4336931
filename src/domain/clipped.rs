//! Text from the Ravan API, bounded where it enters: [`Clipped<N>`] holds at most `N`
//! characters, so a status word, an account's name or error can be as long as the body cap
//! allows (1 MiB) and still cost the state, the outbox and the event log only what a person
//! reads. Clipped text ends with [`CLIPPED`], so whoever shows it (the chat messages, the pages,
//! the API) says that more was sent.
//!
//! One type for every such piece, generic over the limit, so the limit is part of the field's
//! type and no path into the service can forget it: deserializing clips (never fails on a long
//! or odd string, never panics: it cuts between characters), and so does every constructor.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ends text that was clipped; counted inside the limit.
pub const CLIPPED: &str = "… [clipped]";
const CLIPPED_CHARS: usize = 11;

/// A status word (`active`, `errored`, an unknown one): long enough for any word seen, short
/// enough for a headline.
pub type StatusWord = Clipped<64>;
/// A name (an account's, a listed agent's) or an account id.
pub type Name = Clipped<200>;
/// An account's error: a paragraph at most.
pub type ErrorText = Clipped<2000>;

/// Text of at most `N` characters (Unicode scalar values): longer text keeps its first
/// `N - 11` and ends with [`CLIPPED`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Clipped<const N: usize>(String);

impl<const N: usize> Clipped<N> {
    /// The most characters it holds, the marker included.
    pub const MAX_CHARS: usize = N;

    /// `s`, clipped to `N` characters.
    pub fn new(s: &str) -> Self {
        match Self::cut_at(s) {
            None => Self(s.to_owned()),
            Some(end) => Self(format!("{}{CLIPPED}", &s[..end])),
        }
    }

    /// `s`, clipped in place (no copy of a long string).
    fn from_string(mut s: String) -> Self {
        if let Some(end) = Self::cut_at(&s) {
            s.truncate(end);
            s.push_str(CLIPPED);
            s.shrink_to_fit();
        }
        Self(s)
    }

    /// The byte offset to cut `s` at (before the marker), when it is longer than `N`.
    fn cut_at(s: &str) -> Option<usize> {
        const {
            assert!(
                N > CLIPPED_CHARS,
                "the limit must leave room for the marker"
            )
        };
        // Only up to N + 1 characters are looked at, however long `s` is.
        s.char_indices().nth(N)?;
        Some(
            s.char_indices()
                .nth(N - CLIPPED_CHARS)
                .map_or(s.len(), |(i, _)| i),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text received was longer than `N` (it ends with [`CLIPPED`]).
    pub fn is_clipped(&self) -> bool {
        self.0.ends_with(CLIPPED)
    }

    /// The text received, as far as it was kept: without the marker.
    pub fn kept(&self) -> &str {
        self.0.strip_suffix(CLIPPED).unwrap_or(&self.0)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const N: usize> Deref for Clipped<N> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> AsRef<str> for Clipped<N> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> fmt::Display for Clipped<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> From<&str> for Clipped<N> {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl<const N: usize> From<String> for Clipped<N> {
    fn from(s: String) -> Self {
        Self::from_string(s)
    }
}

impl<const N: usize> From<Clipped<N>> for String {
    fn from(c: Clipped<N>) -> Self {
        c.0
    }
}

impl<const N: usize> PartialEq<str> for Clipped<N> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl<const N: usize> PartialEq<&str> for Clipped<N> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<const N: usize> PartialEq<String> for Clipped<N> {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl<const N: usize> Serialize for Clipped<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Reads a string and clips it: a long string is never an error. (A value that is no string
/// at all is, as it is for `String`.)
impl<'de, const N: usize> Deserialize<'de> for Clipped<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<const N: usize>;

        impl<const N: usize> serde::de::Visitor<'_> for Visitor<N> {
            type Value = Clipped<N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Clipped::new(s))
            }

            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Clipped::from_string(s))
            }
        }

        deserializer.deserialize_string(Visitor::<N>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_counted() {
        assert_eq!(CLIPPED.chars().count(), CLIPPED_CHARS);
    }

    #[test]
    fn short_text_is_kept_and_long_text_clipped_with_the_marker() {
        let short = Clipped::<20>::new("token revoked");
        assert_eq!(short, "token revoked");
        assert!(!short.is_clipped());
        assert_eq!(Clipped::<20>::new(&"x".repeat(20)).as_str(), "x".repeat(20));
        let long = Clipped::<20>::new(&"x".repeat(21));
        assert_eq!(long.as_str(), format!("{}{CLIPPED}", "x".repeat(9)));
        assert_eq!(long.chars().count(), 20);
        assert!(long.is_clipped());
        assert_eq!(long.kept(), "x".repeat(9));
        assert_eq!(Clipped::<20>::from("x".repeat(1 << 20)), long);
        assert_eq!(Clipped::<20>::default(), "");
    }

    /// Any UTF-8 is cut between characters, never inside one; the result is at most N
    /// characters whatever was sent.
    #[test]
    fn clipping_never_splits_a_character() {
        for s in [
            "é".repeat(100),
            "🔥".repeat(100),
            "a\u{0301}".repeat(100),
            format!("a{}", "漢".repeat(99)),
            "\u{0}\u{7f}\u{200b}".repeat(50),
        ] {
            for clipped in [Clipped::<16>::new(&s), Clipped::<16>::from(s.clone())] {
                assert!(clipped.chars().count() <= 16, "{clipped}");
                assert!(clipped.is_clipped());
                assert!(s.starts_with(clipped.kept()));
            }
        }
    }

    #[test]
    fn deserializing_clips_and_never_fails_on_a_string() {
        #[derive(Deserialize)]
        struct Body {
            word: Clipped<16>,
            error: Option<Clipped<16>>,
        }
        let json =
            serde_json::json!({"word": "w".repeat(100_000), "error": "e\u{1F525}".repeat(9)});
        let body: Body = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(body.word.chars().count(), 16);
        assert!(body.error.unwrap().is_clipped());
        // From bytes too (borrowed, and with escapes: owned).
        let bytes = serde_json::to_vec(&json).unwrap();
        let body: Body = serde_json::from_slice(&bytes).unwrap();
        assert!(body.word.is_clipped());
        let escaped: Clipped<16> =
            serde_json::from_str(r#""a\n\u00e9\"xxxxxxxxxxxxxxxxxxxxx""#).unwrap();
        assert!(escaped.starts_with("a\né\""), "{escaped}");
        assert!(escaped.is_clipped());
        // A number is no string, as for `String`.
        assert!(serde_json::from_str::<Clipped<16>>("7").is_err());
        // Serialized as the plain string; read back unchanged.
        let stored = serde_json::to_string(&Clipped::<16>::new(&"z".repeat(40))).unwrap();
        let back: Clipped<16> = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, Clipped::<16>::new(&"z".repeat(40)));
    }
}
