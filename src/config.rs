//! Settings come from the environment (and `./.env`), as the contract lists them. Each one is
//! parsed into a typed value here, at start-up, so that a bad value stops the service with one
//! line naming the variable instead of failing later in the middle of a poll cycle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::domain::secret::{DatabaseUrl, Secret, SecretUrl};
use crate::domain::{AgentId, AllowedHosts, DEFAULT_ALLOWED_HOSTS, PollSchedule};
use crate::domain::{OrgId, Platform, Webhook};
use crate::notify::signed::SigningSecret;
use crate::ravan::RavanAuth;
use crate::tracker::Thresholds;

pub const DEFAULT_BASE_URL: &str = "https://api.ravan.ai";
pub const DEFAULT_SCHEDULE: &str = "0/30 * * * * *";

/// A setting that could not be used, and why. Displays as the one line start-up prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: Url,
    /// `None` when neither variable is set: `serve` and `check` call [`Config::require_auth`].
    pub auth: Option<RavanAuth>,
    pub poll_timeout: Duration,
    pub poll_concurrency: NonZeroUsize,
    pub poll_schedule: PollSchedule,
    pub thresholds: Thresholds,
    pub watch_agent_ids: Vec<AgentId>,
    /// `WATCH_ALL_AGENTS`: also watch every agent the credentials can list.
    pub watch_all_agents: bool,
    /// How often the organisation's agents are listed when `watch_all_agents` is on.
    pub discovery_interval: Duration,
    /// `CHECK_ORG_LINKED`: ask `/info` when `/status` finds no private connection.
    pub check_org_linked: bool,
    pub slack_webhook: Option<Webhook>,
    pub discord_webhook: Option<Webhook>,
    /// `TEAMS_WEBHOOK_URL`: a Microsoft Teams Workflows webhook.
    pub teams_webhook: Option<Webhook>,
    /// `WEBHOOK_URL`: the default signed JSON webhook. Set only with `webhook_secret`.
    pub signed_webhook: Option<SecretUrl>,
    /// `WEBHOOK_SECRET`: the key of every signed webhook, the default one's and agents' own
    /// `webhook_url`s, so it is kept on its own. Set only with `signed_webhook`.
    pub webhook_secret: Option<SigningSecret>,
    pub log_format: LogFormat,
    /// The organisation-level checks (`CHECK_INTEGRATIONS`, `RAVAN_ORG_ID`,
    /// `TOKEN_EXPIRY_WARNING`).
    pub integrations: IntegrationSettings,
    /// Bearer token of the management API; `serve` requires it unless `listen_addr` is loopback.
    pub admin_token: Option<Secret>,
    pub listen_addr: SocketAddr,
    /// `DATABASE_URL` (its password masked when printed).
    pub database_url: DatabaseUrl,
    /// Hosts a webhook URL given over the API may point at.
    pub webhook_allowed_hosts: AllowedHosts,
    /// `OUTBOX_RETENTION`: delivered and failed deliveries older than this are deleted.
    pub outbox_retention: Duration,
    /// `HISTORY_RETENTION`: events and health intervals older than this are deleted.
    pub history_retention: Duration,
    /// `CONFIRM_INTERVAL`: how soon an agent whose answer disagrees with its alerted health is
    /// polled again; zero: not before the next tick.
    pub confirm_interval: Duration,
    /// `TIMEZONE`: the zone times are written in, and the digest's and windows' cron read in.
    pub timezone: chrono_tz::Tz,
    /// `DIGEST_SCHEDULE`, read in `timezone`; `None`: no digest.
    pub digest_schedule: Option<PollSchedule>,
}

/// What the organisation-level checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationSettings {
    /// Whether each cycle checks the organisation's Cal.com connection and GoHighLevel.
    pub check: bool,
    /// The organisation; `None`: read from a watched agent.
    pub org_id: Option<OrgId>,
    /// How near a steady token expiry warns; zero: never.
    pub token_expiry_warning: Duration,
}

