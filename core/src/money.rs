//! US dollars as an exact decimal. Floats never touch money in seatcap.

use std::fmt;
use std::ops::Add;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of US dollars, exact to the cent or finer (Budgets reports cents; finance
/// enters at most two places, which [`Usd::parse_request_amount`] enforces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error(
        "`{0}` is not a dollar amount (expected digits like 1234.56, optionally $ and thousands separators)"
    )]
    NotANumber(String),
    #[error("`{0}` is negative; amounts must be zero or more")]
    Negative(String),
    #[error("`{0}` must be greater than zero")]
    NotPositive(String),
    #[error("`{0}` has more than two decimal places")]
    TooPrecise(String),
    #[error("`{amount}` is above the configured maximum of {max}")]
    AboveMaximum { amount: String, max: Usd },
    #[error("`{0}` is larger than any real amount (at most {LARGEST_AMOUNT} dollars)")]
    TooLarge(String),
}

/// No Budgets figure or cap comes near a quadrillion dollars; bounding every amount read
/// there keeps all arithmetic on amounts far inside `Decimal`'s range, so a forged alert
/// is a typed rejection, never an overflow.
pub const LARGEST_AMOUNT: i64 = 1_000_000_000_000_000;

impl Usd {
    pub const ZERO: Usd = Usd(Decimal::ZERO);

    pub fn new(value: Decimal) -> Self {
        Usd(value)
    }

    pub fn from_cents(cents: i64) -> Self {
        Usd(Decimal::new(cents, 2))
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// Parses an amount as AWS Budgets writes it: `$2,512.34`, `$80.00`, `12`. Thousands
    /// separators are only accepted in groups of three, so `1,23.4` is rejected, not guessed.
    pub fn parse_budgets_amount(text: &str) -> Result<Usd, MoneyError> {
        let trimmed = text.trim();
        let unsigned = trimmed.strip_prefix('$').unwrap_or(trimmed);
        if trimmed.starts_with('-') || unsigned.starts_with('-') {
            return Err(MoneyError::Negative(trimmed.to_owned()));
        }
        let digits = strip_thousands_separators(unsigned)
            .ok_or_else(|| MoneyError::NotANumber(trimmed.to_owned()))?;
        let value = parse_plain_decimal(&digits)
            .ok_or_else(|| MoneyError::NotANumber(trimmed.to_owned()))?;
        bounded(value, trimmed)
    }

    /// Parses an amount finance typed into an admin request: a positive decimal with at most
    /// two places (`"250"`, `"250.5"`, `"250.50"`), no currency sign, no separators.
    pub fn parse_request_amount(text: &str, max: Usd) -> Result<Usd, MoneyError> {
        let trimmed = text.trim();
        if trimmed.starts_with('-') {
            return Err(MoneyError::Negative(text.to_owned()));
        }
        let value =
            parse_plain_decimal(trimmed).ok_or_else(|| MoneyError::NotANumber(text.to_owned()))?;
        if value.is_zero() {
            return Err(MoneyError::NotPositive(text.to_owned()));
        }
        if value.normalize().scale() > 2 {
            return Err(MoneyError::TooPrecise(text.to_owned()));
        }
        let amount = bounded(value, text)?;
        if amount > max {
            return Err(MoneyError::AboveMaximum {
                amount: text.to_owned(),
                max,
            });
        }
        Ok(amount)
    }

    /// `self` as a percentage of `whole`, rounded to a whole number (for messages and ladders).
    pub fn percent_of(self, whole: Usd) -> Option<Decimal> {
        if whole.0.is_zero() {
            return None;
        }
        Some(
            self.0
                .checked_mul(Decimal::ONE_HUNDRED)?
                .checked_div(whole.0)?
                .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero),
        )
    }

    /// `percent` % of `self`, to the cent; `None` only past `Decimal`'s range.
    pub fn percentage(self, percent: Decimal) -> Option<Usd> {
        let value = self
            .0
            .checked_mul(percent)?
            .checked_div(Decimal::ONE_HUNDRED)?;
        Some(Usd(value.round_dp(2)))
    }
}

fn bounded(value: Decimal, text: &str) -> Result<Usd, MoneyError> {
    if value > Decimal::from(LARGEST_AMOUNT) {
        return Err(MoneyError::TooLarge(text.trim().to_owned()));
    }
    Ok(Usd(value))
}

/// Only ASCII digits with at most one `.`: `Decimal::from_str` alone would also take
/// exponents and signs, which no amount from Budgets or finance should carry.
fn parse_plain_decimal(text: &str) -> Option<Decimal> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    Decimal::from_str(text).ok()
}

fn strip_thousands_separators(text: &str) -> Option<String> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    if whole.contains(',') {
        let mut groups = whole.split(',');
        let first = groups.next()?;
        if first.is_empty() || first.len() > 3 || groups.clone().any(|g| g.len() != 3) {
            return None;
        }
    }
    let mut plain = whole.replace(',', "");
    if let Some(f) = fraction {
        plain.push('.');
        plain.push_str(f);
    }
    Some(plain)
}

impl Add for Usd {
    type Output = Usd;
    /// Saturating: amounts are bounded when read, so this never saturates in practice,
    /// and an addition can never panic a function.
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_add(rhs.0))
    }
}

