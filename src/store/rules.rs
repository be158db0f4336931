//! The rules a cycle's commit follows, stated once above the SQL: what goes in with an agent's
//! state. An agent removed while the cycle ran (or removed and added again) has no state
//! written, and then nothing of the cycle's about it may be kept either: no alert (it would
//! speak of an agent nobody watches, or of a predecessor's outage) and no health interval (an
//! interval is never written without the state it follows from).

use std::collections::HashSet;

use super::{AgentUpdate, Routed};
use crate::domain::{AgentId, HealthEdge};

/// What a commit writes besides the states, in the order it writes it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Kept<'a> {
    /// The health edges of the agents whose state went in.
    pub edges: Vec<(AgentId, HealthEdge)>,
    /// Their alerts, in the cycle's order, then the monitor's.
    pub alerts: Vec<&'a Routed>,
}

/// Of a cycle's `updates`, what goes in with the states `written` (the agents whose state the
/// commit wrote); the monitor's alerts always do.
pub(crate) fn kept<'a>(
    updates: &'a [AgentUpdate<'_>],
    written: &HashSet<AgentId>,
    monitor_alerts: &'a [Routed],
) -> Kept<'a> {
    let in_commit = || updates.iter().filter(|u| written.contains(&u.agent_id));
    Kept {
        edges: in_commit()
            .filter_map(|u| Some((u.agent_id, u.health?)))
            .collect(),
        alerts: in_commit()
            .flat_map(|u| &u.alerts)
            .chain(monitor_alerts)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::alert::{Alert, MonitorAlert, MonitorAlertKind};
    use crate::tracker::AgentState;

    fn id(n: u8) -> AgentId {
        format!("00000000-0000-4000-8000-0000000000{n:02}")
            .parse()
            .unwrap()
    }

    /// An alert told apart by its reason: `n`.
    fn routed(n: u8) -> Routed {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let (kind, reason) = (MonitorAlertKind::Down, n.to_string());
        let alert = MonitorAlert {
            kind,
            reason,
            at,
            since: at,
        };
        (Alert::Monitor(alert), Vec::new())
    }

    fn reasons(kept: &Kept<'_>) -> Vec<String> {
        kept.alerts.iter().map(|(a, _)| a.summary()).collect()
    }

    fn update(n: u8, state: &AgentState, with_edge: bool) -> AgentUpdate<'_> {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let edge = HealthEdge {
            at,
            healthy: Some(false),
            closes_at: at,
        };
        AgentUpdate {
            agent_id: id(n),
            state,
            alerts: vec![routed(n)],
            health: with_edge.then_some(edge),
        }
    }

    #[test]
    fn only_agents_whose_state_went_in_keep_their_edges_and_alerts() {
        let state = AgentState::default();
        let updates = [
            update(1, &state, true),
            update(2, &state, true),
            update(3, &state, false),
        ];
        let monitor = [routed(9)];
        let kept = kept(&updates, &HashSet::from([id(1), id(3)]), &monitor);
        assert_eq!(kept.edges, vec![(id(1), updates[0].health.unwrap())]);
        let expected = [&updates[0].alerts[0], &updates[2].alerts[0], &monitor[0]];
        assert_eq!(reasons(&kept), expected.map(|(a, _)| a.summary()));
    }

    #[test]
    fn nothing_written_keeps_only_the_monitors_alerts() {
        let state = AgentState::default();
        let updates = [update(1, &state, true)];
        let monitor = [routed(9)];
        let kept = kept(&updates, &HashSet::new(), &monitor);
        assert!(kept.edges.is_empty());
        assert_eq!(kept.alerts, vec![&monitor[0]]);
    }
}
