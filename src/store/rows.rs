//! Decoding stored rows into the store's values, once for every backend: both keep the same
//! columns with the same meaning (times as Unix milliseconds, JSON as text), so only reading a
//! column differs ([`StoredRow`]). Every column goes through `try_get`, so a value that does not
//! decode is a [`StoreError::Corrupt`] naming its row and column, never a panic or a silent
//! default.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;
use url::Url;

use super::{
    AgentRecord, DeadWebhook, Event, EventDelivery, OutboxEntry, OutboxStatus, Source, StoreError,
    corrupt,
};
use crate::domain::{AgentId, HealthInterval, Platform, SecretUrl, Webhook};
use crate::tracker::AgentState;

/// A row of either backend, read column by column; a column that does not decode is
/// [`StoreError::Corrupt`] naming it.
pub(crate) trait StoredRow {
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    fn optional_int(&self, name: &str) -> Result<Option<i64>, StoreError>;
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn optional_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn flag(&self, name: &str) -> Result<bool, StoreError>;
}

macro_rules! stored_row {
    ($row:ty) => {
        impl StoredRow for $row {
            fn int(&self, name: &str) -> Result<i64, StoreError> {
                self.try_get(name).map_err(|e| corrupt(name, e))
            }
            fn optional_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(name).map_err(|e| corrupt(name, e))
            }
            fn text(&self, name: &str) -> Result<String, StoreError> {
                self.try_get(name).map_err(|e| corrupt(name, e))
            }
            fn optional_text(&self, name: &str) -> Result<Option<String>, StoreError> {
                self.try_get(name).map_err(|e| corrupt(name, e))
            }
            fn flag(&self, name: &str) -> Result<bool, StoreError> {
                self.try_get(name).map_err(|e| corrupt(name, e))
            }
        }
    };
}

stored_row!(sqlx::sqlite::SqliteRow);
stored_row!(sqlx::postgres::PgRow);

/// A stored time; one out of chrono's range is corrupt, not 1970.
pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| corrupt("time", format!("{ms} ms is out of range")))
}

/// A time column (Unix milliseconds).
pub(crate) fn time(row: &impl StoredRow, name: &str) -> Result<DateTime<Utc>, StoreError> {
    from_millis(row.int(name)?).map_err(|e| within(e, name))
}

pub(crate) fn optional_time(
    row: &impl StoredRow,
    name: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    row.optional_int(name)?
        .map(from_millis)
        .transpose()
        .map_err(|e| within(e, name))
}

/// `e`, said to be about `place` (a column, or a row's key).
pub(crate) fn within(e: StoreError, place: &str) -> StoreError {
    match e {
        StoreError::Corrupt(why) => StoreError::Corrupt(format!("{place}: {why}")),
        other => other,
    }
}

fn url_column(row: &impl StoredRow, name: &str) -> Result<Option<SecretUrl>, StoreError> {
    row.optional_text(name)?
        .map(|s| {
            Url::parse(&s)
                .map(SecretUrl::new)
                .map_err(|e| corrupt(name, e))
        })
        .transpose()
}

/// The key of an agent's row, for errors: what an operator can look up.
fn agent_key(row: &impl StoredRow) -> String {
    row.text("agent_id")
        .map(|id| format!("agent {id:?}"))
        .unwrap_or_else(|_| "agent (unreadable agent_id)".to_owned())
}

/// An agent read with the last cycle (the backends' `agents_with_last_poll`): it was checked
/// when that cycle began, if the cycle polled it, even when nothing of its state needed saving.
pub(crate) fn agent_from_row(row: &impl StoredRow) -> Result<AgentRecord, StoreError> {
    let read = || -> Result<AgentRecord, StoreError> {
        let mut agent = saved_agent(row)?;
        let last_poll = optional_time(row, "last_poll_at")?;
        if last_poll > agent.state.last_checked_at {
            agent.state.last_checked_at = last_poll;
        }
        Ok(agent)
    };
    read().map_err(|e| within(e, &agent_key(row)))
}

/// An agent with its state as saved (for `copy-db`: not the last cycle's check time).
pub(crate) fn saved_agent_from_row(row: &impl StoredRow) -> Result<AgentRecord, StoreError> {
    saved_agent(row).map_err(|e| within(e, &agent_key(row)))
}

/// An agent's settings; its state left at the default (the row need not have it).
pub(crate) fn settings_from_row(row: &impl StoredRow) -> Result<AgentRecord, StoreError> {
    settings(row).map_err(|e| within(e, &agent_key(row)))
}

fn saved_agent(row: &impl StoredRow) -> Result<AgentRecord, StoreError> {
    let state = row.text("state")?;
    Ok(AgentRecord {
        state: serde_json::from_str(&state).map_err(|e| corrupt("state", e))?,
        ..settings(row)?
    })
}

