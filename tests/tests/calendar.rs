//! The calendar at the edges of a budget period, as finance lives it: late alerts, a new
//! month, a lagging Budgets figure, daily budgets, alerts dated ahead of the clock. Against
//! moto through the real SDK; the time is an injected clock that each step moves on.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use seatcap::App;
use seatcap::alert_delivery::AlertReport;
use seatcap::handover::Pace;
use seatcap::ledger::EventKind;
use seatcap::principal::PrincipalArn;
use seatcap::rollover::RolloverEvent;
use seatcap::state::{PrincipalState, Status};
use seatcap_tests::{Account, budget_alert_on};
use serde_json::{Value, json};

/// One app whose clock the test moves, as days pass.
struct Calendar {
    account: Account,
    app: App,
    now: Arc<Mutex<DateTime<Utc>>>,
}

fn at(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, hour, minute, 0)
        .unwrap()
}

impl Calendar {
    async fn starting(now: DateTime<Utc>) -> Calendar {
        Calendar::with(now, &[]).await
    }

    async fn with(now: DateTime<Utc>, env: &[(&str, &str)]) -> Calendar {
        let account = Account::new().await;
        let now = Arc::new(Mutex::new(now));
        let clock = now.clone();
        let app = account.app(env, Arc::new(move || *clock.lock().unwrap()));
        Calendar { account, app, now }
    }

    fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap() = now;
    }

    async fn admin(&self, request: Value) -> Value {
        let answer = self.app.handle_admin(request).await.unwrap();
        assert_eq!(answer["ok"], true, "{answer}");
        answer
    }

    /// alice, with the managed Bedrock policy and a $200 cap.
    async fn alice(&self) -> PrincipalArn {
        let alice = self
            .account
            .create_principal("user", "alice", &[&self.account.bedrock_policy_arn])
            .await;
        self.admin(json!({"action": "set_cap", "principal": alice.as_str(),
            "budget": "seatcap-alice", "cap_usd": "200", "actor": "finance", "reason": "seat"}))
            .await;
        alice
    }

    /// An ACTUAL monthly alert for alice's budget, dated `date`.
    async fn alert(&self, id: &str, date: NaiveDate, threshold: &str, amount: &str) -> AlertReport {
        let text = budget_alert_on(date, "seatcap-alice", "ACTUAL", "200.00", threshold, amount);
        self.app.handle_delivery(id, &text).await.unwrap()
    }

    async fn state(&self, principal: &PrincipalArn) -> PrincipalState {
        self.account
            .ledger()
            .load(principal)
            .await
            .unwrap()
            .unwrap()
    }

    /// Whether IAM lets the principal at Bedrock: its managed policy is attached.
    async fn has_access(&self, principal: &PrincipalArn) -> bool {
        self.account.attached(principal).await == vec![self.account.bedrock_policy_arn.clone()]
    }

    async fn events(&self, principal: &PrincipalArn) -> Vec<(EventKind, Value)> {
        self.account
            .history(principal)
            .await
            .into_iter()
            .map(|e| (e.kind, e.detail))
            .collect()
    }

    async fn roll_over(&self, time: DateTime<Utc>) {
        self.set(time);
        let event = RolloverEvent {
            time,
            resume_after: None,
        };
        let report = self.app.roll_over(event, Pace::unlimited()).await.unwrap();
        assert!(report.failed.is_empty(), "{report:?}");
    }

    async fn reconcile(&self) -> Value {
        let event = serde_json::from_value(json!({})).unwrap();
        let report = self.app.reconcile(event, Pace::unlimited()).await.unwrap();
        serde_json::to_value(report).unwrap()
    }
}

fn date(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).unwrap()
}

fn outcome(report: &AlertReport) -> Value {
    serde_json::to_value(report).unwrap()["outcome"].clone()
}

/// Scenario 1: a November 30 alert that SNS (or a dead-letter replay) delivers on December 1
/// at 00:30, after the rollover, is recorded and audited, and cuts no one in December.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_alert_from_the_last_month_is_recorded_and_cuts_no_one() {
    let calendar = Calendar::starting(at(11, 30, 12, 0)).await;
    let alice = calendar.alice().await;
    calendar.roll_over(at(12, 1, 0, 5)).await;

    calendar.set(at(12, 1, 0, 30));
    let report = calendar
        .alert("m-late", date(11, 30), "200.00", "230.00")
        .await;
    assert_eq!(outcome(&report), "late", "{report:?}");
    let state = calendar.state(&alice).await;
    assert_eq!(
        (state.status, state.blocked_period, state.last_actual_usd),
        (Status::Active, None, None),
        "a late figure is not December's spend"
    );
    assert!(calendar.has_access(&alice).await);
    let events = calendar.events(&alice).await;
    let late = events
        .iter()
        .find(|(kind, _)| *kind == EventKind::LateAlert)
        .expect("the late alert is audited");
    assert_eq!(late.1["period"], "2026-11");
    assert_eq!(late.1["amount_usd"], "230.00");
    // Recorded once: its redelivery is a duplicate.
    let again = calendar
        .alert("m-late", date(11, 30), "200.00", "230.00")
        .await;
    assert!(matches!(again, AlertReport::Duplicate { .. }), "{again:?}");
    assert!(calendar.account.sent_notifications().await.is_empty());
}