impl IntegrationSettings {
    fn parse(
        check: Option<String>,
        org_id: Option<String>,
        warning: Option<String>,
    ) -> Result<Self, ConfigError> {
        let check = boolean(
            "CHECK_INTEGRATIONS",
            set(check).as_deref().unwrap_or("true"),
        )?;
        let org_id = set(org_id)
            .map(|id| {
                id.trim()
                    .parse::<OrgId>()
                    .map_err(|e| ConfigError::new("RAVAN_ORG_ID", e.to_string()))
            })
            .transpose()?;
        let token_expiry_warning = duration(
            "TOKEN_EXPIRY_WARNING",
            set(warning).as_deref().unwrap_or("3d"),
        )?;
        Ok(Self {
            check,
            org_id,
            token_expiry_warning,
        })
    }
}

/// The environment as strings; envy maps `RAVAN_API_TOKEN` to `ravan_api_token` and so on.
#[derive(Debug, Default, Deserialize)]
struct RawEnv {
    ravan_api_token: Option<String>,
    ravan_api_key: Option<String>,
    ravan_api_base_url: Option<String>,
    slack_webhook_url: Option<String>,
    discord_webhook_url: Option<String>,
    teams_webhook_url: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    watch_agent_ids: Option<String>,
    watch_all_agents: Option<String>,
    discovery_interval: Option<String>,
    check_org_linked: Option<String>,
    poll_schedule: Option<String>,
    poll_timeout: Option<String>,
    poll_concurrency: Option<String>,
    failure_threshold: Option<String>,
    success_threshold: Option<String>,
    reminder_interval: Option<String>,
    log_format: Option<String>,
    admin_token: Option<String>,
    listen_addr: Option<String>,
    database_url: Option<String>,
    webhook_allowed_hosts: Option<String>,
    outbox_retention: Option<String>,
    history_retention: Option<String>,
    check_integrations: Option<String>,
    ravan_org_id: Option<String>,
    token_expiry_warning: Option<String>,
    confirm_interval: Option<String>,
    timezone: Option<String>,
    digest_schedule: Option<String>,
}

