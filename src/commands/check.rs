//! `ravan-watch check`: poll agents once and report, for scripts and for a quick look;
//! `check --all` does it for every agent the credentials can list, the audit a new user runs
//! first. Each poll is the service's own ([`RavanClient::poll`]): the effective connection,
//! org-linked ones included.
//!
//! `check --all` also asks the organisation's own checks (its Cal.com connection, GoHighLevel)
//! unless `CHECK_INTEGRATIONS` is off.
//!
//! Exit status: 0 all active, 1 any unhealthy (an integration never set up, `not_connected`,
//! is not), 2 a poll or a check failed (a failure outranks an unhealthy agent, since it means
//! the answer is incomplete).

use std::process::ExitCode;

use futures::StreamExt;
use serde_json::json;

use crate::domain::alert::IntegrationName;
use crate::domain::{AgentId, Observation};
use crate::organisation::OrgAsk;
use crate::ravan::{ListedAgent, PollFailure, RavanClient};
use crate::tracker::IntegrationObservation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub agent_id: AgentId,
    /// The agent's name in the listing (`check --all`), with `(inactive)` when it says so.
    pub name: Option<String>,
    pub result: Result<Observation, PollFailure>,
}

/// An agent to check: its id, and its name when the listing gave one.
pub type Target = (AgentId, Option<String>);

/// The agents of a listing as check targets, in the listing's order.
pub fn targets(listed: &[ListedAgent]) -> Vec<Target> {
    listed
        .iter()
        .map(|a| {
            let name = match (&a.name, a.is_inactive()) {
                (Some(n), true) => Some(format!("{n} (inactive)")),
                (None, true) => Some("(inactive)".to_owned()),
                (n, false) => n.as_ref().map(ToString::to_string),
            };
            (a.id, name)
        })
        .collect()
}

