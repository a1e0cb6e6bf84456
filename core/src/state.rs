//! What the ledger knows about one principal, as plain data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::identity_center::NotEnforceable;
use crate::intent::Intent;
use crate::money::Usd;
use crate::principal::PrincipalArn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Blocked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Blocked => "blocked",
        }
    }
}

/// Why a blocked principal is blocked: rollover restores `Cap` blocks, never `Manual` ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockCause {
    Cap,
    Manual,
    /// Only the premium-model policies are taken (a `downgrade` rung); cheaper models
    /// still work. Ends like a cap block, at the period's end or when the cap is raised.
    Downgrade,
}

impl BlockCause {
    /// Blocks the cap made: they end with the period, or when the cap is raised.
    pub fn ends_with_the_cap(self) -> bool {
        matches!(self, BlockCause::Cap | BlockCause::Downgrade)
    }
}

/// A temporary raise of the cap (`extra_usd`) or a full exemption, until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_usd: Option<Usd>,
    #[serde(default)]
    pub exempt: bool,
    pub expires_at: DateTime<Utc>,
    pub granted_by: String,
    pub reason: String,
    /// The second finance principal who approved it, when it needed approval (see
    /// [`OverrideRequest`]); `granted_by` asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

/// An override above the approval line (or an exemption) waiting for a second finance
/// principal: it counts for nothing until `approve_override`, and lapses at its expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRequest {
    /// The override as it will be granted (`granted_by` is who asked).
    pub grant: Override,
    pub requested_at: DateTime<Utc>,
}

impl Override {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// The ledger's record of one principal. Overrides live inside it (not in items of their
/// own) so that the alert path reads everything it decides on in one consistent read, and
/// one version number guards all of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalState {
    pub principal: PrincipalArn,
    pub budget: String,
    pub cap_usd: Usd,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_cause: Option<BlockCause>,
    /// The budget period in which the cap block happened (`2026-11`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_period: Option<String>,
    /// Exactly the managed policies seatcap detached; restore re-attaches these and no others.
    #[serde(default)]
    pub detached_policy_arns: Vec<String>,
    /// The seatcap deny policy that cuts this principal: attached to it (deny mode), or, for
    /// a person on a shared role, the role's shard that lists them. Restore removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_policy_arn: Option<String>,
    /// A cut the ledger records that IAM does not enforce yet: a person on an IAM Identity
    /// Center role whose permission set does not reference seatcap's shard (see
    /// [`crate::identity_center`]). Cleared when reconcile finds the shard on the role, or
    /// by a restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_enforceable: Option<NotEnforceable>,
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub overrides: Vec<Override>,
    /// Overrides asked for that wait for a second finance principal's approval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub override_requests: Vec<OverrideRequest>,
    /// This period's cap raises, to hold the two-person line across steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_raises: Vec<crate::cap_raise::CapRaise>,
    /// Cap raises above the line waiting for a second finance person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_requests: Vec<crate::cap_raise::CapRequest>,
    /// The highest ACTUAL spend known for the period `last_actual_period` (from alerts and
    /// Budgets' own figure), so a cap change can tell at once whether the principal is under
    /// it. Read through [`PrincipalState::spend_in`]: it says nothing about any other period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_actual_usd: Option<Usd>,
    /// The period key `last_actual_usd` belongs to (`2026-11`). Items written before this
    /// field have none: their figure is taken as the blocked period's, or as no figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_actual_period: Option<String>,
    /// The `ABSOLUTE_VALUE` ACTUAL notifications seatcap put on the principal's budget to
    /// alert again within a period (see [`crate::rearm`]): the only ones it removes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_alarms_usd: Vec<Usd>,
    /// The team whose Slack channel hears about this principal (`set_cap`'s `team`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// A change under way: IAM is being changed as it says (see [`crate::intent`]). No other
    /// change is made until it is confirmed or its holder's time is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<Intent>>,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct StateView<'a> {
    principal: &'a PrincipalArn,
    budget: &'a str,
    status: Status,
    cap_usd: Usd,
    effective_cap_usd: serde_json::Value,
    detached_policy_arns: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    deny_policy_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_enforceable: Option<&'a NotEnforceable>,
    protected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_cause: Option<BlockCause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_period: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_actual_usd: Option<Usd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_actual_period: Option<&'a str>,
    #[serde(skip_serializing_if = "<[Usd]>::is_empty")]
    budget_alarms_usd: &'a [Usd],
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
    /// Active overrides, with who granted (and approved) each: `revoke_override` takes their ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    overrides: Vec<&'a Override>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    override_requests: Vec<&'a OverrideRequest>,
    /// Cap raises waiting for a second finance person: `approve_override` takes their ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cap_requests: Vec<&'a crate::cap_raise::CapRequest>,
    /// A change under way (its writer, and until when it holds the principal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<PendingView<'a>>,
    version: u64,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct PendingView<'a> {
    by: &'a str,
    started_at: DateTime<Utc>,
    held_until: DateTime<Utc>,
}

