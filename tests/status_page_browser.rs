//! The status pages in a real browser.
//!
//! - Five agents: the real `serve` (in-process, on 127.0.0.1:0) polls a wiremock Ravan every
//!   second for five agents in different states, then headless Debian Chromium loads `/` with
//!   basic-auth credentials in the URL. The rendered DOM must name every agent and its status;
//!   screenshots (phone, phone in dark mode, desktop) go to `$CARGO_TARGET_TMPDIR/status-page/`.
//! - A thousand agents with a month of history, seeded through the real store
//!   (`common::history`), served by the real app with a schedule that does not poll during the
//!   test: the overview must stay under 1 MB with every hostile name escaped, filter and search
//!   must find the right rows, and an agent's page must show its timeline with each
//!   destination's outcome. Screenshots of the overview and of one agent's page go to
//!   `$CARGO_TARGET_TMPDIR/status-page/`, and also to `$RAVAN_WATCH_SCREENSHOTS_DIR` when set
//!   (`RAVAN_WATCH_SCREENSHOTS_DIR=docs cargo test --test status_page_browser` makes the ones
//!   the README shows).
//!
//! Without `/usr/bin/chromium` the test prints a skip line and passes, unless `CI` is set: then
//! it fails (`.ci/run` installs Chromium and sets `CI=1`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::history::{self, BOLD_NAME, Kind, SCRIPT_NAME};
use common::{AGENT_A, AGENT_B, AGENT_C, FakeRavan, TestSettings, ids, wait_until};
use ravan_watch::store::{EventQuery, EventsAbout, OutboxStatus, Store};
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "browser-test-token";
const LIMIT: Duration = Duration::from_secs(30);
/// Chromium is killed after this long.
const BROWSER_LIMIT: Duration = Duration::from_secs(30);

const AGENT_D: &str = "6a7b8c9d-0e1f-4a2b-9c3d-4e5f60718293";
const AGENT_E: &str = "c1d2e3f4-a5b6-4c7d-8e9f-a0b1c2d3e4f5";

