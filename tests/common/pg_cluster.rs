//! A PostgreSQL cluster of one test's own, for a test that stops and restarts PostgreSQL under a
//! running service: the shared cluster of `scripts/test-postgres` must stay up for the other
//! tests. Needs PostgreSQL's initdb and pg_ctl (Debian's `postgresql` package). initdb refuses
//! to run as root, so as root the cluster runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway cluster on 127.0.0.1: user `ravan` with a random password (scram-sha-256), the
/// `postgres` database. Dropping it stops it and deletes its folder.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    password: String,
}

impl PgCluster {
    /// Creates and starts a cluster; `None` when no initdb is found (the caller skips or fails).
    /// Panics, with PostgreSQL's own words, when the cluster cannot start.
    pub fn start() -> Option<PgCluster> {
        let bin = bin_dir()?;
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            std::os::unix::fs::chown(dir.path(), Some(postgres_uid()), None).unwrap();
        }
        let cluster = PgCluster {
            dir,
            bin,
            as_postgres,
            port: super::free_port(),
            password: uuid::Uuid::new_v4().simple().to_string(),
        };
        let pwfile = cluster.dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", cluster.password)).unwrap();
        let mut initdb = cluster.command("initdb");
        initdb
            .arg("--pgdata")
            .arg(cluster.data())
            .arg("--pwfile")
            .arg(&pwfile)
            .args(["--username=ravan", "--auth=scram-sha-256"])
            .args(["--encoding=UTF8", "--no-locale", "--no-sync"]);
        cluster.check(initdb, "initdb");
        std::fs::remove_file(&pwfile).unwrap();
        // Loopback only, with the unix socket in our folder (no /var/run/postgresql needed); no
        // fsync, as nothing here has to outlive the test.
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\n",
            cluster.port,
            cluster.dir.path().display(),
        );
        let conf = cluster.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&settings);
        std::fs::write(&conf, text).unwrap();
        cluster.start_again();
        Some(cluster)
    }

    /// `postgres://ravan:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://ravan:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// The cluster's folder (data, socket and server log); deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server as an operator would (`pg_ctl stop -m fast`: clients are disconnected,
    /// then a checkpoint); returns once it is down.
    pub fn stop(&self) {
        let mut pg_ctl = self.pg_ctl();
        pg_ctl.args(["--mode=fast", "--wait", "stop"]);
        self.check(pg_ctl, "pg_ctl stop");
    }

    /// Starts the server again on the same data and port; returns once it accepts connections.
    pub fn start_again(&self) {
        let mut pg_ctl = self.pg_ctl();
        pg_ctl
            .arg("--log")
            .arg(self.dir.path().join("postgres.log"))
            .args(["--wait", "start"]);
        self.check(pg_ctl, "pg_ctl start");
    }

    /// Pauses the server (SIGSTOP to the postmaster and every process it started), as a
    /// stalled VM or a frozen container would: connections stay open and nothing answers.
    /// [`PgCluster::resume`] continues it; dropping the cluster does too.
    pub fn pause(&self) {
        self.signal_all(libc::SIGSTOP);
    }

    /// Continues a server [`PgCluster::pause`] paused.
    pub fn resume(&self) {
        self.signal_all(libc::SIGCONT);
    }

    /// Sends `signal` to the postmaster (the first line of `postmaster.pid`) and its children.
    fn signal_all(&self, signal: i32) {
        let pidfile = std::fs::read_to_string(self.data().join("postmaster.pid")).unwrap();
        let postmaster: i32 = pidfile.lines().next().unwrap().trim().parse().unwrap();
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Field 4, the parent's pid, counted after the command name's `)`.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if parent == Some(postmaster) {
                pids.push(pid);
            }
        }
        for pid in pids {
            // SAFETY: kill has no memory preconditions; a pid gone meanwhile only makes it fail.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Turns TLS on with a certificate for `localhost` from a new test CA, and accepts TCP
    /// connections over TLS only (`hostssl` in pg_hba.conf), then restarts the server. Returns
    /// the CA certificate's path (what a client trusts as `sslrootcert`).
    pub fn require_tls(&self) -> PathBuf {
        let data = self.data();
        let (cert, key) = (data.join("server.crt"), data.join("server.key"));
        let tls = self.dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        let (ca, ca_key, csr, ext) = (
            tls.join("ca.crt"),
            tls.join("ca.key"),
            tls.join("server.csr"),
            tls.join("ext"),
        );
        std::fs::write(&ext, "subjectAltName=DNS:localhost\n").unwrap();
        let openssl = |args: &[&std::ffi::OsStr]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl (Debian's openssl package) makes the test certificates");
            assert!(
                out.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let os = |s: &'static str| std::ffi::OsStr::new(s);
        openssl(&[
            os("req"),
            os("-x509"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-days"),
            os("1"),
            os("-subj"),
            os("/CN=ravan-watch test CA"),
            os("-keyout"),
            ca_key.as_os_str(),
            os("-out"),
            ca.as_os_str(),
        ]);
        openssl(&[
            os("req"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-subj"),
            os("/CN=localhost"),
            os("-keyout"),
            key.as_os_str(),
            os("-out"),
            csr.as_os_str(),
        ]);
        openssl(&[
            os("x509"),
            os("-req"),
            os("-days"),
            os("1"),
            os("-in"),
            csr.as_os_str(),
            os("-CA"),
            ca.as_os_str(),
            os("-CAkey"),
            ca_key.as_os_str(),
            os("-CAcreateserial"),
            os("-extfile"),
            ext.as_os_str(),
            os("-out"),
            cert.as_os_str(),
        ]);
        // PostgreSQL refuses a key others can read.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        if self.as_postgres {
            for file in [&cert, &key] {
                std::os::unix::fs::chown(file, Some(postgres_uid()), None).unwrap();
            }
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();
        let hba = data.join("pg_hba.conf");
        let text = std::fs::read_to_string(&hba).unwrap();
        let tls_only: String = text
            .lines()
            .map(|line| match line.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}\n"),
                None => format!("{line}\n"),
            })
            .collect();
        std::fs::write(&hba, tls_only).unwrap();
        self.stop();
        self.start_again();
        ca
    }

    /// Runs `sql` with psql against `url` (this cluster's or another): its output, trimmed, or
    /// psql's error. For tests without a PostgreSQL client of their own.
    pub fn psql(&self, url: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "--no-psqlrc",
                "--tuples-only",
                "--no-align",
                "--command",
                sql,
                url,
            ])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// pg_ctl on our data folder.
    fn pg_ctl(&self) -> Command {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl.arg("--pgdata").arg(self.data());
        pg_ctl
    }

    /// One of PostgreSQL's programs, as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "postgres", "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        }
    }

    /// Runs `command`; panics with its output and the server's log when it fails.
    fn check(&self, mut command: Command, what: &str) {
        let out = command.output().unwrap();
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.path().join("postgres.log"));
            panic!(
                "{what} failed ({}):\n{}{}\nserver log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                log.unwrap_or_default(),
            );
        }
    }
}

