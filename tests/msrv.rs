//! `rust-version` in Cargo.toml is the oldest Rust that builds the project, and the README says
//! the same. A dependency that needs a newer one (uuid 1.29.3 needs 1.89) raises that floor, so
//! the locked graph is read with `cargo metadata` and every package in it must ask for no more
//! than the root does; a bump of the lock file that raises the floor fails here, naming the
//! package, until Cargo.toml and the README are raised with it.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `major.minor.patch` as numbers, missing parts 0: `1.89` is `[1, 89, 0]`.
fn parse_version(text: &str) -> Result<[u64; 3], String> {
    let mut parts = [0u64; 3];
    let mut fields = text.trim().split('.');
    for part in &mut parts {
        match fields.next() {
            Some(field) => {
                *part = field
                    .parse()
                    .map_err(|e| format!("{text:?} is not a Rust version: {e}"))?;
            }
            None => break,
        }
    }
    if fields.next().is_some() {
        return Err(format!("{text:?} has more than three parts"));
    }
    Ok(parts)
}

/// Compares two Rust versions numerically (`1.100` is newer than `1.99`).
fn compare_versions(a: &str, b: &str) -> Ordering {
    parse_version(a)
        .unwrap_or_else(|e| panic!("{e}"))
        .cmp(&parse_version(b).unwrap_or_else(|e| panic!("{e}")))
}

fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo's output is UTF-8")
}

/// The platform this test was built on, from `cargo -vV`'s `host:` line.
fn host() -> String {
    run(cargo().arg("-vV"))
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("cargo -vV names the host")
        .trim()
        .to_string()
}

/// The locked dependency graph of this platform: normal, build and dev dependencies, as
/// `cargo test --locked` builds them. Limited to the host's platform, since the packages only
/// other platforms use (Android's, Windows') are neither built here nor downloaded, and
/// `--offline` would fail on them.
fn metadata() -> Value {
    let json = run(cargo().args([
        "metadata",
        "--locked",
        "--offline",
        "--format-version",
        "1",
        "--filter-platform",
        &host(),
    ]));
    serde_json::from_str(&json).expect("cargo metadata prints JSON")
}

/// The Rust version the README's quickstart names ("Rust 1.89+").
fn readme_rust_version(readme: &str) -> Option<&str> {
    let start = readme.find("Rust 1.")? + "Rust ".len();
    let rest = &readme[start..];
    let end = rest.find('+')?;
    Some(&rest[..end])
}

#[test]
fn version_comparison_is_numeric() {
    assert_eq!(compare_versions("1.89", "1.85"), Ordering::Greater);
    assert_eq!(compare_versions("1.85", "1.89"), Ordering::Less);
    assert_eq!(compare_versions("1.100", "1.99"), Ordering::Greater);
    assert_eq!(compare_versions("1.89", "1.89.0"), Ordering::Equal);
    assert_eq!(compare_versions("1.89.1", "1.89"), Ordering::Greater);
    assert_eq!(compare_versions("2", "1.200.3"), Ordering::Greater);
    assert_eq!(parse_version("1.89"), Ok([1, 89, 0]));
    assert!(parse_version("1.x").is_err());
    assert!(parse_version("1.2.3.4").is_err());
}

#[test]
fn readme_version_is_found() {
    assert_eq!(
        readme_rust_version("no account (Rust 1.89+):"),
        Some("1.89")
    );
    assert_eq!(readme_rust_version("no version here"), None);
}

#[test]
fn rust_version_covers_every_locked_dependency() {
    let meta = metadata();
    let root_id = meta["resolve"]["root"]
        .as_str()
        .expect("the metadata names the root package");
    let packages: HashMap<&str, &Value> = meta["packages"]
        .as_array()
        .expect("packages is an array")
        .iter()
        .map(|p| (p["id"].as_str().expect("a package has an id"), p))
        .collect();
    let root = packages[root_id];
    let floor = root["rust_version"]
        .as_str()
        .expect("Cargo.toml sets rust-version");

    let nodes = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes is an array");
    assert!(nodes.len() > 1, "the graph has dependencies");
    let mut too_new: Vec<(&str, String)> = nodes
        .iter()
        .map(|node| packages[node["id"].as_str().expect("a node has an id")])
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            (compare_versions(needs, floor) == Ordering::Greater).then(|| {
                let name = format!(
                    "{} {}",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?")
                );
                (needs, name)
            })
        })
        .collect();
    // The one that needs the newest Rust first: it sets the floor.
    too_new.sort_by(|a, b| compare_versions(b.0, a.0).then_with(|| a.1.cmp(&b.1)));
    if let Some((highest, _)) = too_new.first() {
        let list: Vec<String> = too_new
            .iter()
            .map(|(needs, name)| format!("{name} needs Rust {needs}"))
            .collect();
        panic!(
            "Cargo.toml's rust-version is {floor}, but locked dependencies need more: {}. \
             Raise rust-version, and the README's \"Rust {floor}+\", to {highest}.",
            list.join(", ")
        );
    }

    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md is readable");
    let stated = readme_rust_version(&readme).expect("the README states \"Rust 1.xx+\"");
    assert_eq!(
        compare_versions(stated, floor),
        Ordering::Equal,
        "the README says Rust {stated}+, Cargo.toml's rust-version is {floor}"
    );
}
