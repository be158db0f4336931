//! Text from the Ravan API is bounded where it enters: a status word, an account's name and
//! error as long as the body cap allows are clipped when the answer is read, so the stored
//! state, the queued alerts and the event log stay small, and the messages say it was clipped.

mod common;

use chrono::Utc;
use common::{AGENT_A, FakeRavan, TestSettings, bodies, webhook_sink};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

/// Bytes of every file of the database (the file, its journal and WAL).
fn database_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_of_account_error_is_clipped_where_it_enters() {
    let ravan = FakeRavan::start().await;
    // As much text as the 1 MiB body cap lets through, most of it the account's error.
    let error = format!("token revoked: {}", "é".repeat(400_000));
    let name = "n".repeat(50_000);
    let status = format!("errored_{}", "s".repeat(20_000));
    let body = json!({
        "success": true,
        "data": {
            "connected": false,
            "status": status,
            "accounts": [{"id": "acc-1", "account_name": name, "status": status, "error": error}],
        }
    });
    assert!(serde_json::to_vec(&body).unwrap().len() < 1 << 20);
    ravan.set_answer(AGENT_A, ResponseTemplate::new(200).set_body_json(body));
    let slack = webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let discord = webhook_sink(ResponseTemplate::new(204)).await;
    let (dir, database) = common::temp_database();
    let app = TestSettings::new(&ravan.uri())
        .database(&database)
        .agents(AGENT_A)
        .slack(&format!("{}/services/T0/B0/x", slack.uri()))
        .discord(&format!("{}/api/webhooks/1/x", discord.uri()))
        .failure(1)
        .build()
        .await;

    let report = app.monitor().run_cycle().await.unwrap();
    assert_eq!(report.alerts.len(), 1, "the agent is down");
    let store = app.store();
    // The alert as queued, before delivery: the outbox row holds it.
    let queued = database_bytes(dir.path());
    let pass = app.outbox().pass(Utc::now()).await.unwrap();
    assert_eq!(pass.delivered, 2, "both destinations");

    // What is stored about the agent is small, and says it was clipped.
    let records = store.agents().await.unwrap();
    let state = serde_json::to_string(&records[0].state).unwrap();
    assert!(
        state.len() < 16 << 10,
        "the stored state is {} bytes",
        state.len()
    );
    assert!(
        state.contains("[clipped]"),
        "{}",
        &state[..state.len().min(300)]
    );
    let observed = records[0].state.last.as_ref().unwrap();
    let account = &observed.accounts[0];
    let kept = account.error.as_ref().unwrap().to_string();
    assert!(kept.starts_with("token revoked: éé"), "{kept:.40}");
    assert!(kept.chars().count() <= 2000, "{}", kept.chars().count());
    assert!(account.account_name.chars().count() <= 200);
    assert!(observed.status.chars().count() <= 64);
    assert!(observed.status.starts_with("errored_sss"));
    let events = store
        .events(&ravan_watch::store::EventQuery {
            about: ravan_watch::store::EventsAbout::All,
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let event = serde_json::to_string(&format!("{events:?}")).unwrap();
    assert!(event.len() < 16 << 10, "the event is {} bytes", event.len());
    // The database as a whole (state, outbox, events) stays far below the megabyte received.
    let stored = queued.max(database_bytes(dir.path()));
    assert!(stored < 512 << 10, "the database holds {stored} bytes");

    // Each message says the error was clipped.
    for (platform, server) in [("slack", &slack), ("discord", &discord)] {
        let sent: Vec<Value> = bodies(server).await;
        assert_eq!(sent.len(), 1, "{platform}");
        let text = sent[0].to_string();
        assert!(text.contains("token revoked"), "{platform}: {text:.500}");
        assert!(text.contains("[clipped]"), "{platform}: {text}");
        common::limits::assert_within_limits(platform, &sent[0]);
    }
}
