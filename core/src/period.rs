//! Budget periods in UTC, as AWS Budgets resets them. Period keys are the ones alerts carry
//! (see `BudgetAlert::period_key`): `2026-11-30` (a day), `2026-11` (a month), `2026-Q4`,
//! `2026` (a year).

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

use crate::alert::PeriodUnit;

/// The key of the period of `unit` that `date` falls in. An alert that does not say its
/// period is taken as daily: the shortest period, so a block never outlives its period.
pub fn period_key(unit: PeriodUnit, date: NaiveDate) -> String {
    match unit {
        PeriodUnit::Monthly => format!("{:04}-{:02}", date.year(), date.month()),
        PeriodUnit::Daily | PeriodUnit::Unstated => date.format("%Y-%m-%d").to_string(),
        PeriodUnit::Quarterly => format!("{:04}-Q{}", date.year(), (date.month() - 1) / 3 + 1),
        PeriodUnit::Annually => format!("{:04}", date.year()),
    }
}

/// The key of the month `now` falls in: `2026-11`.
pub fn month_key(now: DateTime<Utc>) -> String {
    period_key(PeriodUnit::Monthly, now.date_naive())
}

/// The first instant of the month `months_ahead` months after the one `now` falls in.
pub fn start_of_month_after(now: DateTime<Utc>, months_ahead: u32) -> DateTime<Utc> {
    let months = now.year() * 12 + now.month0() as i32 + months_ahead as i32;
    let first = NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1)
        .expect("the first of a month always exists");
    Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// The unit of a period key, read from its shape; `None` for a key that is no period.
pub fn unit_of(key: &str) -> Option<PeriodUnit> {
    period_end(key)?;
    Some(match key.len() {
        10 => PeriodUnit::Daily,
        7 if key.as_bytes()[5] == b'Q' => PeriodUnit::Quarterly,
        7 => PeriodUnit::Monthly,
        _ => PeriodUnit::Annually,
    })
}

/// Whether `now` falls in the period `key`: a figure for any other period says nothing
/// about the spend that counts now.
pub fn is_current(key: &str, now: DateTime<Utc>) -> bool {
    unit_of(key).is_some_and(|unit| period_key(unit, now.date_naive()) == key)
}

/// Whether the period `key` is over at `now`. A key that is no period is never over, so
/// nothing is dropped on a malformed key.
pub fn has_ended(key: &str, now: DateTime<Utc>) -> bool {
    period_end(key).is_some_and(|end| end <= now)
}

/// The first instant after the period `key`, or `None` for a key that is no period.
pub fn period_end(key: &str) -> Option<DateTime<Utc>> {
    let midnight = |date: NaiveDate| {
        Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"))
    };
    let number = |text: &str| text.parse::<u32>().ok();
    match key.len() {
        10 => NaiveDate::parse_from_str(key, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.succ_opt())
            .map(midnight),
        7 if key.as_bytes()[5] == b'Q' => {
            let (year, quarter) = (number(&key[..4])?, number(&key[6..])?);
            if !(1..=4).contains(&quarter) {
                return None;
            }
            let first = NaiveDate::from_ymd_opt(year as i32, (quarter - 1) * 3 + 1, 1)?;
            Some(start_of_month_after(midnight(first), 3))
        }
        7 => {
            let first = NaiveDate::from_ymd_opt(number(&key[..4])? as i32, number(&key[5..])?, 1)?;
            Some(start_of_month_after(midnight(first), 1))
        }
        4 => NaiveDate::from_ymd_opt(number(key)? as i32 + 1, 1, 1).map(midnight),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_ends_where_its_period_ends() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let cases = [
            (PeriodUnit::Daily, "2026-11-30", (2026, 12, 1)),
            (PeriodUnit::Monthly, "2026-11", (2026, 12, 1)),
            (PeriodUnit::Quarterly, "2026-Q4", (2027, 1, 1)),
            (PeriodUnit::Annually, "2026", (2027, 1, 1)),
        ];
        for (unit, key, (y, m, d)) in cases {
            assert_eq!(period_key(unit, date), key);
            assert_eq!(
                period_end(key),
                Some(Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap())
            );
        }
    }

    #[test]
    fn keys_know_their_unit_and_whether_they_are_current() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 30, 0).unwrap();
        assert_eq!(unit_of("2026-11-30"), Some(PeriodUnit::Daily));
        assert_eq!(unit_of("2026-11"), Some(PeriodUnit::Monthly));
        assert_eq!(unit_of("2026-Q4"), Some(PeriodUnit::Quarterly));
        assert_eq!(unit_of("2026"), Some(PeriodUnit::Annually));
        for bad in ["", "2026-13", "2026-Q5", "nope", "2026-11-31"] {
            assert_eq!(unit_of(bad), None, "{bad}");
            assert!(!is_current(bad, now) && !has_ended(bad, now), "{bad}");
        }
        assert!(is_current("2026-12", now) && is_current("2026-12-01", now));
        assert!(is_current("2026-Q4", now) && is_current("2026", now));
        assert!(!is_current("2026-11", now) && has_ended("2026-11", now));
        assert!(has_ended("2026-11-30", now) && !has_ended("2026-12", now));
        // The period's last instant still belongs to it.
        let last = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
        assert!(is_current("2026-11", last) && !has_ended("2026-11", last));
    }

    #[test]
    fn months_roll_over_years() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).unwrap();
        assert_eq!(month_key(now), "2026-11");
        assert_eq!(
            start_of_month_after(now, 1),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            start_of_month_after(now, 2),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        let december = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            start_of_month_after(december, 2),
            Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap()
        );
    }
}
