//! `ravan-watch serve` as a real process, several at once on one database: for the tests of
//! leadership (who polls and sends) and failover (`kill -9`, SIGSTOP). Each replica listens on
//! a port of its own choosing (`127.0.0.1:0`), read back from its start-up log line, and keeps
//! everything it logged for the test to read.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::bin::bin_command;
use super::{wait_until, wait_until_some};

pub struct Replica {
    child: Child,
    pub base: String,
    logs: Arc<Mutex<String>>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Replica {
    /// Starts `serve` with `env` (plus `LISTEN_ADDR=127.0.0.1:0` and JSON logs) and waits until
    /// it listens.
    pub async fn start(env: &[(&str, &str)]) -> Replica {
        let mut all = vec![("LISTEN_ADDR", "127.0.0.1:0"), ("LOG_FORMAT", "json")];
        all.extend_from_slice(env);
        let (mut cmd, dir) = bin_command(&["serve"], &all);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (stderr, into) = (child.stderr.take().unwrap(), logs.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let mut logs = into.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let mut replica = Replica {
            child,
            base: String::new(),
            logs,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            _dir: dir,
        };
        let addr = wait_until_some(Duration::from_secs(30), "the replica to listen", || {
            // One that exits before it listens says why at once.
            if let Some(status) = replica.child.try_wait().unwrap() {
                panic!(
                    "the replica exited ({status}) before it listened:\n{}",
                    replica.logs()
                );
            }
            std::future::ready(replica.logged_addr())
        })
        .await;
        replica.base = format!("http://{addr}");
        replica
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `addr` of the "ravan-watch is watching" log line.
    fn logged_addr(&self) -> Option<String> {
        let logs = self.logs();
        logs.lines().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let fields = v.get("fields").unwrap_or(&v);
            (fields["message"] == "ravan-watch is watching")
                .then(|| fields["addr"].as_str().map(str::to_owned))
                .flatten()
        })
    }

    /// Reads everything the process logged, also after the replica is gone.
    pub fn logs_handle(&self) -> impl Fn() -> String + use<> {
        let logs = self.logs.clone();
        move || logs.lock().unwrap().clone()
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// The role `/readyz` reports (`leader`, `standby`), or `None` when it does not answer.
    pub async fn role(&self) -> Option<String> {
        let resp = self
            .client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = resp.json().await.ok()?;
        body["role"].as_str().map(str::to_owned)
    }

    /// `ravan_watch_leader` from `/metrics`.
    pub async fn leader_gauge(&self) -> Option<String> {
        self.gauge("ravan_watch_leader").await
    }

    /// The value of the metric `name` (without labels) in `/metrics`.
    pub async fn gauge(&self, name: &str) -> Option<String> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::to_owned)
    }

    /// Waits (`limit` at most) until `/readyz` says `role`.
    pub async fn wait_role(&self, role: &str, limit: Duration) {
        wait_until(limit, &format!("the replica to be {role}"), || async {
            self.role().await.as_deref() == Some(role)
        })
        .await;
    }

    /// Whether the process is still running (it never restarted or exited).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn signal(&self, signal: i32) {
        super::signal(&self.child, signal);
    }

    /// `kill -9`, and waits until the process is gone.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and waits (20 s at most) for a clean exit; returns its status code.
    pub async fn terminate(self) -> Option<i32> {
        self.terminate_within(Duration::from_secs(20)).await.0
    }

    /// SIGTERM, and waits (`limit` at most) for the exit; its status code and how long after
    /// the signal it came. Panics, with the logs, when it did not exit within `limit`.
    pub async fn terminate_within(mut self, limit: Duration) -> (Option<i32>, Duration) {
        self.signal(libc::SIGTERM);
        let sent = std::time::Instant::now();
        let child = &mut self.child;
        let status =
            super::poll_until(limit, || std::future::ready(child.try_wait().unwrap())).await;
        let took = sent.elapsed();
        match status {
            Some(status) => (status.code(), took),
            None => panic!(
                "the replica had not stopped {took:?} after SIGTERM:\n{}",
                self.logs()
            ),
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // A stopped process must be continued before it can die of SIGKILL cleanly.
        let _ = self.child.kill();
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
        let _ = self.child.wait();
    }
}
