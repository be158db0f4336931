//! A bad hour: 1,000 agents fail in the same cycle. Each destination must get a few clear
//! messages that all arrive, not 1,000.

mod common;

use chrono::Utc;
use common::ids::agent_id;
use common::{FakeRavan, TestSettings, bodies, webhook_sink};
use ravan_watch::domain::AgentId;
use serde_json::Value;
use wiremock::ResponseTemplate;

const AGENTS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_agents_failing_in_one_cycle_make_at_most_three_messages_per_destination() {
    let ravan = FakeRavan::start().await;
    ravan.answer_all(Some(ResponseTemplate::new(200).set_body_json(
        common::status_body("errored", Some("Cal.com token revoked")),
    )));
    let slack = webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let discord = webhook_sink(ResponseTemplate::new(204)).await;
    let slack_url = format!("{}/services/T0/B0/x", slack.uri());
    let discord_url = format!("{}/api/webhooks/1/x", discord.uri());
    let ids: Vec<AgentId> = (0..AGENTS).map(|i| agent_id(i).parse().unwrap()).collect();
    let watch = ids
        .iter()
        .map(AgentId::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let app = TestSettings::new(&ravan.uri())
        .database("sqlite::memory:")
        .agents(&watch)
        .slack(&slack_url)
        .discord(&discord_url)
        .failure(1)
        .success(1)
        .concurrency(16)
        .build()
        .await;
    let (monitor, outbox, store) = (app.monitor(), app.outbox(), app.store());

    let report = monitor.run_cycle().await.unwrap();
    assert_eq!(report.alerts.len(), AGENTS);
    let pass = outbox.pass(Utc::now()).await.unwrap();
    assert_eq!(pass.delivered, 2 * AGENTS, "every alert delivered");
    assert_eq!(store.outbox_pending().await.unwrap(), 0);

    for (name, server) in [("slack", &slack), ("discord", &discord)] {
        let sent = bodies(server).await;
        assert!(
            (1..=3).contains(&sent.len()),
            "{name}: {} messages",
            sent.len()
        );
        let text: String = sent.iter().map(Value::to_string).collect();
        let names_all = ids.iter().all(|id| text.contains(&id.to_string()));
        assert!(
            names_all || text.contains("1000"),
            "{name}: neither every agent nor the total in {}",
            &text[..text.len().min(500)]
        );
        for body in &sent {
            common::limits::assert_within_limits(name, body);
        }
    }
}
