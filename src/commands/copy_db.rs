//! `ravan-watch copy-db FROM_URL TO_URL`: moves everything the service stores (watched agents
//! and their states, unwatched agents, pending alerts and delivery history, dead webhooks) to
//! another database, e.g. from SQLite to PostgreSQL ([`CopyStore`](crate::store::CopyStore)).
//!
//! The source is read in one transaction; the target is written in one transaction, all or
//! nothing, and only when it is empty. Both are opened with [`Store::open`], which brings each
//! schema up to date first (the source's too, as `serve` would). The lease is not copied.
//!
//! A URL's password is never printed: URLs are shown masked, and error messages that might
//! quote one are redacted. Exit status: 0 copied, 2 bad input (a URL that does not open, a
//! non-empty target, the same database twice), 1 the copy failed otherwise (nothing written).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::domain::secret::{masked_database_url, redact_database_url};
use crate::store::{OutboxStatus, Snapshot, Store, StoreError};

/// Why the copy did not happen: a one-line message, and whose fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyError {
    /// Exit 2: the arguments or the target are not fit for a copy.
    BadInput(String),
    /// Exit 1: reading or writing failed; the target holds nothing of the copy.
    Failed(String),
}

impl CopyError {
    pub fn message(&self) -> &str {
        match self {
            Self::BadInput(m) | Self::Failed(m) => m,
        }
    }

    pub fn exit_status(&self) -> u8 {
        match self {
            Self::BadInput(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

pub fn main(from: &str, to: &str) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(from, to)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ravan-watch: copy-db: {}", e.message());
            ExitCode::from(e.exit_status())
        }
    }
}

/// Copies `from` into `to`; returns the summary line (URLs masked).
pub async fn run(from: &str, to: &str) -> Result<String, CopyError> {
    for (name, url) in [("FROM_URL", from), ("TO_URL", to)] {
        if !has_known_scheme(url) {
            return Err(CopyError::BadInput(format!(
                "{name} {}: expected sqlite://PATH or postgres://…",
                masked_database_url(url)
            )));
        }
    }
    if same_database(from, to) {
        return Err(CopyError::BadInput(format!(
            "FROM_URL and TO_URL are the same database ({})",
            masked_database_url(from)
        )));
    }
    // Opening a SQLite URL creates the file: a source that is not there is a typo, not an
    // empty database to copy.
    if let Some(path) = sqlite_file(from).filter(|p| !p.exists()) {
        return Err(CopyError::BadInput(format!(
            "FROM_URL {}: no such database file ({})",
            masked_database_url(from),
            path.display()
        )));
    }
    let source = open("FROM_URL", from).await?;
    let target = match open("TO_URL", to).await {
        Ok(target) => target,
        Err(e) => {
            source.close().await;
            return Err(e);
        }
    };
    let result = copy(&source, from, &target, to).await;
    source.close().await;
    target.close().await;
    let snapshot = result?;
    Ok(summary(&snapshot, from, to))
}

async fn copy(source: &Store, from: &str, target: &Store, to: &str) -> Result<Snapshot, CopyError> {
    let snapshot = source.export().await.map_err(|e| {
        CopyError::Failed(format!(
            "reading FROM_URL {}: {}; nothing was written",
            masked_database_url(from),
            redacted(&e, from)
        ))
    })?;
    target.import(&snapshot).await.map_err(|e| {
        let said = format!("TO_URL {}: {}", masked_database_url(to), redacted(&e, to));
        match e {
            StoreError::NotEmpty(_) => CopyError::BadInput(said),
            _ => CopyError::Failed(format!("writing {said}; nothing was written")),
        }
    })?;
    Ok(snapshot)
}

async fn open(name: &str, url: &str) -> Result<Store, CopyError> {
    Store::open(url).await.map_err(|e| {
        CopyError::BadInput(format!(
            "{name} {} does not open: {}",
            masked_database_url(url),
            redacted(&e, url)
        ))
    })
}

/// `e` on one line, without `url`'s passwords.
fn redacted(e: &StoreError, url: &str) -> String {
    let line = e.to_string().replace(['\n', '\r'], " ");
    redact_database_url(&line, url)
}

/// `copied 12 agents, 3 unwatched, 40 outbox entries (2 pending), 1 dead webhook, 20 events,
/// 15 health intervals from … to …`
pub fn summary(snapshot: &Snapshot, from: &str, to: &str) -> String {
    let pending = snapshot
        .outbox
        .iter()
        .filter(|(entry, _)| entry.status == OutboxStatus::Pending)
        .count();
    format!(
        "copied {}, {} unwatched, {} ({pending} pending), {}, {}, {} from {} to {}",
        count(snapshot.agents.len(), "agent", "agents"),
        snapshot.unwatched.len(),
        count(snapshot.outbox.len(), "outbox entry", "outbox entries"),
        count(
            snapshot.dead_webhooks.len(),
            "dead webhook",
            "dead webhooks"
        ),
        count(snapshot.events.len(), "event", "events"),
        count(
            snapshot.health_intervals.len(),
            "health interval",
            "health intervals"
        ),
        masked_database_url(from),
        masked_database_url(to),
    )
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn has_known_scheme(url: &str) -> bool {
    ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

/// The file of a `sqlite://PATH` (or `sqlite:PATH`) URL; `None` for another scheme or an
/// in-memory database.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// The same URL, or two SQLite URLs naming one existing file.
fn same_database(from: &str, to: &str) -> bool {
    if from.trim() == to.trim() {
        return true;
    }
    match (sqlite_file(from), sqlite_file(to)) {
        (Some(a), Some(b)) => match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_files_are_found_in_urls() {
        assert_eq!(
            sqlite_file("sqlite://a/b.db"),
            Some(PathBuf::from("a/b.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_file("sqlite:c.db"), Some(PathBuf::from("c.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u:p@h/db"), None);
    }

    #[test]
    fn one_file_named_twice_is_the_same_database() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.db");
        std::fs::write(&file, b"").unwrap();
        let plain = format!("sqlite://{}", file.display());
        let roundabout = format!("sqlite://{}/./a.db", dir.path().display());
        assert!(same_database(&plain, &roundabout));
        assert!(same_database("sqlite::memory:", "sqlite::memory:"));
        assert!(!same_database(&plain, "sqlite::memory:"));
        assert!(!same_database(
            &plain,
            &format!("sqlite://{}/b.db", dir.path().display())
        ));
    }
}
