//! One organisation-level integration's machine (`calcom_org`, `ghl`): checks in, alerts out.
//!
//! The agents' rules, because an integration breaks the same silent way an agent's connection
//! does and operators should not learn two sets of rules:
//! - A failed request is no observation: it records when and why, and changes nothing else.
//! - `failure` unhealthy checks in a row, once the integration has been seen healthy, are one
//!   [`IntegrationAlertKind::Down`]; `success` healthy ones in a row close it with one
//!   [`IntegrationAlertKind::Recovered`] that says how long it was down.
//! - An integration never seen healthy alerts nothing: an organisation that never connected
//!   GoHighLevel is not having an outage.
//!
//! The Cal.com token (`token_expires`), which Ravan may or may not refresh by itself:
//! - An expiry that moves is being refreshed, so a warning waits until the *same* value has been
//!   seen for [`TOKEN_STEADY`]: then, within `token_warning` of it, one
//!   [`IntegrationAlertKind::TokenExpiring`]. Once per value: only a new value that comes near
//!   again warns again.
//! - A token past its expiry that two checks at least [`EXPIRED_CONFIRM`] apart see unrenewed
//!   (the same value) is down with the detail [`TOKEN_EXPIRED`], whatever status Ravan reports.
//!   The two checks are its confirmation, so it does not wait for `failure` more checks: they
//!   are [`EXPIRED_CONFIRM`] apart, longer than a threshold of polls lasts at any sane schedule.
//!   Until the second check, the first counts as what Ravan said it is.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Thresholds;
use crate::domain::alert::{AgentRef, IntegrationAlert, IntegrationAlertKind, IntegrationName};
use crate::domain::{CalcomOrg, GhlSetup};

/// How long a token's expiry must stay put before a near expiry is worth a warning.
pub const TOKEN_STEADY: Duration = Duration::hours(24);
/// How far apart two checks must see an expired token before it counts as down.
pub const EXPIRED_CONFIRM: Duration = Duration::minutes(10);
/// The detail of a down alert for a token past its expiry.
pub const TOKEN_EXPIRED: &str = "token expired";

/// What one successful check said, independent of the client's types: the fold needs no more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationObservation {
    /// Ravan's verdict: Cal.com `status == "active"`; GoHighLevel connected with a valid token.
    pub healthy: bool,
    /// The raw status word (`active`, `not_connected`, `connected`, `token_invalid` …).
    pub status: String,
    /// Ravan's error or message about it, if any.
    pub detail: Option<String>,
    /// The Cal.com OAuth token's expiry, when reported (never for GoHighLevel).
    pub token_expires: Option<DateTime<Utc>>,
}

impl IntegrationObservation {
    /// The organisation's Cal.com connection as the fold sees it: healthy when `active`; the
    /// detail is Ravan's error, else its message.
    pub fn of_calcom(c: &CalcomOrg) -> Self {
        let detail = c.error.as_deref().or(c.message.as_deref());
        Self {
            healthy: c.is_healthy(),
            status: c.status.to_string(),
            detail: detail.map(str::to_owned),
            token_expires: c.token_expires,
        }
    }

    /// The organisation's GoHighLevel integration: healthy when connected with a valid token;
    /// the detail is Ravan's message, what setup still lacks, and how many agents book through
    /// it.
    pub fn of_ghl(g: &GhlSetup) -> Self {
        let mut parts: Vec<String> = g.message.iter().map(|m| m.to_string()).collect();
        if let Some(step) = g.next_step.as_deref().filter(|s| !s.trim().is_empty()) {
            parts.push(format!("next step: {step}"));
        }
        if let Some(n) = g.agent_count {
            parts.push(format!("{n} agents with GoHighLevel calendars"));
        }
        Self {
            healthy: g.is_healthy(),
            status: g.status().to_owned(),
            detail: (!parts.is_empty()).then(|| parts.join("; ")),
            token_expires: None,
        }
    }
}

