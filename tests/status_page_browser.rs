//! The status page in a real browser: the real `serve` (in-process, on 127.0.0.1:0) polls a
//! wiremock Ravan every second for five agents in different states, then headless Debian
//! Chromium loads `/` with basic-auth credentials in the URL. The rendered DOM must name every
//! agent and its status; screenshots (phone, phone in dark mode, desktop) go to
//! `$CARGO_TARGET_TMPDIR/status-page/`.
//!
//! Without `/usr/bin/chromium` the test prints a skip line and passes, unless `CI` is set: then
//! it fails (`.ci/run` installs Chromium and sets `CI=1`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{AGENT_A, AGENT_B, AGENT_C, FakeRavan, wait_until};
use ravan_watch::app::App;
use ravan_watch::config::Config;
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

/// (agent id, name, the status text the page must show).
const AGENTS: [(&str, &str, &str); 5] = [
    (AGENT_A, "Sales line", "active"),
    (AGENT_B, "Billing & <Support>", "errored"),
    (AGENT_C, "Front desk", "not_connected"),
    (AGENT_D, "Night shift", "inactive"),
    (AGENT_E, "Ghost agent", "not polled yet"),
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
    let base = ravan.uri();
    let config = Config::from_pairs([
        ("DATABASE_URL", database.as_str()),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("ADMIN_TOKEN", TOKEN),
        ("RAVAN_API_TOKEN", "test-token"),
        ("RAVAN_API_BASE_URL", base.as_str()),
        ("POLL_SCHEDULE", "* * * * * *"),
        ("POLL_TIMEOUT", "2s"),
        ("FAILURE_THRESHOLD", "1"),
        ("WEBHOOK_ALLOWED_HOSTS", slack_host.as_str()),
    ])
    .unwrap();
    let service = App::build(config).await.unwrap().start().await.unwrap();
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
    assert!(card_text(&dom, AGENT_B).contains("Cal.com token revoked"));
    assert!(
        card_text(&dom, AGENT_B).contains("no_service"),
        "delivery error"
    );
    assert!(card_text(&dom, AGENT_C).contains("Calendar not linked"));
    assert!(card_text(&dom, AGENT_D).contains("Muted yes, until"));
    assert!(card_text(&dom, AGENT_E).contains("unknown: polls fail"));
    assert!(
        !dom.contains("<Support>") && !dom.contains("dead-secret"),
        "escaped, secret masked"
    );
    assert!(text.contains("Ravan API reachable"), "{text}");
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

/// The text of one agent's card.
fn card_text(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"agent-{id}\""))
        .unwrap_or_else(|| panic!("no card for {id}"));
    let end = start + dom[start..].find("</article>").unwrap();
    page_text(&dom[start..end])
}
