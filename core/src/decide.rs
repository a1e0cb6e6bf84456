//! The decision: from an alert, the principal's record, the ladder and the time, what to do.
//! Pure: no I/O, no clock, so every rule here is tested without AWS.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::alert::{AlertType, BudgetAlert};
use crate::state::{BlockCause, EffectiveCap, PrincipalState, Status};

/// Who hears about an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Person,
    PersonAndFinance,
    /// The security team: someone changed what seatcap owns behind its back.
    Security,
}

/// One rung of the ladder: at `percent` of the budget, tell `audience`, and cut access if
/// `enforce` (ACTUAL spend only, and only at or over the effective cap), or take only the
/// premium models away if `downgrade` (`SEATCAP_PREMIUM_POLICY_ARNS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub percent: u32,
    pub audience: Audience,
    pub enforce: bool,
    pub downgrade: bool,
}

/// The thresholds seatcap acts on, lowest first. Written as `50=person,80=finance,100=enforce`
/// in `SEATCAP_LADDER`; that is also the default. `90=downgrade` adds a rung that detaches
/// the premium-model policies only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ladder(Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ladder `{text}`: {problem} (expected e.g. `50=person,80=finance,100=enforce`)")]
pub struct LadderError {
    text: String,
    problem: String,
}

impl Default for Ladder {
    fn default() -> Self {
        "50=person,80=finance,100=enforce"
            .parse()
            .expect("the default ladder is valid")
    }
}

impl FromStr for Ladder {
    type Err = LadderError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |problem: String| LadderError {
            text: text.to_owned(),
            problem,
        };
        let mut steps = Vec::new();
        for rung in text.split(',').map(str::trim) {
            let (percent, action) = rung
                .split_once('=')
                .ok_or_else(|| error(format!("`{rung}` has no `=`")))?;
            let percent: u32 = percent
                .trim()
                .parse()
                .ok()
                .filter(|p| (1..=1000).contains(p))
                .ok_or_else(|| {
                    error(format!(
                        "`{percent}` is not a percentage between 1 and 1000"
                    ))
                })?;
            let (audience, enforce, downgrade) = match action.trim() {
                "person" => (Audience::Person, false, false),
                "finance" => (Audience::PersonAndFinance, false, false),
                "downgrade" => (Audience::PersonAndFinance, false, true),
                "enforce" => (Audience::PersonAndFinance, true, false),
                other => {
                    return Err(error(format!(
                        "`{other}` is not one of person, finance, downgrade, enforce"
                    )));
                }
            };
            if steps
                .last()
                .is_some_and(|last: &Step| last.percent >= percent)
            {
                return Err(error("percentages must increase".into()));
            }
            steps.push(Step {
                percent,
                audience,
                enforce,
                downgrade,
            });
        }
        if !steps.iter().any(|s| s.enforce) {
            return Err(error("no step enforces".into()));
        }
        Ok(Ladder(steps))
    }
}

impl fmt::Display for Ladder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rungs: Vec<String> = self
            .0
            .iter()
            .map(|s| {
                let action = match (s.enforce, s.audience) {
                    (true, _) => "enforce",
                    _ if s.downgrade => "downgrade",
                    (false, Audience::Person) => "person",
                    // No rung addresses security: that audience is reconcile's alone.
                    (false, Audience::PersonAndFinance | Audience::Security) => "finance",
                };
                format!("{}={action}", s.percent)
            })
            .collect();
        f.write_str(&rungs.join(","))
    }
}

impl Ladder {
    /// The highest step at or below `percent`. Budgets rounds thresholds to cents, so a
    /// threshold within half a percent below a step still counts as that step.
    pub fn step_for(&self, percent: Decimal) -> Option<Step> {
        let tolerance = Decimal::new(5, 1);
        self.0
            .iter()
            .rev()
            .find(|s| Decimal::from(s.percent) <= percent + tolerance)
            .copied()
    }

    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    pub fn downgrades(&self) -> bool {
        self.0.iter().any(|s| s.downgrade)
    }
}

