//! Durable delivery: the outbox worker against wiremock sinks. Each pass is given the time, so
//! retries are checked by when they are scheduled, without waiting for them.

mod common;

use std::time::Duration;

use chrono::Utc;
use ravan_watch::domain::alert::Alert;
use ravan_watch::domain::{Platform, Webhook};
use ravan_watch::leader::Leadership;
use ravan_watch::notify::{Outbox, RetryPolicy};
use ravan_watch::store::Fence;
use ravan_watch::store::{OutboxStatus, Store};
use ravan_watch::tracker::MonitorState;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::alerts::{agent_down, monitor_down, webhook};
use common::ids::agent_id;
use common::outbox::{answering, commit, entries, policy, requests, secs, t0};
use common::{wait_until, wait_until_some};

/// A sink of POSTs to `/hook/SECRET-TOKEN` answering `answers` in order.
async fn sink(answers: Vec<ResponseTemplate>) -> MockServer {
    answering(answers, || {
        Mock::given(method("POST")).and(path("/hook/SECRET-TOKEN"))
    })
    .await
}

/// A webhook of `platform` at `server`'s `/hook/SECRET-TOKEN`.
fn hook(server: &MockServer, platform: Platform) -> Webhook {
    webhook(platform, &format!("{}/hook/SECRET-TOKEN", server.uri()))
}

async fn outbox_with(alerts: &[(Alert, Webhook)]) -> (Store, Outbox) {
    outbox_at("sqlite::memory:", alerts).await
}

/// [`outbox_with`], on the database at `url`.
async fn outbox_at(url: &str, alerts: &[(Alert, Webhook)]) -> (Store, Outbox) {
    let store = Store::open(url).await.unwrap();
    commit(&store, alerts).await;
    let outbox = Outbox::new(store.clone(), policy(), Leadership::for_tests()).unwrap();
    (store, outbox)
}

#[tokio::test]
async fn server_error_then_ok_delivers_once() {
    let server = sink(vec![
        ResponseTemplate::new(500).set_body_string("rollup_error"),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    let (store, outbox) = outbox_with(&[(monitor_down("a"), hook(&server, Platform::Slack))]).await;
    let now = t0();

    let r = outbox.pass(now).await.unwrap();
    assert_eq!((r.delivered, r.retrying, r.failed), (0, 1, 0));
    let e = &entries(&store).await[0];
    assert_eq!((e.status, e.attempts), (OutboxStatus::Pending, 1));
    assert_eq!(e.last_error.as_deref(), Some("HTTP 500: rollup_error"));
    let wait = e.next_attempt_at - now;
    assert!(
        wait >= secs(1.0) && wait <= secs(2.0),
        "jittered first backoff: {wait}"
    );

    assert_eq!(
        outbox.pass(now).await.unwrap(),
        Default::default(),
        "not due yet"
    );
    assert_eq!(requests(&server).await.len(), 1);

    let r = outbox.pass(now + secs(3.0)).await.unwrap();
    assert_eq!(r.delivered, 1);
    assert_eq!(entries(&store).await[0].status, OutboxStatus::Delivered);
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1], "the same message both times");

    assert_eq!(
        outbox.pass(now + secs(600.0)).await.unwrap(),
        Default::default(),
        "delivered once"
    );
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn slack_429_waits_retry_after() {
    let server = sink(vec![
        ResponseTemplate::new(429).insert_header("retry-after", "7"),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    let (store, outbox) = outbox_with(&[(monitor_down("a"), hook(&server, Platform::Slack))]).await;
    let now = t0();
    outbox.pass(now).await.unwrap();
    assert_eq!(entries(&store).await[0].next_attempt_at - now, secs(7.0));
    assert_eq!(
        outbox.pass(now + secs(6.9)).await.unwrap().delivered,
        0,
        "not before Retry-After"
    );
    assert_eq!(outbox.pass(now + secs(7.0)).await.unwrap().delivered, 1);
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn discord_429_waits_retry_after_from_the_body() {
    let server = sink(vec![
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 2.5, "global": false})),
        ResponseTemplate::new(204),
    ])
    .await;
    let (store, outbox) =
        outbox_with(&[(monitor_down("a"), hook(&server, Platform::Discord))]).await;
    let now = t0();
    outbox.pass(now).await.unwrap();
    assert_eq!(entries(&store).await[0].next_attempt_at - now, secs(2.5));
    assert_eq!(outbox.pass(now + secs(2.5)).await.unwrap().delivered, 1);
}

#[tokio::test]
async fn overlong_retry_after_is_capped() {
    let server = sink(vec![
        ResponseTemplate::new(429).insert_header("retry-after", "86400"),
    ])
    .await;
    let (store, outbox) =
        outbox_with(&[(monitor_down("a"), hook(&server, Platform::Discord))]).await;
    let now = t0();
    outbox.pass(now).await.unwrap();
    assert_eq!(entries(&store).await[0].next_attempt_at - now, secs(300.0));
}

#[tokio::test]
async fn not_found_is_not_retried_and_kept_as_failed() {
    let server = sink(vec![
        ResponseTemplate::new(404).set_body_string("no_service"),
    ])
    .await;
    let (store, outbox) = outbox_with(&[(monitor_down("a"), hook(&server, Platform::Slack))]).await;
    let r = outbox.pass(t0()).await.unwrap();
    assert_eq!(r.failed, 1);
    let e = &entries(&store).await[0];
    assert_eq!(e.status, OutboxStatus::Failed);
    assert_eq!(e.last_error.as_deref(), Some("HTTP 404: no_service"));
    assert_eq!(
        outbox.pass(t0() + secs(3600.0)).await.unwrap(),
        Default::default()
    );
    assert_eq!(requests(&server).await.len(), 1, "never retried");
}

#[tokio::test]
async fn discord_unknown_webhook_is_not_retried() {
    let server =
        sink(vec![ResponseTemplate::new(404).set_body_json(
            json!({"message": "Unknown Webhook", "code": 10015}),
        )])
        .await;
    let (store, outbox) =
        outbox_with(&[(monitor_down("a"), hook(&server, Platform::Discord))]).await;
    outbox.pass(t0()).await.unwrap();
    let e = &entries(&store).await[0];
    assert_eq!(e.status, OutboxStatus::Failed);
    assert!(e.last_error.as_deref().unwrap().contains("Unknown Webhook"));
    assert_eq!(requests(&server).await.len(), 1);
}

/// Makes the SQLite database at `url` refuse to record a delivery while `refusing(…, true)`:
/// a trigger on the outbox, so the outbox sees what a busy SQLite or a restarting PostgreSQL
/// does to it. Returns the connection that switches it.
async fn refuse_marks(url: &str) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let mut chaos = sqlx::SqliteConnection::connect(url).await.unwrap();
    for statement in [
        "CREATE TABLE chaos (refuse INTEGER NOT NULL)",
        "INSERT INTO chaos VALUES (1)",
        "CREATE TRIGGER chaos_refuses_marks BEFORE UPDATE OF status ON outbox
         WHEN NEW.status = 'delivered' AND (SELECT refuse FROM chaos) = 1
         BEGIN SELECT RAISE(ABORT, 'injected: the database is unavailable'); END",
    ] {
        sqlx::query(statement).execute(&mut chaos).await.unwrap();
    }
    chaos
}