/// The cap that applies right now: the cap plus active overrides, or none at all while an
/// exemption is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectiveCap {
    Limited(Usd),
    Exempt,
}

impl EffectiveCap {
    /// `"200.00"`, or `"exempt"`.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            EffectiveCap::Limited(usd) => serde_json::json!(usd),
            EffectiveCap::Exempt => serde_json::json!("exempt"),
        }
    }

    pub fn is_reached_by(self, spend: Usd) -> bool {
        match self {
            EffectiveCap::Limited(cap) => spend >= cap,
            EffectiveCap::Exempt => false,
        }
    }
}

impl PrincipalState {
    pub fn new(principal: PrincipalArn, budget: String, cap_usd: Usd, now: DateTime<Utc>) -> Self {
        PrincipalState {
            principal,
            budget,
            cap_usd,
            status: Status::Active,
            block_cause: None,
            blocked_period: None,
            detached_policy_arns: Vec::new(),
            deny_policy_arn: None,
            not_enforceable: None,
            protected: false,
            overrides: Vec::new(),
            override_requests: Vec::new(),
            cap_raises: Vec::new(),
            cap_requests: Vec::new(),
            last_actual_usd: None,
            last_actual_period: None,
            budget_alarms_usd: Vec::new(),
            team: None,
            pending: None,
            version: 0,
            updated_at: now,
        }
    }

    pub fn effective_cap(&self, now: DateTime<Utc>) -> EffectiveCap {
        let active = || self.overrides.iter().filter(|o| o.is_active(now));
        if active().any(|o| o.exempt) {
            return EffectiveCap::Exempt;
        }
        EffectiveCap::Limited(
            active()
                .filter_map(|o| o.extra_usd)
                .fold(self.cap_usd, |sum, extra| sum + extra),
        )
    }

    /// The period the known spend belongs to. A figure written by a version that did not
    /// record its period was the blocking alert's when the principal is cap-blocked;
    /// otherwise its period is unknown and it counts for none.
    fn spend_period(&self) -> Option<&str> {
        self.last_actual_period
            .as_deref()
            .or(self.blocked_period.as_deref())
            .filter(|_| self.last_actual_usd.is_some())
    }

    /// The highest spend known for the period `key`.
    pub fn spend_in(&self, key: &str) -> Option<Usd> {
        self.last_actual_usd
            .filter(|_| self.spend_period() == Some(key))
    }

    /// The highest spend known for the period that `now` falls in, and that period: a figure
    /// from a period that has ended never decides anything in the current one.
    pub fn spend_now(&self, now: DateTime<Utc>) -> Option<(Usd, &str)> {
        let period = self.spend_period()?;
        let spend = self.last_actual_usd?;
        crate::period::is_current(period, now).then_some((spend, period))
    }

    /// Records an ACTUAL figure for `period`: the highest one of a period stands (Budgets
    /// lags the alerts, and spend within a period does not go down), a newer period's
    /// replaces an older one's. The caller never records an ended period's figure.
    pub fn record_spend(&mut self, period: String, spend: Usd) {
        let kept = self
            .spend_in(&period)
            .map_or(spend, |known| known.max(spend));
        self.last_actual_usd = Some(kept);
        self.last_actual_period = Some(period);
    }

    /// Drops a known spend whose period has ended (a restore into a new period, the
    /// rollover): it must not come back to decide anything.
    pub fn forget_ended_spend(&mut self, now: DateTime<Utc>) {
        if self.spend_now(now).is_none() {
            self.last_actual_usd = None;
            self.last_actual_period = None;
        }
    }

    /// The state as admin answers and the audit show it.
    pub fn view(&self, now: DateTime<Utc>) -> serde_json::Value {
        let view = StateView {
            principal: &self.principal,
            budget: &self.budget,
            status: self.status,
            cap_usd: self.cap_usd,
            effective_cap_usd: self.effective_cap(now).to_json(),
            detached_policy_arns: &self.detached_policy_arns,
            deny_policy_arn: self.deny_policy_arn.as_deref(),
            not_enforceable: self.not_enforceable.as_ref(),
            protected: self.protected,
            block_cause: self.block_cause,
            blocked_period: self.blocked_period.as_deref(),
            last_actual_usd: self.last_actual_usd,
            last_actual_period: self.spend_period(),
            budget_alarms_usd: &self.budget_alarms_usd,
            team: self.team.as_deref(),
            overrides: self.overrides.iter().filter(|o| o.is_active(now)).collect(),
            override_requests: self.open_override_requests(now).collect(),
            cap_requests: crate::cap_raise::open_cap_requests(self, now).collect(),
            pending: self.pending.as_deref().map(|i| PendingView {
                by: &i.by,
                started_at: i.started_at,
                held_until: i.held_until,
            }),
            version: self.version,
            updated_at: self.updated_at,
        };
        serde_json::to_value(view).unwrap_or_default()
    }

