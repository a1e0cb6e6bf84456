//! What the ledger knows about one principal, as plain data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub overrides: Vec<Override>,
    /// The last ACTUAL spend an alert reported, so a cap change can tell at once whether the
    /// principal is now under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_actual_usd: Option<Usd>,
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
    protected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_cause: Option<BlockCause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_period: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_actual_usd: Option<Usd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
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
            protected: false,
            overrides: Vec::new(),
            last_actual_usd: None,
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
            protected: self.protected,
            block_cause: self.block_cause,
            blocked_period: self.blocked_period.as_deref(),
            last_actual_usd: self.last_actual_usd,
            team: self.team.as_deref(),
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
