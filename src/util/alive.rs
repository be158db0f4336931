//! Proof that a process is gone, from a file it keeps locked while it runs.
//!
//! Every `serve` process on a SQLite file holds an exclusive lock on a file of its own in a
//! folder beside the database (`<database>.holders/<its lease name>.lock`) from its start to its
//! end. The kernel drops the lock when the process ends, however it ends (`kill -9`, the OOM
//! killer), and one process sees another's lock whatever their pid namespaces: a container
//! restarted after a crash (a new pid namespace, its pid 1 again) can tell that its
//! predecessor is gone, and two live containers on the host's network (one hostname, both
//! pid 1) never mistake each other for dead. So a lock that can be taken proves its holder
//! gone; a file that is missing or cannot be read proves nothing.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// This process's lock; the file is removed when it is dropped (a clean stop).
#[derive(Debug)]
pub struct Alive {
    _file: File,
    path: PathBuf,
}

impl Alive {
    /// Holds the lock of `name` in `dir` (created if needed) for as long as the value lives.
    pub fn hold(dir: &Path, name: &str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = lock_path(dir, name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => io::Error::other("held by another process of that name"),
        })?;
        Ok(Self { _file: file, path })
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether the process that held `name`'s lock in `dir` provably ended: its file is there and
/// its lock can be taken. The file of an ended process is removed on the way.
pub fn gone(dir: &Path, name: &str) -> bool {
    let path = lock_path(dir, name);
    let Ok(file) = OpenOptions::new().write(true).open(&path) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = std::fs::remove_file(&path);
            true
        }
        Err(_) => false,
    }
}

/// The folder of the lock files of the processes sharing the SQLite file at `database`.
pub fn dir_beside(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_owned();
    name.push(".holders");
    database.with_file_name(name)
}

/// `name` as a file name: letters, digits, `.`, `-` and `_` kept, anything else `_`.
fn lock_path(dir: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_a_dropped_one_gone_and_a_missing_one_proves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("state.db.holders");
        let alive = Alive::hold(&dir, "host:42:abc").unwrap();
        assert!(!gone(&dir, "host:42:abc"), "held by a live holder");
        assert!(
            Alive::hold(&dir, "host:42:abc").is_err(),
            "one holder per name"
        );
        assert!(!gone(&dir, "never:1:0"), "no file: nothing proven");

        drop(alive);
        assert!(!gone(&dir, "host:42:abc"), "a clean stop removes its file");

        // What a process killed while holding it leaves: the file, with no lock on it.
        File::create(lock_path(&dir, "host:43:def")).unwrap();
        assert!(gone(&dir, "host:43:def"));
        assert!(
            !lock_path(&dir, "host:43:def").exists(),
            "removed once proven"
        );
    }

    #[test]
    fn the_folder_sits_beside_the_database() {
        assert_eq!(
            dir_beside(Path::new("/data/ravan-watch.db")),
            Path::new("/data/ravan-watch.db.holders")
        );
        assert_eq!(
            lock_path(Path::new("/d"), "web-1:7:1a2b/x"),
            Path::new("/d/web-1_7_1a2b_x.lock")
        );
    }
}