/// Scenario 2: blocked in November at $201, an override until December 31 restores her, the
/// month rolls over, and on December 5 the override is revoked: November's spend must not
/// cut her again, and reconcile (Budgets says $20 for December) keeps her on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_months_spend_does_not_cut_again_after_the_rollover() {
    let calendar = Calendar::starting(at(11, 21, 9, 0)).await;
    let alice = calendar.alice().await;
    calendar
        .alert("m-cap", date(11, 21), "200.00", "201.00")
        .await;
    assert!(!calendar.has_access(&alice).await);
    calendar
        .admin(
            json!({"action": "grant_override", "principal": alice.as_str(),
            "extra_usd": "100", "expires_at": "2026-12-31T00:00:00Z",
            "actor": "finance", "reason": "launch"}),
        )
        .await;
    assert!(calendar.has_access(&alice).await);
    calendar.roll_over(at(12, 1, 0, 5)).await;

    calendar.set(at(12, 5, 10, 0));
    let answer = calendar
        .admin(
            json!({"action": "revoke_override", "principal": alice.as_str(),
            "actor": "finance", "reason": "launch over"}),
        )
        .await;
    assert_eq!(answer["status"], "active", "{answer}");
    assert!(calendar.has_access(&alice).await);

    calendar
        .account
        .put_budget("seatcap-alice", "200", "20", None)
        .await;
    let report = calendar.reconcile().await;
    assert!(calendar.has_access(&alice).await, "{report}");
    assert_eq!(calendar.state(&alice).await.status, Status::Active);
}

/// Scenario 3: right after a $201 block, finance sets the same cap again while Budgets still
/// shows $150. The lagging figure must not restore her: the 100 % alert is claimed already,
/// so nothing would cut her again for hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_cap_does_not_trust_a_lagging_budgets_figure() {
    let calendar = Calendar::with(
        at(11, 21, 9, 0),
        &[(
            "SEATCAP_ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:seatcap-budget-alerts",
        )],
    )
    .await;
    let alice = calendar.alice().await;
    calendar
        .alert("m-cap", date(11, 21), "200.00", "201.00")
        .await;
    assert!(!calendar.has_access(&alice).await);
    calendar
        .account
        .put_budget("seatcap-alice", "200", "150", None)
        .await;

    let answer = calendar
        .admin(json!({"action": "set_cap", "principal": alice.as_str(),
            "budget": "seatcap-alice", "cap_usd": "200", "team": "atlas",
            "actor": "finance", "reason": "team move"}))
        .await;
    assert_eq!(answer["status"], "blocked", "{answer}");
    assert_eq!(answer["last_actual_usd"], "201.00", "{answer}");
    assert!(!calendar.has_access(&alice).await);

    // A raise over the highest figure still restores at once. (moto has no UpdateBudget:
    // the budget is given its new limit here, as if finance had changed it first.)
    calendar
        .account
        .put_budget("seatcap-alice", "250", "150", None)
        .await;
    let answer = calendar
        .admin(json!({"action": "set_cap", "principal": alice.as_str(),
            "budget": "seatcap-alice", "cap_usd": "250", "actor": "finance", "reason": "raise"}))
        .await;
    assert_eq!(answer["status"], "active", "{answer}");
    assert!(calendar.has_access(&alice).await);
}

/// Scenario 5: a daily budget's alert, dated November 21, reports "Yesterday" (the 20th).
/// The spend is the 20th's: the 21st is not blocked for it, and reconcile does not count it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_alert_is_about_yesterday_and_blocks_no_part_of_today() {
    let calendar = Calendar::starting(at(11, 21, 6, 0)).await;
    let alice = calendar.alice().await;
    let daily = include_str!("../../events/budget-daily-actual.txt")
        .replace("October 14, 2026", "November 21, 2026")
        .replace("nightly-sandbox", "seatcap-alice")
        .replace("210987654321", "123456789012");
    let report = calendar.app.handle_delivery("m-day", &daily).await.unwrap();
    assert_eq!(outcome(&report), "late", "{report:?}");
    let state = calendar.state(&alice).await;
    assert_eq!(
        (state.status, state.last_actual_usd),
        (Status::Active, None)
    );
    assert!(calendar.has_access(&alice).await);
    let events = calendar.events(&alice).await;
    let (_, detail) = events
        .iter()
        .find(|(kind, _)| *kind == EventKind::LateAlert)
        .expect("audited as late");
    assert_eq!(detail["period"], "2026-11-20");
}

