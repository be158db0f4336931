//! `/agents`: add, list, read, change and remove watched agents.
//!
//! Request bodies are deserialized strictly (unknown fields are an error, so an operator's typo
//! is not silently ignored), then parsed once into the store's typed values ([`NewAgent`],
//! [`AgentPatch`]). Answers show webhook URLs masked, never in full.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::error::{AgentIdPath, ApiError, ApiJson, ErrorBody};
use super::values::{AgentName, WebhookUrl, parse_rfc3339};
use crate::domain::AllowedHosts;
use crate::domain::Webhook;
use crate::domain::history::{self, HealthInterval, Uptime};
use crate::domain::secret::SecretUrl;
use crate::domain::{Account, AgentId, Coverage};
use crate::store::{AgentPatch, AgentRecord, DeadWebhook, NewAgent};
use crate::tracker::AgentState;

// ------------------------------------------------------------------ requests

/// `POST /agents`: start watching an agent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// The Ravan agent's UUID (any spelling; stored and shown in canonical lowercase).
    #[schema(format = Uuid, example = "3f2504e0-4f89-11d3-9a0c-0305e82c3301")]
    pub agent_id: String,
    /// A label: trimmed, 1 to 100 characters. `null` or absent: no name.
    #[serde(default)]
    #[schema(max_length = 100, min_length = 1, example = "Sales line")]
    pub name: Option<String>,
    /// The agent's own Slack webhook (else alerts go to the default one).
    #[serde(default)]
    #[schema(format = Uri)]
    pub slack_webhook_url: Option<String>,
    /// The agent's own Discord webhook (else alerts go to the default one).
    #[serde(default)]
    #[schema(format = Uri)]
    pub discord_webhook_url: Option<String>,
    /// The agent's own Microsoft Teams (Workflows) webhook (else alerts go to the default one).
    #[serde(default)]
    #[schema(format = Uri)]
    pub teams_webhook_url: Option<String>,
    /// The agent's own signed JSON webhook, signed with the service's `WEBHOOK_SECRET` (which
    /// must be set). Its host must be in `WEBHOOK_ALLOWED_HOSTS`.
    #[serde(default)]
    #[schema(format = Uri)]
    pub webhook_url: Option<String>,
    /// No alerts while true. Default false.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = bool, default = false)]
    pub muted: Option<bool>,
}

/// `PATCH /agents/{agent_id}`: change any of these fields; absent ones stay as they are, and
/// `null` clears a nullable one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    /// New label (trimmed, 1 to 100 characters); `null` removes it.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, max_length = 100, min_length = 1)]
    pub name: Option<Option<String>>,
    /// `null` removes it: alerts go to the default Slack webhook again.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, format = Uri)]
    pub slack_webhook_url: Option<Option<String>>,
    /// `null` removes it: alerts go to the default Discord webhook again.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, format = Uri)]
    pub discord_webhook_url: Option<Option<String>>,
    /// `null` removes it: alerts go to the default Teams webhook again.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, format = Uri)]
    pub teams_webhook_url: Option<Option<String>>,
    /// `null` removes it: alerts go to the default signed webhook again.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, format = Uri)]
    pub webhook_url: Option<Option<String>>,
    /// Not nullable.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = bool)]
    pub muted: Option<bool>,
    /// RFC 3339 time until which alerts are held back; `null` clears it.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub muted_until: Option<Option<String>>,
}

/// A field that may be absent but not `null`.
fn not_null<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    T::deserialize(d).map(Some)
}

fn name(raw: Option<String>) -> Result<Option<String>, ApiError> {
    raw.map(|n| AgentName::parse(&n).map(AgentName::into_inner))
        .transpose()
}

/// A signed webhook is set only where its requests can be signed: an agent's `webhook_url`
/// needs the service's `WEBHOOK_SECRET`.
fn signable(state: &ApiState, sets_webhook_url: bool) -> Result<(), ApiError> {
    if sets_webhook_url && !state.signing {
        return Err(ApiError::invalid_field(
            "webhook_url",
            "needs WEBHOOK_SECRET (with WEBHOOK_URL) set on the service: its requests are signed with it",
        ));
    }
    Ok(())
}

