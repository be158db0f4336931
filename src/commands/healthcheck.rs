//! `ravan-watch healthcheck`: `GET /healthz` on the local listener, for the container's
//! `HEALTHCHECK`. It reads `LISTEN_ADDR` and nothing else, so a missing token or database
//! never makes a healthy service look unhealthy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;

/// One request's time limit.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Where to knock: the listener's address, with an unspecified IP (`0.0.0.0`, `::`) replaced
/// by the loopback address of the same family.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[derive(Deserialize)]
struct Health {
    status: String,
}

/// `Ok(url)` when `/healthz` answers 200 `{"status":"ok"}` within `timeout`; else why not.
pub async fn check(listen: SocketAddr, timeout: Duration) -> Result<String, String> {
    let url = format!("http://{}/healthz", target(listen));
    let http = reqwest::Client::builder()
        .user_agent(crate::ravan::USER_AGENT)
        .timeout(timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = http.get(&url).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("{url}: no answer within {timeout:?}")
        } else {
            format!("{url}: {}", crate::util::root_cause(&e))
        }
    })?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| format!("{url}: reading the answer: {}", crate::util::root_cause(&e)))?;
    let ok = status == 200 && serde_json::from_str::<Health>(&body).is_ok_and(|h| h.status == "ok");
    if ok {
        Ok(url)
    } else {
        Err(format!(
            "{url} answered {}",
            crate::notify::deliver::answer(status, &body)
        ))
    }
}

/// Checks the local listener; reads only `LISTEN_ADDR`, so a missing token or database does
/// not make the service look sick.
pub fn main() -> ExitCode {
    let addr = match crate::config::listen_addr_from_env() {
        Ok(addr) => addr,
        Err(e) => return super::config_error(&e),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(check(addr, TIMEOUT)) {
        Ok(url) => {
            println!("healthy: {url}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("ravan-watch: unhealthy: {why}");
            ExitCode::FAILURE
        }
    }
}
