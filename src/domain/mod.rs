//! The values everything else is built from, with no I/O and no dependency on any other layer:
//! an agent and what a poll observes of it ([`agent`]), Ravan's text bounded where it enters
//! ([`clipped`]), the alerts the tracker decides and the
//! notifiers render ([`alert`]), an agent's past health and what it comes to ([`history`]),
//! watch-all's rules ([`listing`]), the organisation's integrations ([`integration`]), what Ravan's
//! own health check said ([`ravan_health`]), where alerts go ([`webhook`]) and which hosts they may go
//! to ([`hosts`]), the mute rule ([`mute`]) and maintenance windows ([`maintenance`]), the poll
//! and digest schedules ([`schedule`]), the zone times are written in ([`zone`]), a digest's
//! facts ([`digest`]) and the wrappers
//! that keep secrets out of logs ([`secret`]).
//! They are parsed once at the edge, so the core never handles an unchecked value.

pub mod agent;
pub mod alert;
pub mod clipped;
pub mod digest;
pub mod history;
pub mod hosts;
pub mod integration;
pub mod listing;
pub mod maintenance;
pub mod mute;
pub mod ravan_health;
pub mod schedule;
pub mod secret;
pub mod webhook;
pub mod zone;

pub use agent::{
    Account, AgentId, Connection, HEALTHY_STATUS, InvalidAgentId, NOT_CONNECTED, Observation,
};
pub use alert::{
    AgentAlert, AgentAlertKind, AgentRef, Alert, EventKind, MonitorAlert, MonitorAlertKind,
};
pub use clipped::{CLIPPED, Clipped, ErrorText, Name, StatusWord};
pub use digest::{Digest, Message};
pub use history::{HealthEdge, HealthInterval, Slot, Uptime};
pub use hosts::{AllowedHosts, DEFAULT_ALLOWED_HOSTS};
pub use integration::{CalcomOrg, GhlSetup, InvalidOrgId, OrgId};
pub use listing::{ListingApplied, ListingPlan, ListingSeen, Source};
pub use maintenance::{Coverage, MaintenanceWindow, WindowId};
pub use mute::muted_at;
pub use ravan_health::RavanHealth;
pub use schedule::PollSchedule;
pub use secret::{DatabaseUrl, Secret, SecretUrl};
pub use webhook::{PLATFORMS, Platform, Webhook};
pub use zone::Zone;
