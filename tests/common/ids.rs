//! Agent ids for tests: made-up ones by the hundred, and parsing a literal one.

use ravan_watch::domain::AgentId;

/// The `i`-th made-up agent id: `00000000-0000-4000-8000-` and `i` in twelve digits, a valid
/// UUID v4 of its own for each `i`, for tests that need many agents.
pub fn agent_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// The first `n` made-up agent ids, `agent_id(0)` to `agent_id(n - 1)`.
pub fn agent_ids(n: usize) -> Vec<String> {
    (0..n).map(agent_id).collect()
}

/// `s` as an [`AgentId`]; panics if it is not one.
pub fn id(s: &str) -> AgentId {
    s.parse().unwrap()
}
