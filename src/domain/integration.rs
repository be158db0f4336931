//! The organisation-level integrations Ravan agents book through, as a check of each reads
//! them: the organisation's own Cal.com connection ([`CalcomOrg`]) and its GoHighLevel setup
//! ([`GhlSetup`]), and the organisation id the Cal.com check needs ([`OrgId`]).
//!
//! Pure values, parsed at the edge (`crate::ravan` reads the answers into them), so whatever
//! decides about them (a tracker, a page, `check --all`) never handles an unchecked answer.
//! Every piece of Ravan's text in them is [`Clipped`]: bounded however much was sent.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::agent::HEALTHY_STATUS;
use super::clipped::{Clipped, ErrorText, StatusWord};

/// A short, human-written message of Ravan's (`data.message`).
pub type IntegrationMessage = Clipped<200>;

/// The longest organisation id accepted: a UUID is 36 characters.
const MAX_ORG_ID_CHARS: usize = 64;

/// An organisation's id at Ravan, as `?org_id=` carries it. The docs call it a UUID; any short
/// token of letters, digits, `-` and `_` is accepted too (the docs were wrong before), but
/// nothing that could reshape the URL or a log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrgId(String);

impl OrgId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OrgId {
    type Err = InvalidOrgId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let fits = !s.is_empty()
            && s.chars().count() <= MAX_ORG_ID_CHARS
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if fits {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidOrgId(Clipped::new(s)))
        }
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The input that was no organisation id (clipped: it may come from Ravan).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{:?} is not an organisation id (letters, digits, '-' and '_', at most 64)", .0.as_str())]
pub struct InvalidOrgId(pub Clipped<80>);

/// The organisation's own Cal.com connection (`GET /api/v1/calcom/status?org_id=…`): what
/// org-linked agents book through, so one broken account here breaks all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalcomOrg {
    pub connected: bool,
    /// The raw word (`active`, `not_connected`, …): only `active` is healthy.
    pub status: StatusWord,
    /// `data.error`: "the connection has issues", third-party text.
    pub error: Option<ErrorText>,
    /// `data.message` (e.g. "Cal.com is not connected").
    pub message: Option<IntegrationMessage>,
    /// The OAuth token's expiry, when connected and readable.
    pub token_expires: Option<DateTime<Utc>>,
}

impl CalcomOrg {
    /// Healthy when the status is `active`, as for an agent's connection.
    pub fn is_healthy(&self) -> bool {
        self.status == HEALTHY_STATUS
    }
}

/// The organisation's GoHighLevel integration (`GET /api/v1/ghl/setup/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhlSetup {
    pub ghl_connected: bool,
    pub token_valid: bool,
    /// Agents configured with GHL calendars, when Ravan says.
    pub agent_count: Option<u64>,
    pub message: Option<IntegrationMessage>,
    /// `CONNECT_GHL`, `CREATE_AGENT` or empty (complete): what setup still lacks.
    pub next_step: Option<StatusWord>,
}

impl GhlSetup {
    /// `connected`: the integration's status word, as the contract names them.
    pub const CONNECTED: &'static str = "connected";
    pub const TOKEN_INVALID: &'static str = "token_invalid";
    pub const NOT_CONNECTED: &'static str = "not_connected";

    /// Healthy when connected with a valid token. An organisation that never connected GHL
    /// is unhealthy here; whether that is an outage is the tracker's call (it never was healthy).
    pub fn is_healthy(&self) -> bool {
        self.ghl_connected && self.token_valid
    }

    /// The status word: `connected`, `token_invalid` or `not_connected`.
    pub fn status(&self) -> &'static str {
        match (self.ghl_connected, self.token_valid) {
            (true, true) => Self::CONNECTED,
            (true, false) => Self::TOKEN_INVALID,
            (false, _) => Self::NOT_CONNECTED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_ids_are_short_tokens() {
        for ok in ["3f2504e0-4f89-11d3-9a0c-0305e82c3301", " org_42 ", "A"] {
            assert_eq!(ok.parse::<OrgId>().unwrap().as_str(), ok.trim(), "{ok}");
        }
        let long = "x".repeat(65);
        for bad in ["", "  ", "a b", "a/b", "a&b=c", "é", long.as_str(), "a\nb"] {
            let err = bad.parse::<OrgId>().unwrap_err();
            assert!(err.to_string().len() < 200, "{bad:?}");
        }
    }

    #[test]
    fn calcom_org_is_healthy_only_when_active() {
        let org = |status: &str| CalcomOrg {
            connected: true,
            status: status.into(),
            error: None,
            message: None,
            token_expires: None,
        };
        assert!(org("active").is_healthy());
        for status in ["not_connected", "inactive", "Active", "", "errored"] {
            assert!(!org(status).is_healthy(), "{status}");
        }
    }

    #[test]
    fn ghl_is_healthy_only_connected_with_a_valid_token() {
        let ghl = |ghl_connected, token_valid| GhlSetup {
            ghl_connected,
            token_valid,
            agent_count: None,
            message: None,
            next_step: None,
        };
        assert!(ghl(true, true).is_healthy());
        assert_eq!(ghl(true, true).status(), "connected");
        assert!(!ghl(true, false).is_healthy());
        assert_eq!(ghl(true, false).status(), "token_invalid");
        for token in [true, false] {
            assert!(!ghl(false, token).is_healthy());
            assert_eq!(ghl(false, token).status(), "not_connected");
        }
    }
}
