//! Restarts, with the real binary as a child process killed by SIGKILL: nothing alerted twice,
//! nothing pending lost.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::bin::BIN;
use common::{AGENT_A, AGENT_B, FakeRavan, TestSettings, wait_until};
use ravan_watch::store::{OutboxStatus, Store};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const LIMIT: Duration = Duration::from_secs(30);

struct Service {
    dir: tempfile::TempDir,
    database: String,
    settings: TestSettings,
}

impl Service {
    fn new(ravan: &FakeRavan, slack: &MockServer) -> Self {
        let (dir, database) = common::temp_database();
        let settings = TestSettings::new(&ravan.uri())
            .agents(AGENT_A)
            .every_second()
            .failure(1)
            .slack(&format!("{}/services/T0/B0/secret", slack.uri()))
            .database(&database)
            .any_port();
        Self {
            dir,
            database,
            settings,
        }
    }

    /// Outbox entries the service has marked delivered (read from its database).
    async fn delivered(&self) -> usize {
        let Ok(store) = Store::open(&self.database).await else {
            return 0;
        };
        let entries = store.outbox().await.unwrap_or_default();
        entries
            .iter()
            .filter(|e| e.status == OutboxStatus::Delivered)
            .count()
    }

    fn start(&self) -> Child {
        self.start_with_addr().0
    }

    /// Starts the service and reads the API's address from its start-up log line.
    fn start_with_addr(&self) -> (Child, String) {
        let mut child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .envs(self.settings.pairs())
            .env("ADMIN_TOKEN", "admin-secret")
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep reading so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("addr=").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
        });
        let addr = rx
            .recv_timeout(LIMIT)
            .expect("the start-up line with the address");
        (child, addr)
    }
}

fn kill9(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

async fn slack_requests(slack: &MockServer) -> usize {
    slack.received_requests().await.unwrap_or_default().len()
}

async fn mount_slack(slack: &MockServer, status: u16, body: &str) {
    slack.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(slack)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_alerted_before_sigkill_is_not_alerted_again() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "errored", Some("revoked"));
    let slack = MockServer::start().await;
    mount_slack(&slack, 200, "ok").await;
    let service = Service::new(&ravan, &slack);

    let child = service.start();
    wait_until(LIMIT, "the down alert", || async {
        slack_requests(&slack).await == 1
    })
    .await;
    // "Alerted" means the service recorded the delivery: a kill between the webhook's answer and
    // that record is the one window where at-least-once delivery repeats a message.
    wait_until(LIMIT, "the delivery to be recorded", || async {
        service.delivered().await == 1
    })
    .await;
    kill9(child);

    let polls = ravan.polls().await;
    let child = service.start();
    wait_until(LIMIT, "three cycles after the restart", || async {
        ravan.polls().await >= polls + 3
    })
    .await;
    assert_eq!(
        slack_requests(&slack).await,
        1,
        "no second down alert after the restart"
    );

    // The restarted service still tracks the outage: the recovery comes, once.
    ravan.set_status(AGENT_A, "active", None);
    wait_until(LIMIT, "the recovery", || async {
        slack_requests(&slack).await == 2
    })
    .await;
    let body =
        String::from_utf8_lossy(&slack.received_requests().await.unwrap()[1].body).to_lowercase();
    assert!(body.contains("recovered"), "{body}");
    kill9(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_pending_at_sigkill_is_delivered_after_restart_once() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "errored", Some("revoked"));
    let slack = MockServer::start().await;
    mount_slack(&slack, 503, "down for maintenance").await;
    let service = Service::new(&ravan, &slack);

    let child = service.start();
    wait_until(LIMIT, "a failed first delivery", || async {
        slack_requests(&slack).await >= 1
    })
    .await;
    kill9(child);

    mount_slack(&slack, 200, "ok").await; // also clears the recorded requests
    let polls = ravan.polls().await;
    let child = service.start();
    wait_until(LIMIT, "the pending alert", || async {
        slack_requests(&slack).await >= 1
    })
    .await;
    wait_until(LIMIT, "three more cycles", || async {
        ravan.polls().await >= polls + 3
    })
    .await;
    let requests = slack.received_requests().await.unwrap();
    assert_eq!(
        requests.len(),
        1,
        "delivered once, and no new alert for the same outage"
    );
    let body = String::from_utf8_lossy(&requests[0].body);
    assert!(body.contains(AGENT_A) && body.contains("revoked"), "{body}");
    kill9(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_added_over_the_api_survive_sigkill() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    ravan.set_status(AGENT_B, "active", None);
    let slack = MockServer::start().await;
    mount_slack(&slack, 200, "ok").await;
    let service = Service::new(&ravan, &slack);
    let http = reqwest::Client::new();

    let (child, addr) = service.start_with_addr();
    let created = http
        .post(format!("http://{addr}/agents"))
        .bearer_auth("admin-secret")
        .json(&serde_json::json!({"agent_id": AGENT_B, "name": "Support bot", "muted": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    kill9(child);

    let (child, addr) = service.start_with_addr();
    let list: serde_json::Value = common::json_of(
        http.get(format!("http://{addr}/agents"))
            .bearer_auth("admin-secret"),
    )
    .await;
    let agents = list["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{list}");
    let b = agents
        .iter()
        .find(|a| a["agent_id"] == AGENT_B)
        .expect("B survived");
    assert_eq!(b["name"], "Support bot");
    wait_until(LIMIT, "B polled after the restart", || async {
        ravan.polls_of(AGENT_B).await >= 1
    })
    .await;
    kill9(child);
}
