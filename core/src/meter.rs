//! Metered spend on the ladder (pure): when a principal's metered figure for the current
//! month newly reaches a rung, the alert Budgets would send there, so metering acts through
//! the same decision and commit engine as Budgets' own alerts. The alert's natural key is
//! the one Budgets' alert at that rung has: whichever comes first is acted on, the other is
//! a duplicate, and nobody is told twice.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::alert::{AlertType, BudgetAlert, PeriodUnit};
use crate::decide::Ladder;
use crate::money::Usd;
use crate::state::{EffectiveCap, PrincipalState};

/// Dollars from metering's integer micro-dollars.
pub fn usd_of_micros(micros: i64) -> Usd {
    Usd::new(Decimal::new(micros, 6))
}

/// Integer micro-dollars (rounded up: a partial micro-dollar is still spend; an amount
/// beyond what i64 micro-dollars hold is the most they hold, never a panic).
pub fn micros_of(usd: Usd) -> i64 {
    usd.as_decimal()
        .checked_mul(Decimal::from(1_000_000))
        .and_then(|micros| micros.ceil().try_into().ok())
        .unwrap_or(i64::MAX)
}

/// What a principal's metered figure for the current month (this batch included) calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeteredAction {
    Nothing,
    /// A rung of the ladder, on the effective cap, newly reached: the alert Budgets would
    /// send there, acted on through the alert path (claimed by Budgets' natural key).
    Alert(BudgetAlert),
    /// At or over the effective cap with access on, past the spend already known, though no
    /// rung is newly reached: an override lapsed or was revoked below the spend, or finance
    /// restored access without raising the cap. Cut again through the engine, as reconcile
    /// would within the hour.
    CutAgain {
        spend: Usd,
    },
}

/// The alert for the highest rung of the ladder that `metered_micros` (this month's metered
/// spend, this batch included) reaches and the spend the state already knows for the month
/// does not, the rungs being percentages of the **effective** cap (an override raises them;
/// an exemption has none). Else a cut again if the figure is at or over the effective cap
/// with access on and above the known spend. A cap block takes everything; a downgrade
/// leaves the cap rung to take the rest. `protected`: never cut (the ledger's flag or
/// the configuration's).
pub fn metered_action(
    state: &PrincipalState,
    ladder: &Ladder,
    metered_micros: i64,
    protected: bool,
    now: DateTime<Utc>,
) -> MeteredAction {
    let downgraded = state.block_cause == Some(crate::state::BlockCause::Downgrade);
    if state.status == crate::state::Status::Blocked && !downgraded {
        return MeteredAction::Nothing;
    }
    let EffectiveCap::Limited(cap) = state.effective_cap(now) else {
        return MeteredAction::Nothing;
    };
    let metered = metered_spend(metered_micros);
    let known = state.spend_now(now).map(|(spend, _)| spend);
    let threshold = ladder
        .steps()
        .iter()
        .filter_map(|step| cap.percentage(Decimal::from(step.percent)))
        .filter(|threshold| metered >= *threshold && known.is_none_or(|k| k < *threshold))
        .max();
    if let Some(threshold) = threshold {
        return MeteredAction::Alert(BudgetAlert {
            notification_date: now.date_naive(),
            account_id: state.principal.account_id().to_owned(),
            budget_name: state.budget.clone(),
            // The rungs are of the effective cap, so the alert is about it: its threshold
            // is the rung's percentage of this amount.
            budgeted: cap,
            alert_type: AlertType::Actual,
            threshold,
            amount: metered,
            period_unit: PeriodUnit::Monthly,
            reports_previous_day: false,
        });
    }
    if metered >= cap && known.is_some_and(|k| metered > k) && !protected {
        return MeteredAction::CutAgain { spend: metered };
    }
    MeteredAction::Nothing
}

/// A metered figure as spend that decisions may use: whole cents, rounded down, so that it
/// is never above what was metered (the figure recorded with a metered alert is the one
/// compared next time).
pub fn metered_spend(micros: i64) -> Usd {
    Usd::new(
        usd_of_micros(micros)
            .as_decimal()
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero),
    )
}

/// The higher of Budgets' figure for the current period and the metered one (metering
/// sees calls a day before Budgets does): the spend every decision uses.
pub fn highest_spend(budgets: Option<Usd>, metered_micros: i64) -> Option<Usd> {
    if metered_micros <= 0 {
        return budgets;
    }
    let metered = metered_spend(metered_micros);
    Some(budgets.map_or(metered, |b| b.max(metered)))
}

