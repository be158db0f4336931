//! PostgreSQL over TLS, as managed servers ask for it: `sslmode=require` connects to a server
//! that takes TLS connections only, `verify-full` checks its certificate against
//! `sslrootcert`, and a URL that turns TLS off is refused there with one line naming
//! DATABASE_URL. Runs on a server of the test's own (TLS needs its settings changed).

mod common;

use common::bin::run_bin;
use common::pg_cluster::PgCluster;
use ravan_watch::store::Store;

#[tokio::test]
async fn postgres_over_tls_only() {
    let openssl = std::process::Command::new("openssl")
        .arg("version")
        .output();
    if !openssl.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl (Debian's openssl package) is needed under CI for the test certificates"
        );
        eprintln!("skipped: no openssl to make the test certificates");
        return;
    }
    let Some(cluster) = PgCluster::start() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL's initdb is needed under CI (Debian's postgresql package)"
        );
        eprintln!("skipped: no initdb for a PostgreSQL server of the test's own");
        return;
    };
    let cert = cluster.require_tls();
    let url = cluster.url();

    let store = Store::open(&format!("{url}?sslmode=require"))
        .await
        .unwrap();
    store.ping().await.unwrap();
    store.close().await;

    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        url.replace("127.0.0.1", "localhost"),
        cert.display()
    );
    let store = Store::open(&verified).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;

    // Without TLS the server turns the connection away: a bad DATABASE_URL, said in one line.
    let plain = format!("{url}?sslmode=disable");
    let out = run_bin(
        &["serve"],
        &[
            ("RAVAN_API_TOKEN", "t"),
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("DATABASE_URL", plain.as_str()),
        ],
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
    let password = url::Url::parse(&url)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    assert!(!err.contains(&password), "{err}");
}
