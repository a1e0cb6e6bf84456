//! Budget periods in UTC, as AWS Budgets resets them. Monthly for now: the admin's limits
//! (override expiry) and manual enforcement are expressed in calendar months.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// The key of the month `now` falls in: `2026-11`.
pub fn month_key(now: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", now.year(), now.month())
}

/// The first instant of the month `months_ahead` months after the one `now` falls in.
pub fn start_of_month_after(now: DateTime<Utc>, months_ahead: u32) -> DateTime<Utc> {
    let months = now.year() * 12 + now.month0() as i32 + months_ahead as i32;
    let first = NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1)
        .expect("the first of a month always exists");
    Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