/// An outage that was alerted and has not recovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationOutage {
    /// When its first unhealthy check was made.
    pub since: DateTime<Utc>,
    /// The status the down alert announced.
    pub alerted_status: String,
}

/// Everything the watcher remembers about one integration. Stored as JSON; missing fields take
/// their defaults, so a new integration is `{}` and a field added later reads from old rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IntegrationState {
    /// The raw status of the last check that answered; `None` before the first.
    pub status: Option<String>,
    /// The health the watcher judged it to have at that check (an expired token is unhealthy
    /// even when Ravan says `active`); `None` before the first.
    pub healthy: Option<bool>,
    /// What the last check that answered said about it (or [`TOKEN_EXPIRED`]).
    pub detail: Option<String>,
    /// When the current run of equal health began.
    pub since: Option<DateTime<Utc>>,
    /// Checks in a row with the health of `healthy`, counted up to the larger threshold.
    pub health_streak: u32,
    /// The status before the current unhealthy run began.
    pub status_before_run: Option<String>,
    /// Whether it was ever seen healthy: until then, nothing is alerted.
    pub seen_healthy: bool,
    pub outage: Option<IntegrationOutage>,
    /// When it was last checked, successfully or not.
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Why the last check failed; cleared by the next that answers.
    pub last_error: Option<String>,
    /// The token's expiry as last reported.
    pub token_expires: Option<DateTime<Utc>>,
    /// Since when that same expiry has been reported.
    pub token_seen_since: Option<DateTime<Utc>>,
    /// The first check that saw that expiry already past.
    pub token_expired_seen_at: Option<DateTime<Utc>>,
    /// The expiry a warning was sent about: none again for the same value.
    pub token_warned_for: Option<DateTime<Utc>>,
    /// Org-linked agents whose down alerts this integration's unhealthy run holds back (the
    /// organisation's Cal.com account is what they book through): named in its alerts.
    pub held: Vec<AgentRef>,
}

impl IntegrationState {
    /// Whether org-linked agents' new outages wait on this integration: from its first
    /// unhealthy check until it is healthy again (one broken shared account is one message).
    pub fn holds_org_linked(&self) -> bool {
        self.healthy == Some(false)
    }

    /// Records agents whose down alerts were held back this cycle, each once.
    pub fn hold(&mut self, agents: impl IntoIterator<Item = AgentRef>) {
        for agent in agents {
            if !self.held.iter().any(|h| h.id == agent.id) {
                self.held.push(agent);
            }
        }
    }

    /// Names the held agents in this check's down or recovery (`alerts`, from
    /// [`IntegrationState::observe`] of the same cycle), up to [`IntegrationAlert::NAMED`], counting all;
    /// once healthy again the holds are over: agents still down then alert on their own.
    pub fn fold_held(&mut self, alerts: &mut [IntegrationAlert]) {
        for alert in alerts.iter_mut().filter(|a| {
            matches!(
                a.kind,
                IntegrationAlertKind::Down | IntegrationAlertKind::Recovered
            )
        }) {
            alert.affected = self
                .held
                .iter()
                .take(IntegrationAlert::NAMED)
                .cloned()
                .collect();
            alert.affected_count = self.held.len();
        }
        if self.healthy == Some(true) {
            self.held.clear();
        }
    }

    /// `true` while a down alert is open.
    pub fn is_alerting(&self) -> bool {
        self.outage.is_some()
    }

    /// Records a failed check: it says nothing about the integration, so nothing else moves.
    pub fn check_failed(&mut self, error: String, at: DateTime<Utc>) {
        self.last_checked_at = Some(at);
        self.last_error = Some(error);
    }

