//! Shared test fakes: a scriptable Ravan API and waiting with a deadline instead of sleeping.
#![allow(dead_code)]

pub mod limits;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const AGENT_A: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
pub const AGENT_B: &str = "9b2c7a10-1d2e-4f3a-8b4c-5d6e7f809102";

pub fn status_body(status: &str, error: Option<&str>) -> serde_json::Value {
    json!({
        "success": true,
        "message": "Agent connection status retrieved",
        "data": {
            "connected": status == "active",
            "status": status,
            "accounts": [{
                "id": "acc-1",
                "account_name": "Sales calendar",
                "status": status,
                "error": error.unwrap_or(""),
            }],
        }
    })
}

/// A Ravan API whose answer per agent can be changed while the service runs.
#[derive(Clone)]
pub struct FakeRavan {
    pub server: Arc<MockServer>,
    answers: Arc<Mutex<HashMap<String, ResponseTemplate>>>,
    fallback: Arc<Mutex<Option<ResponseTemplate>>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

struct Answers {
    answers: Arc<Mutex<HashMap<String, ResponseTemplate>>>,
    fallback: Arc<Mutex<Option<ResponseTemplate>>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Respond for Answers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        if let Some(all) = self.fallback.lock().unwrap().clone() {
            return all;
        }
        let id = request
            .url
            .path_segments()
            .and_then(|s| s.rev().nth(1))
            .unwrap_or_default()
            .to_owned();
        self.answers
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or_else(|| {
                ResponseTemplate::new(404).set_body_json(
                    json!({"success": false, "message": "Agent not found", "code": "NOT_FOUND"}),
                )
            })
    }
}

impl FakeRavan {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let answers = Arc::new(Mutex::new(HashMap::new()));
        let fallback = Arc::new(Mutex::new(None));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/v1/calcom/agents/[^/]+/status$"))
            .respond_with(Answers {
                answers: answers.clone(),
                fallback: fallback.clone(),
                arrivals: arrivals.clone(),
            })
            .mount(&server)
            .await;
        Self {
            server: Arc::new(server),
            answers,
            fallback,
            arrivals,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Every agent answers `status` (with the account error `error`).
    pub fn set_status(&self, agent: &str, status: &str, error: Option<&str>) {
        self.answers.lock().unwrap().insert(
            agent.to_owned(),
            ResponseTemplate::new(200).set_body_json(status_body(status, error)),
        );
    }

    /// Any answer for one agent.
    pub fn set_answer(&self, agent: &str, answer: ResponseTemplate) {
        self.answers
            .lock()
            .unwrap()
            .insert(agent.to_owned(), answer);
    }

    /// When each status request arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Overrides every agent's answer (e.g. a stretch of 500s); `None` goes back to per-agent.
    pub fn answer_all(&self, answer: Option<ResponseTemplate>) {
        *self.fallback.lock().unwrap() = answer;
    }

    /// Status polls of one agent received so far.
    pub async fn polls_of(&self, agent: &str) -> usize {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.url.path().contains(agent))
            .count()
    }

    /// Status polls received so far.
    pub async fn polls(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .len()
    }
}

/// A webhook fake that gives every POST `answer`.
pub async fn webhook_sink(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

/// Sends `request` and reads its answer as JSON; panics if either fails.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Sends `signal` (`libc::SIGTERM`, `libc::SIGINT` …) to `child`.
pub fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill has no memory preconditions; a stale pid only makes it fail.
    let sent = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(sent, 0, "signal {signal} to {}", child.id());
}

/// Requests a mock server received, as JSON bodies.
pub async fn bodies(server: &MockServer) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null))
        .collect()
}

/// Polls `check` every 20 ms until it is true or `limit` passes; panics with `what` on timeout.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The service's binary, as operators run it.
pub const BIN: &str = env!("CARGO_BIN_EXE_ravan-watch");

/// Runs the binary with only `env` set, in an empty folder of its own (no `.env` is read).
pub async fn run_bin(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    drop(dir);
    out
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
