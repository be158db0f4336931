//! `ravan-watch demo`: the real binary, no settings at all, read as a user would see it.

mod common;

use std::cell::RefCell;
use std::fmt;
use std::future::ready;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::bin::bin_command;
use common::wait_until_some;

/// The demo with an empty environment in an empty folder, and its stdout as a channel of lines.
fn start() -> (Child, mpsc::Receiver<String>, tempfile::TempDir) {
    let (mut cmd, dir) = bin_command(&["demo"], &[]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx, dir)
}

/// What `read_until` waits for, and (in its panic) the lines it got meanwhile.
struct LineWith<'a> {
    needle: &'a str,
    seen: &'a RefCell<Vec<String>>,
}

impl fmt::Display for LineWith<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seen = self.seen.borrow();
        write!(f, "{:?}; got:\n{}", self.needle, seen.join("\n"))
    }
}

/// Lines until one contains `needle`, or panics after `limit`.
async fn read_until(rx: &mpsc::Receiver<String>, needle: &str, limit: Duration) -> Vec<String> {
    let seen = RefCell::new(Vec::new());
    let what = LineWith {
        needle,
        seen: &seen,
    };
    wait_until_some(limit, what, || {
        let mut seen = seen.borrow_mut();
        let found = rx.try_iter().any(|line| {
            let found = line.contains(needle);
            seen.push(line);
            found
        });
        ready(found.then_some(()))
    })
    .await;
    seen.into_inner()
}

/// The demo's exit status; kills it and panics if it runs on past `limit`.
async fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    /// Kills the demo unless it has exited.
    struct KillOnDrop<'a>(&'a mut Child);
    impl Drop for KillOnDrop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
        }
    }
    let guard = KillOnDrop(child);
    wait_until_some(limit, "the demo to exit", || {
        ready(guard.0.try_wait().unwrap())
    })
    .await
}

#[tokio::test]
async fn shows_an_alert_then_stops_cleanly_on_ctrl_c() {
    let started = Instant::now();
    let (mut child, rx, _dir) = start();
    let intro = read_until(&rx, "Ctrl-C", Duration::from_secs(15)).await;
    assert!(
        intro.iter().any(|l| l.contains("simulated Ravan API")),
        "{intro:?}"
    );
    let lines = read_until(&rx, "lost its Cal.com connection", Duration::from_secs(30)).await;
    let first_alert = started.elapsed();
    let alert = lines.last().unwrap();
    assert!(alert.contains("Sales line"), "{alert}");
    assert!(
        !alert.contains('\x1b'),
        "no colour codes when stdout is not a terminal"
    );

    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = wait_exit(&mut child, Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "Ctrl-C is a clean stop");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.starts_with("Demo stopped after")),
        "{rest:?}"
    );
    eprintln!("first alert after {first_alert:?}");
}

/// The whole script, about 40 s: `cargo test --test demo -- --ignored`.
#[tokio::test]
#[ignore = "runs the whole ~40 s script"]
async fn the_whole_script_runs_to_its_summary() {
    let started = Instant::now();
    let (mut child, rx, _dir) = start();
    let lines = read_until(&rx, "Demo finished after", Duration::from_secs(75)).await;
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    let summary = lines.last().unwrap();
    assert!(
        summary.contains("7 alert messages shown (3 down, 1 changed, 3 recovered)"),
        "{summary}"
    );
    let text = lines.join("\n");
    assert!(text.contains("changed: errored → not_connected"), "{text}");
    assert!(
        !text.contains("Night shift ("),
        "the blip raised nothing: {text}"
    );
    assert!(!text.contains("Front desk ("), "{text}");
    eprintln!("the demo took {:?}", started.elapsed());
}