    /// Folds one check that answered into the state; returns the alerts it completes (a down or
    /// a recovery, and a token warning). `token_warning` zero (or less) is no warning.
    pub fn observe(
        &mut self,
        name: IntegrationName,
        obs: &IntegrationObservation,
        now: DateTime<Utc>,
        th: &Thresholds,
        token_warning: Duration,
    ) -> Vec<IntegrationAlert> {
        self.last_checked_at = Some(now);
        self.last_error = None;
        let expired = self.track_token(obs.token_expires, now);
        let healthy = obs.healthy && !expired;
        let detail = if expired {
            Some(TOKEN_EXPIRED.to_owned())
        } else {
            obs.detail.clone()
        };
        let cap = th.failure.max(th.success).get();
        if self.healthy == Some(healthy) {
            self.health_streak = (self.health_streak + 1).min(cap);
        } else {
            if !healthy {
                self.status_before_run = self.status.clone();
            }
            self.health_streak = 1;
            self.since = Some(now);
        }
        self.status = Some(obs.status.clone());
        self.healthy = Some(healthy);
        self.detail = detail;
        self.seen_healthy |= healthy;
        let run_since = self.since.unwrap_or(now);
        let alert = |kind, from: Option<String>, at, since| IntegrationAlert {
            kind,
            integration: name,
            from,
            status: obs.status.clone(),
            detail: self.detail.clone(),
            at,
            since,
            token_expires: self.token_expires,
            affected: Vec::new(),
            affected_count: 0,
            org_linked: None,
        };
        let mut out = Vec::new();
        match &self.outage {
            None if !healthy
                && self.seen_healthy
                && (expired || self.health_streak >= th.failure.get()) =>
            {
                out.push(alert(
                    IntegrationAlertKind::Down,
                    self.status_before_run.clone(),
                    now,
                    run_since,
                ));
                self.outage = Some(IntegrationOutage {
                    since: run_since,
                    alerted_status: obs.status.clone(),
                });
            }
            Some(outage) if healthy && self.health_streak >= th.success.get() => {
                out.push(alert(
                    IntegrationAlertKind::Recovered,
                    Some(outage.alerted_status.clone()),
                    run_since,
                    outage.since,
                ));
                self.outage = None;
            }
            _ => {}
        }
        out.extend(self.token_warning(name, obs, now, token_warning));
        out
    }

    /// Keeps the token's expiry and since when it has been the same; returns whether the token
    /// is past its expiry and was already, unrenewed, at a check [`EXPIRED_CONFIRM`] earlier.
    fn track_token(&mut self, expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        if self.token_expires != expires || self.token_seen_since.is_none() {
            self.token_expires = expires;
            self.token_seen_since = expires.map(|_| now);
            self.token_expired_seen_at = None;
        }
        let Some(expires) = expires else {
            return false;
        };
        if expires > now {
            self.token_expired_seen_at = None;
            return false;
        }
        let first = *self.token_expired_seen_at.get_or_insert(now);
        now - first >= EXPIRED_CONFIRM
    }

