//! A bad hour: 1,000 agents fail in the same cycle. Each destination must get a few clear
//! messages that all arrive, not 1,000.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::Utc;
use common::{FakeRavan, bodies, webhook_sink};
use ravan_watch::domain::AgentId;
use ravan_watch::domain::secret::{Secret, SecretUrl};
use ravan_watch::domain::{Platform, Webhook};
use ravan_watch::monitor::Monitor;
use ravan_watch::notify::{Outbox, RetryPolicy};
use ravan_watch::ravan::RavanAuth;
use ravan_watch::ravan::RavanClient;
use ravan_watch::store::Store;
use ravan_watch::tracker::Thresholds;
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
    let hooks = vec![
        Webhook::new(
            Platform::Slack,
            SecretUrl::new(format!("{}/services/T0/B0/x", slack.uri()).parse().unwrap()),
        ),
        Webhook::new(
            Platform::Discord,
            SecretUrl::new(
                format!("{}/api/webhooks/1/x", discord.uri())
                    .parse()
                    .unwrap(),
            ),
        ),
    ];
    let store = Store::open("sqlite::memory:").await.unwrap();
    let ids: Vec<AgentId> = (0..AGENTS)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}").parse().unwrap())
        .collect();
    store.ensure_agents(&ids, Utc::now()).await.unwrap();
    let client = RavanClient::new(
        ravan.uri().parse().unwrap(),
        &RavanAuth::Bearer(Secret::new("t")),
        Duration::from_secs(10),
    )
    .unwrap();
    let outbox = Outbox::new(store.clone(), RetryPolicy::default()).unwrap();
    let thresholds = Thresholds {
        failure: NonZeroU32::new(1).unwrap(),
        success: NonZeroU32::new(1).unwrap(),
        reminder: None,
    };
    let monitor = Monitor::new(client, store.clone(), outbox.clone(), hooks, thresholds, 16);

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