impl Config {
    /// Reads the process environment. `./.env` is loaded by `main` before this runs.
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw: RawEnv = envy::from_env()
            .map_err(|e| ConfigError::new("environment", format!("cannot be read: {e}")))?;
        Self::from_raw(raw)
    }

    /// Parses settings from explicit pairs, as if they were the whole environment. For tests and
    /// embedding; the names are the contract's variable names.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let raw: RawEnv = envy::from_iter(map)
            .map_err(|e| ConfigError::new("environment", format!("cannot be read: {e}")))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawEnv) -> Result<Self, ConfigError> {
        let auth = match (set(raw.ravan_api_token), set(raw.ravan_api_key)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "RAVAN_API_KEY",
                    "set exactly one of RAVAN_API_TOKEN and RAVAN_API_KEY, not both",
                ));
            }
            (Some(token), None) => Some(RavanAuth::Bearer(credential("RAVAN_API_TOKEN", token)?)),
            (None, Some(key)) => Some(RavanAuth::ApiKey(credential("RAVAN_API_KEY", key)?)),
            (None, None) => None,
        };
        let base_url = http_url(
            "RAVAN_API_BASE_URL",
            set(raw.ravan_api_base_url)
                .as_deref()
                .unwrap_or(DEFAULT_BASE_URL),
        )?;
        let slack_webhook = set(raw.slack_webhook_url)
            .map(|u| webhook(Platform::Slack, &u))
            .transpose()?;
        let discord_webhook = set(raw.discord_webhook_url)
            .map(|u| webhook(Platform::Discord, &u))
            .transpose()?;
        let teams_webhook = set(raw.teams_webhook_url)
            .map(|u| webhook(Platform::Teams, &u))
            .transpose()?;
        let (signed_webhook, webhook_secret) =
            signed_webhook(set(raw.webhook_url), set(raw.webhook_secret))?;
        let watch_agent_ids = agent_ids(set(raw.watch_agent_ids).as_deref().unwrap_or(""))?;
        let watch_all_agents = boolean(
            "WATCH_ALL_AGENTS",
            set(raw.watch_all_agents).as_deref().unwrap_or("false"),
        )?;
        let check_org_linked = boolean(
            "CHECK_ORG_LINKED",
            set(raw.check_org_linked).as_deref().unwrap_or("true"),
        )?;
        let discovery_interval = duration(
            "DISCOVERY_INTERVAL",
            set(raw.discovery_interval).as_deref().unwrap_or("5m"),
        )?;
        if discovery_interval < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "DISCOVERY_INTERVAL",
                "must be at least 1s",
            ));
        }
        let poll_schedule = PollSchedule::parse(
            set(raw.poll_schedule)
                .as_deref()
                .unwrap_or(DEFAULT_SCHEDULE),
        )
        .map_err(|e| ConfigError::new("POLL_SCHEDULE", e))?;
        let poll_timeout = duration(
            "POLL_TIMEOUT",
            set(raw.poll_timeout).as_deref().unwrap_or("10s"),
        )?;
        if poll_timeout.is_zero() {
            return Err(ConfigError::new("POLL_TIMEOUT", "must be longer than 0s"));
        }
        let poll_concurrency = NonZeroUsize::new(positive(
            "POLL_CONCURRENCY",
            set(raw.poll_concurrency).as_deref().unwrap_or("16"),
        )?)
        .expect("positive");
        let failure = positive(
            "FAILURE_THRESHOLD",
            set(raw.failure_threshold).as_deref().unwrap_or("2"),
        )?;
        let success = positive(
            "SUCCESS_THRESHOLD",
            set(raw.success_threshold).as_deref().unwrap_or("1"),
        )?;
        let reminder = duration(
            "REMINDER_INTERVAL",
            set(raw.reminder_interval).as_deref().unwrap_or("0"),
        )?;
        let thresholds = Thresholds {
            failure: to_u32("FAILURE_THRESHOLD", failure)?,
            success: to_u32("SUCCESS_THRESHOLD", success)?,
            reminder: (!reminder.is_zero())
                .then(|| chrono::Duration::from_std(reminder).unwrap_or(chrono::Duration::MAX)),
        };
        let log_format = set(raw.log_format).unwrap_or_else(|| "text".to_owned());
        let log_format = log_format.parse::<LogFormat>().map_err(|_| {
            ConfigError::new(
                "LOG_FORMAT",
                format!("must be `text` or `json`, got {log_format:?}"),
            )
        })?;
        let admin_token = set(raw.admin_token)
            .map(|t| credential("ADMIN_TOKEN", t))
            .transpose()?;
        let listen_addr = listen_addr(raw.listen_addr)?;
        let database_url = DatabaseUrl::parse(
            set(raw.database_url)
                .as_deref()
                .unwrap_or("sqlite://ravan-watch.db"),
        )
        .map_err(|e| ConfigError::new("DATABASE_URL", e))?;
        let webhook_allowed_hosts = AllowedHosts::parse(
            set(raw.webhook_allowed_hosts)
                .as_deref()
                .unwrap_or(DEFAULT_ALLOWED_HOSTS),
        )
        .map_err(|e| ConfigError::new("WEBHOOK_ALLOWED_HOSTS", e))?;
        let outbox_retention = duration(
            "OUTBOX_RETENTION",
            set(raw.outbox_retention).as_deref().unwrap_or("7d"),
        )?;
        if outbox_retention < Duration::from_secs(60) {
            return Err(ConfigError::new("OUTBOX_RETENTION", "must be at least 1m"));
        }
        let history_retention = duration(
            "HISTORY_RETENTION",
            set(raw.history_retention).as_deref().unwrap_or("90d"),
        )?;
        if history_retention < Duration::from_secs(3600) {
            return Err(ConfigError::new("HISTORY_RETENTION", "must be at least 1h"));
        }
        let integrations = IntegrationSettings::parse(
            raw.check_integrations,
            raw.ravan_org_id,
            raw.token_expiry_warning,
        )?;
        let confirm_interval = duration(
            "CONFIRM_INTERVAL",
            set(raw.confirm_interval).as_deref().unwrap_or("5s"),
        )?;
        let timezone = set(raw.timezone)
            .as_deref()
            .unwrap_or("UTC")
            .parse()
            .map_err(|_| {
                ConfigError::new(
                    "TIMEZONE",
                    "must be an IANA time zone such as Europe/Berlin",
                )
            })?;
        let digest_schedule = set(raw.digest_schedule)
            .map(|p| PollSchedule::parse(&p).map_err(|e| ConfigError::new("DIGEST_SCHEDULE", e)))
            .transpose()?;
        Ok(Self {
            confirm_interval,
            timezone,
            digest_schedule,
            outbox_retention,
            history_retention,
            admin_token,
            listen_addr,
            database_url,
            webhook_allowed_hosts,
            base_url,
            auth,
            poll_timeout,
            poll_concurrency,
            poll_schedule,
            thresholds,
            watch_agent_ids,
            watch_all_agents,
            discovery_interval,
            check_org_linked,
            slack_webhook,
            discord_webhook,
            teams_webhook,
            signed_webhook,
            webhook_secret,
            log_format,
            integrations,
        })
    }

    /// The credentials, for the commands that talk to Ravan.
    pub fn require_auth(&self) -> Result<&RavanAuth, ConfigError> {
        self.auth.as_ref().ok_or_else(|| {
            ConfigError::new(
                "RAVAN_API_TOKEN",
                "not set: set RAVAN_API_TOKEN (Bearer token) or RAVAN_API_KEY (X-Api-Key)",
            )
        })
    }

    /// The management API's token, or an error when `serve` may not run with what is set: no
    /// token, or one under [`MIN_ADMIN_TOKEN_CHARS`], is only acceptable on a loopback
    /// address, where nobody but this machine can try tokens.
    pub fn require_admin_token(&self) -> Result<Option<&Secret>, ConfigError> {
        let loopback = is_loopback(self.listen_addr.ip());
        let make_one = "make one with `openssl rand -hex 24`";
        match &self.admin_token {
            Some(token) if loopback || token.expose().chars().count() >= MIN_ADMIN_TOKEN_CHARS => {
                Ok(Some(token))
            }
            Some(_) => Err(ConfigError::new(
                "ADMIN_TOKEN",
                format!(
                    "shorter than {MIN_ADMIN_TOKEN_CHARS} characters, too easy to guess with \
                     LISTEN_ADDR {} reachable from other machines: {make_one}",
                    self.listen_addr
                ),
            )),
            None if loopback => Ok(None),
            None => Err(ConfigError::new(
                "ADMIN_TOKEN",
                format!(
                    "not set: required unless LISTEN_ADDR is a loopback address (it is {}); \
                     {make_one}",
                    self.listen_addr
                ),
            )),
        }
    }

    /// The default webhooks, Slack first, then Discord, then Teams.
    pub fn default_webhooks(&self) -> Vec<Webhook> {
        self.slack_webhook
            .iter()
            .chain(self.discord_webhook.iter())
            .chain(self.teams_webhook.iter())
            .cloned()
            .chain((self.signed_webhook.iter()).map(|u| Webhook::new(Platform::Webhook, u.clone())))
            .collect()
    }
}