    /// The override requests still waiting for approval (not yet lapsed).
    pub fn open_override_requests(
        &self,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = &OverrideRequest> {
        self.override_requests
            .iter()
            .filter(move |r| r.grant.is_active(now))
    }

    /// The next version of this state, for a conditional write against `self.version`.
    pub fn next(
        &self,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut PrincipalState),
    ) -> PrincipalState {
        let mut next = self.clone();
        change(&mut next);
        next.version = self.version + 1;
        next.updated_at = now;
        next
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn state_with(overrides: Vec<Override>) -> PrincipalState {
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        let mut state = PrincipalState::new(
            "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
            "seatcap-alice".into(),
            Usd::from_cents(200_00),
            now,
        );
        state.overrides = overrides;
        state
    }

    fn grant(extra_cents: Option<i64>, exempt: bool, expires_day: u32) -> Override {
        Override {
            id: format!("o{expires_day}"),
            extra_usd: extra_cents.map(Usd::from_cents),
            exempt,
            expires_at: Utc
                .with_ymd_and_hms(2026, 11, expires_day, 0, 0, 0)
                .unwrap(),
            granted_by: "finance@example.com".into(),
            reason: "test".into(),
            approved_by: None,
        }
    }

    #[test]
    fn active_overrides_raise_the_cap_and_expired_ones_do_not() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        let state = state_with(vec![
            grant(Some(50_00), false, 30),
            grant(Some(1000_00), false, 21),
        ]);
        assert_eq!(
            state.effective_cap(now),
            EffectiveCap::Limited(Usd::from_cents(250_00))
        );
        assert!(
            state
                .effective_cap(now)
                .is_reached_by(Usd::from_cents(250_00))
        );
        assert!(
            !state
                .effective_cap(now)
                .is_reached_by(Usd::from_cents(249_99))
        );
    }

    #[test]
    fn spend_counts_only_in_its_own_period_and_the_highest_figure_stands() {
        let november = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        let december = Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap();
        let mut state = state_with(Vec::new());
        state.record_spend("2026-11".into(), Usd::from_cents(201_00));
        // Budgets' lagging figure does not lower what an alert reported.
        state.record_spend("2026-11".into(), Usd::from_cents(150_00));
        assert_eq!(
            state.spend_now(november),
            Some((Usd::from_cents(201_00), "2026-11"))
        );
        assert_eq!(state.spend_now(december), None);
        assert_eq!(state.spend_in("2026-12"), None);
        state.forget_ended_spend(november);
        assert_eq!(state.spend_in("2026-11"), Some(Usd::from_cents(201_00)));
        state.forget_ended_spend(december);
        assert_eq!(
            (state.last_actual_usd, state.last_actual_period.as_deref()),
            (None, None)
        );
        state.record_spend("2026-12".into(), Usd::from_cents(3_00));
        assert_eq!(state.spend_in("2026-12"), Some(Usd::from_cents(3_00)));
    }

    #[test]
    fn a_figure_written_without_its_period_is_the_blocked_periods_or_none() {
        let november = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        let mut old: PrincipalState = serde_json::from_value(serde_json::json!({
            "principal": "arn:aws:iam::123456789012:user/alice", "budget": "seatcap-alice",
            "cap_usd": "200", "status": "blocked", "block_cause": "cap",
            "blocked_period": "2026-11", "last_actual_usd": "201", "version": 3,
            "updated_at": "2026-11-20T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(
            old.spend_now(november),
            Some((Usd::from_cents(201_00), "2026-11"))
        );
        old.blocked_period = None;
        assert_eq!(old.spend_now(november), None);
    }

    #[test]
    fn an_active_exemption_lifts_the_cap() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        let state = state_with(vec![grant(None, true, 22)]);
        assert_eq!(state.effective_cap(now), EffectiveCap::Exempt);
        let later = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        assert_eq!(
            state.effective_cap(later),
            EffectiveCap::Limited(Usd::from_cents(200_00))
        );
    }
}
