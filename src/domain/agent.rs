//! An agent and what a poll observes of it: parsed once at the edge (config, CLI, Ravan answers)
//! so the core never handles an unchecked agent id or a half-read status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::clipped::{ErrorText, Name, StatusWord};

/// A Ravan agent's UUID. Parsing accepts any UUID spelling; display is the canonical lowercase,
/// hyphenated form, which is also what goes into the Ravan URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(Uuid);

impl AgentId {
    pub fn new(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl FromStr for AgentId {
    type Err = InvalidAgentId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s.trim())
            .map(Self)
            .map_err(|_| InvalidAgentId(s.to_owned()))
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The input that was not a UUID, kept so the error can name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an agent UUID")]
pub struct InvalidAgentId(pub String);

/// The raw status string that means "connected and working". Every other value is unhealthy.
pub const HEALTHY_STATUS: &str = "active";

/// One Cal.com account of an agent, as Ravan reports it. All strings are third-party text:
/// renderers must escape them. Each is clipped as it is read ([`Clipped`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    #[serde(default)]
    pub id: Name,
    #[serde(default)]
    pub account_name: Name,
    #[serde(default)]
    pub status: StatusWord,
    /// Ravan sends `null`, an empty string or a message; `None` covers the first two.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub error: Option<ErrorText>,
}

/// Which Cal.com connection an observation describes. `/status` sees only the agent's private
/// connection; an agent that books through its organisation's shared account has none there,
/// and only `/info` tells that it is `org_linked`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Connection {
    /// The agent's own Cal.com key (what `/status` reports).
    Private,
    /// The organisation's shared Cal.com account, linked to the agent (from `/info`).
    OrgLinked,
    /// No connection at all.
    None,
}

impl Connection {
    /// `private`, `org_linked`, `none`: the agent JSON's `state.connection`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// How people read it: `private`, `org-linked`, `none`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::OrgLinked => "org-linked",
            Self::None => "none",
        }
    }
}

/// What one successful poll says about an agent's Cal.com connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Kept raw (clipped): the set of values is not documented, and an unknown one must still
    /// be shown.
    pub status: StatusWord,
    pub connected: bool,
    #[serde(default)]
    pub accounts: Vec<Account>,
    /// Which connection `status` is of. `None` in observations saved before it was recorded
    /// (all from `/status`): [`Observation::connection`] works it out for those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Connection>,
}

impl Observation {
    pub fn is_healthy(&self) -> bool {
        self.status == HEALTHY_STATUS
    }

    /// `/status`'s answer "no private connection": `not_connected` with no accounts. Only then
    /// can the agent still book through an org-linked account.
    pub fn has_no_private_connection(&self) -> bool {
        self.status == NOT_CONNECTED && self.accounts.is_empty()
    }

    /// The connection this observation is of; for one saved without it, what `/status` alone
    /// said: no private connection is `none`, anything else `private`.
    pub fn connection(&self) -> Connection {
        self.connection
            .unwrap_or(if self.has_no_private_connection() {
                Connection::None
            } else {
                Connection::Private
            })
    }

    /// The account of an org-linked connection (the only one it lists), for naming it.
    pub fn org_account(&self) -> Option<&Account> {
        (self.connection() == Connection::OrgLinked)
            .then(|| self.accounts.first())
            .flatten()
    }
}

/// `/status`'s status for an agent without a private connection.
pub const NOT_CONNECTED: &str = "not_connected";

fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ErrorText>, D::Error> {
    let value = Option::<ErrorText>::deserialize(d)?;
    Ok(value.filter(|s| !s.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's name is the same wherever it is written: JSON (serde) and text.
    #[test]
    fn connection_names_agree_with_serde() {
        for (connection, name) in [
            (Connection::Private, "private"),
            (Connection::OrgLinked, "org_linked"),
            (Connection::None, "none"),
        ] {
            assert_eq!(connection.as_str(), name);
            assert_eq!(serde_json::to_value(connection).unwrap(), name);
            assert_eq!(name.parse::<Connection>(), Ok(connection));
        }
    }

    #[test]
    fn agent_id_parses_and_displays_canonically() {
        let id: AgentId = " 3F2504E0-4F89-11D3-9A0C-0305E82C3301 ".parse().unwrap();
        assert_eq!(id.to_string(), "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    }

    #[test]
    fn agent_id_rejects_non_uuids() {
        for bad in ["", "abc", "3f2504e0-4f89-11d3-9a0c", "../../etc/passwd"] {
            assert!(bad.parse::<AgentId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn empty_account_error_is_none() {
        let a: Account =
            serde_json::from_str(r#"{"id":"1","account_name":"x","status":"active","error":""}"#)
                .unwrap();
        assert_eq!(a.error, None);
        let a: Account = serde_json::from_str(r#"{"id":"1","error":null}"#).unwrap();
        assert_eq!(a.error, None);
        assert_eq!(a.account_name, "");
    }
}