/// What the decision says happened, for the audit, the notification and the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Under the effective cap (or a forecast): tell people where they stand.
    Warn { audience: Audience, forecast: bool },
    /// At or over the effective cap on ACTUAL spend: take Bedrock access away.
    Enforce,
    /// A downgrade rung on ACTUAL spend under the cap: take the premium models away.
    Downgrade,
    /// Over the cap, but a protected (break-glass) principal: tell, never cut.
    ProtectedOverCap,
    /// Over the cap and already blocked: nothing new to do or say.
    AlreadyBlocked,
    /// A threshold below the ladder's first step: recorded, nobody told.
    BelowLadder,
    /// About a period that is over: recorded, never starts or extends a block now.
    Late,
}

impl Outcome {
    pub fn audience(self) -> Option<Audience> {
        match self {
            Outcome::Warn { audience, .. } => Some(audience),
            Outcome::Enforce | Outcome::Downgrade | Outcome::ProtectedOverCap => {
                Some(Audience::PersonAndFinance)
            }
            Outcome::AlreadyBlocked | Outcome::BelowLadder | Outcome::Late => None,
        }
    }
}

/// Everything the decision reads, so the caller can see what it was given.
pub struct DecisionInput<'a> {
    pub alert: &'a BudgetAlert,
    pub state: &'a PrincipalState,
    /// From `SEATCAP_PROTECTED_PRINCIPALS`, in addition to the ledger's own flag.
    pub protected_by_config: bool,
    pub ladder: &'a Ladder,
    /// Whether this principal's premium models can be taken alone (detach mode with
    /// `SEATCAP_PREMIUM_POLICY_ARNS`); otherwise a downgrade rung only warns.
    pub can_downgrade: bool,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip)]
    pub effective_cap: EffectiveCap,
}

