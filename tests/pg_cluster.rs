//! `common::pg_cluster`, the private PostgreSQL cluster of a test that restarts PostgreSQL: it
//! answers with the password of its URL (and no other), stops, starts again on the same port,
//! and is gone after drop. Without initdb the test prints a skip line and passes, unless `CI` is
//! set: then it fails (`.ci/run` installs PostgreSQL and sets `CI=1`).

mod common;

use common::pg_cluster::PgCluster;

#[test]
fn a_private_cluster_stops_starts_again_and_goes_on_drop() {
    let Some(cluster) = PgCluster::start() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "no PostgreSQL initdb found and CI is set: the PostgreSQL tests are mandatory in CI"
            );
        }
        println!("skipped: no PostgreSQL initdb found (set CI to make this a failure)");
        return;
    };
    let url = cluster.url();
    assert_eq!(cluster.psql(&url, "select 1"), Ok("1".into()));
    let mut wrong = url::Url::parse(&url).unwrap();
    wrong.set_password(Some("wrong")).unwrap();
    let refused = cluster.psql(wrong.as_str(), "select 1").unwrap_err();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );

    cluster.stop();
    let down = cluster.psql(&url, "select 1").unwrap_err();
    assert!(down.contains("Connection refused"), "{down}");
    cluster.start_again();
    assert_eq!(cluster.psql(&url, "select 1"), Ok("1".into()));

    let dir = cluster.dir().to_owned();
    drop(cluster);
    assert!(!dir.exists(), "{} is deleted", dir.display());
    let port = url::Url::parse(&url).unwrap().port().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on {port} after drop"
    );
}