impl Drop for PgCluster {
    /// Stops the server without a checkpoint (the data goes with the folder); it may be down
    /// already.
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            // A paused server cannot stop.
            self.resume();
            let _ = self
                .pg_ctl()
                .args(["--mode=immediate", "--wait", "stop"])
                .output();
        }
    }
}

/// The folder of initdb and pg_ctl: from PATH, else the newest of Debian's versioned folders
/// (Debian keeps them off PATH).
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("initdb"))
            .find(|initdb| initdb.is_file())
    });
    let initdb = on_path.or_else(|| {
        let debian = std::fs::read_dir("/usr/lib/postgresql").ok()?;
        debian
            .filter_map(|entry| {
                let dir = entry.ok()?.path();
                let major: u32 = dir.file_name()?.to_str()?.split('.').next()?.parse().ok()?;
                let initdb = dir.join("bin/initdb");
                initdb.is_file().then_some((major, initdb))
            })
            .max()
            .map(|(_, initdb)| initdb)
    })?;
    // A symlink on PATH (e.g. /usr/local/bin/initdb): pg_ctl lies beside its target.
    Some(initdb.canonicalize().ok()?.parent()?.to_owned())
}

/// The `postgres` user's uid (`id -u postgres`).
fn postgres_uid() -> u32 {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "as root the cluster runs as the postgres user, and there is none \
         (Debian's postgresql package creates it)"
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
