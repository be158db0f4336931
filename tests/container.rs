//! What can be checked of the container without a Docker engine (none runs on our machines):
//! the binary needs only the C runtime (rustls, no OpenSSL), it runs as a non-root user with
//! the image's settings, and `healthcheck` — the image's HEALTHCHECK — answers 0 against a
//! running `serve` and 1 when nothing listens. The Dockerfile and the compose file are read for
//! the settings operators rely on.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::bin::{BIN, output_of};
use common::{AGENT_A, FakeRavan, TestSettings, free_port, poll_until, wait_until};

/// The runtime image's user (the Dockerfile's `USER`).
const IMAGE_UID: u32 = 10001;

/// Shared libraries a Rust binary built with rustls may need from the C runtime.
const C_RUNTIME: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

fn needed_libraries(binary: &Path) -> Vec<String> {
    let out = Command::new("readelf")
        .args(["--dynamic", "--wide"])
        .arg(binary)
        .output()
        .expect("readelf (binutils) runs");
    assert!(out.status.success(), "readelf {}", binary.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect()
}

/// The test build and, when one was built (`cargo build --release`), the release build: both
/// come from the same dependency graph and features, so they link the same libraries.
#[test]
fn the_binary_links_only_the_c_runtime() {
    let test_build = PathBuf::from(BIN);
    let release = test_build
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("release").join("ravan-watch"));
    for binary in std::iter::once(test_build).chain(release.filter(|p| p.exists())) {
        let needed = needed_libraries(&binary);
        assert!(
            needed.iter().any(|l| l == "libc.so.6"),
            "{} links libc: {needed:?}",
            binary.display()
        );
        for lib in &needed {
            assert!(
                C_RUNTIME.contains(&lib.as_str()),
                "{} links {lib}, which is not the C runtime: {needed:?}",
                binary.display()
            );
        }
    }
}

/// Not linked, and not even compiled in statically: no OpenSSL or native-tls crate anywhere in
/// the lock file.
#[test]
fn no_openssl_crate_is_in_the_dependency_graph() {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .expect("Cargo.lock is committed");
    assert!(lock.contains("name = \"rustls\""), "TLS is rustls");
    for banned in ["openssl", "openssl-sys", "native-tls"] {
        assert!(
            !lock.contains(&format!("name = \"{banned}\"")),
            "{banned} is in Cargo.lock"
        );
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_dockerfile_has_what_operators_rely_on() {
    let dockerfile = read("Dockerfile");
    let runtime = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .expect("a multi-stage build");
    assert!(
        dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM ")) >= 2
    );
    for line in [
        "ENTRYPOINT [\"ravan-watch\"]",
        "CMD [\"serve\"]",
        "EXPOSE 8080",
        "VOLUME /data",
        "DATABASE_URL=sqlite:///data/ravan-watch.db",
        "CMD [\"ravan-watch\", \"healthcheck\"]",
        "ca-certificates",
    ] {
        assert!(runtime.contains(line), "the runtime stage has {line}");
    }
    assert!(runtime.contains("HEALTHCHECK"));
    assert!(
        runtime.contains(&format!("USER {IMAGE_UID}")),
        "the runtime user is uid {IMAGE_UID}, not root"
    );
    // What the build compiles into the binary must be in the build context.
    for dir in ["migrations", "templates", "src"] {
        assert!(dockerfile.contains(&format!("COPY {dir} ")), "COPY {dir}");
    }
    let ignore = read(".dockerignore");
    for entry in ["target", ".env", ".git"] {
        assert!(ignore.lines().any(|l| l == entry), ".dockerignore: {entry}");
    }
    let compose = read("docker-compose.yml");
    for needle in ["env_file: .env", ":/data", "8080:8080"] {
        assert!(compose.contains(needle), "docker-compose.yml: {needle}");
    }
}

/// The binary as the image's user can run it. The build's own copy may lie where that user
/// cannot reach (a checkout under `/root`, or in a `mktemp -d` folder), so it is copied into a
/// folder of the user's own under the system's temporary directory.
struct ImageBinary {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl ImageBinary {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ravan-watch");
        std::fs::copy(BIN, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(dir.path(), Some(IMAGE_UID), Some(IMAGE_UID)).unwrap();
        }
        Self { _dir: dir, path }
    }
}

/// The binary with an empty environment and `env`; as the image's user when we are root.
fn as_image_user(bin: &ImageBinary, args: &[&str], env: &[(&str, &str)], dir: &Path) -> Command {
    let mut cmd = Command::new(&bin.path);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(IMAGE_UID).gid(IMAGE_UID);
    }
    cmd
}

fn uid_of(child: &Child) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1)) // effective
        .and_then(|u| u.parse().ok())
        .expect("Uid line")
}

async fn healthcheck(bin: &ImageBinary, env: &[(&str, &str)], dir: &Path) -> (Option<i32>, String) {
    let out = output_of(as_image_user(bin, &["healthcheck"], env, dir)).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn serve_runs_as_a_non_root_user_and_healthcheck_sees_it() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let bin = ImageBinary::new();
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(dir.path(), Some(IMAGE_UID), Some(IMAGE_UID)).unwrap();
    }
    let port = free_port();
    // The image's settings, with the volume in a temporary folder.
    let settings = TestSettings::new(&ravan.uri())
        .agents(AGENT_A)
        .every_second()
        // 16 characters at least: the image listens on 0.0.0.0.
        .admin_token("admin-secret-0f3c9a7e")
        .set("LOG_FORMAT", "json")
        .listen(&format!("0.0.0.0:{port}"))
        .database(&format!("sqlite://{}/ravan-watch.db", dir.path().display()));
    let env = settings.pairs();

    // Nothing listens yet: unhealthy.
    let (code, output) = healthcheck(&bin, &env, dir.path()).await;
    assert_eq!(code, Some(1), "{output}");

    let mut child = as_image_user(&bin, &["serve"], &env, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let uid = uid_of(&child);
    wait_until(Duration::from_secs(30), "serve to poll", || async {
        ravan.polls().await >= 1
    })
    .await;
    // Healthy once the listener is up; polled with a deadline (serve is stopped before the
    // verdict).
    let healthy = poll_until(Duration::from_secs(20), || async {
        let (code, _) = healthcheck(&bin, &env, dir.path()).await;
        (code == Some(0)).then_some(())
    })
    .await
    .is_some();
    if !healthy {
        let (_, output) = healthcheck(&bin, &env, dir.path()).await;
        eprintln!("healthcheck kept failing: {output}");
    }
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "serve still runs as uid {uid}"
    );
    common::signal(&child, libc::SIGTERM);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(healthy, "healthcheck exits 0 against a running serve");
    assert_eq!(status.code(), Some(0), "serve stops cleanly");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(uid, IMAGE_UID, "serve ran as the image's user");
        assert!(
            dir.path().join("ravan-watch.db").exists(),
            "the non-root user could write its database"
        );
    } else {
        assert_ne!(uid, 0);
    }
}
