//! The demo's story: five agents and what the simulated Ravan API answers for each on each poll.
//!
//! The script counts polls, not seconds, so it plays out the same however the cycles line up
//! with the clock. With a poll every 2 s, `FAILURE_THRESHOLD` 2 and `SUCCESS_THRESHOLD` 1:
//!
//! | poll | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | … | 14 | … | 17 |
//! | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
//! | Front desk | active | | | | | | | | | | | | | |
//! | Sales line | active | | errored | **down** | | | | | | **recovered** | | | | |
//! | Bookings EU | active | | | errored | **down** | | | not_connected | **changed** | | | | | **recovered** |
//! | Support line | active | | | | not_connected | **down** | | | | | | **recovered** | | |
//! | Night shift | active | | | | | | errored (a blip: no message) | active | | | | | | |

use serde_json::{Value, json};

use crate::domain::AgentId;

/// Polls the script lasts; after them every agent stays as it last was.
pub const POLLS: u32 = 20;

/// What the simulated API says about one agent at one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Active,
    /// `errored`, with this account error.
    Errored(&'static str),
    /// `not_connected`, with this account error.
    NotConnected(&'static str),
}

/// One simulated agent.
#[derive(Debug, Clone)]
pub struct DemoAgent {
    pub id: AgentId,
    pub name: &'static str,
    /// What the intro says will happen to it.
    pub story: &'static str,
    calendar: &'static str,
    /// `(from poll, answer)`, in order: the answer holds until the next entry's poll.
    steps: &'static [(u32, Answer)],
}

const REVOKED: &str = "Cal.com refresh token revoked (invalid_grant): reconnect the account";
const EXPIRED: &str = "OAuth grant expired; the calendar owner must sign in to Cal.com again";
const REMOVED: &str = "Cal.com account removed from the team";

/// The cast, in the order the intro lists them.
pub fn agents() -> Vec<DemoAgent> {
    let id = |s: &str| s.parse::<AgentId>().expect("a valid demo id");
    vec![
        DemoAgent {
            id: id("0d3c5e1a-7b2f-4c8e-9a61-5f0e2d7c4b10"),
            name: "Front desk",
            story: "stays active the whole time: no message",
            calendar: "Front desk calendar",
            steps: &[(0, Answer::Active)],
        },
        DemoAgent {
            id: id("5a1b9c3d-2e4f-4a6b-8c0d-1e2f3a4b5c21"),
            name: "Sales line",
            story: "goes errored (token revoked), then recovers",
            calendar: "Sales calendar",
            steps: &[
                (0, Answer::Active),
                (2, Answer::Errored(REVOKED)),
                (9, Answer::Active),
            ],
        },
        DemoAgent {
            id: id("8e7d6c5b-4a39-4281-b7f6-e5d4c3b2a132"),
            name: "Bookings EU",
            story: "goes errored, then not_connected (a \"changed\" message), then recovers",
            calendar: "EU bookings calendar",
            steps: &[
                (0, Answer::Active),
                (3, Answer::Errored(EXPIRED)),
                (7, Answer::NotConnected(REMOVED)),
                (17, Answer::Active),
            ],
        },
        DemoAgent {
            id: id("c4b3a291-8f7e-4d6c-a5b4-93a2f1e0d043"),
            name: "Support line",
            story: "not_connected with account errors, then recovers",
            calendar: "Support calendar",
            steps: &[
                (0, Answer::Active),
                (4, Answer::NotConnected(EXPIRED)),
                (14, Answer::Active),
            ],
        },
        DemoAgent {
            id: id("f1e2d3c4-b5a6-4978-8d9e-0f1a2b3c4d54"),
            name: "Night shift",
            story: "flaps errored for a single poll: a blip, so no message",
            calendar: "Night shift calendar",
            steps: &[
                (0, Answer::Active),
                (6, Answer::Errored(REVOKED)),
                (7, Answer::Active),
            ],
        },
    ]
}

impl DemoAgent {
    /// The answer at the `poll`-th poll (0-based).
    pub fn answer(&self, poll: u32) -> Answer {
        self.steps
            .iter()
            .take_while(|(from, _)| *from <= poll)
            .last()
            .map(|(_, a)| *a)
            .unwrap_or(Answer::Active)
    }

    /// The body of `GET /api/v1/calcom/agents/{id}/status` at the `poll`-th poll, shaped as
    /// Ravan's documentation shows it.
    pub fn body(&self, poll: u32) -> Value {
        let (status, error) = match self.answer(poll) {
            Answer::Active => ("active", ""),
            Answer::Errored(e) => ("errored", e),
            Answer::NotConnected(e) => ("not_connected", e),
        };
        let mut accounts = vec![json!({
            "id": format!("acc-{}", &self.id.to_string()[..8]),
            "account_name": self.calendar,
            "status": status,
            "error": error,
        })];
        if status == "not_connected" {
            // A second, healthy account: the message lists the broken one first.
            accounts.push(json!({
                "id": "acc-shared",
                "account_name": "Shared team calendar",
                "status": "active",
                "error": "",
            }));
        }
        json!({
            "success": true,
            "message": "Agent connection status retrieved",
            "data": {"connected": status == "active", "status": status, "accounts": accounts},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_plays_as_documented() {
        let cast = agents();
        assert_eq!(cast.len(), 5);
        let sales = &cast[1];
        assert_eq!(sales.answer(1), Answer::Active);
        assert!(matches!(sales.answer(2), Answer::Errored(_)));
        assert_eq!(sales.answer(9), Answer::Active);
        assert_eq!(sales.answer(POLLS + 5), Answer::Active);
        let night = &cast[4];
        assert!(matches!(night.answer(6), Answer::Errored(_)));
        assert_eq!(night.answer(7), Answer::Active);
        let body = cast[3].body(5);
        assert_eq!(body["data"]["status"], "not_connected");
        assert_eq!(body["data"]["accounts"].as_array().unwrap().len(), 2);
        // Everyone ends healthy.
        assert!(cast.iter().all(|a| a.answer(POLLS - 1) == Answer::Active));
    }
}
