//! Watch-all and `check --all` through the real binary, against a fake Ravan whose agent
//! listing pages, fails and lies: what is watched, what is removed, what is logged, and that
//! the secret each listed agent carries goes nowhere.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::bin::{BIN, run_bin, wait_output};
use common::ids::agent_id;
use common::{
    AGENT_A, FakeRavan, LISTED_SECRET, Shape, TestSettings, bodies, free_port, listed_agent,
    wait_until, webhook_sink,
};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

const LIMIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "adm-watch-all-T0KEN";

/// Settings that watch every agent `ravan` lists, listing them every second.
fn watching_all(ravan: &FakeRavan) -> TestSettings {
    TestSettings::new(&ravan.uri())
        .set("WATCH_ALL_AGENTS", "true")
        .set("DISCOVERY_INTERVAL", "1s")
}

/// `serve` as a child process, its API on a port of its own.
struct Served {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Served {
    /// `serve` with `settings`, polling every second, its API on a free port.
    fn start(settings: TestSettings) -> Self {
        let (dir, database) = common::temp_database();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let settings = settings
            .listen(&listen)
            .admin_token(TOKEN)
            .database(&database)
            .every_second()
            .set("RUST_LOG", "info");
        let child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .envs(settings.pairs())
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://{listen}"),
            dir,
            http: reqwest::Client::new(),
        }
    }