/// The shortest admin token accepted on an address other machines can reach: 16 characters
/// of `openssl rand -hex 24`'s 48 are 64 bits, beyond guessing over HTTP.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// 127.0.0.0/8 and `::1`, also written as an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`).
/// (`LISTEN_ADDR` is an ip:port, so a name such as `localhost` never reaches here.)
fn is_loopback(ip: std::net::IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// `LISTEN_ADDR` alone, from the process environment: for `healthcheck`, which must not fail
/// because some other setting is missing or wrong.
pub fn listen_addr_from_env() -> Result<SocketAddr, ConfigError> {
    match std::env::var("LISTEN_ADDR") {
        Ok(v) => listen_addr(Some(v)),
        Err(std::env::VarError::NotPresent) => listen_addr(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(ConfigError::new("LISTEN_ADDR", "is not valid UTF-8"))
        }
    }
}

fn listen_addr(value: Option<String>) -> Result<SocketAddr, ConfigError> {
    set(value)
        .as_deref()
        .unwrap_or("0.0.0.0:8080")
        .parse::<SocketAddr>()
        .map_err(|e| {
            ConfigError::new(
                "LISTEN_ADDR",
                format!("expected ip:port, e.g. 0.0.0.0:8080 ({e})"),
            )
        })
}

/// An empty value counts as unset, as it does in most env files (`SLACK_WEBHOOK_URL=`).
fn set(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A credential goes into an HTTP header, so it must be visible ASCII; the value is not echoed.
fn credential(var: &'static str, value: String) -> Result<Secret, ConfigError> {
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(Secret::new(value))
    } else {
        Err(ConfigError::new(
            var,
            "contains spaces or characters an HTTP header cannot carry",
        ))
    }
}

fn http_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError::new(var, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            var,
            "must be an http:// or https:// URL with a host",
        ));
    }
    Ok(url)
}

