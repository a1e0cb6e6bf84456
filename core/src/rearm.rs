//! Re-arming AWS Budgets within a period (pure). Budgets sends each notification once per
//! period, at percentages of the budget's limit; when the effective cap moves within a
//! period (an override granted or revoked, the cap changed, a restore), nothing would alert
//! at the next crossing. seatcap then keeps `ABSOLUTE_VALUE` ACTUAL notifications of its
//! own, at the ladder's rungs of the effective cap above the spend already known, and
//! records them in the state (`budget_alarms_usd`): those, and only those, it may remove.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::decide::Ladder;
use crate::money::Usd;
use crate::state::{BlockCause, EffectiveCap, PrincipalState, Status};

/// The alarms `next` should have after a change from `before`, or `None` when the change
/// leaves them as they are (an alert, a cut, the rollover: Budgets' own notifications
/// are right, or the principal is cut and nothing needs to alert).
pub fn alarms_after(
    before: Option<&PrincipalState>,
    next: &PrincipalState,
    ladder: &Ladder,
    now: DateTime<Utc>,
) -> Option<Vec<Usd>> {
    let before = before?;
    let cap_changed = before.cap_usd != next.cap_usd;
    let overrides_changed = before.overrides != next.overrides;
    let restored_in_period = before.status == Status::Blocked
        && next.status == Status::Active
        && before
            .blocked_period
            .as_deref()
            .is_some_and(|period| crate::period::is_current(period, now));
    if !(cap_changed || overrides_changed || restored_in_period) {
        return None;
    }
    let cut = next.status == Status::Blocked && next.block_cause != Some(BlockCause::Downgrade);
    let EffectiveCap::Limited(cap) = next.effective_cap(now) else {
        return Some(Vec::new());
    };
    // Back to the plain cap with nothing sent out of turn: the budget's own
    // notifications at the ladder's percentages of its limit are the right ones.
    let plain = cap == next.cap_usd && !cap_changed && !restored_in_period;
    if cut || plain {
        return Some(Vec::new());
    }
    let spent = next.spend_now(now).map_or(Usd::ZERO, |(spend, _)| spend);
    Some(
        ladder
            .steps()
            .iter()
            .filter_map(|step| cap.percentage(Decimal::from(step.percent)))
            .filter(|threshold| *threshold > spent)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::state::Override;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
    }

    fn usd(dollars: i64) -> Usd {
        Usd::from_cents(dollars * 100)
    }

    fn alice() -> PrincipalState {
        PrincipalState::new(
            "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
            "seatcap-alice".into(),
            usd(200),
            now(),
        )
    }

    fn blocked_at(spend: i64) -> PrincipalState {
        let mut state = alice();
        state.status = Status::Blocked;
        state.block_cause = Some(BlockCause::Cap);
        state.blocked_period = Some("2026-11".into());
        state.record_spend("2026-11".into(), usd(spend));
        state
    }

    fn plus(state: &PrincipalState, extra: i64) -> PrincipalState {
        let mut next = state.clone();
        next.status = Status::Active;
        next.block_cause = None;
        next.overrides.push(Override {
            id: "o1".into(),
            extra_usd: Some(usd(extra)),
            exempt: false,
            expires_at: Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
            granted_by: "finance".into(),
            reason: "launch".into(),
            approved_by: None,
        });
        next
    }

    fn after(before: &PrincipalState, next: &PrincipalState) -> Option<Vec<Usd>> {
        alarms_after(Some(before), next, &Ladder::default(), now())
    }

    #[test]
    fn an_override_arms_the_rungs_of_the_new_cap_above_the_spend() {
        // Cut at $201, +$100: 50 % of $300 is below the spend, 80 % and 100 % are not.
        let before = blocked_at(201);
        assert_eq!(
            after(&before, &plus(&before, 100)),
            Some(vec![usd(240), usd(300)])
        );
    }

    #[test]
    fn an_in_period_restore_arms_again_what_budgets_already_sent() {
        let before = blocked_at(201);
        let mut raised = before.clone();
        raised.status = Status::Active;
        raised.cap_usd = usd(400);
        assert_eq!(after(&before, &raised), Some(vec![usd(320), usd(400)]));
    }

    #[test]
    fn back_to_the_plain_cap_or_cut_or_exempt_wants_none() {
        let before = blocked_at(201);
        let granted = plus(&before, 100);
        let mut revoked = granted.clone();
        revoked.overrides.clear();
        revoked.status = Status::Blocked;
        assert_eq!(after(&granted, &revoked), Some(Vec::new()));
        let mut active = alice();
        active.record_spend("2026-11".into(), usd(50));
        let granted = plus(&active, 100);
        let mut ended = granted.clone();
        ended.overrides.clear();
        assert_eq!(after(&granted, &ended), Some(Vec::new()));
        let mut exempt = granted.clone();
        exempt.overrides[0].exempt = true;
        exempt.overrides[0].extra_usd = None;
        assert_eq!(after(&granted, &exempt), Some(Vec::new()));
    }

    #[test]
    fn alerts_enrolment_and_the_rollover_leave_alarms_alone() {
        let state = alice();
        assert_eq!(alarms_after(None, &state, &Ladder::default(), now()), None);
        let mut cut = state.clone();
        cut.status = Status::Blocked;
        cut.block_cause = Some(BlockCause::Cap);
        assert_eq!(after(&state, &cut), None);
        // Restored by the rollover: the block's period is over, Budgets starts afresh.
        let mut october = blocked_at(201);
        october.blocked_period = Some("2026-10".into());
        let mut rolled = october.clone();
        rolled.status = Status::Active;
        assert_eq!(after(&october, &rolled), None);
    }
}