fn webhook(
    field: &str,
    raw: Option<String>,
    allowed: &AllowedHosts,
) -> Result<Option<url::Url>, ApiError> {
    raw.map(|u| WebhookUrl::parse(field, &u, allowed).map(WebhookUrl::into_inner))
        .transpose()
}

impl CreateAgent {
    /// The id and the store's new agent, or the first rule broken.
    pub fn parse(self, allowed: &AllowedHosts) -> Result<(AgentId, NewAgent), ApiError> {
        let id: AgentId = self.agent_id.parse().map_err(|_| {
            ApiError::invalid_field(
                "agent_id",
                "must be a UUID such as 3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            )
        })?;
        Ok((
            id,
            NewAgent {
                name: name(self.name)?,
                slack_webhook_url: webhook("slack_webhook_url", self.slack_webhook_url, allowed)?,
                discord_webhook_url: webhook(
                    "discord_webhook_url",
                    self.discord_webhook_url,
                    allowed,
                )?,
                teams_webhook_url: webhook("teams_webhook_url", self.teams_webhook_url, allowed)?,
                webhook_url: webhook("webhook_url", self.webhook_url, allowed)?,
                muted: self.muted.unwrap_or(false),
                muted_until: None,
            },
        ))
    }
}

impl UpdateAgent {
    pub fn parse(self, allowed: &AllowedHosts) -> Result<AgentPatch, ApiError> {
        Ok(AgentPatch {
            name: self.name.map(name).transpose()?,
            slack_webhook_url: self
                .slack_webhook_url
                .map(|u| webhook("slack_webhook_url", u, allowed))
                .transpose()?,
            discord_webhook_url: self
                .discord_webhook_url
                .map(|u| webhook("discord_webhook_url", u, allowed))
                .transpose()?,
            teams_webhook_url: self
                .teams_webhook_url
                .map(|u| webhook("teams_webhook_url", u, allowed))
                .transpose()?,
            webhook_url: self
                .webhook_url
                .map(|u| webhook("webhook_url", u, allowed))
                .transpose()?,
            muted: self.muted,
            muted_until: self
                .muted_until
                .map(|t| t.map(|t| parse_rfc3339("muted_until", &t)).transpose())
                .transpose()?,
        })
    }
}

// ------------------------------------------------------------------ answers

/// A watched agent: the operator's settings and what the last polls found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Agent {
    #[schema(format = Uuid, example = "3f2504e0-4f89-11d3-9a0c-0305e82c3301")]
    pub agent_id: String,
    /// The name set over the API, else the agent's name in the organisation's listing
    /// (watch-all), else `null`.
    #[schema(required = true)]
    pub name: Option<String>,
    pub muted: bool,
    #[schema(required = true)]
    pub muted_until: Option<DateTime<Utc>>,
    /// Masked: the secret last path segment is `***`.
    #[schema(
        required = true,
        example = "https://hooks.slack.com/services/T0/B0/***"
    )]
    pub slack_webhook_url: Option<String>,
    /// Masked: the secret last path segment is `***`.
    #[schema(required = true, example = "https://discord.com/api/webhooks/123/***")]
    pub discord_webhook_url: Option<String>,
    /// Masked: the last path segment is `***` and the query, whose `sig` is the secret, is
    /// dropped.
    #[schema(
        required = true,
        example = "https://prod-12.westus.logic.azure.com/workflows/0a1b/triggers/manual/paths/***"
    )]
    pub teams_webhook_url: Option<String>,
    /// The agent's own signed JSON webhook, masked.
    #[schema(required = true, example = "https://hooks.example.com/***")]
    pub webhook_url: Option<String>,
    /// Whether a maintenance window covers the agent now: its alerts are held back (its state
    /// is still tracked).
    pub in_maintenance: bool,
    /// Why the last alert to this agent's webhooks could not be delivered; `null` when none.
    #[schema(required = true)]
    pub delivery_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Where the agent came from: `env` (WATCH_AGENT_IDS), `api` (POST /agents) or
    /// `discovered` (WATCH_ALL_AGENTS). Watch-all removes only the agents it discovered.
    #[schema(example = "api")]
    pub source: &'static str,
    /// Percent of the observed time the agent was healthy (see docs/history-and-status-page.md).
    pub uptime: AgentUptime,
    pub state: AgentStatus,
}

