//! AWS Budgets threshold alerts, as the plain text Budgets publishes to SNS.
//!
//! The parser is strict about what it relies on (every field once, cost budgets only,
//! amounts that are real amounts) and tolerant about the rest (CRLF, extra lines, either
//! console link, prose wording). Whatever does not fit is a typed [`AlertParseError`]: an
//! alert is never guessed.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::money::{MoneyError, Usd};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertType {
    /// Spend that has happened. Only ACTUAL alerts ever cut access.
    Actual,
    /// Budgets' projection for the period. Warns, never enforces.
    Forecasted,
}

impl AlertType {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::Actual => "ACTUAL",
            AlertType::Forecasted => "FORECASTED",
        }
    }
}

/// The budget's time unit, read from the alert's prose ("for the current month", "per day").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodUnit {
    Daily,
    Monthly,
    Quarterly,
    Annually,
    /// The prose used a wording we do not know. The alert is still acted on; its period is
    /// taken as the notification day, the finest grain, so two periods are never merged.
    Unstated,
}

/// One parsed AWS Budgets alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetAlert {
    pub notification_date: NaiveDate,
    pub account_id: String,
    pub budget_name: String,
    pub budgeted: Usd,
    pub alert_type: AlertType,
    /// The dollar value of the threshold that was crossed (`> $160.00` for 80 % of $200).
    pub threshold: Usd,
    /// The ACTUAL or FORECASTED amount, whichever the alert type says.
    pub amount: Usd,
    pub period_unit: PeriodUnit,
    /// The prose says "Yesterday, the ACTUAL Cost ...": the amount is the day before the
    /// notification's (daily budgets). Absent from audit records older than this field.
    #[serde(default)]
    pub reports_previous_day: bool,
}

/// How far ahead of seatcap's clock an alert may be dated. Budgets dates notifications in
/// UTC; a day covers any time zone a sender's clock could be in.
pub const LARGEST_CLOCK_SKEW_DAYS: u64 = 1;

impl BudgetAlert {
    /// The day the reported spend belongs to: the notification's date, or the day before
    /// when the alert reports yesterday's spend.
    pub fn spend_date(&self) -> NaiveDate {
        if self.reports_previous_day {
            self.notification_date
                .pred_opt()
                .unwrap_or(self.notification_date)
        } else {
            self.notification_date
        }
    }

    /// The budget period the reported spend belongs to, as a stable key: `2026-10`
    /// (monthly), `2026-10-13` (daily: the day the spend happened), `2026-Q4`, `2026`.
    pub fn period_key(&self) -> String {
        crate::period::period_key(self.period_unit, self.spend_date())
    }

    /// Whether the period this alert reports on is over at `now`: SNS retries for hours and
    /// a dead-letter replay can come days later. Such an alert is recorded, never acted on.
    pub fn is_late(&self, now: DateTime<Utc>) -> bool {
        crate::period::has_ended(&self.period_key(), now)
    }

    /// Whether the alert is dated later than seatcap's clock allows: a forged or skewed
    /// alert must not claim a period (and its natural key) that has not begun.
    pub fn is_dated_ahead_of(&self, now: DateTime<Utc>) -> bool {
        now.date_naive()
            .checked_add_days(Days::new(LARGEST_CLOCK_SKEW_DAYS))
            .is_none_or(|latest| self.notification_date > latest)
    }

    /// Why Budgets could not have sent this alert, if it could not: Budgets alerts when the
    /// amount is greater than the threshold (`Alert Threshold: > $160.00`), so an amount at
    /// or under it is someone else's message (anyone with `sns:Publish` on the topic can
    /// make one SNS signs), and acting on it, or claiming its natural key, would let it
    /// take the real alert's place.
    pub fn impossible_for_budgets(&self) -> Option<String> {
        (self.amount <= self.threshold).then(|| {
            format!(
                "its {} amount ${} is not above its threshold ${}: Budgets alerts only when the amount exceeds the threshold",
                self.alert_type.as_str(),
                self.amount.to_plain_string(),
                self.threshold.to_plain_string()
            )
        })
    }

    /// Budgets sends an ACTUAL alert once per budget, threshold and period, but SNS may
    /// deliver it under more than one MessageId; this key names the alert itself.
    pub fn natural_key(&self) -> String {
        format!(
            "{}#{}#{}#{}",
            self.budget_name,
            self.period_key(),
            self.alert_type.as_str(),
            self.threshold.to_plain_string()
        )
    }

