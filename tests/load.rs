//! The management API under load while poll cycles run every second: valid requests never get
//! a 5xx, and the final state is exactly what the requests asked for. A correctness test, not a
//! benchmark: it prints the throughput and asserts nothing about speed.

mod common;

use std::time::{Duration, Instant};

use common::ids::agent_id as watched;
use common::{FakeRavan, TestSettings, wait_until};
use futures::StreamExt;
use serde_json::{Value, json};

const TOKEN: &str = "adm-load-T0KEN";
const AGENTS: usize = 1_000;
const CLIENTS: usize = 50;
const PER_CLIENT: usize = 100;

fn posted(client: usize, i: usize) -> String {
    format!("11111111-0000-4000-8000-{client:06}{i:06}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_mixed_api_requests_during_poll_cycles_get_no_5xx() {
    let ravan = FakeRavan::start().await;
    let ids: Vec<String> = (0..AGENTS).map(watched).collect();
    for id in &ids {
        ravan.set_status(id, "active", None);
    }
    let (_db, database) = common::temp_database();
    let service = TestSettings::new(&ravan.uri())
        .api(&database, TOKEN)
        .agents(&ids.join(","))
        .every_second()
        .concurrency(32)
        .start()
        .await;
    let root = format!("http://{}", service.addr());
    wait_until(Duration::from_secs(30), "the first cycle", || async {
        ravan.polls().await >= AGENTS
    })
    .await;

    let http = reqwest::Client::new();
    let started = Instant::now();
    let cycles_before = ravan.polls().await / AGENTS;
    // Each client: POST an agent, rename and mute watched ones, read one, DELETE what it posted.
    let answers: Vec<(String, u16)> = futures::stream::iter(0..CLIENTS)
        .map(|client| {
            let (http, root) = (http.clone(), root.clone());
            async move {
                let mut answers = Vec::with_capacity(PER_CLIENT);
                for i in 0..PER_CLIENT {
                    let target = watched((client * PER_CLIENT + i) % AGENTS);
                    let (what, request) = match i % 5 {
                        0 => (
                            "POST",
                            http.post(format!("{root}/agents"))
                                .json(&json!({"agent_id": posted(client, i)})),
                        ),
                        1 => (
                            "PATCH name",
                            http.patch(format!("{root}/agents/{target}"))
                                .json(&json!({"name": format!("Agent {client}-{i}")})),
                        ),
                        2 => (
                            "PATCH mute",
                            http.patch(format!("{root}/agents/{target}"))
                                .json(&json!({"muted": i % 2 == 0})),
                        ),
                        3 => ("GET", http.get(format!("{root}/agents/{target}"))),
                        _ => (
                            "DELETE",
                            http.delete(format!("{root}/agents/{}", posted(client, i - 4))),
                        ),
                    };
                    let status = request.bearer_auth(TOKEN).send().await.unwrap().status();
                    answers.push((what.to_owned(), status.as_u16()));
                }
                answers
            }
        })
        .buffer_unordered(CLIENTS)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let cycles = ravan.polls().await / AGENTS - cycles_before;
    println!(
        "{} requests from {CLIENTS} clients in {elapsed:?} ({:.0}/s) during {cycles} poll cycles of {AGENTS} agents",
        answers.len(),
        answers.len() as f64 / elapsed.as_secs_f64()
    );

    assert_eq!(answers.len(), CLIENTS * PER_CLIENT);
    let unexpected: Vec<&(String, u16)> = answers
        .iter()
        .filter(|(what, status)| {
            let want = match what.as_str() {
                "POST" => 201,
                "DELETE" => 204,
                _ => 200,
            };
            *status != want
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} of {} requests were not answered as asked, e.g. {:?}",
        unexpected.len(),
        answers.len(),
        &unexpected[..unexpected.len().min(10)]
    );

    // Every posted agent was deleted again; the watched ones are all there, renamed.
    let list: Value = common::json_of(http.get(format!("{root}/agents")).bearer_auth(TOKEN)).await;
    let agents = list["agents"].as_array().unwrap();
    assert_eq!(agents.len(), AGENTS);
    assert!(agents.iter().all(|a| a["source"] == "env"));
    let targets: std::collections::HashSet<String> = (0..CLIENTS)
        .flat_map(|c| (0..PER_CLIENT).filter(|i| i % 5 == 1).map(move |i| (c, i)))
        .map(|(c, i)| watched((c * PER_CLIENT + i) % AGENTS))
        .collect();
    for agent in agents {
        let id = agent["agent_id"].as_str().unwrap();
        assert_eq!(
            agent["name"].is_string(),
            targets.contains(id),
            "{id} renamed exactly when a PATCH asked: {agent}"
        );
    }
    service.stop().await;
}

/// A write that truly cannot get the database in time (another process holds SQLite's write
/// lock past the busy timeout) is a 503 with `Retry-After`, never a 500; it works again as soon
/// as the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_blocked_past_the_busy_timeout_is_a_503_with_retry_after() {
    use sqlx::Connection;

    let ravan = FakeRavan::start().await;
    ravan.set_status(&watched(0), "active", None);
    let (_db, database) = common::temp_database();
    let agent = watched(0);
    let service = TestSettings::new(&ravan.uri())
        .api(&database, TOKEN)
        .agents(&agent)
        // No cycle during the test: only the lock below competes.
        .never_polling()
        .start()
        .await;
    let url = format!("http://{}/agents/{agent}", service.addr());
    let http = reqwest::Client::new();

    let mut other = sqlx::SqliteConnection::connect(&database).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let answer = http
        .patch(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Blocked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["retry-after"], "1");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("busy"),
        "{body}"
    );

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let answer = http
        .patch(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Free"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    service.stop().await;
}