/// Percent of observed time healthy over the last 24 hours, 7 days and 30 days; `null` when
/// nothing was observed in the window. Time with failed polls, before the first poll and
/// after the last one is not observed time; muted time is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct AgentUptime {
    #[serde(rename = "24h")]
    #[schema(required = true, example = 99.5)]
    pub day: Option<f64>,
    #[serde(rename = "7d")]
    #[schema(required = true, example = 99.9)]
    pub week: Option<f64>,
    #[serde(rename = "30d")]
    #[schema(required = true, example = 99.98)]
    pub month: Option<f64>,
}

impl From<Uptime> for AgentUptime {
    fn from(u: Uptime) -> Self {
        // Three decimals: a second of a 30-day window is 0.00004 %.
        let round = |p: Option<f64>| p.map(|p| (p * 1000.0).round() / 1000.0);
        Self {
            day: round(u.day),
            week: round(u.week),
            month: round(u.month),
        }
    }
}

/// Every watched agent's health intervals that matter to its uptime as of `now`.
pub(crate) async fn intervals_by_agent(
    state: &ApiState,
    now: DateTime<Utc>,
) -> Result<HashMap<AgentId, Vec<HealthInterval>>, ApiError> {
    let mut by_agent: HashMap<AgentId, Vec<HealthInterval>> = HashMap::new();
    for (id, i) in state.store.health_intervals(now - history::MONTH).await? {
        by_agent.entry(id).or_default().push(i);
    }
    Ok(by_agent)
}

/// What the polls found; every field is `null` (and `accounts` empty) before the first
/// observation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentStatus {
    /// Ravan's raw status: `active` is healthy, anything else is not.
    #[schema(required = true, example = "active")]
    pub status: Option<String>,
    /// Which Cal.com connection `status` is of: `private` (the agent's own, from `/status`),
    /// `org_linked` (the organisation's shared account, from `/info`) or `none`.
    #[schema(required = true, example = "org_linked")]
    pub connection: Option<&'static str>,
    #[schema(required = true)]
    pub connected: Option<bool>,
    #[schema(required = true)]
    pub healthy: Option<bool>,
    /// Since when the agent has had its current health.
    #[schema(required = true)]
    pub since: Option<DateTime<Utc>>,
    /// When the agent was last polled, successfully or not: the start of the poll cycle that
    /// polled it (or the poll's own time, when its state was saved then).
    #[schema(required = true)]
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Why the last poll failed; `null` after a successful one.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When Ravan began answering 404 for the agent (deleted, or a wrong id); `null` while
    /// it answers.
    #[schema(required = true)]
    pub missing_since: Option<DateTime<Utc>>,
    pub accounts: Vec<AccountStatus>,
    /// Whether the missing alert went out (the 404s reached the failure threshold): what the
    /// status page calls "not found at Ravan". Not part of the JSON.
    #[serde(skip)]
    pub missing_alerted: bool,
}

/// One Cal.com account of the agent, as Ravan last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AccountStatus {
    pub id: String,
    pub account_name: String,
    pub status: String,
    #[schema(required = true)]
    pub error: Option<String>,
}

/// `GET /agents`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<Agent>,
}

impl From<&Account> for AccountStatus {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.to_string(),
            account_name: a.account_name.to_string(),
            status: a.status.to_string(),
            error: a.error.as_ref().map(ToString::to_string),
        }
    }
}