    /// The threshold as a percentage of the budgeted amount (80 for `> $160.00` of $200).
    pub fn threshold_percent(&self) -> rust_decimal::Decimal {
        // A zero budgeted amount is rejected by the parser, so this always has a value.
        self.threshold.percent_of(self.budgeted).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertParseError {
    #[error(
        "not an AWS Budgets notification: the first line must be `AWS Budget Notification <Month DD, YYYY>`"
    )]
    NotABudgetsNotification,
    #[error("the notification date `{0}` is not a date like `October 28, 2026`")]
    BadDate(String),
    #[error("the `{0}` line is missing")]
    MissingField(&'static str),
    #[error("the `{0}` line appears more than once; refusing to pick one")]
    DuplicateField(&'static str),
    #[error("`AWS Account {0}` is not a 12-digit account id")]
    BadAccount(String),
    #[error("the budget name must be 1 to 100 characters, got {0}")]
    BadBudgetName(usize),
    #[error("budget type `{0}` is not supported: seatcap caps cost budgets only")]
    UnsupportedBudgetType(String),
    #[error("alert type `{0}` is neither ACTUAL nor FORECASTED")]
    UnknownAlertType(String),
    #[error("`{field}`: {source}")]
    BadAmount {
        field: &'static str,
        #[source]
        source: MoneyError,
    },
    #[error("the alert threshold `{0}` is not of the form `> $160.00` or `> 80%`")]
    BadThreshold(String),
    #[error("the budgeted amount is zero: no percentage can be computed against it")]
    ZeroBudgetedAmount,
}

const BUDGET_NAME: &str = "Budget Name";
const BUDGET_TYPE: &str = "Budget Type";
const BUDGETED_AMOUNT: &str = "Budgeted Amount";
const ALERT_TYPE: &str = "Alert Type";
const ALERT_THRESHOLD: &str = "Alert Threshold";
const ACTUAL_AMOUNT: &str = "ACTUAL Amount";
const FORECASTED_AMOUNT: &str = "FORECASTED Amount";
const FIELDS: [&str; 7] = [
    BUDGET_NAME,
    BUDGET_TYPE,
    BUDGETED_AMOUNT,
    ALERT_TYPE,
    ALERT_THRESHOLD,
    ACTUAL_AMOUNT,
    FORECASTED_AMOUNT,
];

/// Field values by position in [`FIELDS`].
#[derive(Default)]
struct Fields<'a>([Option<&'a str>; FIELDS.len()]);

impl<'a> Fields<'a> {
    fn get(&self, name: &'static str) -> Option<&'a str> {
        FIELDS
            .iter()
            .position(|f| *f == name)
            .and_then(|i| self.0[i])
    }

    fn require(&self, name: &'static str) -> Result<&'a str, AlertParseError> {
        self.get(name).ok_or(AlertParseError::MissingField(name))
    }
}

pub fn parse_budget_alert(message: &str) -> Result<BudgetAlert, AlertParseError> {
    let mut lines = message.lines().map(str::trim).skip_while(|l| l.is_empty());

    let date_text = lines
        .next()
        .and_then(|l| l.strip_prefix("AWS Budget Notification"))
        .ok_or(AlertParseError::NotABudgetsNotification)?
        .trim();
    let notification_date = NaiveDate::parse_from_str(date_text, "%B %d, %Y")
        .map_err(|_| AlertParseError::BadDate(date_text.to_owned()))?;

    let mut account_id = None;
    let mut fields = Fields::default();
    let mut period_unit = PeriodUnit::Unstated;
    let mut reports_previous_day = false;
    for line in lines {
        if let Some(account) = line.strip_prefix("AWS Account ") {
            if account_id.replace(account.trim()).is_some() {
                return Err(AlertParseError::DuplicateField("AWS Account"));
            }
            continue;
        }
        if let Some((index, value)) = field_of(line) {
            if fields.0[index].replace(value).is_some() {
                return Err(AlertParseError::DuplicateField(FIELDS[index]));
            }
            continue;
        }
        if period_unit == PeriodUnit::Unstated {
            period_unit = period_unit_in_prose(line);
        }
        reports_previous_day |= line.contains(". Yesterday, the ");
    }

    let account_id = account_id.ok_or(AlertParseError::MissingField("AWS Account"))?;
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AlertParseError::BadAccount(account_id.to_owned()));
    }