    async fn agents(&self) -> Vec<Value> {
        let answer = self
            .http
            .get(format!("{}/agents", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await;
        match answer {
            Ok(r) => r.json::<Value>().await.unwrap()["agents"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            // Not listening yet.
            Err(_) => Vec::new(),
        }
    }

    async fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .agents()
            .await
            .iter()
            .map(|a| a["agent_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    async fn wait_ids(&self, what: &str, check: impl Fn(&[String]) -> bool) {
        wait_until(LIMIT, what, || async { check(&self.ids().await) }).await;
    }

    /// SIGTERM, then its stderr; and every byte of its database.
    async fn stop(self) -> (String, Vec<u8>) {
        common::signal(&self.child, libc::SIGTERM);
        let child = self.child;
        let out: Output = wait_output(child).await;
        assert_eq!(out.status.code(), Some(0));
        let mut db = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            db.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
        }
        (String::from_utf8_lossy(&out.stderr).into_owned(), db)
    }
}

/// Waits until the fake has answered `rounds` more listings of `pages` pages each.
async fn more_listings(ravan: &FakeRavan, pages: usize, rounds: usize) {
    let target = ravan.requests("listing").await + pages * rounds;
    wait_until(LIMIT, "more listings", || async {
        ravan.requests("listing").await >= target
    })
    .await;
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_all_follows_complete_listings_only_and_never_keeps_the_secret() {
    let ravan = FakeRavan::start().await;
    let listed: Vec<Value> = (0..110)
        .map(|i| listed_agent(Shape::Snake, &agent_id(i), &format!("Agent {i}"), true))
        .collect();
    for i in 0..110 {
        ravan.set_status(&agent_id(i), "active", None);
    }
    ravan.set_status(AGENT_A, "active", None);
    ravan.set_listing(Shape::Snake, listed.clone());
    let slack = webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let hook = format!("{}/services/T0/B0/x", slack.uri());
    let served = Served::start(
        watching_all(&ravan)
            .agents(AGENT_A)
            .slack(&hook)
            .concurrency(32),
    );
    served
        .wait_ids("every listed agent and the env one", |ids| ids.len() == 111)
        .await;
    let agents = served.agents().await;
    let of = |wanted: &str| {
        agents
            .iter()
            .find(|a| a["agent_id"] == wanted)
            .cloned()
            .unwrap()
    };
    assert_eq!(of(AGENT_A)["source"], "env");
    assert_eq!(of(&agent_id(7))["source"], "discovered");
    assert_eq!(
        of(&agent_id(7))["name"],
        "Agent 7",
        "named from the listing"
    );

    // From here the listing lacks agents 0..5 (105 agents, still two pages): any listing
    // wrongly taken as complete twice would unwatch them. The second page fails first.
    let bad: Vec<(&str, ResponseTemplate)> = vec![
        ("a 500 on the second page", ResponseTemplate::new(500)),
        (
            "a repeated page",
            ResponseTemplate::new(200).set_body_json(json!({
                "data": listed[5..105].to_vec(), "meta": {"total": 105}
            })),
        ),
    ];
    for (what, page) in bad {
        ravan.set_listing_page(100, Some(page));
        ravan.set_listing(Shape::Snake, listed[5..].to_vec());
        more_listings(&ravan, 2, 3).await;
        assert_eq!(served.ids().await.len(), 111, "after {what}");
    }
    ravan.set_listing_page(100, None);
    for (what, answer) in [
        (
            "not JSON",
            ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
        ),
        (
            "no meta.total",
            ResponseTemplate::new(200).set_body_json(json!({"data": listed[5..].to_vec()})),
        ),
        (
            "an absurd meta.total",
            ResponseTemplate::new(200).set_body_json(json!({
                "data": listed[5..].to_vec(), "meta": {"total": 1_000_000_000_000u64}
            })),
        ),
    ] {
        ravan.set_listing_all(Some(answer));
        more_listings(&ravan, 1, 3).await;
        assert_eq!(served.ids().await.len(), 111, "after {what}");
    }
    ravan.set_listing_all(None);

    // Complete listings again: agents 0..5 are unwatched after two of them; the env agent
    // (never listed) stays.
    served
        .wait_ids("agents no longer listed to be unwatched", |ids| {
            ids.len() == 106 && !ids.contains(&agent_id(0)) && ids.contains(&AGENT_A.to_owned())
        })
        .await;

    // Removed over the API: stays unwatched while it is listed, until it is POSTed again.
    let gone = agent_id(10);
    let deleted = served
        .http
        .delete(format!("{}/agents/{gone}", served.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    more_listings(&ravan, 2, 3).await;
    assert!(!served.ids().await.contains(&gone));
    let posted = served
        .http
        .post(format!("{}/agents", served.base))
        .bearer_auth(TOKEN)
        .json(&json!({"agent_id": gone}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    more_listings(&ravan, 2, 2).await;
    let back = served.agents().await;
    let back = back
        .iter()
        .find(|a| a["agent_id"] == gone.as_str())
        .unwrap();
    assert_eq!(back["source"], "api");
    assert_eq!(back["name"], "Agent 10", "the listing still names it");

    let answers = served
        .http
        .get(format!("{}/agents", served.base))
        .bearer_auth(TOKEN);
    let answers = answers.send().await.unwrap().text().await.unwrap();
    assert!(
        !answers.contains(LISTED_SECRET),
        "the API never answers the secret"
    );
    let slack_bodies = bodies(&slack).await;
    assert!(
        slack_bodies.is_empty(),
        "adding and removing agents alerts nothing: {slack_bodies:?}"
    );

    let (logs, db) = served.stop().await;
    assert!(!logs.contains(LISTED_SECRET), "the secret is never logged");
    assert!(!contains(&db, LISTED_SECRET), "the secret is never stored");
    for (what, said) in [
        ("the failed page", "offset 100 failed"),
        ("the repeated page", "repeated across pages"),
        ("not JSON", "does not parse"),
        ("no total", "no `meta.total`"),
        ("the absurd total", "not believable"),
    ] {
        assert!(
            logs.lines()
                .any(|l| l.contains("agent discovery changed nothing") && l.contains(said)),
            "no log line for {what} ({said:?}):\n{logs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relisted_agent_starts_afresh_without_a_stale_alert() {
    let ravan = FakeRavan::start().await;
    let x = agent_id(1);
    ravan.set_status(&x, "errored", Some("token revoked"));
    ravan.set_listing(
        Shape::Camel,
        vec![listed_agent(Shape::Camel, &x, "Front desk", true)],
    );
    let slack = webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let hook = format!("{}/services/T0/B0/x", slack.uri());
    let served = Served::start(watching_all(&ravan).failure(1).slack(&hook));
    wait_until(LIMIT, "the down alert", || async {
        !bodies(&slack).await.is_empty()
    })
    .await;
    assert!(bodies(&slack).await[0].to_string().contains("Front desk"));

    // Unlisted (inactive agents count as unlisted), then listed again, healthy.
    ravan.set_listing(
        Shape::Camel,
        vec![listed_agent(Shape::Camel, &x, "Front desk", false)],
    );
    served
        .wait_ids("the agent to be unwatched", |ids| ids.is_empty())
        .await;
    ravan.set_status(&x, "active", None);
    ravan.set_listing(
        Shape::Camel,
        vec![listed_agent(Shape::Camel, &x, "Front desk", true)],
    );
    wait_until(LIMIT, "the agent watched again and polled", || async {
        served
            .agents()
            .await
            .first()
            .is_some_and(|a| a["state"]["healthy"] == true)
    })
    .await;
    let polls = ravan.polls_of(&x).await;
    wait_until(LIMIT, "two more polls", || async {
        ravan.polls_of(&x).await >= polls + 2
    })
    .await;
    let sent = bodies(&slack).await;
    assert_eq!(
        sent.len(),
        1,
        "no recovery of the old agent's outage: {sent:?}"
    );
    let (logs, _) = served.stop().await;
    assert!(!logs.contains(LISTED_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_all_audits_every_listed_agent_with_its_connection() {
    let ravan = FakeRavan::start().await;
    let (a, b, c) = (agent_id(1), agent_id(2), agent_id(3));
    ravan.set_status(&a, "active", None);
    ravan.set_org_linked(&b, "active", "Acme team calendar");
    ravan.set_org_linked(&c, "errored", "Acme team calendar");
    ravan.set_listing(
        Shape::Camel,
        vec![
            listed_agent(Shape::Camel, &a, "Sales", true),
            listed_agent(Shape::Camel, &b, "Support", true),
            listed_agent(Shape::Camel, &c, "Old bot", false),
        ],
    );
    let base = ravan.uri();
    let env = [
        ("RAVAN_API_KEY", "key-SECRET"),
        ("RAVAN_API_BASE_URL", base.as_str()),
    ];
    let out = run_bin(&["check", "--all"], &env).await;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "one unhealthy agent: {table}");
    let line = |agent: &str| {
        table
            .lines()
            .find(|l| l.starts_with(agent))
            .unwrap_or_else(|| panic!("{agent} missing from\n{table}"))
            .to_owned()
    };
    assert!(table.lines().next().unwrap().contains("CONNECTION"));
    assert!(line(&a).contains("Sales") && line(&a).contains("private"));
    assert!(line(&b).contains("org-linked") && line(&b).contains("Acme team calendar"));
    assert!(line(&c).contains("Old bot (inactive)") && line(&c).contains("errored"));
    let everything = format!("{table}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!everything.contains(LISTED_SECRET) && !everything.contains("key-SECRET"));

    let out = run_bin(&["check", "--all", "--json"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let connections: Vec<&str> = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["connection"].as_str().unwrap())
        .collect();
    assert_eq!(connections, ["private", "org_linked", "org_linked"]);
    assert_eq!(v["agents"][1]["name"], "Support");

    let integrations: Vec<(&str, bool)> = v["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["healthy"] == true))
        .collect();
    assert_eq!(integrations, [("calcom_org", true), ("ghl", true)], "{v}");
    assert!(
        line("calcom_org").contains("active"),
        "beside the agents: {table}"
    );
    assert!(line("ghl").contains("connected"), "{table}");

    ravan.set_org_linked(&c, "active", "Acme team calendar");
    assert_eq!(
        run_bin(&["check", "--all"], &env).await.status.code(),
        Some(0)
    );

    // GoHighLevel's token lapsed: unhealthy, so 1; never set up is no trouble; unanswered, 2.
    let ghl = |body| ResponseTemplate::new(200).set_body_json(body);
    for (answer, code) in [
        (ghl(common::ravan::ghl_body(true, false)), 1),
        (ghl(common::ravan::ghl_body(false, false)), 0),
        (ResponseTemplate::new(502), 2),
    ] {
        ravan.set_ghl(answer);
        let out = run_bin(&["check", "--all"], &env).await;
        let table = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(code), "{table}");
    }

    ravan.set_listing_all(Some(ResponseTemplate::new(200).set_body_string("not json")));
    let out = run_bin(&["check", "--all"], &env).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot list the agents"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let out = run_bin(&["check", "--all", &a], &env).await;
    assert_eq!(out.status.code(), Some(2), "--all and ids do not mix");
    let out = run_bin(&["check"], &env).await;
    assert_eq!(out.status.code(), Some(2), "ids or --all are needed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrunning_cycles_are_logged_once_counted_and_shown() {
    let ravan = FakeRavan::start().await;
    for i in 0..2 {
        ravan.set_answer(
            &agent_id(i),
            ResponseTemplate::new(200)
                .set_body_json(common::status_body("active", None))
                .set_delay(Duration::from_millis(700)),
        );
    }
    let ids = format!("{},{}", agent_id(0), agent_id(1));
    let served = Served::start(TestSettings::new(&ravan.uri()).agents(&ids).concurrency(1));
    let metric = || async {
        let text = reqwest::get(format!("{}/metrics", served.base))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with("ravan_watch_cycle_overruns_total"))?
            .rsplit(' ')
            .next()?
            .parse::<f64>()
            .ok()
    };
    wait_until(LIMIT, "three overruns", || async {
        metric().await.is_some_and(|n| n >= 3.0)
    })
    .await;
    let page = common::text_of(
        served
            .http
            .get(format!("{}/", served.base))
            .basic_auth("admin", Some(TOKEN)),
    )
    .await;
    assert!(page.contains("Cycle overran"), "{page}");
    assert!(page.contains("POLL_CONCURRENCY"), "{page}");
    let (logs, _) = served.stop().await;
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("longer than")).collect();
    assert_eq!(lines.len(), 1, "a run of overruns is logged once: {logs}");
    assert!(lines[0].contains("POLL_CONCURRENCY"), "{}", lines[0]);
}
