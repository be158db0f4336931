//! ravan-watch: tells a team chat when a Ravan voice agent loses its Cal.com connection.
//!
//! The layout follows the data: [`ravan`] polls, [`tracker`] decides (pure), [`notify`] formats
//! (pure) and delivers, [`monitor`] runs one poll cycle through all of them, and [`scheduler`]
//! runs cycles on the cron schedule. Everything that does I/O sits at the edges so the decisions
//! can be tested without a network or a clock.

pub mod api;
pub mod app;
pub mod commands;
pub mod config;
pub mod discovery;
pub mod domain;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod ravan;
pub mod scheduler;
pub mod store;
pub mod supervise;
pub mod telemetry;
pub mod tracker;
pub mod util;