async fn refusing(chaos: &mut sqlx::SqliteConnection, refuse: bool) {
    sqlx::query("UPDATE chaos SET refuse = ?")
        .bind(refuse)
        .execute(chaos)
        .await
        .unwrap();
}

/// A message the webhook accepted is never sent again because recording that failed: the
/// record is retried (each failure logged), and the message is sent once.
#[tokio::test]
async fn a_delivery_whose_record_fails_a_few_times_is_sent_once() {
    let (logs, _guard) = common::logs::capture_here();
    let server = sink(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    let (_dir, url) = common::temp_database();
    let h = hook(&server, Platform::Slack);
    let (store, outbox) = outbox_at(&url, &[(monitor_down("a"), h)]).await;
    let mut chaos = refuse_marks(&url).await;
    let pass = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.pass(t0()).await }
    });
    let three = common::wait::poll_until(Duration::from_secs(10), || async {
        (logs.count("recording it failed") >= 3).then_some(())
    });
    if three.await.is_none() {
        panic!("three failed records: {}", logs.text());
    }
    refusing(&mut chaos, false).await;
    let report = pass.await.unwrap().unwrap();
    assert_eq!((report.delivered, report.messages), (1, 1));
    assert_eq!(requests(&server).await.len(), 1, "sent once");
    assert_eq!(entries(&store).await[0].status, OutboxStatus::Delivered);
}