/// Neither URL check echoes the value: webhook URLs are secrets.
/// The default webhook of `platform`, from its setting's `value`.
fn webhook(platform: Platform, value: &str) -> Result<Webhook, ConfigError> {
    http_url(platform.setting(), value).map(|url| Webhook::new(platform, SecretUrl::new(url)))
}

/// `WEBHOOK_URL` and `WEBHOOK_SECRET`, both or neither: a URL without its secret cannot be
/// signed, and a secret without the URL is a setting that does nothing. The URL is the
/// operator's and trusted, like `SLACK_WEBHOOK_URL`; neither value is ever echoed.
fn signed_webhook(
    url: Option<String>,
    secret: Option<String>,
) -> Result<(Option<SecretUrl>, Option<SigningSecret>), ConfigError> {
    match (url, secret) {
        (Some(url), Some(secret)) => {
            let url = SecretUrl::new(http_url("WEBHOOK_URL", &url)?);
            let secret =
                SigningSecret::parse(&secret).map_err(|e| ConfigError::new("WEBHOOK_SECRET", e))?;
            Ok((Some(url), Some(secret)))
        }
        (Some(_), None) => Err(ConfigError::new(
            "WEBHOOK_SECRET",
            "not set: WEBHOOK_URL and WEBHOOK_SECRET go together (the webhook's bodies are \
             signed with the secret); make one with `openssl rand -hex 32`",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "WEBHOOK_URL",
            "not set: WEBHOOK_URL and WEBHOOK_SECRET go together (the secret signs the \
             webhook's bodies); set both or neither",
        )),
        (None, None) => Ok((None, None)),
    }
}

fn agent_ids(value: &str) -> Result<Vec<AgentId>, ConfigError> {
    let mut ids = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id: AgentId = part
            .parse()
            .map_err(|e| ConfigError::new("WATCH_AGENT_IDS", format!("{e}")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn duration(var: &'static str, value: &str) -> Result<Duration, ConfigError> {
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(value).map_err(|e| {
        ConfigError::new(
            var,
            format!("expected a duration like 30s, 5m or 4h, got {value:?} ({e})"),
        )
    })
}

/// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`), any case.
fn boolean(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            var,
            format!("expected true or false, got {value:?}"),
        )),
    }
}

fn positive(var: &'static str, value: &str) -> Result<usize, ConfigError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::new(
            var,
            format!("expected a whole number of at least 1, got {value:?}"),
        )),
    }
}

