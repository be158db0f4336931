//! What Ravan's own health check (`GET /health`, no credentials) said, asked once in a cycle in
//! which every poll failed: it tells "Ravan is down" apart from "Ravan runs, but refuses or
//! never gets our requests" (credentials, the network to the API paths, a proxy), which need
//! different people to act.
//!
//! Pure: the monitor asks, the tracker words the monitor alert's reason from it.

use super::clipped::Clipped;

/// What the health check's failure was, for the logs: short, it may quote Ravan.
pub type HealthFailure = Clipped<200>;

/// Ravan's answer to `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RavanHealth {
    /// `{"status": "healthy"}`: Ravan runs, so what fails is our requests' way to it.
    Healthy,
    /// Anything else (no answer, a 5xx, another status, a body that does not parse): Ravan
    /// looks down. Says what it was.
    Down(HealthFailure),
    /// Not asked: Ravan's 429 pause was still on, and the check would only add to the load.
    NotAsked,
}

impl RavanHealth {
    /// The monitor alert's reason for a cycle whose polls all failed (`trouble`: what failed,
    /// with the first failure), saying which side the trouble is on.
    pub fn explain(&self, trouble: &str) -> String {
        match self {
            Self::Healthy => format!(
                "Ravan reports healthy, but our requests fail (credentials, the network to the API paths, or a proxy?): {trouble}"
            ),
            Self::Down(_) => {
                format!("Ravan's health check does not answer: Ravan looks down; {trouble}")
            }
            Self::NotAsked => trouble.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_says_which_side_and_keeps_the_failure() {
        let trouble = "all 3 polls failed; first: no answer from the Ravan API within 10s";
        let healthy = RavanHealth::Healthy.explain(trouble);
        assert!(healthy.starts_with("Ravan reports healthy, but our requests fail"));
        assert!(healthy.ends_with(trouble), "{healthy}");
        let down = RavanHealth::Down("HTTP 502".into()).explain(trouble);
        assert!(down.starts_with("Ravan's health check does not answer: Ravan looks down"));
        assert!(down.ends_with(trouble), "{down}");
        assert_eq!(RavanHealth::NotAsked.explain(trouble), trouble);
    }
}
