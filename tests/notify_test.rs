//! `ravan-watch notify-test` against fake Slack and Discord webhooks on 127.0.0.1.

mod common;

use std::process::Output;

use common::bin::run_bin;
use common::limits::assert_within_limits;
use common::{bodies, webhook_sink};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn both_webhooks_get_one_valid_test_message() {
    let slack = webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let discord = webhook_sink(ResponseTemplate::new(204)).await;
    let slack_url = format!("{}/services/T0/B0/slack-SECRET", slack.uri());
    let discord_url = format!("{}/api/webhooks/1/discord-SECRET", discord.uri());
    // No Ravan token, admin token or database: notify-test needs none of them.
    let out = run_bin(
        &["notify-test"],
        &[
            ("SLACK_WEBHOOK_URL", slack_url.as_str()),
            ("DISCORD_WEBHOOK_URL", discord_url.as_str()),
        ],
    )
    .await;
    let all = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");

    let slack_bodies = bodies(&slack).await;
    assert_eq!(slack_bodies.len(), 1, "{slack_bodies:?}");
    assert_within_limits("slack", &slack_bodies[0]);
    assert!(
        slack_bodies[0]["text"]
            .as_str()
            .unwrap()
            .contains("ravan-watch test message — no agent is affected")
    );
    let discord_bodies = bodies(&discord).await;
    assert_eq!(discord_bodies.len(), 1, "{discord_bodies:?}");
    assert_within_limits("discord", &discord_bodies[0]);
    assert_eq!(discord_bodies[0]["allowed_mentions"], json!({"parse": []}));
    assert!(
        discord_bodies[0]["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("no agent is affected")
    );

    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("slack") && lines[0].contains("HTTP 200: ok"),
        "{stdout}"
    );
    assert!(lines[0].contains("/services/T0/B0/***"), "{stdout}");
    assert!(
        lines[1].starts_with("discord") && lines[1].contains("HTTP 204"),
        "{stdout}"
    );
    assert!(!all.contains("SECRET"), "the URLs are masked: {all}");
}

#[tokio::test]
async fn a_dead_slack_webhook_is_reported_with_its_answer_and_status_1() {
    let slack = webhook_sink(ResponseTemplate::new(404).set_body_string("no_service")).await;
    let slack_url = format!("{}/services/T0/B0/slack-SECRET", slack.uri());
    let out = run_bin(
        &["notify-test"],
        &[("SLACK_WEBHOOK_URL", slack_url.as_str())],
    )
    .await;
    let all = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("HTTP 404: no_service"), "{all}");
    assert!(all.contains("NOT delivered"), "{all}");
    assert!(
        !all.contains(&slack_url) && !all.contains("SECRET"),
        "{all}"
    );
    assert_eq!(
        bodies(&slack).await.len(),
        1,
        "a dead webhook is not retried"
    );
}

#[tokio::test]
async fn a_rate_limited_discord_webhook_is_waited_for_once() {
    let discord = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&discord)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&discord)
        .await;
    let url = format!("{}/api/webhooks/1/discord-SECRET", discord.uri());
    let out = run_bin(&["notify-test"], &[("DISCORD_WEBHOOK_URL", url.as_str())]).await;
    let all = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(bodies(&discord).await.len(), 2);
    assert!(all.contains("HTTP 204"), "{all}");
}

#[tokio::test]
async fn a_server_error_is_retried_briefly_then_reported() {
    let slack = webhook_sink(ResponseTemplate::new(503).set_body_string("rollup_error")).await;
    let url = format!("{}/services/T0/B0/slack-SECRET", slack.uri());
    let started = std::time::Instant::now();
    let out = run_bin(&["notify-test"], &[("SLACK_WEBHOOK_URL", url.as_str())]).await;
    let all = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("HTTP 503: rollup_error"), "{all}");
    assert_eq!(bodies(&slack).await.len(), 3, "two quick retries");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

/// `TEAMS_WEBHOOK_URL` gets the test message too: one valid Adaptive Card, 202 is delivered,
/// and the output names the webhook without its `sig`.
#[tokio::test]
async fn the_teams_webhook_gets_one_valid_test_card() {
    let teams = webhook_sink(ResponseTemplate::new(202)).await;
    let url = format!(
        "{}/workflows/w1/triggers/manual/paths/invoke?api-version=2016-06-01&sig=teams-SECRET",
        teams.uri()
    );
    let out = run_bin(&["notify-test"], &[("TEAMS_WEBHOOK_URL", url.as_str())]).await;
    let all = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let got = bodies(&teams).await;
    assert_eq!(got.len(), 1, "{got:?}");
    common::limits::assert_teams_valid("notify-test", &got[0]);
    let card = &got[0]["attachments"][0]["content"];
    assert!(
        card["body"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no agent is affected"),
        "{card}"
    );
    assert!(all.contains("HTTP 202"), "{all}");
    assert!(
        all.contains("/workflows/w1/triggers/manual/paths/***"),
        "{all}"
    );
    assert!(!all.contains("teams-SECRET"), "{all}");
}

/// `WEBHOOK_URL` gets a signed ping: `{"version": 1, "events": []}` with a signature a
/// receiver can check (recomputed here with `hmac` + `sha2`), and the secret nowhere in the
/// output.
#[tokio::test]
async fn the_signed_webhook_gets_a_signed_ping_with_no_event() {
    const SECRET: &str = "whsec-notify-0123456789";
    let receiver = webhook_sink(ResponseTemplate::new(204)).await;
    let url = format!("{}/hooks/PATHSECRET", receiver.uri());
    let env = [("WEBHOOK_URL", url.as_str()), ("WEBHOOK_SECRET", SECRET)];
    let out = run_bin(&["notify-test"], &env).await;
    let all = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let got = receiver.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body, serde_json::json!({"version": 1, "events": []}));
    let ts = got[0].headers["x-ravan-watch-timestamp"].to_str().unwrap();
    let signature = got[0].headers["x-ravan-watch-signature"].to_str().unwrap();
    assert!(
        common::signing::verifies(SECRET, ts, signature, &got[0].body),
        "{signature}"
    );
    assert!(all.contains("HTTP 204"), "{all}");
    assert!(
        !all.contains(SECRET) && !all.contains("PATHSECRET"),
        "{all}"
    );
}

#[tokio::test]
async fn no_webhook_is_a_configuration_error() {
    let out = run_bin(&["notify-test"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("SLACK_WEBHOOK_URL") && err.contains("DISCORD_WEBHOOK_URL"),
        "{err}"
    );
}

#[tokio::test]
async fn help_for_the_new_commands() {
    for command in ["notify-test", "demo", "healthcheck"] {
        let out = run_bin(&[command, "--help"], &[]).await;
        assert_eq!(out.status.code(), Some(0), "{command}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{command}"
        );
    }
}