    let budget_name = fields.require(BUDGET_NAME)?;
    let name_chars = budget_name.chars().count();
    if !(1..=100).contains(&name_chars) {
        return Err(AlertParseError::BadBudgetName(name_chars));
    }

    let budget_type = fields.require(BUDGET_TYPE)?;
    if budget_type != "Cost" {
        return Err(AlertParseError::UnsupportedBudgetType(
            budget_type.to_owned(),
        ));
    }

    let alert_type = match fields.require(ALERT_TYPE)? {
        "ACTUAL" => AlertType::Actual,
        "FORECASTED" => AlertType::Forecasted,
        other => return Err(AlertParseError::UnknownAlertType(other.to_owned())),
    };

    let budgeted = amount_field(&fields, BUDGETED_AMOUNT)?;
    if budgeted == Usd::ZERO {
        return Err(AlertParseError::ZeroBudgetedAmount);
    }
    let threshold = parse_threshold(fields.require(ALERT_THRESHOLD)?, budgeted)?;
    let amount = amount_field(
        &fields,
        match alert_type {
            AlertType::Actual => ACTUAL_AMOUNT,
            AlertType::Forecasted => FORECASTED_AMOUNT,
        },
    )?;

    Ok(BudgetAlert {
        notification_date,
        account_id: account_id.to_owned(),
        budget_name: budget_name.to_owned(),
        budgeted,
        alert_type,
        threshold,
        amount,
        period_unit,
        reports_previous_day,
    })
}

/// `Budget Name: Team Atlas - Bedrock` → (index of `Budget Name`, `Team Atlas - Bedrock`).
fn field_of(line: &str) -> Option<(usize, &str)> {
    FIELDS.iter().enumerate().find_map(|(index, name)| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        Some((index, value.trim()))
    })
}

/// The wording right after the threshold names the unit: "is greater than $X for the current
/// month" or "... $X per day". The last "is greater than" is taken: the budget name, which
/// comes earlier in the sentence, may contain anything.
fn period_unit_in_prose(line: &str) -> PeriodUnit {
    let Some(at) = line.rfind("is greater than ") else {
        return PeriodUnit::Unstated;
    };
    let after_threshold = line[at + "is greater than ".len()..]
        .split_once(' ')
        .map_or("", |(_amount, rest)| rest);
    [
        ("for the current month", PeriodUnit::Monthly),
        ("per day", PeriodUnit::Daily),
        ("for the current quarter", PeriodUnit::Quarterly),
        ("for the current year", PeriodUnit::Annually),
    ]
    .into_iter()
    .find_map(|(phrase, unit)| after_threshold.starts_with(phrase).then_some(unit))
    .unwrap_or(PeriodUnit::Unstated)
}

fn amount_field(fields: &Fields<'_>, field: &'static str) -> Result<Usd, AlertParseError> {
    Usd::parse_budgets_amount(fields.require(field)?)
        .map_err(|source| AlertParseError::BadAmount { field, source })
}