impl From<&AgentState> for AgentStatus {
    fn from(s: &AgentState) -> Self {
        let last = s.last.as_ref();
        Self {
            status: last.map(|o| o.status.to_string()),
            connection: last.map(|o| o.connection().as_str()),
            connected: last.map(|o| o.connected),
            healthy: last.map(|o| o.is_healthy()),
            since: s.health_since,
            last_checked_at: s.last_checked_at,
            last_error: s.last_error.clone(),
            missing_since: s.missing_since,
            missing_alerted: s.missing_alerted,
            accounts: last
                .map(|o| o.accounts.iter().map(AccountStatus::from).collect())
                .unwrap_or_default(),
        }
    }
}

impl Agent {
    /// The agent as answered, with the problems of the webhooks its alerts go to.
    /// `intervals`: the agent's health intervals (for its uptime as of `now`).
    pub(crate) fn new(
        r: &AgentRecord,
        defaults: &[Webhook],
        dead: &[DeadWebhook],
        intervals: &[HealthInterval],
        now: DateTime<Utc>,
    ) -> Self {
        let problems: Vec<String> = r
            .destinations(defaults)
            .iter()
            .filter_map(|hook| dead.iter().find(|d| d.webhook == *hook))
            .map(|d| {
                format!(
                    "{} is dead since {}: {}",
                    d.webhook,
                    d.since.to_rfc3339(),
                    d.reason
                )
            })
            .collect();
        Self {
            agent_id: r.agent_id.to_string(),
            name: r.display_name().map(str::to_owned),
            muted: r.muted,
            muted_until: r.muted_until,
            slack_webhook_url: r.slack_webhook_url.as_ref().map(SecretUrl::masked),
            discord_webhook_url: r.discord_webhook_url.as_ref().map(SecretUrl::masked),
            teams_webhook_url: r.teams_webhook_url.as_ref().map(SecretUrl::masked),
            webhook_url: r.webhook_url.as_ref().map(SecretUrl::masked),
            in_maintenance: false,
            delivery_error: (!problems.is_empty()).then(|| problems.join("; ")),
            created_at: r.created_at,
            source: r.source.as_str(),
            uptime: Uptime::new(intervals, r.state.last_checked_at, now).into(),
            state: AgentStatus::from(&r.state),
        }
    }
}

impl Agent {
    /// The agent with `in_maintenance` as the windows open now say (worked out once for a
    /// whole list: [`Coverage::at`]).
    pub(crate) fn in_windows(mut self, open: &Coverage) -> Self {
        if let Ok(id) = self.agent_id.parse() {
            self.in_maintenance = open.covers(&id);
        }
        self
    }
}

/// One agent as answered.
async fn answer(state: &ApiState, record: &AgentRecord) -> Result<Agent, ApiError> {
    let dead = state.store.dead_webhooks().await?;
    let now = Utc::now();
    let intervals = state
        .store
        .agent_health_intervals(&record.agent_id, now - history::MONTH)
        .await?;
    let windows = state.store.maintenance_windows().await?;
    Ok(
        Agent::new(record, &state.default_webhooks, &dead, &intervals, now)
            .in_windows(&Coverage::at(&windows, now)),
    )
}

// ------------------------------------------------------------------ handlers

/// Start watching an agent.
#[utoipa::path(
    post,
    path = "/agents",
    tag = "agents",
    request_body = CreateAgent,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Watched from now on", body = Agent,
            headers(("Location" = String, description = "`/agents/{agent_id}`"))),
        (status = 400, description = "Bad body or agent id", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 409, description = "Already watched", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "The database stayed busy; retry after `Retry-After` seconds (code `internal`)", body = ErrorBody),
    )
)]
pub async fn create_agent(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<CreateAgent>,
) -> Result<Response, ApiError> {
    let (id, new) = body.parse(&state.allowed_hosts)?;
    signable(&state, new.webhook_url.is_some())?;
    let record = state.store.insert_agent(id, &new, Utc::now()).await?;
    tracing::info!(
        agent_id = %id,
        own_slack = record.slack_webhook_url.is_some(),
        own_discord = record.discord_webhook_url.is_some(),
        own_teams = record.teams_webhook_url.is_some(),
        own_webhook = record.webhook_url.is_some(),
        muted = record.muted,
        "agent added over the API"
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/agents/{id}"))],
        Json(answer(&state, &record).await?),
    )
        .into_response())
}