/// An alert dated more than a day ahead of the clock is refused before it claims anything:
/// the real alert of that budget, threshold and period still cuts when it comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_dated_ahead_of_the_clock_is_refused_and_claims_nothing() {
    let calendar = Calendar::starting(at(11, 21, 9, 0)).await;
    let alice = calendar.alice().await;
    let report = calendar
        .alert("m-ahead", date(11, 23), "200.00", "1.00")
        .await;
    let AlertReport::Rejected { error, .. } = &report else {
        panic!("{report:?}");
    };
    assert!(
        error.contains("2026-11-23") && error.contains("ahead"),
        "{error}"
    );
    // Tomorrow's date is within the skew a time zone can explain.
    let tomorrow = calendar
        .alert("m-tomorrow", date(11, 22), "100.00", "101.00")
        .await;
    assert!(
        matches!(tomorrow, AlertReport::Handled { .. }),
        "{tomorrow:?}"
    );

    let real = calendar
        .alert("m-real", date(11, 21), "200.00", "212.00")
        .await;
    assert_eq!(outcome(&real), "enforce", "{real:?}");
    assert!(!calendar.has_access(&alice).await);
}

/// What happens on one simulated day, before the evening's reconcile.
enum Happening {
    Alert {
        threshold: &'static str,
        amount: &'static str,
    },
    Grant,
    Revoke,
    /// An alert about the day before, delivered late (a retry or a dead-letter replay).
    LateAlert,
    Rollover,
}

/// A month of days for one principal, $10 a day against a $200 cap: warnings at 50 % and
/// 80 %, the cut at the cap, an override of $100, its revoke, the rollover and a late alert.
/// Every evening Budgets (a day behind) is reconciled; after each day the ledger's status
/// and IAM must say the same thing, and what the day calls for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_days_keeps_the_ledger_iam_and_the_calendar_in_step() {
    use Happening::*;
    let calendar = Calendar::starting(at(11, 1, 9, 0)).await;
    let alice = calendar.alice().await;
    let days: Vec<((u32, u32), Vec<Happening>)> = (1..=30)
        .map(|day| (11, day))
        .chain([(12, 1), (12, 2)])
        .map(|(month, day)| {
            let happenings = match (month, day) {
                (11, 10) => vec![Alert {
                    threshold: "100.00",
                    amount: "101.00",
                }],
                (11, 16) => vec![Alert {
                    threshold: "160.00",
                    amount: "161.00",
                }],
                (11, 20) => vec![Alert {
                    threshold: "200.00",
                    amount: "201.00",
                }],
                (11, 22) => vec![Grant],
                (11, 26) => vec![Revoke],
                (12, 1) => vec![Rollover, LateAlert],
                _ => Vec::new(),
            };
            ((month, day), happenings)
        })
        .collect();
    let blocked_on = |(month, day): (u32, u32)| {
        month == 11 && ((20..=21).contains(&day) || (26..=30).contains(&day))
    };

    for ((month, day), happenings) in days {
        calendar.set(at(month, day, 9, 0));
        for happening in happenings {
            match happening {
                Alert { threshold, amount } => {
                    let id = format!("m-{month}-{day}");
                    calendar
                        .alert(&id, date(month, day), threshold, amount)
                        .await;
                }
                Grant => {
                    calendar
                        .admin(
                            json!({"action": "grant_override", "principal": alice.as_str(),
                            "extra_usd": "100", "expires_at": "2026-12-31T00:00:00Z",
                            "actor": "finance", "reason": "launch"}),
                        )
                        .await;
                }
                Revoke => {
                    calendar
                        .admin(
                            json!({"action": "revoke_override", "principal": alice.as_str(),
                            "actor": "finance", "reason": "launch over"}),
                        )
                        .await;
                }
                Rollover => calendar.roll_over(at(month, day, 0, 5)).await,
                LateAlert => {
                    calendar.set(at(month, day, 0, 30));
                    let report = calendar
                        .alert("m-late", date(11, 30), "250.00", "300.00")
                        .await;
                    assert_eq!(outcome(&report), "late", "{report:?}");
                }
            }
        }
        // Budgets, a day behind: $10 a day in November, $5 so far in December.
        let lagging = if month == 11 { 10 * (day - 1) } else { 5 };
        calendar
            .account
            .put_budget("seatcap-alice", "200", &lagging.to_string(), None)
            .await;
        calendar.set(at(month, day, 23, 0));
        let report = calendar.reconcile().await;

        let state = calendar.state(&alice).await;
        let access = calendar.has_access(&alice).await;
        let expected = if blocked_on((month, day)) {
            Status::Blocked
        } else {
            Status::Active
        };
        assert_eq!(
            (state.status, access),
            (expected, expected == Status::Active),
            "{month}/{day}: {state:?}\n{report}"
        );
        assert!(state.pending.is_none(), "{month}/{day}: {state:?}");
        if state.status == Status::Blocked {
            assert_eq!(state.blocked_period.as_deref(), Some("2026-11"));
            assert_eq!(
                state.detached_policy_arns,
                vec![calendar.account.bedrock_policy_arn.clone()]
            );
        }
    }
    let kinds: Vec<EventKind> = calendar
        .events(&alice)
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    for kind in [
        EventKind::Enforced,
        EventKind::OverrideGranted,
        EventKind::OverrideRevoked,
        EventKind::Restored,
        EventKind::LateAlert,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
}