pub fn decide(input: DecisionInput<'_>) -> Decision {
    let DecisionInput {
        alert,
        state,
        protected_by_config,
        ladder,
        can_downgrade,
        now,
    } = input;
    let effective_cap = state.effective_cap(now);
    let step = ladder.step_for(alert.threshold_percent());
    let decision = |outcome| Decision {
        outcome,
        effective_cap,
    };

    // A figure for an ended period says nothing about the current one, whatever it is.
    if alert.is_late(now) {
        return decision(Outcome::Late);
    }

    if alert.alert_type == AlertType::Forecasted {
        return decision(match step {
            Some(step) => Outcome::Warn {
                audience: step.audience,
                forecast: true,
            },
            None => Outcome::BelowLadder,
        });
    }

    // The ledger's cap is the truth, not the budget's: an ACTUAL amount at or over the
    // effective cap enforces whichever threshold fired, and one under it never does.
    let protected = state.protected || protected_by_config;
    let downgraded = state.block_cause == Some(BlockCause::Downgrade);
    if effective_cap.is_reached_by(alert.amount) {
        return decision(if state.status == Status::Blocked && !downgraded {
            Outcome::AlreadyBlocked
        } else if protected {
            Outcome::ProtectedOverCap
        } else {
            Outcome::Enforce
        });
    }
    if step.is_some_and(|s| s.downgrade)
        && can_downgrade
        && !protected
        && state.status == Status::Active
    {
        return decision(Outcome::Downgrade);
    }
    decision(match step {
        Some(step) => Outcome::Warn {
            audience: step.audience,
            forecast: false,
        },
        None => Outcome::BelowLadder,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;
    use crate::alert::PeriodUnit;
    use crate::money::Usd;
    use crate::state::Override;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
    }

    fn alert(alert_type: AlertType, threshold_cents: i64, amount_cents: i64) -> BudgetAlert {
        BudgetAlert {
            notification_date: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
            account_id: "123456789012".into(),
            budget_name: "seatcap-alice".into(),
            budgeted: Usd::from_cents(200_00),
            alert_type,
            threshold: Usd::from_cents(threshold_cents),
            amount: Usd::from_cents(amount_cents),
            period_unit: PeriodUnit::Monthly,
            reports_previous_day: false,
        }
    }

    fn alice() -> PrincipalState {
        PrincipalState::new(
            "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
            "seatcap-alice".into(),
            Usd::from_cents(200_00),
            now(),
        )
    }

    fn outcome(alert: &BudgetAlert, state: &PrincipalState) -> Outcome {
        decide(DecisionInput {
            alert,
            state,
            protected_by_config: false,
            ladder: &Ladder::default(),
            can_downgrade: false,
            now: now(),
        })
        .outcome
    }

    fn with_downgrade(alert: &BudgetAlert, state: &PrincipalState, can: bool) -> Outcome {
        decide(DecisionInput {
            alert,
            state,
            protected_by_config: false,
            ladder: &"50=person,90=downgrade,100=enforce".parse().unwrap(),
            can_downgrade: can,
            now: now(),
        })
        .outcome
    }

    #[test]
    fn a_downgrade_rung_takes_premium_then_the_cap_takes_the_rest() {
        let at_90 = alert(AlertType::Actual, 180_00, 181_00);
        assert_eq!(with_downgrade(&at_90, &alice(), true), Outcome::Downgrade);
        // Not possible for this principal (deny mode, shared role): it only warns.
        assert!(matches!(
            with_downgrade(&at_90, &alice(), false),
            Outcome::Warn { .. }
        ));
        // Forecasts never act; protected principals are never downgraded.
        let forecast = alert(AlertType::Forecasted, 180_00, 181_00);
        assert!(matches!(
            with_downgrade(&forecast, &alice(), true),
            Outcome::Warn { forecast: true, .. }
        ));
        let mut protected = alice();
        protected.protected = true;
        assert!(matches!(
            with_downgrade(&at_90, &protected, true),
            Outcome::Warn { .. }
        ));
        // Downgraded, then at the cap: enforce the rest; a manual block stays as it is.
        let mut downgraded = alice();
        downgraded.status = Status::Blocked;
        downgraded.block_cause = Some(BlockCause::Downgrade);
        let at_cap = alert(AlertType::Actual, 200_00, 201_00);
        assert_eq!(with_downgrade(&at_cap, &downgraded, true), Outcome::Enforce);
        downgraded.block_cause = Some(BlockCause::Manual);
        assert_eq!(
            with_downgrade(&at_cap, &downgraded, true),
            Outcome::AlreadyBlocked
        );
    }

    #[test]
    fn the_downgrade_rung_reads_and_prints_back() {
        let ladder: Ladder = "50=person,80=finance,90=downgrade,100=enforce"
            .parse()
            .unwrap();
        assert!(ladder.downgrades());
        assert_eq!(
            ladder.to_string(),
            "50=person,80=finance,90=downgrade,100=enforce"
        );
        assert!(!Ladder::default().downgrades());
    }

    #[test]
    fn default_ladder_notifies_then_escalates_then_enforces() {
        let state = alice();
        assert_eq!(
            outcome(&alert(AlertType::Actual, 100_00, 101_00), &state),
            Outcome::Warn {
                audience: Audience::Person,
                forecast: false
            }
        );
        assert_eq!(
            outcome(&alert(AlertType::Actual, 160_00, 161_00), &state),
            Outcome::Warn {
                audience: Audience::PersonAndFinance,
                forecast: false
            }
        );
        assert_eq!(
            outcome(&alert(AlertType::Actual, 200_00, 201_00), &state),
            Outcome::Enforce
        );
        assert_eq!(
            outcome(&alert(AlertType::Actual, 20_00, 21_00), &state),
            Outcome::BelowLadder
        );
    }

    #[test]
    fn an_alert_about_an_ended_period_is_late_whatever_it_says() {
        let over = alert(AlertType::Actual, 200_00, 900_00);
        let december = Utc.with_ymd_and_hms(2026, 12, 1, 0, 30, 0).unwrap();
        let late = |state: &PrincipalState| {
            decide(DecisionInput {
                alert: &over,
                state,
                protected_by_config: false,
                ladder: &Ladder::default(),
                can_downgrade: true,
                now: december,
            })
            .outcome
        };
        assert_eq!(late(&alice()), Outcome::Late);
        let mut blocked = alice();
        blocked.status = Status::Blocked;
        assert_eq!(late(&blocked), Outcome::Late);
        assert_eq!(Outcome::Late.audience(), None);
        // The same alert within its month enforces.
        assert_eq!(outcome(&over, &alice()), Outcome::Enforce);
    }

    #[test]
    fn forecasts_only_ever_warn() {
        assert_eq!(
            outcome(&alert(AlertType::Forecasted, 200_00, 900_00), &alice()),
            Outcome::Warn {
                audience: Audience::PersonAndFinance,
                forecast: true
            }
        );
    }

    #[test]
    fn an_override_keeps_an_alert_under_the_effective_cap_from_enforcing() {
        let mut state = alice();
        state.overrides.push(Override {
            id: "o1".into(),
            extra_usd: Some(Usd::from_cents(100_00)),
            exempt: false,
            expires_at: Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
            granted_by: "finance".into(),
            reason: "launch".into(),
            approved_by: None,
        });
        assert_eq!(
            outcome(&alert(AlertType::Actual, 200_00, 250_00), &state),
            Outcome::Warn {
                audience: Audience::PersonAndFinance,
                forecast: false
            }
        );
        assert_eq!(
            outcome(&alert(AlertType::Actual, 200_00, 300_00), &state),
            Outcome::Enforce
        );
    }

    #[test]
    fn protected_principals_are_never_enforced() {
        let mut state = alice();
        state.protected = true;
        assert_eq!(
            outcome(&alert(AlertType::Actual, 200_00, 500_00), &state),
            Outcome::ProtectedOverCap
        );
        let by_config = decide(DecisionInput {
            alert: &alert(AlertType::Actual, 200_00, 500_00),
            state: &alice(),
            protected_by_config: true,
            ladder: &Ladder::default(),
            can_downgrade: false,
            now: now(),
        });
        assert_eq!(by_config.outcome, Outcome::ProtectedOverCap);
    }

    #[test]
    fn the_ledger_cap_wins_over_the_budget_amount() {
        let mut state = alice();
        state.cap_usd = Usd::from_cents(150_00);
        assert_eq!(
            outcome(&alert(AlertType::Actual, 100_00, 155_00), &state),
            Outcome::Enforce
        );
    }

    #[test]
    fn a_blocked_principal_is_not_enforced_twice() {
        let mut state = alice();
        state.status = Status::Blocked;
        assert_eq!(
            outcome(&alert(AlertType::Actual, 200_00, 230_00), &state),
            Outcome::AlreadyBlocked
        );
    }

    #[test]
    fn ladders_parse_validate_and_print() {
        let ladder: Ladder = "25=person, 90=finance, 100=enforce".parse().unwrap();
        assert_eq!(ladder.to_string(), "25=person,90=finance,100=enforce");
        assert_eq!(
            Ladder::default().to_string(),
            "50=person,80=finance,100=enforce"
        );
        for bad in [
            "",
            "50",
            "50=person",
            "80=finance,50=enforce",
            "x=enforce",
            "0=enforce",
            "50=shout,100=enforce",
        ] {
            assert!(bad.parse::<Ladder>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn steps_tolerate_cent_rounding_below_a_threshold() {
        let ladder = Ladder::default();
        assert_eq!(
            ladder.step_for(Decimal::new(7996, 2)).map(|s| s.percent),
            Some(80)
        );
        assert_eq!(
            ladder.step_for(Decimal::from(79)).map(|s| s.percent),
            Some(50)
        );
    }
}