/// When the record still fails after its retries, the drain stops with the error; the next one
/// records the message without sending it again.
#[tokio::test]
async fn a_delivery_not_recorded_by_its_drain_is_recorded_by_the_next_without_a_send() {
    let server = sink(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    let (_dir, url) = common::temp_database();
    let h = hook(&server, Platform::Slack);
    let (store, _) = outbox_at(&url, &[(monitor_down("a"), h)]).await;
    let quick = RetryPolicy {
        record_retries: 2,
        ..policy()
    };
    let outbox = Outbox::new(store.clone(), quick, Leadership::for_tests()).unwrap();
    let mut chaos = refuse_marks(&url).await;
    let err = outbox.pass(t0()).await.unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(entries(&store).await[0].status, OutboxStatus::Pending);
    let again = outbox.pass(t0() + secs(60.0)).await;
    assert!(again.is_err(), "still refused: {again:?}");
    assert_eq!(requests(&server).await.len(), 1, "not sent again meanwhile");

    refusing(&mut chaos, false).await;
    let report = outbox.pass(t0() + secs(120.0)).await.unwrap();
    assert_eq!(
        (report.delivered, report.messages),
        (1, 0),
        "recorded, not sent"
    );
    assert_eq!(requests(&server).await.len(), 1, "sent once");
    assert_eq!(entries(&store).await[0].status, OutboxStatus::Delivered);
}

/// A webhook (Discord: any 2xx is delivered) that answers 200 and then streams a body without
/// end: the answer is read up to 64 KiB, not until the request's time limit.
#[tokio::test]
async fn an_endless_answer_is_read_only_up_to_its_cap() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_request(&mut socket).await?;
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                socket.write_all(head.as_bytes()).await?;
                let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
                loop {
                    socket.write_all(chunk.as_bytes()).await?;
                }
                #[allow(unreachable_code)]
                Ok::<(), std::io::Error>(())
            });
        }
    });
    let h = webhook(
        Platform::Discord,
        &format!("http://{addr}/hook/SECRET-TOKEN"),
    );
    let (store, outbox) = outbox_with(&[(monitor_down("a"), h)]).await;
    let report = outbox.pass(t0()).await.unwrap();
    assert_eq!(report.delivered, 1, "{:?}", entries(&store).await);
}

/// A webhook the platform declares gone is announced once to every other live destination
/// (the defaults and the agents' own), naming it masked, what it answered and whose alerts it
/// carried; the announcement is an event of its own. A second "gone" answer announces nothing.
#[tokio::test]
async fn a_dead_webhook_is_announced_once_to_every_other_live_destination() {
    use ravan_watch::store::{EventQuery, EventsAbout, NewAgent};
    let gone = sink(vec![
        ResponseTemplate::new(404).set_body_string("channel_not_found"),
    ])
    .await;
    let default = sink(vec![ResponseTemplate::new(204)]).await;
    let other = sink(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    let (dead, default_hook) = (
        hook(&gone, Platform::Slack),
        hook(&default, Platform::Discord),
    );
    let store = Store::open("sqlite::memory:").await.unwrap();
    let own = |url: &MockServer, name: &str| NewAgent {
        name: Some(name.into()),
        slack_webhook_url: Some(format!("{}/hook/SECRET-TOKEN", url.uri()).parse().unwrap()),
        ..Default::default()
    };
    let [a, b, c] = [1, 2, 3].map(|i| common::ids::id(&agent_id(i)));
    store
        .insert_agent(a, &own(&gone, "Sales line"), t0())
        .await
        .unwrap();
    store
        .insert_agent(b, &own(&other, "Support"), t0())
        .await
        .unwrap();
    store
        .insert_agent(c, &NewAgent::default(), t0())
        .await
        .unwrap();
    let outbox = Outbox::new(store.clone(), policy(), Leadership::for_tests())
        .unwrap()
        .with_defaults(vec![default_hook.clone()]);
    commit_batches(&store, &[vec![(monitor_down("first"), dead.clone())]]).await;
    commit_batches(&store, &[vec![(monitor_down("second"), dead.clone())]]).await;

    outbox.pass(t0() + secs(1.0)).await.unwrap();
    outbox.pass(t0() + secs(2.0)).await.unwrap();
    assert_eq!(
        requests(&gone).await.len(),
        1,
        "nothing more to the dead one"
    );
    for (server, platform) in [(&default, "Discord"), (&other, "Slack")] {
        let got = requests(server).await;
        assert_eq!(got.len(), 1, "{platform}: one announcement: {got:?}");
        let text = got[0].to_string();
        assert!(text.contains("webhook is dead"), "{text}");
        assert!(text.contains("channel_not_found"), "{text}");
        assert!(
            text.contains(&gone.uri()["http://".len()..]),
            "named: {text}"
        );
        assert!(!text.contains("SECRET-TOKEN"), "{text}");
        assert!(
            text.contains("Sales line"),
            "the agent routed to it: {text}"
        );
        assert!(text.contains("PATCH /agents/"), "what to do: {text}");
    }
    let query = EventQuery {
        about: EventsAbout::Monitor,
        before: None,
        limit: 10,
    };
    let events = store.events(&query).await.unwrap();
    let dead_events: Vec<_> = events.iter().filter(|e| e.kind == "webhook_dead").collect();
    assert_eq!(dead_events.len(), 1, "{events:?}");
    let event = dead_events[0];
    assert_eq!(event.agent_id, None);
    assert_eq!(event.webhook.as_deref(), Some(dead.url.masked().as_str()));
    assert_eq!(event.deliveries.len(), 2, "{event:?}");
}

/// Reads one HTTP request (its head and a `content-length` body) off `socket`.
async fn read_request(socket: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return Ok(());
            }
        }
    }
}