/// Polls each agent once, `concurrency` at a time, keeping the given order.
pub async fn poll_all(
    client: &RavanClient,
    agents: &[Target],
    concurrency: usize,
    check_org_linked: bool,
) -> Vec<Checked> {
    futures::stream::iter(agents)
        .map(|(id, name)| async move {
            Checked {
                agent_id: *id,
                name: name.clone(),
                result: client.poll(id, check_org_linked).await,
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// One organisation-level check's answer (`check --all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgChecked {
    pub name: IntegrationName,
    pub result: Result<IntegrationObservation, String>,
}

/// Asks each organisation-level check once.
pub async fn check_org(ask: &OrgAsk, agents: &[Target]) -> Vec<OrgChecked> {
    let ids: Vec<AgentId> = agents.iter().map(|(id, _)| *id).collect();
    let mut out = Vec::new();
    for name in IntegrationName::ALL {
        let result = ask.check(name, &ids, None).await;
        out.push(OrgChecked { name, result });
    }
    out
}

/// Whether an answer calls for attention: unhealthy, unless never set up (`not_connected`: an
/// organisation that does not use GoHighLevel is not broken).
fn org_broken(obs: &IntegrationObservation) -> bool {
    !obs.healthy && obs.status != "not_connected"
}

/// [`exit_code`] over the agents and the organisation's checks.
pub fn exit_code_with(results: &[Checked], org: &[OrgChecked]) -> u8 {
    let org_code = if org.iter().any(|o| o.result.is_err()) {
        2
    } else if org.iter().any(|o| o.result.as_ref().is_ok_and(org_broken)) {
        1
    } else {
        0
    };
    exit_code(results).max(org_code)
}

/// The organisation's checks as a plain-text table (nothing when there are none).
pub fn org_table(org: &[OrgChecked]) -> String {
    let mut out = String::new();
    for o in org {
        let line = match &o.result {
            Ok(obs) => format!(
                "{:<11} {:<14} {:<9} {}",
                o.name.as_str(),
                printable(&obs.status),
                if obs.healthy { "healthy" } else { "unhealthy" },
                printable(obs.detail.as_deref().unwrap_or("")),
            ),
            Err(e) => format!(
                "{:<11} {:<14} {:<9} {}",
                o.name.as_str(),
                "check failed",
                "-",
                printable(e)
            ),
        };
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if out.is_empty() {
        return out;
    }
    format!("\nINTEGRATION STATUS         HEALTH    DETAIL\n{out}")
}

fn org_json(org: &[OrgChecked]) -> serde_json::Value {
    let items: Vec<_> = org
        .iter()
        .map(|o| match &o.result {
            Ok(obs) => json!({
                "name": o.name.as_str(),
                "status": obs.status,
                "healthy": obs.healthy,
                "detail": obs.detail,
                "token_expires": obs.token_expires,
                "error": null,
            }),
            Err(e) => json!({
                "name": o.name.as_str(),
                "status": null,
                "healthy": null,
                "detail": null,
                "token_expires": null,
                "error": e,
            }),
        })
        .collect();
    json!(items)
}

pub fn exit_code(results: &[Checked]) -> u8 {
    if results.iter().any(|c| c.result.is_err()) {
        2
    } else if results
        .iter()
        .any(|c| c.result.as_ref().is_ok_and(|o| !o.is_healthy()))
    {
        1
    } else {
        0
    }
}

/// A plain-text table. Ravan's text is stripped of control characters so it cannot drive the
/// terminal.
pub fn table(results: &[Checked]) -> String {
    let mut rows = vec![[
        "AGENT".to_owned(),
        "NAME".to_owned(),
        "STATUS".to_owned(),
        "CONNECTION".to_owned(),
        "CONNECTED".to_owned(),
        "ACCOUNTS".to_owned(),
        "ERROR".to_owned(),
    ]];
    for c in results {
        let name = c
            .name
            .as_deref()
            .map(printable)
            .unwrap_or_else(|| "-".into());
        rows.push(match &c.result {
            Ok(obs) => [
                c.agent_id.to_string(),
                name,
                printable(&obs.status),
                obs.connection().label().to_owned(),
                obs.connected.to_string(),
                obs.accounts
                    .iter()
                    .map(|a| format!("{} ({})", printable(&a.account_name), printable(&a.status)))
                    .collect::<Vec<_>>()
                    .join(", "),
                obs.accounts
                    .iter()
                    .filter_map(|a| a.error.as_deref())
                    .map(printable)
                    .collect::<Vec<_>>()
                    .join("; "),
            ],
            Err(failure) => [
                c.agent_id.to_string(),
                name,
                "poll failed".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                printable(&failure.to_string()),
            ],
        });
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn json(results: &[Checked], org: &[OrgChecked]) -> serde_json::Value {
    let agents: Vec<_> = results
        .iter()
        .map(|c| match &c.result {
            Ok(obs) => json!({
                "agent_id": c.agent_id,
                "name": c.name,
                "healthy": obs.is_healthy(),
                "status": obs.status,
                "connection": obs.connection().as_str(),
                "connected": obs.connected,
                "accounts": obs.accounts,
                "error": null,
            }),
            Err(failure) => json!({
                "agent_id": c.agent_id,
                "name": c.name,
                "healthy": null,
                "status": null,
                "connection": null,
                "connected": null,
                "accounts": [],
                "error": failure.to_string(),
            }),
        })
        .collect();
    json!({
        "agents": agents,
        "integrations": org_json(org),
        "exit_code": exit_code_with(results, org),
    })
}

fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `check AGENT_ID…`, or `check --all`; `--json` prints JSON instead of a table.
pub fn main(agent_ids: &[String], all: bool, json: bool) -> ExitCode {
    let mut ids = Vec::new();
    for raw in agent_ids {
        match raw.parse::<AgentId>() {
            Ok(id) => ids.push((id, None)),
            Err(e) => {
                eprintln!("ravan-watch: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let (config, runtime) = match super::start(crate::telemetry::DEFAULT_FILTER) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let auth = match config.require_auth() {
        Ok(a) => a,
        Err(e) => return super::config_error(&e),
    };
    let client = match RavanClient::new(config.base_url.clone(), auth, config.poll_timeout) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ravan-watch: {e}");
            return ExitCode::from(2);
        }
    };
    if all {
        match runtime.block_on(client.list_agents()) {
            Ok(listing) => {
                if listing.unusable_ids > 0 {
                    eprintln!(
                        "ravan-watch: {} listed agents have an id that is not a UUID and are left out",
                        listing.unusable_ids
                    );
                }
                ids = targets(&listing.agents);
            }
            Err(e) => {
                eprintln!("ravan-watch: cannot list the agents: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let results = runtime.block_on(poll_all(
        &client,
        &ids,
        config.poll_concurrency.get(),
        config.check_org_linked,
    ));
    // The organisation's own checks, beside every agent of the audit.
    let org = if all && config.integrations.check {
        let ask = OrgAsk::new(client, config.integrations.org_id.clone());
        runtime.block_on(check_org(&ask, &ids))
    } else {
        Vec::new()
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&self::json(&results, &org)).expect("json")
        );
    } else {
        print!("{}{}", table(&results), org_table(&org));
    }
    ExitCode::from(exit_code_with(&results, &org))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Account;

    fn id(n: u8) -> AgentId {
        format!("00000000-0000-4000-8000-0000000000{n:02}")
            .parse()
            .unwrap()
    }

    fn ok(status: &str) -> Result<Observation, PollFailure> {
        Ok(Observation {
            connection: Some(crate::domain::Connection::Private),
            status: status.into(),
            connected: status == "active",
            accounts: vec![Account {
                id: "a".into(),
                account_name: "Main\x1b[31m".into(),
                status: status.into(),
                error: Some("expired\ttoken".into()),
            }],
        })
    }

    #[test]
    fn exit_codes() {
        let active = Checked {
            name: None,
            agent_id: id(1),
            result: ok("active"),
        };
        let errored = Checked {
            name: None,
            agent_id: id(2),
            result: ok("errored"),
        };
        let failed = Checked {
            name: None,
            agent_id: id(3),
            result: Err(PollFailure::Timeout(std::time::Duration::from_secs(1))),
        };
        assert_eq!(exit_code(std::slice::from_ref(&active)), 0);
        assert_eq!(exit_code(&[active.clone(), errored.clone()]), 1);
        assert_eq!(exit_code(&[active, errored, failed]), 2);
        assert_eq!(exit_code(&[]), 0);
    }

    #[test]
    fn table_strips_control_characters_and_shows_each_agent() {
        let out = table(&[
            Checked {
                name: None,
                agent_id: id(1),
                result: ok("errored"),
            },
            Checked {
                name: None,
                agent_id: id(2),
                result: Err(PollFailure::Connection("refused".into())),
            },
        ]);
        assert!(!out.contains('\x1b') && !out.contains('\t'), "{out:?}");
        assert!(
            out.contains(&id(1).to_string())
                && out.contains("errored")
                && out.contains("expired token")
        );
        assert!(out.contains("poll failed") && out.contains("refused"));
        assert_eq!(out.lines().count(), 3);
    }

    #[test]
    fn json_shape() {
        let v = json(
            &[Checked {
                name: None,
                agent_id: id(1),
                result: ok("errored"),
            }],
            &[],
        );
        assert_eq!(v["agents"][0]["status"], "errored");
        assert_eq!(v["agents"][0]["healthy"], false);
        assert_eq!(v["agents"][0]["accounts"][0]["error"], "expired\ttoken");
        assert_eq!(v["exit_code"], 1);
    }
}