/// Every watched agent, oldest first.
#[utoipa::path(
    get,
    path = "/agents",
    tag = "agents",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The watched agents", body = AgentList),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "The database stayed busy; retry after `Retry-After` seconds (code `internal`)", body = ErrorBody),
    )
)]
pub async fn list_agents(State(state): State<ApiState>) -> Result<Json<AgentList>, ApiError> {
    let agents = state.store.agents().await?;
    let dead = state.store.dead_webhooks().await?;
    let now = Utc::now();
    let intervals = intervals_by_agent(&state, now).await?;
    let open = Coverage::at(&state.store.maintenance_windows().await?, now);
    Ok(Json(AgentList {
        agents: agents
            .iter()
            .map(|a| {
                let mine = intervals.get(&a.agent_id).map(Vec::as_slice);
                Agent::new(a, &state.default_webhooks, &dead, mine.unwrap_or(&[]), now)
                    .in_windows(&open)
            })
            .collect(),
    }))
}

/// One watched agent.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}",
    tag = "agents",
    params(("agent_id" = uuid::Uuid, Path, description = "The agent's UUID")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The agent", body = Agent),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "Not watched", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "The database stayed busy; retry after `Retry-After` seconds (code `internal`)", body = ErrorBody),
    )
)]
pub async fn get_agent(
    State(state): State<ApiState>,
    AgentIdPath(id): AgentIdPath,
) -> Result<Json<Agent>, ApiError> {
    let record = state
        .store
        .agent(id)
        .await?
        .ok_or_else(|| ApiError::agent_not_found(id))?;
    Ok(Json(answer(&state, &record).await?))
}

/// Change an agent's settings.
#[utoipa::path(
    patch,
    path = "/agents/{agent_id}",
    tag = "agents",
    params(("agent_id" = uuid::Uuid, Path, description = "The agent's UUID")),
    request_body = UpdateAgent,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The agent as changed", body = Agent),
        (status = 400, description = "Bad body or agent id", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "Not watched", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "The database stayed busy; retry after `Retry-After` seconds (code `internal`)", body = ErrorBody),
    )
)]
pub async fn update_agent(
    State(state): State<ApiState>,
    AgentIdPath(id): AgentIdPath,
    ApiJson(body): ApiJson<UpdateAgent>,
) -> Result<Json<Agent>, ApiError> {
    let patch = body.parse(&state.allowed_hosts)?;
    signable(&state, matches!(patch.webhook_url, Some(Some(_))))?;
    let record = state
        .store
        .update_agent(id, &patch)
        .await?
        .ok_or_else(|| ApiError::agent_not_found(id))?;
    tracing::info!(
        agent_id = %id,
        name = patch.name.is_some(),
        slack_webhook_url = patch.slack_webhook_url.is_some(),
        discord_webhook_url = patch.discord_webhook_url.is_some(),
        teams_webhook_url = patch.teams_webhook_url.is_some(),
        webhook_url = patch.webhook_url.is_some(),
        muted = patch.muted.is_some(),
        muted_until = patch.muted_until.is_some(),
        "agent changed over the API (fields marked true were sent)"
    );
    Ok(Json(answer(&state, &record).await?))
}

/// Stop watching an agent. Alerts about it already queued are still delivered.
#[utoipa::path(
    delete,
    path = "/agents/{agent_id}",
    tag = "agents",
    params(("agent_id" = uuid::Uuid, Path, description = "The agent's UUID")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "No longer watched"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "Not watched", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "The database stayed busy; retry after `Retry-After` seconds (code `internal`)", body = ErrorBody),
    )
)]
pub async fn delete_agent(
    State(state): State<ApiState>,
    AgentIdPath(id): AgentIdPath,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_agent(id, Utc::now()).await? {
        tracing::info!(agent_id = %id, "agent removed over the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::agent_not_found(id))
    }
}