/// A 403/404/410 without the platform's own words (a proxy, a CDN, a load balancer in the
/// way) says nothing about the webhook: it is retried like a 5xx, and the webhook stays alive.
#[tokio::test]
async fn a_bare_403_404_or_410_is_retried_and_never_kills_the_webhook() {
    for (platform, status, body) in [
        (
            Platform::Slack,
            404,
            "<html><body>404 Not Found</body></html>",
        ),
        (Platform::Slack, 403, ""),
        (Platform::Slack, 410, "Gone"),
        (Platform::Discord, 404, "<html>nginx</html>"),
        (
            Platform::Discord,
            403,
            r#"{"message": "blocked by the proxy"}"#,
        ),
        (Platform::Discord, 401, ""),
    ] {
        let server = sink(vec![
            ResponseTemplate::new(status).set_body_string(body),
            ok_for(platform),
        ])
        .await;
        let h = hook(&server, platform);
        let (store, outbox) = outbox_with(&[(monitor_down("a"), h)]).await;
        let first = outbox.pass(t0()).await.unwrap();
        assert_eq!(first.retrying, 1, "{platform} {status} {body:?}: retried");
        assert!(
            store.dead_webhooks().await.unwrap().is_empty(),
            "{platform} {status} {body:?}: not dead"
        );
        let second = outbox.pass(t0() + secs(3600.0)).await.unwrap();
        assert_eq!(
            second.delivered, 1,
            "{platform} {status}: delivered on retry"
        );
        assert_eq!(requests(&server).await.len(), 2);
    }
}

/// The platform's "this webhook is gone", in its own words, whatever the status code.
#[tokio::test]
async fn only_the_platforms_own_words_kill_a_webhook() {
    for (platform, status, body) in [
        (Platform::Slack, 404, "channel_not_found"),
        (Platform::Slack, 403, "action_prohibited"),
        (Platform::Slack, 410, "channel_is_archived"),
        (Platform::Slack, 400, "no_service"),
        (
            Platform::Discord,
            404,
            r#"{"message": "Unknown Webhook", "code": 10015}"#,
        ),
        (
            Platform::Discord,
            401,
            r#"{"message": "Invalid Webhook Token", "code": 50027}"#,
        ),
    ] {
        let server = sink(vec![ResponseTemplate::new(status).set_body_string(body)]).await;
        let (store, outbox) = outbox_with(&[(monitor_down("a"), hook(&server, platform))]).await;
        assert_eq!(
            outbox.pass(t0()).await.unwrap().failed,
            1,
            "{status} {body}"
        );
        assert_eq!(
            store.dead_webhooks().await.unwrap().len(),
            1,
            "{status} {body}"
        );
    }
}

/// The answer that means "delivered" on `platform`.
fn ok_for(platform: Platform) -> ResponseTemplate {
    match platform {
        Platform::Slack => ResponseTemplate::new(200).set_body_string("ok"),
        Platform::Discord => ResponseTemplate::new(204),
        Platform::Teams => ResponseTemplate::new(202),
        Platform::Webhook => ResponseTemplate::new(200),
    }
}

#[tokio::test]
async fn slack_200_without_ok_is_not_success() {
    let server = sink(vec![
        ResponseTemplate::new(200).set_body_string("invalid_payload"),
    ])
    .await;
    let (store, outbox) = outbox_with(&[(monitor_down("a"), hook(&server, Platform::Slack))]).await;
    outbox.pass(t0()).await.unwrap();
    assert_eq!(entries(&store).await[0].status, OutboxStatus::Failed);
}

#[tokio::test]
async fn a_message_still_failing_past_max_age_is_marked_failed() {
    let server = sink(vec![ResponseTemplate::new(503)]).await;
    let (store, outbox) =
        outbox_with(&[(monitor_down("a"), hook(&server, Platform::Discord))]).await;
    let now = t0();
    assert_eq!(outbox.pass(now).await.unwrap().retrying, 1);
    assert_eq!(
        outbox.pass(now + secs(1800.0)).await.unwrap().retrying,
        1,
        "still young: retried"
    );
    assert_eq!(outbox.pass(now + secs(3601.0)).await.unwrap().failed, 1);
    let e = &entries(&store).await[0];
    assert_eq!(e.status, OutboxStatus::Failed);
    assert!(
        e.last_error
            .as_deref()
            .unwrap()
            .starts_with("gave up after 3 attempts"),
        "{:?}",
        e.last_error
    );
}

