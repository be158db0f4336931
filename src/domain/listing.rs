//! Watch-all's rules: where a watched agent came from ([`Source`]), and what one complete
//! listing of the organisation's agents does to the watched ones ([`ListingPlan`]), decided
//! without I/O so the store only reads and writes.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::AgentId;

/// Where a watched agent came from. Watch-all removes only the agents it added itself.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Source {
    /// `WATCH_AGENT_IDS`.
    Env,
    /// `POST /agents`.
    Api,
    /// The organisation's listing (`WATCH_ALL_AGENTS`).
    Discovered,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// [`str::parse`], its error the value as it was.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        s.parse().map_err(|_| format!("{s:?}"))
    }
}

/// What one complete listing changed (`AgentStore::apply_listing`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingApplied {
    /// Agents watched from now on.
    pub added: Vec<AgentId>,
    /// Discovered agents unwatched: absent from two complete listings in a row.
    pub removed: Vec<AgentId>,
    /// Listed agents left unwatched because they were removed over the API.
    pub excluded: usize,
    /// Watched agents whose listed name changed.
    pub renamed: usize,
}

/// A watched agent as a listing sees it: where it came from, its listed name, and how many
/// complete listings in a row missed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingSeen {
    pub source: Source,
    pub listed_name: Option<String>,
    pub absent: i64,
}

/// What one complete listing does to the watched agents (`AgentStore::apply_listing`),
/// decided without I/O so that every backend applies the same rules: each backend reads the
/// agents and the ones removed over the API, and writes the plan in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingPlan {
    /// Watched agents whose listed name changed, with the new one.
    pub rename: Vec<(AgentId, Option<String>)>,
    /// Watched agents listed again after being missed: their absence count goes back to 0.
    pub reset_absence: Vec<AgentId>,
    /// Listed agents not watched yet: added as `discovered`, with their listed name.
    pub add: Vec<(AgentId, Option<String>)>,
    /// Discovered agents missed by this listing and the one before: unwatched.
    pub remove: Vec<AgentId>,
    /// Discovered agents missed by this listing for the first time: their count goes up.
    pub count_absence: Vec<AgentId>,
    /// Listed agents left unwatched because they were removed over the API.
    pub excluded: usize,
}

impl ListingPlan {
    /// The plan for `listed`, given the watched agents (`current`) and the ids removed over
    /// the API (`unwatched`).
    pub fn new(
        current: &HashMap<AgentId, ListingSeen>,
        unwatched: &HashSet<AgentId>,
        listed: &[(AgentId, Option<String>)],
    ) -> Self {
        let mut plan = Self::default();
        let mut listed_ids = HashSet::new();
        for (id, name) in listed {
            listed_ids.insert(*id);
            match current.get(id) {
                Some(seen) => {
                    if seen.listed_name != *name {
                        plan.rename.push((*id, name.clone()));
                    }
                    if seen.absent != 0 {
                        plan.reset_absence.push(*id);
                    }
                }
                None if unwatched.contains(id) => plan.excluded += 1,
                None => plan.add.push((*id, name.clone())),
            }
        }
        for (id, seen) in current {
            if seen.source != Source::Discovered || listed_ids.contains(id) {
                continue;
            }
            if seen.absent + 1 >= 2 {
                plan.remove.push(*id);
            } else {
                plan.count_absence.push(*id);
            }
        }
        plan.remove.sort();
        plan
    }

    /// What the plan changed, as `AgentStore::apply_listing` reports it.
    pub fn applied(&self) -> ListingApplied {
        ListingApplied {
            added: self.add.iter().map(|(id, _)| *id).collect(),
            removed: self.remove.clone(),
            excluded: self.excluded,
            renamed: self.rename.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    /// The store holds these names: they must not change, and serde's must agree.
    #[test]
    fn source_names_read_back() {
        for (source, name) in [
            (Source::Env, "env"),
            (Source::Api, "api"),
            (Source::Discovered, "discovered"),
        ] {
            assert_eq!(source.as_str(), name);
            assert_eq!(Source::parse(name), Ok(source));
            assert_eq!(serde_json::to_value(source).unwrap(), name);
        }
        assert_eq!(Source::parse("API"), Err("\"API\"".to_owned()));
    }

    fn id(n: u8) -> AgentId {
        format!("00000000-0000-4000-8000-0000000000{n:02}")
            .parse()
            .unwrap()
    }

    fn seen(source: Source, name: Option<&str>, absent: i64) -> ListingSeen {
        ListingSeen {
            source,
            listed_name: name.map(str::to_owned),
            absent,
        }
    }

    /// Every rule of a listing, each on an agent of its own, in one plan.
    #[test]
    fn a_listing_plan_follows_every_rule() {
        let current = HashMap::from([
            (id(1), seen(Source::Discovered, Some("Sales"), 0)), // listed, same name
            (id(2), seen(Source::Api, Some("Old"), 0)),          // listed, renamed
            (id(3), seen(Source::Discovered, None, 1)),          // listed again after a miss
            (id(4), seen(Source::Discovered, None, 0)),          // missed once
            (id(5), seen(Source::Discovered, None, 1)),          // missed twice
            (id(6), seen(Source::Env, None, 0)),                 // missed, not discovered
            (id(7), seen(Source::Api, None, 1)),                 // missed, not discovered
        ]);
        let unwatched = HashSet::from([id(9)]);
        let listed = vec![
            (id(1), Some("Sales".to_owned())),
            (id(2), Some("New".to_owned())),
            (id(3), None),
            (id(8), Some("Fresh".to_owned())), // not watched: added
            (id(9), Some("Gone".to_owned())),  // removed over the API: excluded
        ];
        let plan = ListingPlan::new(&current, &unwatched, &listed);
        assert_eq!(
            plan,
            ListingPlan {
                rename: vec![(id(2), Some("New".to_owned()))],
                reset_absence: vec![id(3)],
                add: vec![(id(8), Some("Fresh".to_owned()))],
                remove: vec![id(5)],
                count_absence: vec![id(4)],
                excluded: 1,
            }
        );
        assert_eq!(
            plan.applied(),
            ListingApplied {
                added: vec![id(8)],
                removed: vec![id(5)],
                excluded: 1,
                renamed: 1,
            }
        );
        // The same listing against what the plan leaves changes nothing more.
        let mut after = current.clone();
        after.remove(&id(5));
        after.insert(id(2), seen(Source::Api, Some("New"), 0));
        after.insert(id(3), seen(Source::Discovered, None, 0));
        after.insert(id(4), seen(Source::Discovered, None, 1));
        after.insert(id(8), seen(Source::Discovered, Some("Fresh"), 0));
        let again = ListingPlan::new(&after, &unwatched, &listed);
        assert_eq!(again.rename, vec![]);
        assert_eq!(again.add, vec![]);
        assert_eq!(again.remove, vec![id(4)], "missed a second time in a row");
    }
}