/// (agent id, name, the status text the overview's row must show).
const AGENTS: [(&str, &str, &str); 5] = [
    (AGENT_A, "Sales line", "healthy"),
    (AGENT_B, "Billing & <Support>", "errored"),
    (AGENT_C, "Front desk", "not_connected"),
    (AGENT_D, "Night shift", "inactive"),
    (AGENT_E, "Ghost agent", "unknown: polls fail"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_every_agent_in_chromium() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{CHROMIUM} is missing and CI is set: the browser test is mandatory in CI");
        }
        println!("skipped: {CHROMIUM} is not installed (set CI to make this a failure)");
        return;
    }

    // Ravan: A healthy, B errored with an account error, C not connected, D inactive (muted
    // below), E never observed (every poll a 502; a 404 would make it "not found at Ravan").
    let ravan = FakeRavan::start().await;
    ravan.set_answer(AGENT_E, wiremock::ResponseTemplate::new(502));
    ravan.set_status(AGENT_A, "active", None);
    ravan.set_status(AGENT_B, "errored", Some("Cal.com token revoked"));
    ravan.set_status(AGENT_C, "not_connected", Some("Calendar not linked"));
    ravan.set_status(AGENT_D, "inactive", None);
    // B's own Slack webhook answers "gone", so B's card shows a delivery problem.
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T0/B0/dead-secret"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .mount(&slack)
        .await;
    let slack_host = slack.address().to_string();

    let (_db, database) = common::temp_database();
    let service = TestSettings::new(&ravan.uri())
        .api(&database, TOKEN)
        .every_second()
        .poll_timeout("2s")
        .failure(1)
        .set("WEBHOOK_ALLOWED_HOSTS", slack_host.as_str())
        .start()
        .await;
    let api = format!("http://{}", service.addr());
    let http = reqwest::Client::new();

    for (id, name, _) in AGENTS {
        let mut body = json!({"agent_id": id, "name": name});
        if id == AGENT_B {
            body["slack_webhook_url"] =
                json!(format!("http://{slack_host}/services/T0/B0/dead-secret"));
        }
        let resp = http
            .post(format!("{api}/agents"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{}",
            resp.text().await.unwrap()
        );
    }
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let resp = http
        .patch(format!("{api}/agents/{AGENT_D}"))
        .bearer_auth(TOKEN)
        .json(&json!({"muted": true, "muted_until": until}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Real poll cycles: wait until every agent is checked, the four Ravan knows are observed,
    // and B's dead webhook is known.
    let agents = || async {
        let list = common::json_of(http.get(format!("{api}/agents")).bearer_auth(TOKEN)).await;
        list["agents"].as_array().cloned().unwrap_or_default()
    };
    wait_until(LIMIT, "every agent polled, B's webhook dead", || async {
        let list = agents().await;
        list.len() == AGENTS.len()
            && list
                .iter()
                .all(|a| !a["state"]["last_checked_at"].is_null())
            && list
                .iter()
                .all(|a| a["agent_id"] == AGENT_E || !a["state"]["status"].is_null())
            && list
                .iter()
                .any(|a| a["agent_id"] == AGENT_B && !a["delivery_error"].is_null())
    })
    .await;
    // A cycle has succeeded, so the monitor reads "reachable".
    wait_until(LIMIT, "the monitor state written", || async {
        let resp = http
            .get(format!("{api}/"))
            .basic_auth("operator", Some(TOKEN))
            .send()
            .await
            .unwrap();
        resp.text()
            .await
            .unwrap()
            .contains("Ravan API</dt><dd>reachable")
    })
    .await;

    // Without (or with wrong) credentials: 401 asking for basic auth.
    for req in [
        http.get(format!("{api}/")),
        http.get(format!("{api}/"))
            .basic_auth("operator", Some("wrong")),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic "), "{challenge}");
    }

    // Chromium, credentials in the URL.
    let port = service.addr().port();
    let url = format!("http://operator:{TOKEN}@127.0.0.1:{port}/");
    let dom = chromium(&["--dump-dom", &url]).await;
    let text = page_text(&dom);
    assert!(text.contains("ravan-watch"), "{text}");
    assert!(text.contains("5 watched agents"), "{text}");
    for (id, name, status) in AGENTS {
        assert!(text.contains(name), "{name} not on the page: {text}");
        assert!(text.contains(id), "{id} not on the page: {text}");
        let card = card_text(&dom, id);
        assert!(card.contains(status), "{name}: {status} not in {card}");
    }
    assert!(card_text(&dom, AGENT_A).contains("healthy"));
    assert!(card_text(&dom, AGENT_D).contains("muted"));
    assert!(card_text(&dom, AGENT_E).contains("unknown: polls fail"));
    // What a row has no room for is on the agent's page.
    let agent_page = |id: &str| {
        let url = format!("http://operator:{TOKEN}@127.0.0.1:{port}/status/{id}");
        async move { page_text(&chromium(&["--dump-dom", &url]).await) }
    };
    let b = agent_page(AGENT_B).await;
    assert!(b.contains("Cal.com token revoked"), "{b}");
    assert!(b.contains("no_service"), "delivery error: {b}");
    assert!(b.contains("Billing & <Support>"), "{b}");
    assert!(agent_page(AGENT_C).await.contains("Calendar not linked"));
    assert!(agent_page(AGENT_D).await.contains("Muted yes, until"));
    assert!(
        !dom.contains("<Support>") && !dom.contains("dead-secret"),
        "escaped, secret masked"
    );
    assert!(text.contains("Ravan API reachable"), "{text}");
    // B's dead webhook is a banner until its URL is set again.
    assert!(text.contains("1 dead webhook"), "{text}");
    assert!(text.contains("answered HTTP 404: no_service"), "{text}");
    // Unhealthy before unknown before healthy.
    let at = |id: &str| dom.find(&format!("id=\"agent-{id}\"")).unwrap();
    for unhealthy in [AGENT_B, AGENT_C, AGENT_D] {
        assert!(at(unhealthy) < at(AGENT_E) && at(AGENT_E) < at(AGENT_A));
    }

    // Screenshots.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&dir).unwrap();
    for (file, size, dark) in [
        ("phone.png", "412,915", false),
        ("phone-dark.png", "412,915", true),
        ("desktop.png", "1366,1000", false),
    ] {
        let png = dir.join(file);
        let _ = std::fs::remove_file(&png);
        let shot = format!("--screenshot={}", png.display());
        let size = format!("--window-size={size}");
        let mut args = vec![shot.as_str(), size.as_str(), "--hide-scrollbars"];
        if dark {
            args.push("--force-dark-mode");
        }
        args.push(&url);
        chromium(&args).await;
        let bytes = std::fs::read(&png).unwrap_or_default();
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG ({} bytes)",
            png.display(),
            bytes.len()
        );
        println!("screenshot: {} ({} bytes)", png.display(), bytes.len());
    }

    service.stop().await;
}

/// The size of the fleet of the second test.
const FLEET: usize = 1000;
/// The overview of [`FLEET`] agents must stay below this.
const MAX_PAGE_BYTES: usize = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_agents_with_a_month_of_history_stay_small_searchable_and_escaped() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{CHROMIUM} is missing and CI is set: the browser test is mandatory in CI");
        }
        println!("skipped: {CHROMIUM} is not installed (set CI to make this a failure)");
        return;
    }
    let (_db, database) = common::temp_database();
    let store = Store::open(&database).await.unwrap();
    let now = chrono::Utc::now();
    let fleet = history::seed(&store, FLEET, now).await;
    // Ravan is a fake nobody asks: the schedule's first tick is on New Year's Day, so the
    // seeded states stay as they are.
    let ravan = FakeRavan::start().await;
    let service = TestSettings::new(&ravan.uri())
        .api(&database, TOKEN)
        .never_polling()
        .start()
        .await;
    let port = service.addr().port();
    let api = format!("http://{}", service.addr());
    let http = reqwest::Client::new();
    let get = |path: String| {
        let req = http
            .get(format!("{api}{path}"))
            .basic_auth("operator", Some(TOKEN));
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };

    // The whole overview: under 1 MB, a row per agent, unhealthy ones first.
    let (status, html) = get("/".into()).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    println!(
        "overview of {FLEET} agents: {} bytes (limit {MAX_PAGE_BYTES})",
        html.len()
    );
    assert!(html.len() < MAX_PAGE_BYTES, "{} bytes", html.len());
    assert_eq!(rows(&html), FLEET);
    let of = |kind: fn(Kind) -> bool| fleet.iter().filter(|a| kind(a.kind)).count();
    let unhealthy = of(|k| k.health() == "unhealthy");
    let unknown = of(|k| k.health() == "unknown");
    assert!(unhealthy > 0 && unknown > 0);
    assert!(
        html.contains(&format!(
            "{FLEET} watched agents: {unhealthy} unhealthy, {unknown} unknown, {} healthy, 10 muted",
            FLEET - unhealthy - unknown
        )),
        "{}",
        summary(&html)
    );
    let last_unhealthy = html.rfind("data-health=\"unhealthy\"").unwrap();
    assert!(last_unhealthy < html.find("data-health=\"unknown\"").unwrap());
    assert!(
        html.rfind("data-health=\"unknown\"").unwrap()
            < html.find("data-health=\"healthy\"").unwrap()
    );
    // A steady agent's bar is one element; a flapping one's shows its recent outage.
    let steady = row(&html, &ids::agent_id(0));
    assert_eq!(steady.matches("<i class=").count(), 1, "{steady}");
    assert!(
        steady.contains("aria-label=\"Last 48 h: 48 h healthy\""),
        "{steady}"
    );
    assert!(steady.contains(">100%</div>"), "{steady}");
    let flapping = row(&html, &ids::agent_id(11));
    assert!(flapping.contains("h unhealthy"), "{flapping}");
    // Every name, escaped: in the HTML as askama writes it, in the DOM as text and never as
    // an element.
    for a in &fleet {
        assert!(html.contains(&escaped(&a.name)), "{} not escaped", a.name);
    }
    assert!(!html.contains("<script") && !html.contains("<b>bold"));
    let url = format!("http://operator:{TOKEN}@127.0.0.1:{port}/");
    let dom = chromium(&["--dump-dom", &url]).await;
    assert!(
        !dom.contains("<script") && !dom.contains("<b>bold"),
        "an injected element"
    );
    let text = page_text(&dom);
    for a in &fleet {
        assert!(text.contains(&a.name), "{} not on the page", a.name);
    }
    assert!(card_text(&dom, &ids::agent_id(1)).contains(SCRIPT_NAME));
    assert!(card_text(&dom, &ids::agent_id(2)).contains(BOLD_NAME));

    // Filtered by health: only those rows; the counts stay the fleet's.
    let (status, html) = get("/?health=unhealthy".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&html), unhealthy, "only the unhealthy rows");
    assert_eq!(html.matches("data-health=\"unhealthy\"").count(), unhealthy);
    assert!(html.contains(&format!("Showing {unhealthy} of {FLEET} agents.")));
    assert!(html.contains(&format!("{unhealthy} unhealthy, {unknown} unknown")));
    for a in fleet.iter().filter(|a| a.kind == Kind::Down) {
        row(&html, &a.id);
    }
    // Searched by part of a name (any case), and by part of an id.
    let (_, html) = get("/?q=LINE+0042".into()).await;
    assert_eq!(rows(&html), 1, "one agent's name has \"line 0042\"");
    row(&html, &ids::agent_id(42));
    let (_, html) = get("/?q=000000000777".into()).await;
    assert_eq!(rows(&html), 1);
    row(&html, &ids::agent_id(777));
    let (_, html) = get("/?q=%3Cscript%3E&health=healthy".into()).await;
    assert_eq!(rows(&html), 1);
    row(&html, &ids::agent_id(1));
    // A value the form cannot send.
    let (status, body) = get("/?health=sick".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "invalid_request", "{body}");

    // An agent's page: its timeline, every event with each destination's outcome, as stored.
    let flapper = &fleet[11];
    assert!(matches!(flapper.kind, Kind::Flapping(_)));
    let events = store
        .events(&EventQuery {
            about: EventsAbout::Watched(flapper.id.parse().unwrap()),
            before: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(events.len(), flapper.events, "the seeded events are stored");
    let outcomes = |o: OutboxStatus| {
        events
            .iter()
            .flat_map(|e| &e.deliveries)
            .filter(|d| d.outcome == o)
            .count()
    };
    let (status, html) = get(format!("/status/{}", flapper.id)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    println!("{}'s page: {} bytes", flapper.name, html.len());
    assert_eq!(html.matches("<li class=\"ev\">").count(), flapper.events);
    assert_eq!(
        html.matches("<span class=\"o delivered\">").count(),
        outcomes(OutboxStatus::Delivered)
    );
    assert_eq!(
        html.matches("<span class=\"o failed\">").count(),
        outcomes(OutboxStatus::Failed)
    );
    assert!(outcomes(OutboxStatus::Delivered) > 0);
    let url = format!(
        "http://operator:{TOKEN}@127.0.0.1:{port}/status/{}",
        flapper.id
    );
    let text = page_text(&chromium(&["--dump-dom", &url]).await);
    for needle in [
        flapper.name.as_str(),
        "down",
        "recovered",
        "errored → active",
        "https://hooks.slack.com/services/T0/B0/***",
        "delivered",
        "All agents",
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    assert!(!text.contains("seed-secret"));
    // Some Discord delivery failed somewhere, and says why on its agent's page.
    let failed = store
        .events(&EventQuery {
            about: EventsAbout::All,
            before: None,
            limit: 10_000,
        })
        .await
        .unwrap()
        .into_iter()
        .find(|e| {
            e.agent_id.is_some()
                && e.deliveries
                    .iter()
                    .any(|d| d.outcome == OutboxStatus::Failed)
        })
        .expect("a failed delivery was seeded");
    let (_, html) = get(format!("/status/{}", failed.agent_id.unwrap())).await;
    assert!(
        html.contains("Discord answered 404: Unknown Webhook"),
        "{html}"
    );
    // The monitor's own history on the overview.
    let (_, html) = get("/".into()).await;
    let monitor = &html[html.find("id=\"monitor-events\"").unwrap()..];
    assert!(monitor.contains("polling failed") && monitor.contains("polling works again"));
    // Unknown and malformed ids are 404s.
    for id in [ids::agent_id(FLEET + 5), "not-an-id".to_owned()] {
        let (status, body) = get(format!("/status/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
        assert!(body.starts_with("{\"error\":"), "{body}");
    }

    // Screenshots: the overview on a desktop, and the flapping agent's page.
    let overview = format!("http://operator:{TOKEN}@127.0.0.1:{port}/");
    let detail = format!(
        "http://operator:{TOKEN}@127.0.0.1:{port}/status/{}",
        flapper.id
    );
    for (file, url, size) in [
        ("status-overview.png", overview.as_str(), "1280,900"),
        ("status-agent.png", detail.as_str(), "1024,900"),
    ] {
        screenshot(file, url, size).await;
    }
    service.stop().await;
}

/// A screenshot of `url` in a `size` window, into `$CARGO_TARGET_TMPDIR/status-page/`, and
/// into `$RAVAN_WATCH_SCREENSHOTS_DIR` too when it is set.
async fn screenshot(file: &str, url: &str, size: &str) {
    let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page")];
    dirs.extend(std::env::var_os("RAVAN_WATCH_SCREENSHOTS_DIR").map(PathBuf::from));
    for dir in dirs {
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join(file);
        let _ = std::fs::remove_file(&png);
        let shot = format!("--screenshot={}", png.display());
        let size = format!("--window-size={size}");
        chromium(&[&shot, &size, "--hide-scrollbars", url]).await;
        let bytes = std::fs::read(&png).unwrap_or_default();
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG ({} bytes)",
            png.display(),
            bytes.len()
        );
        println!("screenshot: {} ({} bytes)", png.display(), bytes.len());
    }
}

/// The overview's line of counts.
fn summary(html: &str) -> &str {
    let start = html.find("<p class=\"sub\">").expect("the counts");
    &html[start..start + html[start..].find("</p>").unwrap()]
}

/// The rows of the overview's table.
fn rows(html: &str) -> usize {
    html.matches("<div id=\"agent-").count()
}

/// The HTML of one agent's row; panics if it is not on the page.
fn row<'h>(html: &'h str, id: &str) -> &'h str {
    let start = html
        .find(&format!("<div id=\"agent-{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let end = start + html[start..].find('\n').unwrap();
    &html[start..end]
}

/// `text` as askama escapes it.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Runs headless Chromium with `args` in a profile of its own; its stdout. Killed after
/// [`BROWSER_LIMIT`].
async fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    let out = tokio::time::timeout(BROWSER_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("chromium {args:?} did not finish within {BROWSER_LIMIT:?}"))
        .unwrap();
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The text of an HTML fragment: tags dropped, whitespace collapsed, the entities Chromium's
/// serializer writes decoded.
fn page_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    let mut in_style = false;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("<style") {
            in_style = true;
        }
        if in_style {
            match rest.find("</style>") {
                Some(end) => {
                    rest = &rest[end + "</style>".len()..];
                    in_style = false;
                    continue;
                }
                None => break,
            }
        }
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
        rest = &rest[c.len_utf8()..];
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of one agent's row.
fn card_text(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"agent-{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let end = start + dom[start..].find('\n').unwrap();
    page_text(&dom[start..end])
}