fn settings(row: &impl StoredRow) -> Result<AgentRecord, StoreError> {
    Ok(AgentRecord {
        agent_id: row
            .text("agent_id")?
            .parse()
            .map_err(|e| corrupt("agent_id", e))?,
        name: row.optional_text("name")?,
        listed_name: row.optional_text("listed_name")?,
        source: Source::parse(&row.text("source")?).map_err(|e| corrupt("agent source", e))?,
        slack_webhook_url: url_column(row, "slack_webhook_url")?,
        discord_webhook_url: url_column(row, "discord_webhook_url")?,
        teams_webhook_url: url_column(row, "teams_webhook_url")?,
        webhook_url: url_column(row, "webhook_url")?,
        muted: row.flag("muted")?,
        muted_until: optional_time(row, "muted_until")?,
        created_at: time(row, "created_at")?,
        added_version: row.int("added_version")?,
        state: AgentState::default(),
    })
}

pub(crate) fn platform(name: &str) -> Result<Platform, StoreError> {
    name.parse()
        .map_err(|_| corrupt("platform", format!("{name:?} is not a platform")))
}

pub(crate) fn outbox_from_row(row: &impl StoredRow) -> Result<OutboxEntry, StoreError> {
    let read = || -> Result<OutboxEntry, StoreError> {
        let url = Url::parse(&row.text("url")?).map_err(|e| corrupt("url", e))?;
        let status = outbox_status(&row.text("status")?).map_err(|e| within(e, "status"))?;
        let attempts = row.int("attempts")?;
        Ok(OutboxEntry {
            id: row.int("id")?,
            batch: row.int("batch")?,
            webhook: Webhook::new(platform(&row.text("platform")?)?, SecretUrl::new(url)),
            message: serde_json::from_str(&row.text("alert")?).map_err(|e| corrupt("alert", e))?,
            status,
            attempts: u32::try_from(attempts)
                .map_err(|_| corrupt("attempts", format!("{attempts} is out of range")))?,
            next_attempt_at: time(row, "next_attempt_at")?,
            last_error: row.optional_text("last_error")?,
            created_at: time(row, "created_at")?,
            event_id: row.optional_int("event_id")?,
        })
    };
    let key = row
        .int("id")
        .map(|id| format!("outbox entry id {id}"))
        .unwrap_or_else(|_| "outbox entry (unreadable id)".to_owned());
    read().map_err(|e| within(e, &key))
}

pub(crate) fn dead_webhook_from_row(row: &impl StoredRow) -> Result<DeadWebhook, StoreError> {
    let platform = platform(&row.text("platform")?).map_err(|e| within(e, "dead webhook"))?;
    let url = Url::parse(&row.text("url")?).map_err(|e| corrupt("dead webhook url", e))?;
    Ok(DeadWebhook {
        webhook: Webhook::new(platform, SecretUrl::new(url)),
        reason: row.text("reason")?,
        since: time(row, "since").map_err(|e| within(e, "dead webhook"))?,
    })
}

/// An integration's row: its name and its state.
pub(crate) fn integration_from_row(
    row: &impl StoredRow,
) -> Result<
    (
        crate::domain::alert::IntegrationName,
        crate::tracker::IntegrationState,
    ),
    StoreError,
> {
    let name = row.text("name")?;
    let place = format!("integration {name:?}");
    let parsed = name
        .parse()
        .map_err(|e: String| within(corrupt("name", e), &place))?;
    let state = serde_json::from_str(&row.text("state")?)
        .map_err(|e| within(corrupt("state", e), &place))?;
    Ok((parsed, state))
}

fn outbox_status(name: &str) -> Result<OutboxStatus, StoreError> {
    name.parse()
        .map_err(|_| StoreError::Corrupt(format!("{name:?} is not a status")))
}

/// `e`, said to be about the row `what` of id `id` (`column` read as an integer).
fn keyed(row: &impl StoredRow, what: &str, column: &str, e: StoreError) -> StoreError {
    let key = row
        .int(column)
        .map(|id| format!("{what} {column} {id}"))
        .unwrap_or_else(|_| format!("{what} (unreadable {column})"));
    within(e, &key)
}

