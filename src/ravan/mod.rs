//! The Ravan API client: the calls the service makes (`/status` and `/info` of an agent, the
//! organisation's agent listing and its integrations, Ravan's health check) and the classification of every answer into an
//! [`Observation`](crate::domain::Observation) or a [`PollFailure`].
//!
//! The split matters more than the calls: a failure says nothing about the agent, so the tracker
//! must never mistake a 500, a timeout or a throttled request for a broken connection.
//!
//! One concern a module:
//! - `client`: requests, URLs, credentials and bounded body reads;
//! - `throttle`: the gate a 429 closes for every clone of the client, and `Retry-After`;
//! - `classify`: what an answer of `/status` or `/info` means, pure;
//! - `failure`: why a poll gave no observation, the vocabulary all of them share;
//! - `listing`: the organisation's agent listing, complete or not at all;
//! - `organisation`: the organisation-level checks (its Cal.com connection, its GoHighLevel
//!   setup, an agent's organisation) and Ravan's own health check;
//! - `auth`: the two ways the client proves who it is.

mod auth;
mod classify;
mod client;
mod failure;
mod listing;
mod organisation;
mod throttle;

pub use auth::RavanAuth;
pub use classify::{EffectiveAccount, classify, classify_info};
pub use client::{AgentUrls, ClientError, RavanClient, USER_AGENT};
pub use failure::PollFailure;
pub use listing::{LISTING_PAGE, ListedAgent, Listing, ListingError, MAX_LISTED_AGENTS};
pub use organisation::{classify_agent_org, classify_calcom_org, classify_ghl, classify_health};
pub use throttle::{DEFAULT_THROTTLE_WAIT, MAX_THROTTLE_WAIT, retry_after};