impl fmt::Display for Usd {
    /// `$1,234.56`: how people read money in Slack and email.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rounded = self.0.round_dp(2);
        let text = format!("{:.2}", rounded.abs());
        let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
            "-"
        } else {
            ""
        };
        write!(f, "{sign}${grouped}.{cents}")
    }
}

/// Stored and exchanged as a plain decimal string with two places (`"200.00"`), the same
/// shape finance sends, so no reader ever has to guess about floats.
impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_plain_string())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_plain_decimal(&text).map(Usd).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a decimal dollar amount"))
        })
    }
}

impl Usd {
    /// `"1234.50"`: two places (rounded half away from zero: metered amounts carry
    /// fractions of a cent), no sign or separators.
    pub fn to_plain_string(self) -> String {
        let cents = self
            .0
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        format!("{cents:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(text: &str) -> Usd {
        Usd(Decimal::from_str(text).unwrap())
    }

    #[test]
    fn amounts_past_any_real_budget_are_refused_and_arithmetic_never_panics() {
        let huge = "79228162514264337593543950335";
        assert!(matches!(
            Usd::parse_budgets_amount(huge),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            Usd::parse_budgets_amount("$1,000,000,000,000,001"),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(Usd::parse_budgets_amount("$1,000,000,000,000,000").is_ok());
        assert!(matches!(
            Usd::parse_request_amount(huge, Usd(Decimal::MAX)),
            Err(MoneyError::TooLarge(_))
        ));
        // Even values no parser lets through cannot panic the arithmetic.
        let max = Usd(Decimal::MAX);
        assert_eq!(max + max, max);
        assert_eq!(max.percent_of(Usd::from_cents(1)), None);
        assert_eq!(max.percentage(Decimal::MAX), None);
        assert_eq!(
            Usd::from_cents(200_00).percentage(Decimal::from(80)),
            Some(Usd::from_cents(160_00))
        );
    }

    #[test]
    fn parses_budgets_amounts_with_and_without_separators() {
        assert_eq!(Usd::parse_budgets_amount("$2,512.34"), Ok(usd("2512.34")));
        assert_eq!(
            Usd::parse_budgets_amount("$1,234,567.00"),
            Ok(usd("1234567.00"))
        );
        assert_eq!(Usd::parse_budgets_amount("$80.00"), Ok(usd("80")));
        assert_eq!(Usd::parse_budgets_amount(" 12 "), Ok(usd("12")));
    }

    #[test]
    fn rejects_malformed_budgets_amounts() {
        for bad in [
            "",
            "$",
            "$1,23.4",
            "$,123",
            "$12,34",
            "$1.2.3",
            "$1e3",
            "USD 5",
            "$+5",
            "$1,234,5678",
        ] {
            assert!(
                matches!(
                    Usd::parse_budgets_amount(bad),
                    Err(MoneyError::NotANumber(_))
                ),
                "{bad} should be rejected"
            );
        }
        assert!(matches!(
            Usd::parse_budgets_amount("-$5.00"),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            Usd::parse_budgets_amount("$-5.00"),
            Err(MoneyError::Negative(_))
        ));
    }

    #[test]
    fn request_amounts_are_positive_with_two_places_at_most() {
        let max = usd("100000");
        assert_eq!(Usd::parse_request_amount("200.00", max), Ok(usd("200")));
        assert_eq!(Usd::parse_request_amount("250.5", max), Ok(usd("250.5")));
        assert!(matches!(
            Usd::parse_request_amount("0", max),
            Err(MoneyError::NotPositive(_))
        ));
        assert!(matches!(
            Usd::parse_request_amount("0.00", max),
            Err(MoneyError::NotPositive(_))
        ));
        assert!(matches!(
            Usd::parse_request_amount("1.005", max),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Usd::parse_request_amount("-3", max),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            Usd::parse_request_amount("1,000", max),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Usd::parse_request_amount("NaN", max),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Usd::parse_request_amount("100000.01", max),
            Err(MoneyError::AboveMaximum { .. })
        ));
    }

    #[test]
    fn displays_like_people_write_money() {
        assert_eq!(usd("2512.34").to_string(), "$2,512.34");
        assert_eq!(usd("1234567").to_string(), "$1,234,567.00");
        assert_eq!(usd("80").to_string(), "$80.00");
        assert_eq!(usd("0.5").to_string(), "$0.50");
        assert_eq!(usd("999").to_string(), "$999.00");
    }

    #[test]
    fn serialises_as_plain_two_place_string() {
        assert_eq!(serde_json::to_string(&usd("200")).unwrap(), "\"200.00\"");
        assert_eq!(
            serde_json::from_str::<Usd>("\"12.5\"").unwrap(),
            usd("12.5")
        );
        assert!(
            serde_json::from_str::<Usd>("12.5").is_err(),
            "a JSON number is a float: refused"
        );
    }

    #[test]
    fn percent_of_rounds_to_whole_numbers() {
        assert_eq!(usd("160").percent_of(usd("200")), Some(Decimal::from(80)));
        assert_eq!(usd("9.60").percent_of(usd("12")), Some(Decimal::from(80)));
        assert_eq!(usd("1").percent_of(Usd::ZERO), None);
    }
}
