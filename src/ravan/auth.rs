//! How the client proves who it is to the Ravan API: the docs show two schemes.

use crate::domain::Secret;

/// How requests to the Ravan API authenticate; the docs show both schemes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RavanAuth {
    /// `Authorization: Bearer …` (`RAVAN_API_TOKEN`).
    Bearer(Secret),
    /// `X-Api-Key: …` (`RAVAN_API_KEY`).
    ApiKey(Secret),
}
