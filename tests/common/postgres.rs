//! PostgreSQL for the tests: a fresh database per test on the server that
//! `RAVAN_WATCH_TEST_POSTGRES_URL` names (a user allowed to CREATE DATABASE). Without it the
//! PostgreSQL tests are skipped, except under CI where they are mandatory.

use std::io::Write;
use std::sync::Once;

use sqlx::Connection;

/// The variable that names the test server.
pub const URL_VAR: &str = "RAVAN_WATCH_TEST_POSTGRES_URL";

/// The URL of a new, empty database on the test server, or `None` (after saying so once) when no
/// server is configured. The databases are left behind: the server is a throwaway one.
pub async fn fresh_database() -> Option<String> {
    let server = match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!(
                    "the PostgreSQL tests are mandatory under CI: set {URL_VAR} to a server URL \
                     whose user may CREATE DATABASE (scripts/test-postgres run -- cargo test \
                     starts a throwaway server)"
                );
            }
            static SKIPPED: Once = Once::new();
            SKIPPED.call_once(|| {
                // Straight to stderr: the test harness would capture eprintln! of a passing test.
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: PostgreSQL tests need {URL_VAR} (scripts/test-postgres run -- cargo \
                     test starts a throwaway server)"
                );
            });
            return None;
        }
    };
    let mut url = url::Url::parse(&server).unwrap_or_else(|e| panic!("{URL_VAR}: {e}"));
    let name = format!("rw_test_{}", uuid::Uuid::new_v4().simple());
    // Errors name neither the URL nor its password.
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("connecting to {URL_VAR}: {e}"));
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating a test database: {e}"));
    admin.close().await.ok();
    url.set_path(&name);
    Some(url.to_string())
}
