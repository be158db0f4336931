//! Whether a process that once identified itself is provably gone, from Linux's `/proc`.
//!
//! The leader lease records its holder's host, pid and start time so that a process restarted
//! after a crash (`kill -9`, the OOM killer) need not wait for the dead one's lease to expire.
//! A pid alone proves nothing: pids are reused (a restarted process may get its predecessor's,
//! pid 1 is every container's first), so the start time (`/proc/<pid>/stat` field 22, clock
//! ticks since boot) is compared too. And a pid means something only in its own pid namespace
//! and boot, so the host identity ([`host`]) is the boot id and the pid namespace: two
//! containers on one host sharing a SQLite volume have the same boot id but different pid
//! namespaces, so neither judges the other's pids (a hostname would not do: containers on the
//! host's network share the host's name, and a wrong "gone" would make two leaders). Anything
//! unreadable proves nothing: the caller then keeps to the lease's expiry.

use std::path::Path;

/// Who this process is, for others on its host to check ([`gone`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// [`host`]: the boot and pid namespace the pid belongs to.
    pub host: String,
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub started: u64,
}

impl ProcessIdentity {
    /// This process, or `None` where `/proc` does not tell (not Linux, no `/proc`).
    pub fn own() -> Option<Self> {
        let pid = std::process::id();
        Some(Self {
            host: host()?,
            pid,
            started: start_time(pid)?,
        })
    }
}

/// The identity of the host as far as pids go: `/proc/sys/kernel/random/boot_id` (new at
/// every boot) and `/proc/self/ns/pid`'s namespace (`pid:[4026531836]`), which no two live
/// namespaces share. `None` when either cannot be read.
pub fn host() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let boot = boot.trim();
    (!boot.is_empty()).then(|| format!("{boot}/{}", namespace.display()))
}

/// The start time of process `pid` (clock ticks since boot), or `None` when it cannot be read
/// (gone, or hidden from this process).
pub fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.started)
}

/// Whether the process `pid` that started at `started` provably no longer runs on this host
/// (the caller has checked [`host`] matches): no process has that pid, the one that has it
/// started at another time (the pid was reused), or it is a zombie (dead, not yet reaped).
/// A process hidden from this one (`hidepid`, another user's) is not gone.
pub fn gone(pid: u32, started: u64) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists; it has no memory
    // preconditions and sends nothing.
    let exists = unsafe { libc::kill(raw, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    if !exists {
        return true;
    }
    match stat(pid) {
        Some(s) => s.started != started || matches!(s.state, 'Z' | 'X' | 'x'),
        None => false,
    }
}

/// What is read of `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    started: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&text)
}

/// Fields 3 (state) and 22 (starttime) of a `/proc/<pid>/stat` line. The command name (field
/// 2) is in parentheses and may itself hold spaces and `)`, so the fields are counted from
/// the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is taken; field 22 is 19 further on.
    let started = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, started })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_field_22_counted_after_the_command_name() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 151 0 0 0 0 0 0 0 20 0 1 0 \
                    987654 12345 67 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                started: 987654
            })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no parentheses"), None);
    }

    #[test]
    fn this_process_is_alive_with_its_own_start_time_and_gone_with_another() {
        let own = ProcessIdentity::own().expect("Linux's /proc");
        assert_eq!(own.host, host().expect("the host identity"));
        assert!(!gone(own.pid, own.started), "this process runs");
        assert!(gone(own.pid, own.started + 1), "the pid was reused");
    }

    #[test]
    fn a_child_that_was_killed_is_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let started = start_time(child.id()).expect("the child's start time");
        assert!(!gone(child.id(), started), "it runs");
        child.kill().expect("kill");
        // Killed, not yet reaped: a zombie holds nothing. The signal takes effect a moment
        // after kill returns: checked until a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !gone(child.id(), started) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(gone(child.id(), started), "a zombie");
        child.wait().expect("reaped");
        assert!(gone(child.id(), started), "reaped");
    }

    #[test]
    fn nonsense_pids_prove_nothing() {
        assert!(!gone(0, 0));
        assert!(!gone(u32::MAX, 0));
    }
}