    /// The warning that the token expires within `warning`, once per expiry value, when that
    /// value has not moved for [`TOKEN_STEADY`].
    fn token_warning(
        &mut self,
        name: IntegrationName,
        obs: &IntegrationObservation,
        now: DateTime<Utc>,
        warning: Duration,
    ) -> Option<IntegrationAlert> {
        let expires = self.token_expires?;
        let seen_since = self.token_seen_since?;
        let due = warning > Duration::zero()
            && expires > now
            && expires - now <= warning
            && now - seen_since >= TOKEN_STEADY
            && self.token_warned_for != Some(expires);
        if !due {
            return None;
        }
        self.token_warned_for = Some(expires);
        Some(IntegrationAlert {
            kind: IntegrationAlertKind::TokenExpiring,
            integration: name,
            from: None,
            status: obs.status.clone(),
            detail: obs.detail.clone(),
            at: now,
            since: seen_since,
            token_expires: Some(expires),
            affected: Vec::new(),
            affected_count: 0,
            org_linked: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::test_support::{t, th};
    use IntegrationAlertKind::*;

    const CAL: IntegrationName = IntegrationName::CalcomOrg;
    const GHL: IntegrationName = IntegrationName::Ghl;

    fn obs(status: &str) -> IntegrationObservation {
        let healthy = matches!(status, "active" | "connected");
        IntegrationObservation {
            healthy,
            status: status.into(),
            detail: (!healthy).then(|| format!("{status} says Ravan")),
            token_expires: None,
        }
    }

    fn with_token(status: &str, expires: DateTime<Utc>) -> IntegrationObservation {
        IntegrationObservation {
            token_expires: Some(expires),
            ..obs(status)
        }
    }

    /// Feeds checks one minute apart ("!" a failed request) with thresholds `th`, no token
    /// warning; returns (minute, kind, from, status) of every alert.
    fn run(
        s: &mut IntegrationState,
        th: &Thresholds,
        steps: &[&str],
    ) -> Vec<(i64, IntegrationAlertKind, Option<String>, String)> {
        let mut out = Vec::new();
        for (m, step) in steps.iter().enumerate() {
            let m = m as i64;
            if *step == "!" {
                s.check_failed("HTTP 502".into(), t(m));
                continue;
            }
            for a in s.observe(GHL, &obs(step), t(m), th, Duration::zero()) {
                out.push((m, a.kind, a.from, a.status));
            }
        }
        out
    }

    fn agent(n: u8) -> AgentRef {
        AgentRef {
            id: format!("00000000-0000-4000-8000-{n:012}").parse().unwrap(),
            name: Some(format!("agent {n}")),
        }
    }

    /// Org-linked agents are held from the first unhealthy check, named (10) and counted (all)
    /// in the down and in the recovery, and forgotten once healthy; a blip that never alerted
    /// forgets them too (their own downs come after it).
    #[test]
    fn held_agents_are_named_in_the_down_and_the_recovery_and_forgotten_once_healthy() {
        let th = th(2, 1, None);
        let mut s = IntegrationState::default();
        let zero = Duration::zero();
        assert!(s.observe(CAL, &obs("active"), t(0), &th, zero).is_empty());
        assert!(!s.holds_org_linked());
        let mut first = s.observe(CAL, &obs("errored"), t(1), &th, zero);
        assert!(s.holds_org_linked(), "from the first unhealthy check");
        s.hold((1..=8).map(agent));
        s.fold_held(&mut first);
        assert!(first.is_empty());
        let mut down = s.observe(CAL, &obs("errored"), t(2), &th, zero);
        s.hold((5..=12).map(agent));
        s.fold_held(&mut down);
        assert_eq!(down.len(), 1);
        assert_eq!((down[0].kind, down[0].affected_count), (Down, 12));
        assert_eq!(down[0].affected.len(), IntegrationAlert::NAMED);
        let mut up = s.observe(CAL, &obs("active"), t(3), &th, zero);
        assert!(!s.holds_org_linked());
        s.fold_held(&mut up);
        assert_eq!((up[0].kind, up[0].affected_count), (Recovered, 12));
        assert!(s.held.is_empty(), "forgotten once healthy");

        // A blip below the threshold: held, never alerted, forgotten.
        let mut blip = s.observe(CAL, &obs("errored"), t(4), &th, zero);
        s.hold([agent(1)]);
        s.fold_held(&mut blip);
        let mut back = s.observe(CAL, &obs("active"), t(5), &th, zero);
        s.fold_held(&mut back);
        assert!(blip.is_empty() && back.is_empty());
        assert!(s.held.is_empty());
    }

    #[test]
    fn down_after_the_failure_threshold_then_recovered_after_the_success_threshold() {
        for f in 1..=3u32 {
            for sc in 1..=3u32 {
                let th = th(f, sc, None);
                let mut s = IntegrationState::default();
                let steps = [
                    vec!["connected"],
                    vec!["token_invalid"; f as usize + 2],
                    vec!["connected"; sc as usize + 2],
                ]
                .concat();
                let got = run(&mut s, &th, &steps);
                let (fi, si) = (f as i64, sc as i64);
                assert_eq!(
                    got,
                    vec![
                        (fi, Down, Some("connected".into()), "token_invalid".into()),
                        (
                            fi + 2 + si,
                            Recovered,
                            Some("token_invalid".into()),
                            "connected".into()
                        ),
                    ],
                    "failure {f}, success {sc}"
                );
                assert!(!s.is_alerting());
            }
        }
    }

    #[test]
    fn the_down_alert_names_the_integration_status_detail_and_start() {
        let th = th(2, 1, None);
        let mut s = IntegrationState::default();
        assert!(
            s.observe(GHL, &obs("connected"), t(0), &th, Duration::zero())
                .is_empty()
        );
        assert!(
            s.observe(GHL, &obs("token_invalid"), t(1), &th, Duration::zero())
                .is_empty()
        );
        let got = s.observe(GHL, &obs("token_invalid"), t(2), &th, Duration::zero());
        assert_eq!(got.len(), 1, "{got:?}");
        let down = &got[0];
        assert_eq!(down.kind, Down);
        assert_eq!(down.integration, GHL);
        assert_eq!(down.status, "token_invalid");
        assert_eq!(down.detail.as_deref(), Some("token_invalid says Ravan"));
        assert_eq!((down.at, down.since), (t(2), t(1)));
        assert_eq!(down.from.as_deref(), Some("connected"));
        assert_eq!(down.token_expires, None);
        assert!(down.affected.is_empty());
        assert_eq!(down.affected_count, 0);
        assert_eq!(
            s.outage,
            Some(IntegrationOutage {
                since: t(1),
                alerted_status: "token_invalid".into()
            })
        );

        // The recovery: dated at its first healthy check, with the downtime from the start.
        run(&mut s, &th, &["!", "!", "!"]);
        let got = s.observe(GHL, &obs("connected"), t(9), &th, Duration::zero());
        assert_eq!(got.len(), 1, "{got:?}");
        let up = &got[0];
        assert_eq!(up.kind, Recovered);
        assert_eq!((up.at, up.since), (t(9), t(1)));
        assert_eq!(up.at - up.since, Duration::minutes(8), "the downtime");
        assert_eq!(up.from.as_deref(), Some("token_invalid"));
        assert_eq!(up.status, "connected");
        assert_eq!(up.detail, None);
    }

    #[test]
    fn unhealthy_checks_below_the_threshold_alert_nothing() {
        let th = th(3, 1, None);
        let mut s = IntegrationState::default();
        let got = run(
            &mut s,
            &th,
            &[
                "active", "errored", "errored", "active", "errored", "errored",
            ],
        );
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(s.health_streak, 2);
        assert_eq!(s.since, Some(t(4)), "the run restarted");
    }

    #[test]
    fn a_recovery_below_the_success_threshold_keeps_the_outage_open() {
        let th = th(1, 3, None);
        let mut s = IntegrationState::default();
        let got = run(
            &mut s,
            &th,
            &[
                "connected",
                "not_connected",
                "connected",
                "connected",
                "not_connected",
            ],
        );
        assert_eq!(
            got,
            vec![(1, Down, Some("connected".into()), "not_connected".into())]
        );
        assert!(s.is_alerting());
        assert_eq!(s.outage.as_ref().map(|o| o.since), Some(t(1)), "one outage");
    }

    #[test]
    fn an_integration_never_seen_healthy_alerts_nothing_until_it_has_been() {
        let th = th(1, 1, None);
        let mut s = IntegrationState::default();
        let got = run(&mut s, &th, &["not_connected"; 10]);
        assert!(got.is_empty(), "{got:?}");
        assert!(!s.seen_healthy);
        assert_eq!(s.status.as_deref(), Some("not_connected"));
        assert_eq!(s.healthy, Some(false));
        // Connected at last, then broken: that is an outage.
        let got = run(&mut s, &th, &["connected", "token_invalid"]);
        assert_eq!(
            got,
            vec![(1, Down, Some("connected".into()), "token_invalid".into())]
        );
    }

    #[test]
    fn a_failed_check_changes_nothing_but_when_and_why() {
        let th = th(2, 1, None);
        for steps in [
            vec![],
            vec!["connected"],
            vec!["connected", "token_invalid"],
            vec!["connected", "token_invalid", "token_invalid"],
        ] {
            let mut s = IntegrationState::default();
            run(&mut s, &th, &steps);
            let before = s.clone();
            for m in 0..5 {
                s.check_failed(format!("timeout {m}"), t(100 + m));
            }
            assert_eq!(s.last_checked_at, Some(t(104)));
            assert_eq!(s.last_error.as_deref(), Some("timeout 4"));
            let restored = IntegrationState {
                last_checked_at: before.last_checked_at,
                last_error: before.last_error.clone(),
                ..s.clone()
            };
            assert_eq!(restored, before, "after {steps:?}");
        }
        // Failures neither count nor break a run.
        let mut s = IntegrationState::default();
        let got = run(
            &mut s,
            &th,
            &["connected", "token_invalid", "!", "!", "token_invalid"],
        );
        assert_eq!(
            got,
            vec![(4, Down, Some("connected".into()), "token_invalid".into())]
        );
        // The next answer clears the error.
        assert_eq!(s.last_error, None);
        assert_eq!(s.last_checked_at, Some(t(4)));
    }

    #[test]
    fn only_failures_leave_no_status() {
        let mut s = IntegrationState::default();
        assert!(run(&mut s, &th(1, 1, None), &["!", "!"]).is_empty());
        assert_eq!((s.status.as_ref(), s.healthy), (None, None));
    }

    #[test]
    fn a_second_outage_alerts_again_and_a_steady_one_only_once() {
        let mut s = IntegrationState::default();
        let got = run(
            &mut s,
            &th(1, 1, None),
            &[
                "connected",
                "token_invalid",
                "token_invalid",
                "not_connected",
                "connected",
                "token_invalid",
            ],
        );
        let kinds: Vec<_> = got.iter().map(|g| (g.0, g.1)).collect();
        assert_eq!(kinds, vec![(1, Down), (4, Recovered), (5, Down)]);
    }

    #[test]
    fn the_state_round_trips_through_json_and_an_empty_object_is_new() {
        let mut s = IntegrationState::default();
        run(&mut s, &th(1, 1, None), &["connected", "token_invalid"]);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<IntegrationState>(&json).unwrap(), s);
        let new: IntegrationState = serde_json::from_str("{}").unwrap();
        assert_eq!(new, IntegrationState::default());
    }

    // ------------------------------------------------------------------ the token

    /// Hour `h` after [`t`]`(0)`.
    fn h(h: i64) -> DateTime<Utc> {
        t(0) + Duration::hours(h)
    }

    const WARN: Duration = Duration::days(3);

    /// Checks of a healthy Cal.com at the given hours with the expiry each reports; the alerts
    /// as (hour, kind).
    fn tokens(
        s: &mut IntegrationState,
        warning: Duration,
        checks: &[(i64, DateTime<Utc>)],
    ) -> Vec<(i64, IntegrationAlertKind)> {
        let mut out = Vec::new();
        for (hour, expires) in checks {
            let got = s.observe(
                CAL,
                &with_token("active", *expires),
                h(*hour),
                &th(2, 1, None),
                warning,
            );
            out.extend(got.into_iter().map(|a| (*hour, a.kind)));
        }
        out
    }

    #[test]
    fn a_stuck_expiry_warns_once_when_within_the_warning_and_seen_for_a_day() {
        let expires = h(100);
        // Within 3 days from hour 28; seen steady for 24 h from hour 24.
        let checks: Vec<_> = (0..=99).map(|hour| (hour, expires)).collect();
        let mut s = IntegrationState::default();
        let got = tokens(&mut s, WARN, &checks);
        assert_eq!(got, vec![(28, TokenExpiring)]);
        assert_eq!(s.token_warned_for, Some(expires));

        // Steady long before it comes near: the warning comes when it does.
        let checks: Vec<_> = (0..=99).step_by(10).map(|hour| (hour, h(200))).collect();
        let mut s = IntegrationState::default();
        assert!(tokens(&mut s, WARN, &checks).is_empty());
        let got = tokens(&mut s, WARN, &[(127, h(200)), (128, h(200)), (150, h(200))]);
        assert_eq!(got, vec![(128, TokenExpiring)]);

        // Near from the first check: waits for a day of the same value.
        let mut s = IntegrationState::default();
        let got = tokens(
            &mut s,
            WARN,
            &[(0, h(30)), (23, h(30)), (24, h(30)), (25, h(30))],
        );
        assert_eq!(got, vec![(24, TokenExpiring)]);
    }

    #[test]
    fn the_warning_carries_the_expiry_and_what_to_do_needs() {
        let mut s = IntegrationState::default();
        let th = th(2, 1, None);
        s.observe(CAL, &with_token("active", h(50)), h(0), &th, WARN);
        let got = s.observe(CAL, &with_token("active", h(50)), h(24), &th, WARN);
        assert_eq!(got.len(), 1, "{got:?}");
        let w = &got[0];
        assert_eq!(w.kind, TokenExpiring);
        assert_eq!(w.integration, CAL);
        assert_eq!(w.token_expires, Some(h(50)));
        assert_eq!(
            (w.at, w.since),
            (h(24), h(0)),
            "steady since the first check"
        );
        assert_eq!(w.status, "active");
        assert!(!s.is_alerting(), "a warning is no outage");
    }

    #[test]
    fn an_expiry_that_keeps_moving_never_warns() {
        // Refreshed every 12 h, always 1 day ahead: always near, never steady for a day.
        let checks: Vec<_> = (0..200)
            .map(|hour| (hour, h(hour / 12 * 12 + 24)))
            .collect();
        let mut s = IntegrationState::default();
        assert!(tokens(&mut s, WARN, &checks).is_empty());
        assert_eq!(s.token_warned_for, None);
    }

    #[test]
    fn a_new_expiry_warns_again_only_when_it_too_comes_near_and_stays() {
        let mut s = IntegrationState::default();
        let mut got = tokens(&mut s, WARN, &[(0, h(50)), (24, h(50)), (30, h(50))]);
        // Renewed once: a far new value, then steady, then near.
        got.extend(tokens(
            &mut s,
            WARN,
            &[(40, h(200)), (100, h(200)), (127, h(200))],
        ));
        got.extend(tokens(&mut s, WARN, &[(128, h(200)), (129, h(200))]));
        assert_eq!(got, vec![(24, TokenExpiring), (128, TokenExpiring)]);
        // Back to the value already warned about: not again.
        let got = tokens(&mut s, WARN, &[(130, h(180)), (160, h(200)), (190, h(200))]);
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn a_zero_warning_is_off() {
        let checks: Vec<_> = (0..=99).map(|hour| (hour, h(100))).collect();
        let mut s = IntegrationState::default();
        assert!(tokens(&mut s, Duration::zero(), &checks).is_empty());
        assert_eq!(s.token_warned_for, None);
    }

    #[test]
    fn failed_checks_keep_the_expiry_and_its_age() {
        let mut s = IntegrationState::default();
        tokens(&mut s, WARN, &[(0, h(50))]);
        for hour in 1..30 {
            s.check_failed("HTTP 500".into(), h(hour));
        }
        assert_eq!(
            (s.token_expires, s.token_seen_since),
            (Some(h(50)), Some(h(0)))
        );
        assert_eq!(
            tokens(&mut s, WARN, &[(30, h(50))]),
            vec![(30, TokenExpiring)]
        );
    }

    /// Minutes after hour 100, the expiry of the tests below.
    fn after(m: i64) -> DateTime<Utc> {
        h(100) + Duration::minutes(m)
    }

    fn expiry_checks(
        s: &mut IntegrationState,
        th: &Thresholds,
        checks: &[(i64, &str, DateTime<Utc>)],
    ) -> Vec<(i64, IntegrationAlertKind, Option<String>)> {
        let mut out = Vec::new();
        for (m, status, expires) in checks {
            let got = s.observe(
                CAL,
                &with_token(status, *expires),
                after(*m),
                th,
                Duration::zero(),
            );
            out.extend(got.into_iter().map(|a| (*m, a.kind, a.detail)));
        }
        out
    }

    #[test]
    fn an_expired_token_unrenewed_on_two_checks_ten_minutes_apart_is_down() {
        for f in 1..=3 {
            let th = th(f, 1, None);
            let mut s = IntegrationState::default();
            let got = expiry_checks(
                &mut s,
                &th,
                &[
                    (-30, "active", h(100)),
                    (0, "active", h(100)),
                    (5, "active", h(100)),
                    (9, "active", h(100)),
                    (10, "active", h(100)),
                    (11, "active", h(100)),
                    (40, "active", h(100)),
                ],
            );
            assert_eq!(
                got,
                vec![(10, Down, Some(TOKEN_EXPIRED.to_owned()))],
                "failure threshold {f}: the two checks are the confirmation"
            );
            assert_eq!(s.healthy, Some(false));
            assert_eq!(s.status.as_deref(), Some("active"), "the raw word is kept");
            assert_eq!(s.detail.as_deref(), Some(TOKEN_EXPIRED));
            assert_eq!(s.outage.as_ref().map(|o| o.since), Some(after(10)));

            // Renewed: healthy again, a recovery.
            let got = expiry_checks(&mut s, &th, &[(41, "active", h(300))]);
            assert_eq!(got, vec![(41, Recovered, None)]);
            assert_eq!(s.token_expired_seen_at, None);
        }
    }

    #[test]
    fn an_expired_token_renewed_within_ten_minutes_is_not_down() {
        let th = th(1, 1, None);
        let mut s = IntegrationState::default();
        let got = expiry_checks(
            &mut s,
            &th,
            &[
                (0, "active", h(100)),
                (5, "active", h(100)),
                // Renewed, and the new one expires too: counted from its own first sighting.
                (9, "active", after(8)),
                (12, "active", after(8)),
                (18, "active", after(8)),
                (19, "active", after(8)),
            ],
        );
        assert_eq!(got, vec![(19, Down, Some(TOKEN_EXPIRED.to_owned()))]);
    }

    #[test]
    fn an_expired_token_with_an_unhealthy_status_follows_the_threshold_until_confirmed() {
        let th = th(3, 1, None);
        let mut s = IntegrationState::default();
        let got = expiry_checks(
            &mut s,
            &th,
            &[
                (-1, "active", h(100)),
                (0, "errored", h(100)),
                (1, "errored", h(100)),
                (10, "errored", h(100)),
            ],
        );
        assert_eq!(got, vec![(10, Down, Some(TOKEN_EXPIRED.to_owned()))]);
        // Already down: the confirmation of the expiry adds nothing.
        let mut s = IntegrationState::default();
        let got = expiry_checks(
            &mut s,
            &th,
            &[
                (-3, "active", h(100)),
                (-2, "errored", h(100)),
                (-1, "errored", h(100)),
                (0, "errored", h(100)),
                (10, "errored", h(100)),
                (20, "errored", h(100)),
            ],
        );
        assert_eq!(got, vec![(0, Down, Some("errored says Ravan".to_owned()))]);
    }

    #[test]
    fn an_expired_token_never_seen_healthy_alerts_nothing() {
        let th = th(1, 1, None);
        let mut s = IntegrationState::default();
        let got = expiry_checks(
            &mut s,
            &th,
            &[
                (0, "errored", h(100)),
                (10, "errored", h(100)),
                (30, "errored", h(100)),
            ],
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn an_expired_token_warns_no_more() {
        let mut s = IntegrationState::default();
        let got = tokens(&mut s, WARN, &[(0, h(30)), (31, h(30)), (60, h(30))]);
        // Hour 31 is the first check past the expiry; hour 60, 29 h later, confirms it.
        assert_eq!(got, vec![(60, Down)], "no warning once it has expired");
    }
}