#[tokio::test]
async fn timeouts_are_retried() {
    let server = sink(vec![
        ResponseTemplate::new(200)
            .set_body_string("ok")
            .set_delay(Duration::from_secs(3)),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    let (store, outbox) = outbox_with(&[(monitor_down("a"), hook(&server, Platform::Slack))]).await;
    let now = t0();
    assert_eq!(outbox.pass(now).await.unwrap().retrying, 1);
    assert!(
        entries(&store).await[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no answer within")
    );
    assert_eq!(outbox.pass(now + secs(5.0)).await.unwrap().delivered, 1);
}

#[tokio::test]
async fn connection_errors_are_retried_and_do_not_leak_the_url() {
    let port = common::free_port();
    let hook = webhook(
        Platform::Slack,
        &format!("http://127.0.0.1:{port}/hook/SECRET-TOKEN"),
    );
    let (store, outbox) = outbox_with(&[(monitor_down("a"), hook)]).await;
    assert_eq!(outbox.pass(t0()).await.unwrap().retrying, 1);
    let error = entries(&store).await[0].last_error.clone().unwrap();
    assert!(!error.contains("SECRET-TOKEN"), "{error}");
}

#[tokio::test]
async fn one_destination_is_delivered_in_order_and_a_retry_holds_back_later_alerts() {
    let server = sink(vec![
        ResponseTemplate::new(502),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    let h = hook(&server, Platform::Slack);
    let (store, outbox) = outbox_with(&[
        (monitor_down("first"), h.clone()),
        (monitor_down("second"), h.clone()),
        (monitor_down("third"), h),
    ])
    .await;
    let now = t0();
    let r = outbox.pass(now).await.unwrap();
    assert_eq!(
        (r.delivered, r.retrying),
        (0, 1),
        "the second waits behind the first"
    );
    assert_eq!(requests(&server).await.len(), 1);
    let r = outbox.pass(now + secs(5.0)).await.unwrap();
    assert_eq!(r.delivered, 3);
    assert_eq!(store.outbox_pending().await.unwrap(), 0);
    let order: Vec<String> = requests(&server)
        .await
        .iter()
        .map(|b| b.to_string())
        .collect();
    assert!(
        order[1].contains("first") && order[2].contains("second") && order[3].contains("third"),
        "{order:?}"
    );
}

#[tokio::test]
async fn a_failing_destination_does_not_hold_up_another() {
    let broken = sink(vec![ResponseTemplate::new(500)]).await;
    let working = sink(vec![ResponseTemplate::new(204)]).await;
    let (store, outbox) = outbox_with(&[
        (monitor_down("a"), hook(&broken, Platform::Discord)),
        (monitor_down("a"), hook(&working, Platform::Discord)),
        (monitor_down("b"), hook(&working, Platform::Discord)),
    ])
    .await;
    let r = outbox.pass(t0()).await.unwrap();
    assert_eq!((r.delivered, r.retrying), (2, 1));
    assert_eq!(store.outbox_pending().await.unwrap(), 1);
}

/// Alerts committed as separate poll cycles (batches), one alert each.
async fn commit_batches(store: &Store, batches: &[Vec<(Alert, Webhook)>]) {
    for (i, batch) in batches.iter().enumerate() {
        let rows: Vec<_> = batch
            .iter()
            .map(|(a, h)| (a.clone(), vec![h.clone()]))
            .collect();
        let at = Utc::now() + chrono::Duration::milliseconds(i as i64 + 1);
        store
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[],
                &MonitorState::default(),
                &rows,
                at,
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_dead_webhook_gets_nothing_more_and_its_later_alerts_are_kept_as_failed() {
    let server = sink(vec![
        ResponseTemplate::new(404).set_body_string("no_service"),
    ])
    .await;
    let h = hook(&server, Platform::Slack);
    let (store, outbox) = outbox_with(&[(monitor_down("first"), h.clone())]).await;
    commit_batches(&store, &[vec![(monitor_down("second"), h.clone())]]).await;
    let r = outbox.pass(t0() + secs(1.0)).await.unwrap();
    assert_eq!((r.failed, r.messages), (2, 1), "the second is not sent");
    assert_eq!(requests(&server).await.len(), 1);
    let dead = store.dead_webhooks().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "HTTP 404: no_service");
    let later = &entries(&store).await[1];
    assert_eq!(later.status, OutboxStatus::Failed);
    assert!(
        later
            .last_error
            .as_deref()
            .unwrap()
            .contains("webhook is dead"),
        "{:?}",
        later.last_error
    );

    commit_batches(&store, &[vec![(monitor_down("third"), h.clone())]]).await;
    outbox.pass(t0() + secs(2.0)).await.unwrap();
    assert_eq!(
        requests(&server).await.len(),
        1,
        "still nothing sent to a dead webhook"
    );
    store.clear_webhook_dead(&h).await.unwrap();
    commit_batches(&store, &[vec![(monitor_down("fourth"), h)]]).await;
    outbox.pass(t0() + secs(3.0)).await.unwrap();
    assert_eq!(requests(&server).await.len(), 2, "tried again once cleared");
}

#[tokio::test]
async fn a_discord_invalid_token_marks_the_webhook_dead() {
    let server = sink(vec![ResponseTemplate::new(401).set_body_json(
        json!({"message": "Invalid Webhook Token", "code": 50027}),
    )])
    .await;
    let (store, outbox) =
        outbox_with(&[(monitor_down("a"), hook(&server, Platform::Discord))]).await;
    outbox.pass(t0()).await.unwrap();
    assert_eq!(store.dead_webhooks().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_invalid_payload_fails_the_message_but_not_the_webhook() {
    let server = sink(vec![
        ResponseTemplate::new(400).set_body_string("invalid_payload"),
    ])
    .await;
    let (store, outbox) = outbox_with(&[(monitor_down("a"), hook(&server, Platform::Slack))]).await;
    assert_eq!(outbox.pass(t0()).await.unwrap().failed, 1);
    assert!(store.dead_webhooks().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_few_alerts_of_one_cycle_go_one_by_one_and_more_go_as_one_message() {
    let server = sink(vec![ResponseTemplate::new(204)]).await;
    let h = hook(&server, Platform::Discord);
    let three: Vec<_> = (0..3)
        .map(|i| (monitor_down(&format!("a{i}")), h.clone()))
        .collect();
    let (store, outbox) = outbox_with(&three).await;
    let r = outbox.pass(t0() + secs(1.0)).await.unwrap();
    assert_eq!((r.delivered, r.messages), (3, 3));
    let five: Vec<_> = (0..5)
        .map(|i| (agent_down(&agent_id(i), None), h.clone()))
        .collect();
    commit_batches(&store, &[five]).await;
    let r = outbox.pass(t0() + secs(2.0)).await.unwrap();
    assert_eq!((r.delivered, r.messages), (5, 1));
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 4);
    let grouped = sent[3].to_string();
    for i in 0..5 {
        assert!(grouped.contains(&agent_id(i)), "{grouped}");
    }
    assert!(
        entries(&store)
            .await
            .iter()
            .all(|e| e.status == OutboxStatus::Delivered)
    );
}

/// Arrival times of the requests a sink received, via a responder that records them.
struct Recording {
    arrivals: std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
    answers: std::sync::Mutex<std::collections::VecDeque<ResponseTemplate>>,
    last: ResponseTemplate,
}

impl wiremock::Respond for Recording {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        self.arrivals
            .lock()
            .unwrap()
            .push(std::time::Instant::now());
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.last.clone())
    }
}

async fn recording_sink(
    answers: Vec<ResponseTemplate>,
    last: ResponseTemplate,
) -> (
    MockServer,
    std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
) {
    let server = MockServer::start().await;
    let arrivals = std::sync::Arc::default();
    Mock::given(method("POST"))
        .respond_with(Recording {
            arrivals: std::sync::Arc::clone(&arrivals),
            answers: std::sync::Mutex::new(answers.into()),
            last,
        })
        .mount(&server)
        .await;
    (server, arrivals)
}

/// Runs the worker until `done` holds (or a deadline), then stops it.
async fn run_worker_until(outbox: &Outbox, server: &MockServer, n: usize) {
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = {
        let (outbox, stop) = (outbox.clone(), stop.clone());
        tokio::spawn(async move { outbox.run(stop).await })
    };
    wait_until(Duration::from_secs(20), format!("{n} requests"), || async {
        requests(server).await.len() >= n
    })
    .await;
    stop.cancel();
    worker.await.unwrap();
}

#[tokio::test]
async fn slack_gets_at_most_one_message_a_second() {
    let (server, arrivals) =
        recording_sink(vec![], ResponseTemplate::new(200).set_body_string("ok")).await;
    let h = hook(&server, Platform::Slack);
    let store = Store::open("sqlite::memory:").await.unwrap();
    let outbox = Outbox::new(
        store.clone(),
        RetryPolicy {
            slack_interval: Duration::from_secs(1),
            ..policy()
        },
        Leadership::for_tests(),
    )
    .unwrap();
    let rows: Vec<_> = (0..3)
        .map(|i| (monitor_down(&format!("m{i}")), vec![h.clone()]))
        .collect();
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &rows,
            Utc::now(),
        )
        .await
        .unwrap();
    run_worker_until(&outbox, &server, 3).await;
    let t = arrivals.lock().unwrap().clone();
    for pair in t.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(990),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test]
async fn discord_waits_when_its_bucket_is_empty() {
    let empty = ResponseTemplate::new(204)
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset-after", "1.5");
    let (server, arrivals) = recording_sink(vec![empty], ResponseTemplate::new(204)).await;
    let h = hook(&server, Platform::Discord);
    let (_store, outbox) =
        outbox_with(&[(monitor_down("a"), h.clone()), (monitor_down("b"), h)]).await;
    run_worker_until(&outbox, &server, 2).await;
    let t = arrivals.lock().unwrap().clone();
    assert!(
        t[1] - t[0] >= Duration::from_millis(1450),
        "{:?}",
        t[1] - t[0]
    );
}

#[tokio::test]
async fn after_a_429_both_forms_deliver_once_after_the_wait_in_order() {
    for (platform, limited, ok) in [
        (
            Platform::Slack,
            ResponseTemplate::new(429).insert_header("retry-after", "1"),
            ResponseTemplate::new(200).set_body_string("ok"),
        ),
        (
            Platform::Discord,
            ResponseTemplate::new(429).set_body_json(json!({"message": "You are being rate limited.", "retry_after": 1.2, "global": false})),
            ResponseTemplate::new(204),
        ),
    ] {
        let (server, arrivals) = recording_sink(vec![limited], ok).await;
        let h = hook(&server, platform);
        let (store, outbox) = outbox_with(&[(monitor_down("first"), h.clone()), (monitor_down("second"), h)]).await;
        run_worker_until(&outbox, &server, 3).await;
        let t = arrivals.lock().unwrap().clone();
        assert!(t[1] - t[0] >= Duration::from_millis(990), "{platform}: waited {:?}", t[1] - t[0]);
        let sent = requests(&server).await;
        assert_eq!(sent.len(), 3, "{platform}: the limited one again, then the next: no duplicate");
        assert!(sent[1].to_string().contains("first") && sent[2].to_string().contains("second"), "{platform}: in order");
        assert!(entries(&store).await.iter().all(|e| e.status == OutboxStatus::Delivered));
    }
}

/// A webhook's rate-limit answers are outside input: however absurd the wait they ask for
/// (1e20 s, NaN, negative), classifying and pacing never panic, and every wait is bounded.
#[tokio::test]
async fn hostile_rate_limit_waits_never_panic_and_are_bounded() {
    use ravan_watch::domain::Platform;
    use ravan_watch::notify::deliver::{Pace, classify};
    use ravan_watch::notify::{DeliveryError, Sender};

    let cap = std::time::Duration::from_secs(300);
    for header in [
        Some(1e20),
        Some(f64::MAX),
        Some(f64::INFINITY),
        Some(f64::NAN),
        Some(-1.0),
        None,
    ] {
        for body in [
            "",
            r#"{"retry_after": 1e20, "global": false}"#,
            r#"{"retry_after": 1.7976931348623157e308}"#,
            r#"{"retry_after": -3}"#,
        ] {
            for platform in [Platform::Slack, Platform::Discord] {
                match classify(platform, 429, header, body) {
                    Err(DeliveryError::RateLimited(wait)) => {
                        assert!(wait <= cap, "{header:?} {body}: {wait:?}")
                    }
                    other => panic!("{header:?} {body}: {other:?}"),
                }
            }
        }
    }

    // Discord's bucket headers on a success: the pause before the next message is bounded too.
    for reset in ["1e20", "1.7976931348623157e308", "inf", "NaN", "-2"] {
        let discord = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(
                ResponseTemplate::new(204)
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("x-ratelimit-reset-after", reset),
            )
            .mount(&discord)
            .await;
        let hook = webhook(
            Platform::Discord,
            &format!("{}/api/webhooks/1/tok", discord.uri()),
        );
        let sender = Sender::new(std::time::Duration::from_secs(5)).unwrap();
        let pace = sender.send(&hook, &serde_json::json!({})).await.unwrap();
        match pace {
            Pace::WaitBeforeNext(wait) => assert!(wait <= cap, "{reset}: {wait:?}"),
            Pace::Free => {}
        }
    }
}

/// Polls `arrivals` until it holds `n` times (or a deadline), and returns them.
async fn wait_for_arrivals(
    arrivals: &std::sync::Mutex<Vec<std::time::Instant>>,
    n: usize,
    what: &str,
) -> Vec<std::time::Instant> {
    wait_until_some(
        Duration::from_secs(20),
        format!("{what}: {n} requests"),
        || async {
            let seen = arrivals.lock().unwrap().clone();
            (seen.len() >= n).then_some(seen)
        },
    )
    .await
}

/// Each destination is drained on its own: while one is paced (Slack's interval, Discord's
/// empty bucket), rate limited (429 for minutes) or hanging (no answer yet), an alert to another
/// destination goes out within a second of being committed. Stopping the worker meanwhile is
/// prompt and sends nothing more to the held-up one.
#[tokio::test]
async fn a_slow_destination_delays_no_alert_to_another_by_more_than_a_second() {
    let cases = [
        (
            "paced: Slack's interval",
            Platform::Slack,
            ResponseTemplate::new(200).set_body_string("ok"),
        ),
        (
            "paced: Discord's empty bucket",
            Platform::Discord,
            ResponseTemplate::new(204)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset-after", "60"),
        ),
        (
            "rate limited for 5 minutes",
            Platform::Slack,
            ResponseTemplate::new(429).insert_header("retry-after", "300"),
        ),
        (
            "hanging: no answer for 3 s",
            Platform::Discord,
            ResponseTemplate::new(204).set_delay(Duration::from_secs(3)),
        ),
    ];
    for (what, platform, answer) in cases {
        let (slow, slow_arrivals) = recording_sink(vec![], answer).await;
        let (fast, fast_arrivals) = recording_sink(vec![], ResponseTemplate::new(204)).await;
        let store = Store::open("sqlite::memory:").await.unwrap();
        let outbox = Outbox::new(
            store.clone(),
            RetryPolicy {
                timeout: Duration::from_secs(5),
                slack_interval: Duration::from_secs(60),
                ..policy()
            },
            Leadership::for_tests(),
        )
        .unwrap();
        let held = hook(&slow, platform);
        commit_batches(
            &store,
            &[
                vec![(monitor_down("held 1"), held.clone())],
                vec![(monitor_down("held 2"), held.clone())],
            ],
        )
        .await;
        let worker = outbox.spawn();
        wait_for_arrivals(&slow_arrivals, 1, what).await;

        let committed = std::time::Instant::now();
        store
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[],
                &MonitorState::default(),
                &[(monitor_down("other"), vec![hook(&fast, Platform::Discord)])],
                Utc::now(),
            )
            .await
            .unwrap();
        outbox.wake();
        let arrived = wait_for_arrivals(&fast_arrivals, 1, what).await[0];
        println!(
            "{what}: the other destination's alert went out {:?} after it was committed",
            arrived - committed
        );
        assert!(
            arrived - committed <= Duration::from_secs(1),
            "{what}: the other destination's alert waited {:?}",
            arrived - committed
        );

        let stopping = std::time::Instant::now();
        assert!(
            worker.stop(Duration::from_secs(10)).await,
            "{what}: the worker did not stop in 10 s"
        );
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "{what}: stopping took {:?}",
            stopping.elapsed()
        );
        let sent = requests(&slow).await;
        assert_eq!(
            sent.len(),
            1,
            "{what}: nothing more went to the held-up one"
        );
        assert!(sent[0].to_string().contains("held 1"), "{what}");
        let pending: Vec<String> = entries(&store)
            .await
            .into_iter()
            .filter(|e| e.status == OutboxStatus::Pending)
            .map(|e| format!("{:?}", e.message))
            .collect();
        let expected = if what.starts_with("rate limited") {
            2
        } else {
            1
        };
        assert_eq!(pending.len(), expected, "{what}: {pending:?}");
        assert!(
            pending.iter().all(|p| p.contains("held")),
            "{what}: {pending:?}"
        );
    }
}

/// Stopping while a message is on its way waits for the webhook's answer and records it, and
/// starts no further send: after a restart, each message is sent exactly once.
#[tokio::test]
async fn stopping_lets_the_send_in_progress_finish_and_nothing_is_sent_twice() {
    let (server, arrivals) = recording_sink(
        vec![],
        ResponseTemplate::new(204).set_delay(Duration::from_millis(1500)),
    )
    .await;
    let h = hook(&server, Platform::Discord);
    let store = Store::open("sqlite::memory:").await.unwrap();
    commit_batches(
        &store,
        &[
            vec![(monitor_down("first"), h.clone())],
            vec![(monitor_down("second"), h.clone())],
        ],
    )
    .await;
    let patient = RetryPolicy {
        timeout: Duration::from_secs(5),
        ..policy()
    };
    let outbox = Outbox::new(store.clone(), patient, Leadership::for_tests()).unwrap();
    let worker = outbox.spawn();
    wait_for_arrivals(&arrivals, 1, "first send").await;
    assert!(
        worker.stop(Duration::from_secs(10)).await,
        "the send in progress finished within its time limit"
    );
    let status: Vec<OutboxStatus> = entries(&store).await.iter().map(|e| e.status).collect();
    assert_eq!(
        status,
        [OutboxStatus::Delivered, OutboxStatus::Pending],
        "the answered send is recorded; the next one never started"
    );
    assert_eq!(requests(&server).await.len(), 1);

    // The next start sends only what was left.
    let restarted = Outbox::new(store.clone(), patient, Leadership::for_tests()).unwrap();
    assert_eq!(restarted.pass(Utc::now()).await.unwrap().delivered, 1);
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 2, "no duplicate");
    assert!(sent[0].to_string().contains("first") && sent[1].to_string().contains("second"));
}
