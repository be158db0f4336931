//! A dead webhook's announcement: what it says and where it goes. The alerts routed to a dead
//! webhook no longer arrive, and the people who read that channel cannot be told there; the
//! other destinations can. Pure: the outbox reads the agents and the dead webhooks, this decides.

use chrono::{DateTime, Utc};

use crate::domain::Webhook;
use crate::domain::alert::{AgentRef, Alert, WebhookAlert};
use crate::store::{AgentRecord, Routed};

/// The `webhook_dead` alert for `dead`, which answered `answer`, and the live destinations it
/// goes to: the defaults and every agent's own, once each, except `dead` and those in
/// `known_dead`. With none left, the alert is only recorded (an event with no delivery).
pub fn notice(
    dead: &Webhook,
    answer: &str,
    agents: &[AgentRecord],
    defaults: &[Webhook],
    known_dead: &[Webhook],
    at: DateTime<Utc>,
) -> Routed {
    let routed: Vec<&AgentRecord> = agents
        .iter()
        .filter(|a| a.destinations(defaults).contains(dead))
        .collect();
    let alert = WebhookAlert {
        platform: dead.platform,
        webhook: dead.url.masked(),
        answer: answer.to_owned(),
        default: defaults.contains(dead),
        agents: routed
            .iter()
            .take(WebhookAlert::NAMED)
            .map(|a| AgentRef {
                id: a.agent_id,
                name: a.display_name().map(str::to_owned),
            })
            .collect(),
        agents_routed: routed.len(),
        at,
    };
    let mut to: Vec<Webhook> = Vec::new();
    let everywhere = defaults
        .iter()
        .cloned()
        .chain(agents.iter().flat_map(AgentRecord::own_webhooks));
    for hook in everywhere {
        if hook != *dead && !known_dead.contains(&hook) && !to.contains(&hook) {
            to.push(hook);
        }
    }
    (Alert::Webhook(alert), to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Platform;
    use crate::domain::secret::SecretUrl;
    use crate::store::NewAgent;

    fn hook(platform: Platform, n: u8) -> Webhook {
        let url = format!("https://example.com/hook/{n}/SECRET");
        Webhook::new(platform, SecretUrl::new(url.parse().unwrap()))
    }

    fn agent(n: u8, slack: Option<u8>) -> AgentRecord {
        let id = format!("00000000-0000-4000-8000-{n:012}").parse().unwrap();
        let new = NewAgent {
            name: Some(format!("agent {n}")),
            slack_webhook_url: slack.map(|s| hook(Platform::Slack, s).url.expose().clone()),
            ..Default::default()
        };
        AgentRecord::for_tests(id, &new)
    }

    /// Routed agents are those whose alerts go to the dead webhook (their own, or the
    /// defaults when they have none); the notice goes everywhere else that is alive, once.
    #[test]
    fn names_whose_alerts_it_carried_and_goes_to_every_other_live_destination() {
        let defaults = [hook(Platform::Discord, 1), hook(Platform::Slack, 2)];
        let agents = [
            agent(1, Some(3)),
            agent(2, None),
            agent(3, Some(4)),
            agent(4, Some(3)),
        ];
        let at = DateTime::<Utc>::UNIX_EPOCH;

        let (alert, to) = notice(
            &defaults[1],
            "HTTP 404: no_service",
            &agents,
            &defaults,
            &[],
            at,
        );
        let Alert::Webhook(w) = alert else {
            panic!("{alert:?}")
        };
        assert!(w.default);
        assert_eq!(w.agents_routed, 1, "only agent 2 uses the defaults");
        assert_eq!(w.agents[0].name.as_deref(), Some("agent 2"));
        assert!(!w.webhook.contains("SECRET"), "{}", w.webhook);
        let expected = [
            defaults[0].clone(),
            hook(Platform::Slack, 3),
            hook(Platform::Slack, 4),
        ];
        assert_eq!(to, expected, "every other one, each once");

        let known = [hook(Platform::Slack, 4)];
        let (alert, to) = notice(
            &hook(Platform::Slack, 3),
            "gone",
            &agents,
            &defaults,
            &known,
            at,
        );
        let Alert::Webhook(w) = alert else {
            panic!("{alert:?}")
        };
        assert!(!w.default);
        assert_eq!(w.agents_routed, 2, "agents 1 and 4");
        assert_eq!(to, defaults.to_vec(), "not the dead ones");
    }

    #[test]
    fn names_at_most_ten_agents_and_counts_them_all() {
        let agents: Vec<AgentRecord> = (1..=25).map(|n| agent(n, None)).collect();
        let defaults = [hook(Platform::Slack, 1)];
        let (alert, to) = notice(&defaults[0], "gone", &agents, &defaults, &[], Utc::now());
        let Alert::Webhook(w) = alert else {
            panic!("{alert:?}")
        };
        assert_eq!((w.agents.len(), w.agents_routed), (10, 25));
        assert!(to.is_empty(), "nowhere else to go: only recorded");
    }
}