fn to_u32(var: &'static str, n: usize) -> Result<NonZeroU32, ConfigError> {
    u32::try_from(n)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| ConfigError::new(var, "too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    #[test]
    fn defaults_follow_the_contract() {
        let c = Config::from_pairs([]).unwrap();
        assert_eq!(c.base_url.as_str(), "https://api.ravan.ai/");
        assert_eq!(c.auth, None);
        assert_eq!(c.poll_timeout, Duration::from_secs(10));
        assert_eq!(c.poll_concurrency.get(), 16);
        assert_eq!(c.poll_schedule.as_str(), "0/30 * * * * *");
        assert_eq!(c.thresholds.failure.get(), 2);
        assert_eq!(c.thresholds.success.get(), 1);
        assert_eq!(c.thresholds.reminder, None);
        assert!(c.watch_agent_ids.is_empty());
        assert!(!c.watch_all_agents);
        assert_eq!(c.discovery_interval, Duration::from_secs(300));
        assert!(c.check_org_linked);
        assert_eq!(c.outbox_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(c.history_retention, Duration::from_secs(90 * 86_400));
        assert!(c.integrations.check);
        assert_eq!(c.integrations.org_id, None);
        assert_eq!(
            c.integrations.token_expiry_warning,
            Duration::from_secs(3 * 86_400)
        );
        assert_eq!(c.confirm_interval, Duration::from_secs(5));
        assert_eq!(c.timezone, chrono_tz::UTC);
        assert_eq!(c.digest_schedule, None);
        assert!(c.signed_webhook.is_none() && c.webhook_secret.is_none());
        assert!(c.default_webhooks().is_empty());
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.require_auth().is_err());
        assert_eq!(c.listen_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.database_url.expose(), "sqlite://ravan-watch.db");
        assert!(c.require_admin_token().is_err(), "0.0.0.0 needs a token");
        let slack: Url = "https://hooks.slack.com/services/T/B/x".parse().unwrap();
        assert!(c.webhook_allowed_hosts.allows(&slack));
        assert!(
            !c.webhook_allowed_hosts
                .allows(&"https://evil.example/x".parse().unwrap())
        );
    }

    #[test]
    fn values_are_parsed_into_types() {
        let c = Config::from_pairs([
            ("RAVAN_API_KEY", "k"),
            ("RAVAN_API_BASE_URL", "http://127.0.0.1:9000/prefix"),
            (
                "WATCH_AGENT_IDS",
                &format!(" {ID}, ,{} ", ID.to_uppercase()),
            ),
            ("POLL_SCHEDULE", "*/5 * * * * *"),
            ("POLL_TIMEOUT", "1500ms"),
            ("POLL_CONCURRENCY", "4"),
            ("FAILURE_THRESHOLD", "3"),
            ("SUCCESS_THRESHOLD", "2"),
            ("REMINDER_INTERVAL", "4h"),
            ("SLACK_WEBHOOK_URL", "http://127.0.0.1:1/slack"),
            ("LOG_FORMAT", "json"),
            ("WATCH_ALL_AGENTS", "TRUE"),
            ("DISCOVERY_INTERVAL", "90s"),
            ("CHECK_ORG_LINKED", "false"),
            ("CONFIRM_INTERVAL", "0"),
            ("TIMEZONE", "Europe/Berlin"),
            ("DIGEST_SCHEDULE", "0 0 9 * * MON-FRI"),
        ])
        .unwrap();
        assert!(c.confirm_interval.is_zero());
        assert_eq!(c.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(
            c.digest_schedule.as_ref().map(PollSchedule::as_str),
            Some("0 0 9 * * MON-FRI")
        );
        assert!(c.watch_all_agents);
        assert_eq!(c.discovery_interval, Duration::from_secs(90));
        assert!(!c.check_org_linked);
        assert_eq!(c.auth, Some(RavanAuth::ApiKey(Secret::new("k"))));
        assert_eq!(c.watch_agent_ids.len(), 1, "duplicates are merged");
        assert_eq!(c.poll_timeout, Duration::from_millis(1500));
        assert_eq!(c.thresholds.reminder, Some(chrono::Duration::hours(4)));
        assert_eq!(c.default_webhooks().len(), 1);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("RAVAN_API_BASE_URL", "not a url"),
            ("RAVAN_API_BASE_URL", "ftp://x"),
            ("SLACK_WEBHOOK_URL", "hooks.slack.com/x"),
            ("DISCORD_WEBHOOK_URL", "mailto:a@b"),
            (
                "TEAMS_WEBHOOK_URL",
                "prod-1.westus.logic.azure.com/workflows/x",
            ),
            ("WATCH_AGENT_IDS", "abc"),
            ("POLL_SCHEDULE", "* * * *"),
            ("POLL_SCHEDULE", "every minute"),
            ("POLL_TIMEOUT", "ten"),
            ("POLL_TIMEOUT", "0s"),
            ("POLL_CONCURRENCY", "0"),
            ("POLL_CONCURRENCY", "-1"),
            ("FAILURE_THRESHOLD", "0"),
            ("SUCCESS_THRESHOLD", "x"),
            ("REMINDER_INTERVAL", "4 hours later"),
            ("LOG_FORMAT", "xml"),
            ("LISTEN_ADDR", "localhost"),
            ("DATABASE_URL", "mysql://x"),
            ("DATABASE_URL", "postgres://user:pw@/db"),
            ("WEBHOOK_ALLOWED_HOSTS", "https://hooks.slack.com/x"),
            ("ADMIN_TOKEN", "has space"),
            ("WATCH_ALL_AGENTS", "maybe"),
            ("CONFIRM_INTERVAL", "soon"),
            ("TIMEZONE", "Mars/Olympus"),
            ("DIGEST_SCHEDULE", "0 9 * * MON"),
            ("CHECK_ORG_LINKED", "2"),
            ("DISCOVERY_INTERVAL", "0"),
            ("DISCOVERY_INTERVAL", "soon"),
            ("OUTBOX_RETENTION", "forever"),
            ("OUTBOX_RETENTION", "0"),
            ("HISTORY_RETENTION", "always"),
            ("HISTORY_RETENTION", "59m"),
            ("CHECK_INTEGRATIONS", "sometimes"),
            ("RAVAN_ORG_ID", "not an id!"),
            ("TOKEN_EXPIRY_WARNING", "three days"),
        ];
        for (var, value) in cases {
            let err = Config::from_pairs([(*var, *value)]).unwrap_err();
            assert_eq!(err.var, *var, "{var}={value}: {err}");
            assert!(err.to_string().starts_with(var));
        }
    }

    #[test]
    fn both_credentials_is_an_error_and_secrets_are_not_echoed() {
        let err =
            Config::from_pairs([("RAVAN_API_TOKEN", "t"), ("RAVAN_API_KEY", "k")]).unwrap_err();
        assert_eq!(err.var, "RAVAN_API_KEY");
        let err =
            Config::from_pairs([("SLACK_WEBHOOK_URL", "https://x y/SECRETTOKEN")]).unwrap_err();
        assert!(!err.to_string().contains("SECRETTOKEN"));
    }

    /// Both or neither, each error naming both, and neither value ever printed.
    #[test]
    fn the_signed_webhook_needs_its_url_and_secret_together() {
        const SECRET: &str = "whsec-hunter2-0123456789";
        const URL: &str = "https://receiver.example/hooks/PATHTOKEN";
        let c = Config::from_pairs([("WEBHOOK_URL", URL), ("WEBHOOK_SECRET", SECRET)]).unwrap();
        assert_eq!(
            c.signed_webhook.as_ref().map(|u| u.expose().as_str()),
            Some(URL)
        );
        assert_eq!(
            c.webhook_secret,
            Some(SigningSecret::parse(SECRET).unwrap())
        );
        let shown = format!("{c:?}");
        assert!(
            shown.contains("https://receiver.example/hooks/***"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("PATHTOKEN"), "{shown}");
        let defaults = c.default_webhooks();
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].platform, Platform::Webhook);
        assert_eq!(defaults[0].url.expose().as_str(), URL);
        let none = Config::from_pairs([("WEBHOOK_URL", ""), ("WEBHOOK_SECRET", " ")]).unwrap();
        assert!(none.signed_webhook.is_none() && none.webhook_secret.is_none());
        for (pairs, var) in [
            (("WEBHOOK_URL", URL), "WEBHOOK_SECRET"),
            (("WEBHOOK_SECRET", SECRET), "WEBHOOK_URL"),
        ] {
            let err = Config::from_pairs([pairs]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            let line = err.to_string();
            assert!(line.starts_with(var), "{line}");
            assert!(line.contains("WEBHOOK_URL and WEBHOOK_SECRET"), "{line}");
            assert!(
                !line.contains("hunter2") && !line.contains("PATHTOKEN"),
                "{line}"
            );
        }
        for (url, secret, var) in [
            ("receiver.example/hooks/PATHTOKEN", SECRET, "WEBHOOK_URL"),
            ("ftp://receiver.example/PATHTOKEN", SECRET, "WEBHOOK_URL"),
            (URL, "hunter2-shortx", "WEBHOOK_SECRET"),
            (URL, "hunter2 with a space 0123", "WEBHOOK_SECRET"),
        ] {
            let err =
                Config::from_pairs([("WEBHOOK_URL", url), ("WEBHOOK_SECRET", secret)]).unwrap_err();
            assert_eq!(err.var, var, "{url} {secret}: {err}");
            let line = err.to_string();
            assert!(
                !line.contains("hunter2") && !line.contains("PATHTOKEN"),
                "{line}"
            );
        }
    }

    #[test]
    fn admin_token_may_be_omitted_only_on_loopback() {
        for addr in ["127.0.0.1:8080", "[::1]:9000"] {
            let c = Config::from_pairs([("LISTEN_ADDR", addr)]).unwrap();
            assert_eq!(c.require_admin_token().unwrap(), None, "{addr}");
        }
        let c = Config::from_pairs([("ADMIN_TOKEN", "adm-T0KEN-4f2a9c01")]).unwrap();
        assert_eq!(
            c.require_admin_token().unwrap(),
            Some(&Secret::new("adm-T0KEN-4f2a9c01"))
        );
        let err = Config::from_pairs([("LISTEN_ADDR", "10.0.0.5:8080")])
            .unwrap()
            .require_admin_token()
            .unwrap_err();
        assert_eq!(err.var, "ADMIN_TOKEN");
    }

    /// A short token is a guessable one: refused on an address others can reach, allowed on
    /// loopback, where only this machine can try it.
    #[test]
    fn a_short_admin_token_is_refused_unless_the_listener_is_loopback() {
        for addr in [
            "0.0.0.0:8080",
            "10.0.0.5:8080",
            "[::]:8080",
            "[2001:db8::1]:80",
        ] {
            for token in ["adm", "fifteen-chars-x"] {
                let c =
                    Config::from_pairs([("LISTEN_ADDR", addr), ("ADMIN_TOKEN", token)]).unwrap();
                let err = c.require_admin_token().unwrap_err();
                assert_eq!(err.var, "ADMIN_TOKEN", "{addr} {token}");
                let line = err.to_string();
                assert!(line.contains("16 characters"), "{line}");
                assert!(line.contains("openssl rand -hex 24"), "{line}");
                assert!(line.contains(addr), "{line}");
                assert!(!line.contains(token), "the token is not echoed: {line}");
                assert_eq!(line.lines().count(), 1, "{line}");
            }
            let c =
                Config::from_pairs([("LISTEN_ADDR", addr), ("ADMIN_TOKEN", "sixteen-chars-xx")])
                    .unwrap();
            assert!(
                c.require_admin_token().is_ok(),
                "{addr}: 16 characters are enough"
            );
        }
        for addr in [
            "127.0.0.1:8080",
            "127.9.8.7:1",
            "[::1]:9000",
            "[::ffff:127.0.0.1]:80",
        ] {
            let c = Config::from_pairs([("LISTEN_ADDR", addr), ("ADMIN_TOKEN", "adm")]).unwrap();
            assert_eq!(
                c.require_admin_token().unwrap(),
                Some(&Secret::new("adm")),
                "{addr}: loopback allows a short token"
            );
        }
    }

    #[test]
    fn allowed_hosts_match_host_and_optional_port() {
        let hosts = AllowedHosts::parse("Hooks.Slack.com, 127.0.0.1:9000").unwrap();
        let ok = |u: &str| hosts.allows(&u.parse().unwrap());
        assert!(ok("https://hooks.slack.com/services/x"));
        assert!(ok("http://127.0.0.1:9000/hook"));
        assert!(!ok("http://127.0.0.1:9001/hook"), "another port");
        assert!(!ok("https://hooks.slack.com.evil.example/x"));
        assert!(AllowedHosts::parse("a b").is_err());
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = Config::from_pairs([("SLACK_WEBHOOK_URL", ""), ("POLL_CONCURRENCY", " ")]).unwrap();
        assert!(c.slack_webhook.is_none());
        assert_eq!(c.poll_concurrency.get(), 16);
    }
}