/// An event, without its deliveries (read apart: [`event_delivery_from_row`]).
pub(crate) fn event_from_row(row: &impl StoredRow) -> Result<Event, StoreError> {
    let read = || -> Result<Event, StoreError> {
        let kind = row.text("kind")?;
        if !crate::domain::Alert::KIND_NAMES.contains(&kind.as_str()) {
            return Err(corrupt("kind", format!("{kind:?} is not an event kind")));
        }
        Ok(Event {
            id: row.int("id")?,
            at: time(row, "at")?,
            agent_id: row
                .optional_text("agent_id")?
                .map(|id| id.parse().map_err(|e| corrupt("agent_id", e)))
                .transpose()?,
            kind,
            from_status: row.optional_text("from_status")?,
            to_status: row.optional_text("to_status")?,
            summary: row.text("summary")?,
            webhook: row.optional_text("webhook")?,
            integration: row.optional_text("integration")?,
            deliveries: Vec::new(),
        })
    };
    read().map_err(|e| keyed(row, "event", "id", e))
}

/// A delivery with the outbox entry it records and the event it belongs to:
/// `(outbox_id, event_id, delivery)`.
pub(crate) fn event_delivery_from_row(
    row: &impl StoredRow,
) -> Result<(i64, i64, EventDelivery), StoreError> {
    let read = || -> Result<(i64, i64, EventDelivery), StoreError> {
        let delivery = EventDelivery {
            platform: platform(&row.text("platform")?)?,
            webhook: row.text("webhook")?,
            outcome: outbox_status(&row.text("outcome")?).map_err(|e| within(e, "outcome"))?,
            at: optional_time(row, "at")?,
            error: row.optional_text("error")?,
        };
        Ok((row.int("outbox_id")?, row.int("event_id")?, delivery))
    };
    read().map_err(|e| keyed(row, "event delivery", "outbox_id", e))
}

/// A health interval with its id and agent: `(id, agent, interval)`.
pub(crate) fn health_interval_from_row(
    row: &impl StoredRow,
) -> Result<(i64, AgentId, HealthInterval), StoreError> {
    let read = || -> Result<(i64, AgentId, HealthInterval), StoreError> {
        let interval = HealthInterval {
            healthy: row.flag("healthy")?,
            start: time(row, "started_at")?,
            end: optional_time(row, "ended_at")?,
        };
        let agent = row
            .text("agent_id")?
            .parse()
            .map_err(|e| corrupt("agent_id", e))?;
        Ok((row.int("id")?, agent, interval))
    };
    read().map_err(|e| keyed(row, "health interval", "id", e))
}

/// Gives each event (newest first, as read) its deliveries, oldest first.
pub(crate) fn attach_deliveries(
    mut events: Vec<Event>,
    mut deliveries: Vec<(i64, i64, EventDelivery)>,
) -> Vec<Event> {
    deliveries.sort_by_key(|(outbox_id, _, _)| *outbox_id);
    let mut by_event: std::collections::HashMap<i64, Vec<EventDelivery>> =
        std::collections::HashMap::new();
    for (_, event_id, delivery) in deliveries {
        by_event.entry(event_id).or_default().push(delivery);
    }
    for event in &mut events {
        event.deliveries = by_event.remove(&event.id).unwrap_or_default();
    }
    events
}

/// A maintenance window's row.
pub(crate) fn window_from_row(
    row: &impl StoredRow,
) -> Result<crate::domain::MaintenanceWindow, StoreError> {
    use crate::domain::maintenance::{Timing, WindowSchedule};
    let id = row.text("id")?;
    let read = || -> Result<crate::domain::MaintenanceWindow, StoreError> {
        let timing = match row.optional_text("schedule")? {
            Some(pattern) => {
                let seconds = row
                    .optional_int("duration_seconds")?
                    .ok_or_else(|| corrupt("duration_seconds", "missing"))?;
                Timing::Recurring {
                    schedule: WindowSchedule::parse(&pattern)
                        .map_err(|e| corrupt("schedule", e))?,
                    duration: chrono::TimeDelta::try_seconds(seconds)
                        .ok_or_else(|| corrupt("duration_seconds", "out of range"))?,
                }
            }
            None => Timing::OneOff {
                start_at: optional_time(row, "start_at")?
                    .ok_or_else(|| corrupt("start_at", "missing"))?,
                end_at: optional_time(row, "end_at")?
                    .ok_or_else(|| corrupt("end_at", "missing"))?,
            },
        };
        let agent_ids = row
            .optional_text("agent_ids")?
            .map(|ids| serde_json::from_str(&ids).map_err(|e| corrupt("agent_ids", e)))
            .transpose()?;
        Ok(crate::domain::MaintenanceWindow {
            id: id.parse().map_err(|e| corrupt("id", e))?,
            name: row.text("name")?,
            timing,
            timezone: row
                .text("timezone")?
                .parse()
                .map_err(|e| corrupt("timezone", e))?,
            agent_ids,
            created_at: time(row, "created_at")?,
        })
    };
    read().map_err(|e| within(e, &format!("maintenance window {id:?}")))
}
