//! A test service's settings, written once: the environment `serve` reads, as the pairs
//! [`Config::from_pairs`] takes for a service in the test's process, or as a child process's
//! environment. A benchmark can include this file alone
//! (`#[path = "../tests/common/settings.rs"] mod settings;`).
#![allow(dead_code)]

use ravan_watch::config::Config;

/// The schedule of a service that must not poll during a test: New Year's Day only.
pub const NEVER: &str = "0 0 0 1 1 *";
/// The schedule of a service that polls every second.
pub const EVERY_SECOND: &str = "* * * * * *";

/// The settings of a service under test, built variable by variable:
/// `TestSettings::new(&ravan.uri()).agents(AGENT_A).every_second().slack(&hook).config()`.
/// Only what a test sets is set; everything else is the service's default. Setting a variable
/// twice keeps the last value.
#[derive(Clone, Debug)]
pub struct TestSettings {
    pairs: Vec<(String, String)>,
}

impl TestSettings {
    /// Polling the Ravan API at `ravan_url` with the token `t`.
    pub fn new(ravan_url: &str) -> Self {
        Self { pairs: Vec::new() }
            .set("RAVAN_API_TOKEN", "t")
            .set("RAVAN_API_BASE_URL", ravan_url)
    }

    /// Any variable, by its name in the contract.
    pub fn set(mut self, var: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        match self.pairs.iter_mut().find(|(k, _)| k == var) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((var.to_owned(), value)),
        }
        self
    }

    /// Each of `pairs`, as [`Self::set`].
    pub fn with(self, pairs: &[(&str, &str)]) -> Self {
        pairs.iter().fold(self, |s, (k, v)| s.set(k, *v))
    }

    /// `RAVAN_API_TOKEN`.
    pub fn token(self, token: &str) -> Self {
        self.set("RAVAN_API_TOKEN", token)
    }

    /// `DATABASE_URL`.
    pub fn database(self, url: &str) -> Self {
        self.set("DATABASE_URL", url)
    }

    /// `LISTEN_ADDR`.
    pub fn listen(self, addr: &str) -> Self {
        self.set("LISTEN_ADDR", addr)
    }

    /// `LISTEN_ADDR` on a free loopback port the service picks (`127.0.0.1:0`).
    pub fn any_port(self) -> Self {
        self.listen("127.0.0.1:0")
    }

    /// A service with its own database at `database`, and its management API on a free
    /// loopback port behind `admin_token`.
    pub fn api(self, database: &str, admin_token: &str) -> Self {
        self.database(database).any_port().admin_token(admin_token)
    }

    /// `ADMIN_TOKEN`.
    pub fn admin_token(self, token: &str) -> Self {
        self.set("ADMIN_TOKEN", token)
    }

    /// `WATCH_AGENT_IDS`, comma-separated.
    pub fn agents(self, ids: &str) -> Self {
        self.set("WATCH_AGENT_IDS", ids)
    }

    /// `POLL_SCHEDULE`.
    pub fn schedule(self, schedule: &str) -> Self {
        self.set("POLL_SCHEDULE", schedule)
    }

    /// Polling every second.
    pub fn every_second(self) -> Self {
        self.schedule(EVERY_SECOND)
    }

    /// No poll cycle during the test ([`NEVER`]).
    pub fn never_polling(self) -> Self {
        self.schedule(NEVER)
    }

    /// `POLL_TIMEOUT` (`2s` …).
    pub fn poll_timeout(self, timeout: &str) -> Self {
        self.set("POLL_TIMEOUT", timeout)
    }

    /// `POLL_CONCURRENCY`.
    pub fn concurrency(self, n: usize) -> Self {
        self.set("POLL_CONCURRENCY", n.to_string())
    }

    /// `FAILURE_THRESHOLD`.
    pub fn failure(self, n: u32) -> Self {
        self.set("FAILURE_THRESHOLD", n.to_string())
    }

    /// `SUCCESS_THRESHOLD`.
    pub fn success(self, n: u32) -> Self {
        self.set("SUCCESS_THRESHOLD", n.to_string())
    }

    /// `SLACK_WEBHOOK_URL`.
    pub fn slack(self, url: &str) -> Self {
        self.set("SLACK_WEBHOOK_URL", url)
    }

    /// `DISCORD_WEBHOOK_URL`.
    pub fn discord(self, url: &str) -> Self {
        self.set("DISCORD_WEBHOOK_URL", url)
    }

    /// The value of `var`, if set.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_str())
    }

    /// The pairs, for [`Config::from_pairs`], `Command::envs` or `bin_command`.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The pairs, owned.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }

    /// The service's configuration; panics if a setting is refused.
    pub fn config(&self) -> Config {
        Config::from_pairs(self.pairs())
            .unwrap_or_else(|e| panic!("test settings {:?}: {e}", self.pairs))
    }

    /// The app built from these settings (not started).
    /// The app built, its lease claimed as a lone process's first claim does: cycles and
    /// deliveries run by hand act as the leader.
    pub async fn build(&self) -> ravan_watch::app::App {
        let app = ravan_watch::app::App::build(self.config()).await.unwrap();
        app.leadership().claim().await;
        app
    }

    /// The app built and started: scheduler, delivery and HTTP API.
    pub async fn start(&self) -> ravan_watch::app::Service {
        self.build().await.start().await.unwrap()
    }
}
