//! The layout's one rule, checked: every import points down the pipeline. A module may use
//! its own layer and the layers below it, never one above, so the pure core (domain, tracker)
//! never learns of the store, the network or the commands, and no two layers import each other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first; the modules of one layer may use each other.
const LAYERS: &[&[&str]] = &[
    // Helpers that know nothing of the service.
    &["util", "metrics", "supervise"],
    &["domain"],
    &["ravan"],
    &["tracker"],
    &["store"],
    &["leader"],
    &["notify"],
    &[
        "discovery",
        "organisation",
        "monitor",
        "confirm",
        "scheduler",
        "digest",
    ],
    &["api"],
    &["config", "telemetry"],
    &["app"],
    &["commands"],
];

/// Pairs that stay apart although the layers would allow it: (module, what it must not use,
/// why).
const APART: &[(&str, &str, &str)] = &[(
    "config",
    "api",
    "settings are domain values; the API is one reader of them, not their home",
)];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn apart(module: &str, used: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    APART.iter().find(|(m, u, _)| *m == module && *u == used)
}

/// The top-level module a file of `src/` belongs to (`src/store/sqlite/rows.rs` → `store`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// The top-level modules a file names as `crate::<module>`, outside comments.
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn every_import_points_down_the_pipeline() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut checked = 0;
    for file in &files {
        let module = module_of(&src, file);
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(own) = layer(&module) else {
            panic!(
                "{}: module `{module}` is in no layer of LAYERS",
                file.display()
            );
        };
        checked += 1;
        for used in uses(&std::fs::read_to_string(file).unwrap()) {
            let Some(theirs) = layer(&used) else {
                panic!(
                    "{}: uses `crate::{used}`, which is in no layer",
                    file.display()
                );
            };
            if theirs > own {
                upward.push(format!(
                    "{} ({module}) uses crate::{used}, a higher layer",
                    file.display()
                ));
            }
            if let Some((_, _, why)) = apart(&module, &used) {
                upward.push(format!(
                    "{} ({module}) uses crate::{used}: {why}",
                    file.display()
                ));
            }
        }
    }
    assert!(checked > 40, "only {checked} files checked");
    assert!(
        upward.is_empty(),
        "imports pointing up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    let used = uses("use crate::store::Store; // crate::commands in a comment\nfn f() {}");
    assert_eq!(used, BTreeSet::from(["store".to_owned()]));
    assert!(layer("store") > layer("domain"));
    assert!(layer("commands") > layer("app"));
    assert_eq!(layer("nowhere"), None);
    assert!(apart("config", "api").is_some());
    assert!(apart("api", "config").is_none());
}

/// Where each writer of the agents' and the monitor's state may be called from, and the one
/// statement that writes each. The monitor keeps what its last cycle committed in memory and
/// starts the next from there, which holds only while poll cycles are the only writers: a
/// new caller of these would make a cycle poll with stale states and overwrite newer ones.
const STATE_WRITERS: &[(&str, &[&str])] = &[
    ("commit_cycle(", &["monitor.rs", "store/"]),
    ("save_progress(", &["leader.rs", "store/"]),
    ("renew_lease_with(", &["leader.rs", "store/"]),
    ("UPDATE agents SET state", &["store/sql/cycle.rs"]),
    (
        "INTO monitor_state",
        &["store/sql/cycle.rs", "store/sql/copy.rs"],
    ),
];

/// The files under `src` (as `monitor.rs`, `store/sql/cycle.rs`) whose text contains `needle`.
fn files_saying(src: &Path, needle: &str) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains(needle))
        .map(|f| {
            f.strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

#[test]
fn only_poll_cycles_write_agent_and_monitor_state() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut strays = Vec::new();
    for (needle, allowed) in STATE_WRITERS {
        let found = files_saying(&src, needle);
        assert!(
            !found.is_empty(),
            "nothing says {needle:?}: the check is stale"
        );
        strays.extend(
            found
                .into_iter()
                .filter(|f| !allowed.iter().any(|a| f.starts_with(a)))
                .map(|f| format!("{f} says {needle:?}")),
        );
    }
    assert!(
        strays.is_empty(),
        "agent or monitor state written outside a poll cycle:\n{}",
        strays.join("\n")
    );
}

/// The service acts as the leader only by the lease: the leadership that always leads and
/// writes unfenced is for tests, and nothing in the service makes one.
#[test]
fn the_unfenced_leadership_is_for_tests_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = files_saying(&src, "Leadership::for_tests()");
    let strays: Vec<&String> = found.iter().filter(|f| *f != "leader.rs").collect();
    assert!(
        strays.is_empty(),
        "the service builds an unfenced leadership in: {strays:?}"
    );
}
