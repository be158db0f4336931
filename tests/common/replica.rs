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
        let mut addr = None;
        wait_until(Duration::from_secs(30), "the replica to listen", || {
            addr = replica.logged_addr();
            let found = addr.is_some();
            async move { found }
        })
        .await;
        replica.base = format!("http://{}", addr.unwrap());
        replica
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
    pub async fn terminate(mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let child = &mut self.child;
        let status = wait_until_some(Duration::from_secs(20), "the replica to stop", || {
            std::future::ready(child.try_wait().unwrap())
        })
        .await;
        status.code()
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
