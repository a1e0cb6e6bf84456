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
use crate::state::PrincipalState;

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

/// The alert for the highest rung that `metered_micros` (this month's metered spend)
/// reaches and the spend the state already knows for the month does not: `None` when no
/// rung is newly reached, or the state is already blocked.
pub fn newly_reached(
    state: &PrincipalState,
    ladder: &Ladder,
    metered_micros: i64,
    now: DateTime<Utc>,
) -> Option<BudgetAlert> {
    if state.status == crate::state::Status::Blocked {
        return None;
    }
    let metered = metered_spend(metered_micros);
    let known = state.spend_now(now).map(|(spend, _)| spend);
    let threshold = ladder
        .steps()
        .iter()
        .filter_map(|step| state.cap_usd.percentage(Decimal::from(step.percent)))
        .filter(|threshold| metered >= *threshold && known.is_none_or(|k| k < *threshold))
        .max()?;
    Some(BudgetAlert {
        notification_date: now.date_naive(),
        account_id: state.principal.account_id().to_owned(),
        budget_name: state.budget.clone(),
        budgeted: state.cap_usd,
        alert_type: AlertType::Actual,
        threshold,
        amount: metered,
        period_unit: PeriodUnit::Monthly,
        reports_previous_day: false,
    })
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
