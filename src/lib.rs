//! ravan-watch: tells a team chat when a Ravan voice agent loses its Cal.com connection.
//!
//! The layout follows the data, in layers, lowest first; a module imports only from its own
//! layer and the ones below (`tests/layers.rs` checks it):
//!
//! 1. [`util`], [`metrics`], [`supervise`]: helpers that know nothing of the service.
//! 2. [`domain`]: the values everything is built from (agents, observations, alerts, webhooks).
//! 3. [`ravan`]: polls the Ravan API; every answer is an observation or a poll failure.
//! 4. [`tracker`]: decides which observations are alerts (pure state machines).
//! 5. [`store`]: keeps agents, states, the outbox and the leader lease, behind one interface
//!    per concern, on SQLite or PostgreSQL.
//! 6. [`leader`]: which of the processes sharing a database leads (polls and delivers).
//! 7. [`notify`]: formats alerts (pure) and delivers them from the outbox.
//! 8. [`discovery`], [`organisation`], [`monitor`], [`confirm`], [`scheduler`]: run the cycles
//!    (list, check the organisation's integrations, poll, track, commit) and the confirm polls.
//! 9. [`api`]: the management API and the status page.
//! 10. [`config`], [`telemetry`]: settings and logs.
//! 11. [`app`]: wires it all from the settings, for `serve`, `demo`, the tests and the bench.
//! 12. [`commands`]: one per command of the command line.
//!
//! Everything that does I/O sits at the edges, so the decisions can be tested without a
//! network or a clock.

pub mod api;
pub mod app;
pub mod commands;
pub mod config;
pub mod confirm;
pub mod digest;
pub mod discovery;
pub mod domain;
pub mod leader;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod organisation;
pub mod ravan;
pub mod scheduler;
pub mod store;
pub mod supervise;
pub mod telemetry;
pub mod tracker;
pub mod util;