/// How far apart an ended period's metered figure and Budgets' (the bill) may be before
/// reconcile reports it: a wrong or missing price shows as a steady difference.
pub const DRIFT_PERCENT: i64 = 10;

/// The difference between an ended period's metered figure and Budgets' figure for it, in
/// percent of Budgets', when it is more than [`DRIFT_PERCENT`]; `None` when they agree
/// closely enough. Amounts under a dollar on both sides are never drift (rounding, free
/// tiers); a bill of nothing against a metered dollar or more is 100 %.
pub fn metered_drift(metered: Usd, billed: Usd) -> Option<Decimal> {
    let (metered, billed) = (metered.as_decimal(), billed.as_decimal());
    if metered < Decimal::ONE && billed < Decimal::ONE {
        return None;
    }
    let percent = if billed.is_zero() {
        Decimal::ONE_HUNDRED
    } else {
        (metered - billed)
            .abs()
            .checked_mul(Decimal::ONE_HUNDRED)?
            .checked_div(billed)?
    };
    (percent > Decimal::from(DRIFT_PERCENT)).then(|| percent.round_dp(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn alice(now: DateTime<Utc>) -> PrincipalState {
        PrincipalState::new(
            "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
            "seatcap-alice".into(),
            Usd::from_cents(200_00),
            now,
        )
    }

    fn newly_reached(
        state: &PrincipalState,
        ladder: &Ladder,
        micros: i64,
        now: DateTime<Utc>,
    ) -> Option<BudgetAlert> {
        match metered_action(state, ladder, micros, false, now) {
            MeteredAction::Alert(alert) => Some(alert),
            _ => None,
        }
    }

    fn with_override(
        state: &PrincipalState,
        extra: Option<i64>,
        until: DateTime<Utc>,
    ) -> PrincipalState {
        let mut state = state.clone();
        state.overrides.push(crate::state::Override {
            id: "o1".into(),
            extra_usd: extra.map(Usd::from_cents),
            exempt: extra.is_none(),
            expires_at: until,
            granted_by: "finance".into(),
            reason: "launch".into(),
            approved_by: None,
        });
        state
    }

    #[test]
    fn the_rungs_are_the_effective_caps_and_an_exemption_has_none() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap();
        let ladder = Ladder::default();
        let mut small = alice(now);
        small.cap_usd = Usd::from_cents(20_00);
        let later = now + chrono::Duration::days(3);
        let raised = with_override(&small, Some(10_00), later);
        // $24 of an effective $30: the 80 % rung, a warning; not the cap's.
        let at_24 = newly_reached(&raised, &ladder, 24_000_000, now).unwrap();
        assert_eq!(
            (at_24.threshold, at_24.threshold_percent()),
            (Usd::from_cents(24_00), Decimal::from(80))
        );
        let mut warned = raised.clone();
        warned.record_spend("2026-12".into(), Usd::from_cents(24_00));
        let at_42 = newly_reached(&warned, &ladder, 42_000_000, now).unwrap();
        assert_eq!(at_42.threshold, Usd::from_cents(30_00), "the effective cap");
        let exempt = with_override(&small, None, later);
        assert_eq!(
            metered_action(&exempt, &ladder, 999_000_000, false, now),
            MeteredAction::Nothing
        );
        // The override lapsed with $24 known: no rung is new, but the cap is passed again.
        let lapsed_at = later + chrono::Duration::hours(1);
        assert_eq!(
            metered_action(&warned, &ladder, 25_000_000, false, lapsed_at),
            MeteredAction::CutAgain {
                spend: Usd::from_cents(25_00)
            }
        );
        assert_eq!(
            metered_action(&warned, &ladder, 25_000_000, true, lapsed_at),
            MeteredAction::Nothing,
            "protected"
        );
        // Nothing new since the figure known: no cut from a figure alone.
        assert_eq!(
            metered_action(&warned, &ladder, 24_000_000, false, lapsed_at),
            MeteredAction::Nothing
        );
    }

    #[test]
    fn after_a_downgrade_the_cap_rung_still_takes_the_rest() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap();
        let ladder: Ladder = "50=person,80=finance,90=downgrade,100=enforce"
            .parse()
            .unwrap();
        let mut downgraded = alice(now);
        downgraded.cap_usd = Usd::from_cents(20_00);
        downgraded.status = crate::state::Status::Blocked;
        downgraded.block_cause = Some(crate::state::BlockCause::Downgrade);
        downgraded.record_spend("2026-12".into(), Usd::from_cents(18_10));
        let cap = newly_reached(&downgraded, &ladder, 25_200_000, now).unwrap();
        assert_eq!(cap.threshold, Usd::from_cents(20_00));
        let mut blocked = downgraded.clone();
        blocked.block_cause = Some(crate::state::BlockCause::Cap);
        assert_eq!(
            metered_action(&blocked, &ladder, 30_000_000, false, now),
            MeteredAction::Nothing
        );
    }

    #[test]
    fn the_highest_rung_newly_reached_is_the_alert_budgets_would_send() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap();
        let ladder = Ladder::default();
        let state = alice(now);
        assert_eq!(newly_reached(&state, &ladder, 99_990_000, now), None);
        let fifty = newly_reached(&state, &ladder, 100_000_000, now).unwrap();
        assert_eq!(fifty.threshold, Usd::from_cents(100_00));
        assert_eq!(fifty.natural_key(), "seatcap-alice#2026-12#ACTUAL#100.00");
        // A fraction of a cent short of the cap is short of it.
        let short = newly_reached(&state, &ladder, 199_999_999, now).unwrap();
        assert_eq!(
            (short.threshold, short.amount),
            (Usd::from_cents(160_00), Usd::from_cents(199_99))
        );
        // Straight past 80 % to the cap in one batch: the cap's alert.
        let cap = newly_reached(&state, &ladder, 201_500_000, now).unwrap();
        assert_eq!(
            (cap.threshold, cap.amount),
            (Usd::from_cents(200_00), usd_of_micros(201_500_000))
        );
        // A rung the month's known spend (an alert, metering) reached already is not again.
        let mut warned = state.clone();
        warned.record_spend("2026-12".into(), Usd::from_cents(170_00));
        assert_eq!(newly_reached(&warned, &ladder, 180_000_000, now), None);
        assert!(newly_reached(&warned, &ladder, 200_000_000, now).is_some());
        // Last month's figure says nothing about this one.
        let mut november = state.clone();
        november.record_spend("2026-11".into(), Usd::from_cents(190_00));
        assert!(newly_reached(&november, &ladder, 170_000_000, now).is_some());
    }

    #[test]
    fn micro_dollars_round_up_and_back() {
        assert_eq!(micros_of(Usd::new("0.1065".parse().unwrap())), 106_500);
        assert_eq!(micros_of(Usd::new("0.0000001".parse().unwrap())), 1);
        // Far beyond any cap: the most i64 micro-dollars hold, not an overflow panic.
        assert_eq!(micros_of(Usd::new(Decimal::MAX)), i64::MAX);
        assert_eq!(usd_of_micros(106_500), Usd::new("0.1065".parse().unwrap()));
    }

    #[test]
    fn drift_is_more_than_ten_percent_of_the_bill_either_way() {
        let usd = |cents| Usd::from_cents(cents);
        assert_eq!(metered_drift(usd(110_00), usd(100_00)), None);
        assert_eq!(metered_drift(usd(90_00), usd(100_00)), None);
        let percent = |text: &str| Some(text.parse::<Decimal>().unwrap());
        assert_eq!(metered_drift(usd(110_01), usd(100_00)), percent("10.01"));
        assert_eq!(metered_drift(usd(150_00), usd(100_00)), percent("50"));
        assert_eq!(metered_drift(usd(60_00), usd(100_00)), percent("40"));
        assert_eq!(metered_drift(usd(5_00), usd(0)), Some(Decimal::ONE_HUNDRED));
        assert_eq!(metered_drift(usd(40), usd(90)), None, "pennies");
    }

    #[test]
    fn the_higher_of_budgets_and_metered_spend_decides() {
        let usd = |cents| Some(Usd::from_cents(cents));
        assert_eq!(highest_spend(usd(150_00), 0), usd(150_00));
        assert_eq!(highest_spend(None, 250_009_999), usd(250_00));
        assert_eq!(highest_spend(usd(150_00), 250_000_000), usd(250_00));
        assert_eq!(highest_spend(usd(300_00), 250_000_000), usd(300_00));
    }
}