/// `> $160.00` is the form Budgets uses; `> 80%` is accepted too and turned into dollars.
fn parse_threshold(text: &str, budgeted: Usd) -> Result<Usd, AlertParseError> {
    let bad = || AlertParseError::BadThreshold(text.to_owned());
    let value = text.strip_prefix('>').ok_or_else(bad)?.trim();
    if let Some(percent) = value.strip_suffix('%') {
        let percent = Usd::parse_budgets_amount(percent).map_err(|_| bad())?;
        return budgeted.percentage(percent.as_decimal()).ok_or_else(bad);
    }
    if !value.starts_with('$') {
        return Err(bad());
    }
    Usd::parse_budgets_amount(value).map_err(|source| AlertParseError::BadAmount {
        field: ALERT_THRESHOLD,
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::TimeZone;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::*;

    const MONTHLY_ACTUAL: &str = include_str!("../../events/budget-monthly-actual.txt");
    const MONTHLY_FORECASTED: &str = include_str!("../../events/budget-monthly-forecasted.txt");
    const DAILY_ACTUAL: &str = include_str!("../../events/budget-daily-actual.txt");

    fn usd(text: &str) -> Usd {
        Usd::new(Decimal::from_str(text).unwrap())
    }

    #[test]
    fn parses_monthly_actual_with_thousands_separators() {
        let alert = parse_budget_alert(MONTHLY_ACTUAL).unwrap();
        assert_eq!(alert.budget_name, "Team Atlas - Bedrock");
        assert_eq!(alert.account_id, "210987654321");
        assert_eq!(
            alert.notification_date,
            NaiveDate::from_ymd_opt(2026, 10, 28).unwrap()
        );
        assert_eq!(alert.alert_type, AlertType::Actual);
        assert_eq!(
            (alert.budgeted, alert.threshold, alert.amount),
            (usd("2500"), usd("2500"), usd("2512.34"))
        );
        assert_eq!(alert.period_unit, PeriodUnit::Monthly);
        assert_eq!(alert.period_key(), "2026-10");
        assert_eq!(
            alert.natural_key(),
            "Team Atlas - Bedrock#2026-10#ACTUAL#2500.00"
        );
        assert_eq!(alert.threshold_percent(), Decimal::from(100));
    }

    #[test]
    fn parses_monthly_forecasted() {
        let alert = parse_budget_alert(MONTHLY_FORECASTED).unwrap();
        assert_eq!(alert.alert_type, AlertType::Forecasted);
        assert_eq!(alert.amount, usd("96.10"));
        assert_eq!(
            alert.notification_date,
            NaiveDate::from_ymd_opt(2026, 10, 3).unwrap()
        );
    }

    #[test]
    fn parses_daily_wording() {
        let alert = parse_budget_alert(DAILY_ACTUAL).unwrap();
        assert_eq!(alert.period_unit, PeriodUnit::Daily);
        // Dated October 14, about "Yesterday": the spend is October 13's.
        assert!(alert.reports_previous_day);
        assert_eq!(alert.period_key(), "2026-10-13");
        assert_eq!(
            alert.natural_key(),
            "nightly-sandbox#2026-10-13#ACTUAL#9.60"
        );
        assert_eq!(alert.threshold_percent(), Decimal::from(80));
        let on = |d, h| Utc.with_ymd_and_hms(2026, 10, d, h, 0, 0).unwrap();
        // Delivered on the notification's own day, the day it reports is already over.
        assert!(alert.is_late(on(14, 0)) && !alert.is_late(on(13, 23)));
    }

    #[test]
    fn monthly_alerts_are_late_once_their_month_is_over() {
        let alert = parse_budget_alert(MONTHLY_ACTUAL).unwrap();
        assert!(!alert.reports_previous_day);
        let at = |m, d, h, min| Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap();
        assert!(!alert.is_late(at(10, 31, 23, 59)));
        assert!(alert.is_late(at(11, 1, 0, 0)));
    }

    #[test]
    fn alerts_dated_more_than_a_day_ahead_are_refused() {
        // Dated October 28.
        let alert = parse_budget_alert(MONTHLY_ACTUAL).unwrap();
        let at = |d, h| Utc.with_ymd_and_hms(2026, 10, d, h, 0, 0).unwrap();
        assert!(!alert.is_dated_ahead_of(at(28, 0)));
        assert!(!alert.is_dated_ahead_of(at(27, 0)));
        assert!(alert.is_dated_ahead_of(at(26, 23)));
    }

    #[test]
    fn crlf_and_the_old_console_link_change_nothing() {
        let crlf = MONTHLY_ACTUAL
            .replace('\n', "\r\n")
            .replace("costmanagement/home", "billing/home");
        assert_eq!(
            parse_budget_alert(&crlf).unwrap(),
            parse_budget_alert(MONTHLY_ACTUAL).unwrap()
        );
    }

    #[test]
    fn non_ascii_names_and_unknown_lines_are_fine() {
        let text = MONTHLY_ACTUAL
            .replace(
                "Budget Name: Team Atlas - Bedrock",
                "Budget Name: Équipe Zoë: 北京 🚀",
            )
            .replace(
                "Budget Type: Cost",
                "Budget Type: Cost\nCost Filters: TagKeyValue user:seatcap$alice",
            );
        let alert = parse_budget_alert(&text).unwrap();
        assert_eq!(alert.budget_name, "Équipe Zoë: 北京 🚀");
    }

    #[test]
    fn percentage_thresholds_become_dollars() {
        let text = MONTHLY_ACTUAL.replace("Alert Threshold: > $2,500.00", "Alert Threshold: > 80%");
        assert_eq!(parse_budget_alert(&text).unwrap().threshold, usd("2000"));
    }

    fn rejects(text: &str) -> AlertParseError {
        parse_budget_alert(text).expect_err("should be rejected")
    }

    #[test]
    fn rejections_are_typed() {
        use AlertParseError::*;
        assert_eq!(rejects("hello"), NotABudgetsNotification);
        assert_eq!(rejects(""), NotABudgetsNotification);
        assert_eq!(
            rejects(&MONTHLY_ACTUAL.replace("October 28, 2026", "28/10/2026")),
            BadDate("28/10/2026".into())
        );
        assert_eq!(
            rejects(&MONTHLY_ACTUAL.replace("Budget Name: Team Atlas - Bedrock\n", "")),
            MissingField(BUDGET_NAME)
        );
        assert_eq!(
            rejects(
                &MONTHLY_ACTUAL
                    .replace("Budget Type: Cost", "Budget Name: other\nBudget Type: Cost")
            ),
            DuplicateField(BUDGET_NAME)
        );
        assert_eq!(
            rejects(&MONTHLY_ACTUAL.replace("Budget Type: Cost", "Budget Type: Usage")),
            UnsupportedBudgetType("Usage".into())
        );
        assert_eq!(
            rejects(&MONTHLY_ACTUAL.replace("Alert Type: ACTUAL", "Alert Type: SOMETIMES")),
            UnknownAlertType("SOMETIMES".into())
        );
        assert_eq!(
            rejects(
                &MONTHLY_ACTUAL.replace("Budgeted Amount: $2,500.00", "Budgeted Amount: $0.00")
            ),
            ZeroBudgetedAmount
        );
        assert!(matches!(
            rejects(&MONTHLY_ACTUAL.replace("ACTUAL Amount: $2,512.34", "ACTUAL Amount: lots")),
            BadAmount {
                field: ACTUAL_AMOUNT,
                source: MoneyError::NotANumber(_)
            }
        ));
        assert!(matches!(
            rejects(&MONTHLY_ACTUAL.replace("ACTUAL Amount: $2,512.34", "ACTUAL Amount: -$3.00")),
            BadAmount {
                field: ACTUAL_AMOUNT,
                source: MoneyError::Negative(_)
            }
        ));
        assert_eq!(
            rejects(
                &MONTHLY_ACTUAL
                    .replace("Alert Threshold: > $2,500.00", "Alert Threshold: $2,500.00")
            ),
            BadThreshold("$2,500.00".into())
        );
        // A FORECASTED alert must carry the FORECASTED amount, not just the ACTUAL one.
        assert_eq!(
            rejects(&MONTHLY_ACTUAL.replace("Alert Type: ACTUAL", "Alert Type: FORECASTED")),
            MissingField(FORECASTED_AMOUNT)
        );
        assert_eq!(
            rejects(&MONTHLY_ACTUAL.replace("AWS Account 210987654321", "AWS Account 2109")),
            BadAccount("2109".into())
        );
        let long_name = "x".repeat(101);
        assert_eq!(
            rejects(&MONTHLY_ACTUAL.replace("Team Atlas - Bedrock\n", &format!("{long_name}\n"))),
            BadBudgetName(101)
        );
    }

    #[derive(Debug, Clone)]
    struct Rendered {
        name: String,
        alert_type: AlertType,
        unit: PeriodUnit,
        budgeted_cents: i64,
        threshold_cents: i64,
        amount_cents: i64,
        crlf: bool,
        old_link: bool,
        extra_line: Option<String>,
    }

    /// Renders an alert the way Budgets does, so the property below checks the parser
    /// against the format, not against itself.
    fn render(r: &Rendered) -> String {
        let kind = r.alert_type.as_str();
        let money = |c: i64| Usd::from_cents(c).to_string();
        let prose = match r.unit {
            PeriodUnit::Daily => format!(
                "is greater than {} per day. Yesterday, the {kind} Cost associated with this budget is {}.",
                money(r.threshold_cents),
                money(r.amount_cents)
            ),
            _ => format!(
                "is greater than {} for the current month. The {kind} Cost associated with this budget is {}.",
                money(r.threshold_cents),
                money(r.amount_cents)
            ),
        };
        let link = if r.old_link {
            "billing/home#/budgets"
        } else {
            "costmanagement/home#/budgets"
        };
        let extra = r
            .extra_line
            .as_deref()
            .map(|l| format!("{l}\n"))
            .unwrap_or_default();
        let text = format!(
            "AWS Budget Notification March 09, 2026\nAWS Account 123456789012\n\nDear AWS Customer,\n\n\
             You requested that we alert you when the {kind} Cost associated with your {name} budget {prose} \
             You can find additional details below and by accessing the AWS Budgets dashboard [1].\n\n\
             Budget Name: {name}\nBudget Type: Cost\nBudgeted Amount: {budgeted}\nAlert Type: {kind}\n\
             {extra}Alert Threshold: > {threshold}\n{kind} Amount: {amount}\n\n\
             [1] https://console.aws.amazon.com/{link}\n",
            name = r.name,
            budgeted = money(r.budgeted_cents),
            threshold = money(r.threshold_cents),
            amount = money(r.amount_cents),
        );
        if r.crlf {
            text.replace('\n', "\r\n")
        } else {
            text
        }
    }

    fn rendered() -> impl Strategy<Value = Rendered> {
        (
            // Names: 1–100 printable characters, spaces and non-ASCII included, no leading or
            // trailing space (Budgets trims them) and never a line break.
            "[A-Za-z0-9éüß北京🚀_.:-][A-Za-z0-9 éüß北京🚀_.:-]{0,98}[A-Za-z0-9éüß北京🚀_.:-]|[A-Za-z0-9]",
            prop_oneof![Just(AlertType::Actual), Just(AlertType::Forecasted)],
            prop_oneof![Just(PeriodUnit::Monthly), Just(PeriodUnit::Daily)],
            1i64..1_000_000_000,
            0i64..1_000_000_000,
            0i64..1_000_000_000,
            any::<bool>(),
            any::<bool>(),
            proptest::option::of("[A-Z][a-z]{2,10} [A-Za-z]{1,8}: [ -~]{0,30}"),
        )
            .prop_map(|(name, alert_type, unit, budgeted_cents, threshold_cents, amount_cents, crlf, old_link, extra_line)| {
                Rendered {
                    name,
                    alert_type,
                    unit,
                    budgeted_cents,
                    threshold_cents,
                    amount_cents,
                    crlf,
                    old_link,
                    extra_line,
                }
            })
    }

    proptest! {
        #[test]
        fn every_rendered_alert_parses_back(r in rendered()) {
            let alert = parse_budget_alert(&render(&r)).unwrap();
            prop_assert_eq!(&alert.budget_name, &r.name);
            prop_assert_eq!(alert.alert_type, r.alert_type);
            prop_assert_eq!(alert.period_unit, r.unit);
            prop_assert_eq!(alert.budgeted, Usd::from_cents(r.budgeted_cents));
            prop_assert_eq!(alert.threshold, Usd::from_cents(r.threshold_cents));
            prop_assert_eq!(alert.amount, Usd::from_cents(r.amount_cents));
        }

        #[test]
        fn dropping_any_field_line_is_a_missing_field(r in rendered(), field in 0usize..5) {
            let name = [BUDGET_NAME, BUDGET_TYPE, BUDGETED_AMOUNT, ALERT_TYPE, ALERT_THRESHOLD][field];
            let text: String = render(&r)
                .lines()
                .filter(|l| !l.starts_with(&format!("{name}:")))
                .map(|l| format!("{l}\n"))
                .collect();
            prop_assert_eq!(parse_budget_alert(&text), Err(AlertParseError::MissingField(name)));
        }

        /// A forged alert with amounts near `Decimal`'s limit is refused, never an overflow.
        #[test]
        fn huge_amounts_are_refused_not_overflowed(
            r in rendered(),
            budgeted in "[2-9][0-9]{15,27}",
            percent in "[1-9][0-9]{0,28}",
        ) {
            let replaced: String = render(&r)
                .lines()
                .map(|l| {
                    if l.starts_with(&format!("{BUDGETED_AMOUNT}:")) {
                        format!("{BUDGETED_AMOUNT}: ${budgeted}\n")
                    } else if l.starts_with(&format!("{ALERT_THRESHOLD}:")) {
                        format!("{ALERT_THRESHOLD}: > {percent}%\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            prop_assert!(parse_budget_alert(&replaced).is_err());
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = parse_budget_alert(&text);
        }

        #[test]
        fn arbitrary_field_values_never_panic(r in rendered(), junk in "\\PC{0,40}", field in 0usize..7) {
            let text = render(&r);
            let name = FIELDS[field];
            let replaced: String = text
                .lines()
                .map(|l| if l.starts_with(&format!("{name}:")) { format!("{name}: {junk}\n") } else { format!("{l}\n") })
                .collect();
            let _ = parse_budget_alert(&replaced);
        }
    }
}
