//! reconcile: on a schedule, make the ledger, IAM and AWS Budgets agree. For every principal
//! in the ledger it reads what IAM has attached and what Budgets says was spent, lets
//! [`crate::findings::assess`] name the disagreements, and acts on them: enforce what a lost
//! alert missed, restore what a raised cap allows, detach again what someone re-attached
//! during a block. Everything else it reports. In dry-run it reports the plan only.
//!
//! IAM and Budgets are read in bulk (GetAccountAuthorizationDetails, DescribeBudgets), a few
//! paginated calls for the whole account; the ledger through the status index, a page at a
//! time, so a run near its deadline hands the rest over to a new invocation.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::admin::{AdminError, IamStep};
use crate::app::App;
use crate::budgets::BudgetsError;
use crate::change::{Change, mark_restored};
use crate::config::Mode;
use crate::enforce::{Method, Taken};
use crate::findings::{Action, BudgetTruth, Finding, Truths, assess};
use crate::handover::{CONCURRENCY, HandoverError, Pace, Walk};
use crate::iam::{Attachments, IamError};
use crate::ledger::{EventKind, LedgerError};
use crate::metrics;
use crate::period::period_key;
use crate::principal::PrincipalArn;
use crate::state::{BlockCause, PrincipalState, Status};

pub(crate) const ACTOR: &str = crate::audit::Actor::Reconcile.name();

/// The scheduled event (its other fields are ignored), an operator's `{"dry_run": true}`, or
/// a follow-up invocation's cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileEvent {
    /// Report the plan and change nothing, even in enforce mode.
    #[serde(default)]
    pub dry_run: bool,
    /// Where an earlier invocation stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Cursor>,
}

/// A position in the ledger's status index: active principals first, then blocked ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub status: Status,
    /// The last principal done; `None` for the start of `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<PrincipalArn>,
}

/// One principal that reconcile found something about.
#[derive(Clone, Debug, Serialize)]
pub struct PrincipalReport {
    pub principal: PrincipalArn,
    pub findings: Vec<Finding>,
    #[serde(flatten)]
    pub action: Action,
    /// `planned` (dry-run), `done`, `skipped` (the ledger changed since it was read; the
    /// next run looks again), `reported` (nothing to do but tell), or `failed`.
    pub outcome: &'static str,
}

#[derive(Debug, Default, Serialize)]
pub struct ReconcileReport {
    pub dry_run: bool,
    /// Principals compared in this invocation.
    pub checked: usize,
    /// How many of each finding, by name.
    pub counts: BTreeMap<&'static str, usize>,
    pub principals: Vec<PrincipalReport>,
    pub unowned_budgets: Vec<String>,
    /// An ended month whose metered and billed figures differ by more than 10 %, per
    /// principal (checked once per month, from its third day).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metered_budget_drift: Vec<crate::metered_drift::MeteredDrift>,
    pub failed: Vec<(String, String)>,
    /// The follow-up invocation's event, when this one ran out of time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handed_over: Option<ReconcileEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Iam(#[from] IamError),
    #[error(transparent)]
    Budgets(#[from] BudgetsError),
    #[error(transparent)]
    Handover(#[from] HandoverError),
    #[error("{} of {} reconcile actions failed; the next run retries them: {:?}", .0.failed.len(), .0.checked, .0.failed)]
    Incomplete(Box<ReconcileReport>),
}

/// Budgets' side of the truth, per account and budget name, and this month's metered
/// micro-dollars per principal.
#[derive(Default)]
struct BudgetsSeen {
    accounts: HashMap<String, HashMap<String, BudgetTruth>>,
    metered: HashMap<String, i64>,
}

impl BudgetsSeen {
    /// Budgets' figure for the principal's budget, raised to the metered one when that is
    /// higher and for the same month.
    fn of(&self, state: &PrincipalState) -> Option<BudgetTruth> {
        let truth = self
            .accounts
            .get(state.principal.account_id())?
            .get(&state.budget)?;
        let metered = self
            .metered
            .get(state.principal.as_str())
            .copied()
            .filter(|_| {
                crate::period::unit_of(&truth.period_key) == Some(crate::alert::PeriodUnit::Monthly)
            })
            .unwrap_or(0);
        Some(BudgetTruth {
            actual_spend: crate::meter::highest_spend(truth.actual_spend, metered),
            period_key: truth.period_key.clone(),
        })
    }
}

impl App {
    /// The reconcile function's invocation: one run within `context`'s deadline, the rest
    /// handed over, and an error if any principal could not be put right.
    pub async fn reconcile_invocation(
        &self,
        event: ReconcileEvent,
        context: &lambda_runtime::Context,
    ) -> Result<ReconcileReport, ReconcileError> {
        let report = self.reconcile(event, Pace::of(context)).await?;
        if let Some(next) = &report.handed_over {
            self.hand_over(&context.invoked_function_arn, next).await?;
        }
        if report.failed.is_empty() {
            Ok(report)
        } else {
            Err(ReconcileError::Incomplete(Box::new(report)))
        }
    }

    /// Compares and acts on pages of principals until done or past `pace`'s deadline; a report with
    /// `handed_over` says where the next run continues.
    pub async fn reconcile(
        &self,
        event: ReconcileEvent,
        pace: Pace,
    ) -> Result<ReconcileReport, ReconcileError> {
        let now = self.now();
        let dry_run = event.dry_run || self.config.mode == Mode::DryRun;
        let first_run = event.resume.is_none();
        let mut report = ReconcileReport {
            dry_run,
            ..ReconcileReport::default()
        };
        if first_run {
            report.metered_budget_drift = self.check_metered_drift(now).await?;
            if !report.metered_budget_drift.is_empty() {
                report
                    .counts
                    .insert("metered_budget_drift", report.metered_budget_drift.len());
            }
        }
        let attachments = self.iam.all_attachments().await?;
        // This month's metered figures (one query): the higher of them and Budgets' decides.
        let metered = self
            .ledger
            .counters_of(&crate::period::month_key(now))
            .await?
            .into_iter()
            .map(|c| (c.arn, c.micros))
            .collect();
        let mut budgets = BudgetsSeen {
            metered,
            ..BudgetsSeen::default()
        };
        // Acted on in this run: IAM was read before, so a second look would misread them.
        let mut touched: HashSet<PrincipalArn> = HashSet::new();
        let mut cursor = event.resume.clone().unwrap_or(Cursor {
            status: Status::Active,
            after: None,
        });
        let resume_at = |cursor| {
            Some(ReconcileEvent {
                dry_run: event.dry_run,
                resume: Some(cursor),
            })
        };
        loop {
            let walk = self
                .walk_status(cursor.status, cursor.after.clone(), pace, async |page| {
                    for state in &page {
                        let account = state.principal.account_id();
                        if !budgets.accounts.contains_key(account) {
                            let seen = self
                                .sweep_budgets(account, now, first_run, &mut report)
                                .await?;
                            budgets.accounts.insert(account.to_owned(), seen);
                        }
                    }
                    let page: Vec<PrincipalState> = page
                        .into_iter()
                        .filter(|s| !touched.contains(&s.principal))
                        .collect();
                    report.checked += page.len();
                    let outcomes = self
                        .reconcile_page(&page, &attachments, &budgets, now, dry_run)
                        .await;
                    for (principal_report, failure) in outcomes {
                        for finding in &principal_report.findings {
                            *report.counts.entry(finding.name()).or_default() += 1;
                        }
                        if principal_report.action != Action::None {
                            touched.insert(principal_report.principal.clone());
                        }
                        if let Some(failure) = failure {
                            report
                                .failed
                                .push((principal_report.principal.to_string(), failure));
                        }
                        report.principals.push(principal_report);
                    }
                    Ok::<_, ReconcileError>(())
                })
                .await?;
            cursor = match (walk, cursor.status) {
                (Walk::Stopped { after }, status) => {
                    report.handed_over = resume_at(Cursor {
                        status,
                        after: Some(after),
                    });
                    break;
                }
                (Walk::Done, Status::Active) => Cursor {
                    status: Status::Blocked,
                    after: None,
                },
                (Walk::Done, Status::Blocked) => break,
            };
            // Between the two statuses, as between pages.
            if pace.deadline_passed() {
                report.handed_over = resume_at(cursor);
                break;
            }
        }
        self.summarise(&report);
        Ok(report)
    }

    /// Reads every budget of `account` once; on the first run of a reconcile also reports
    /// budgets on seatcap's cost tag that no principal owns.
    async fn sweep_budgets(
        &self,
        account: &str,
        now: DateTime<Utc>,
        report_unowned: bool,
        report: &mut ReconcileReport,
    ) -> Result<HashMap<String, BudgetTruth>, ReconcileError> {
        let all = self.budgets.describe_all(account).await?;
        if report_unowned {
            let tagged: Vec<String> = all
                .iter()
                .filter(|b| b.filters_on_tag(&self.config.cost_tag_key))
                .map(|b| b.name().to_owned())
                .collect();
            let owned = self.ledger.owned_budgets(&tagged).await?;
            for budget in tagged.into_iter().filter(|b| !owned.contains(b)) {
                let finding = Finding::UnownedBudget {
                    budget: budget.clone(),
                };
                warn!(findings = ?[&finding], "reconcile finding");
                *report.counts.entry(finding.name()).or_default() += 1;
                report.unowned_budgets.push(budget);
            }
        }
        Ok(all
            .into_iter()
            .map(|b| {
                let truth = BudgetTruth {
                    actual_spend: b.actual_spend,
                    period_key: period_key(b.period_unit(), now.date_naive()),
                };
                (b.name().to_owned(), truth)
            })
            .collect())
    }

    async fn reconcile_page(
        &self,
        page: &[PrincipalState],
        attachments: &Attachments,
        budgets: &BudgetsSeen,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Vec<(PrincipalReport, Option<String>)> {
        let managed = &self.config.managed_policy_arns;
        futures::stream::iter(page)
            .map(|state| async move {
                let attached_managed: Option<Vec<String>> = attachments.of(&state.principal).map(|all| {
                    all.iter()
                        .filter(|p| managed.contains(p))
                        .cloned()
                        .collect()
                });
                let budget = budgets.of(state);
                let assessment = assess(
                    &Truths {
                        state,
                        attached_managed: attached_managed.as_deref(),
                        cut_by_deny: self.method_for(&state.principal) != Method::Detach,
                        deny_attached: state.deny_policy_arn.as_ref().map(|arn| {
                            attachments
                                .of(&state.principal)
                                .is_some_and(|all| all.contains(arn))
                        }),
                        deny_names_person: state
                            .deny_policy_arn
                            .as_deref()
                            .filter(|_| {
                                state.principal.kind() == crate::principal::PrincipalKind::AssumedRole
                                    || state.principal.identity_center_role().is_some()
                            })
                            .and_then(|arn| attachments.denies_person(&state.principal, arn)),
                        budget: budget.as_ref(),
                    },
                    now,
                );
                let mut report = PrincipalReport {
                    principal: state.principal.clone(),
                    findings: assessment.findings,
                    action: assessment.action,
                    outcome: "reported",
                };
                let mut failure = None;
                if report.action != Action::None {
                    if dry_run {
                        report.outcome = "planned";
                    } else {
                        match self.act(state, &report.action).await {
                            Ok(true) => report.outcome = "done",
                            Ok(false) => report.outcome = "skipped",
                            Err(e) => {
                                error!(principal = %state.principal, error = %e, "reconcile action failed");
                                report.outcome = "failed";
                                failure = Some(e.to_string());
                            }
                        }
                    }
                }
                // A writer that died after its commit, or lost the race to re-arm: add the
                // alarms its state records and the budget lacks.
                if report.action == Action::None && !dry_run && !state.budget_alarms_usd.is_empty()
                    && let Err(e) = self.put_alarms(&state.budget_alarms_usd, state).await
                {
                    warn!(principal = %state.principal, error = %e, "could not re-arm the budget");
                }
                if !report.findings.is_empty() {
                    warn!(
                        principal = %report.principal,
                        findings = %serde_json::to_string(&report.findings).unwrap_or_default(),
                        action = ?report.action,
                        outcome = report.outcome,
                        "reconcile finding"
                    );
                }
                (report, failure)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    /// Carries out `action` through the one mutation path (conditional on the version read,
    /// audited, announced). `false`: the ledger changed since the truths were read, so
    /// nothing was done and the next run looks again.
    async fn act(&self, observed: &PrincipalState, action: &Action) -> Result<bool, AdminError> {
        let reason = match action {
            Action::None => return Ok(false),
            Action::Enforce { spend, .. } => format!(
                "caught by reconcile: Budgets reports {spend}, at or over the effective cap"
            ),
            Action::Restore { spend, .. } => {
                format!("reconcile: Budgets reports {spend}, under the effective cap")
            }
            Action::DetachAgain { policies } => {
                format!("reconcile: {policies:?} were attached again during the block")
            }
            Action::DenyAgain { policy } if observed.principal.identity_center_role().is_some() => {
                format!("reconcile: {policy} must deny this IAM Identity Center principal")
            }
            Action::DenyAgain { policy } => {
                format!("reconcile: {policy} was detached during the block")
            }
            Action::CompleteCut { policy } => format!(
                "reconcile: the IAM Identity Center role carries {policy} now; the cut is in force"
            ),
            Action::EndOverrides => "reconcile: overrides past their expiry".to_owned(),
        };
        let answer = self
            .change_principal(&observed.principal, ACTOR, &reason, |fresh, now| {
                Ok(if fresh.version == observed.version {
                    change_for(action, fresh, now)
                } else {
                    Change::Unchanged
                })
            })
            .await?;
        Ok(matches!(answer, Ok(ref a) if a["changed"] == Value::Bool(true)))
    }

    fn summarise(&self, report: &ReconcileReport) {
        let count = |outcome: &str| {
            report
                .principals
                .iter()
                .filter(|p| p.outcome == outcome)
                .count()
        };
        metrics::count("ReconcileChecked", report.checked);
        for (finding, n) in &report.counts {
            metrics::count(&format!("Reconcile.{finding}"), *n);
        }
        metrics::count("ReconcileFailed", report.failed.len());
        info!(
            dry_run = report.dry_run,
            checked = report.checked,
            counts = %serde_json::to_string(&report.counts).unwrap_or_default(),
            done = count("done"),
            planned = count("planned"),
            skipped = count("skipped"),
            failed = report.failed.len(),
            unowned_budgets = report.unowned_budgets.len(),
            handed_over = report.handed_over.is_some(),
            "reconcile summary"
        );
    }
}

/// The ledger change (and its IAM step) for an action, applied to the state it was decided
/// on. Every change also drops the overrides that have expired.
fn change_for(action: &Action, state: &PrincipalState, now: DateTime<Utc>) -> Change {
    let next = |change: &dyn Fn(&mut PrincipalState)| {
        Box::new(state.next(now, |s| {
            s.overrides.retain(|o| o.is_active(now));
            change(s);
        }))
    };
    match action {
        Action::None => Change::Unchanged,
        Action::Enforce { spend, period } => Change::To {
            next: next(&|s| {
                s.status = Status::Blocked;
                s.block_cause = Some(BlockCause::Cap);
                s.blocked_period = Some(period.clone());
                s.record_spend(period.clone(), *spend);
            }),
            iam: IamStep::Cut(crate::intent::Scope::Everything),
            kind: EventKind::Enforced,
        },
        Action::Restore { spend, period } => Change::To {
            next: next(&|s| {
                mark_restored(s, now);
                s.record_spend(period.clone(), *spend);
            }),
            iam: IamStep::GiveBack(Taken::of(state)),
            kind: EventKind::Restored,
        },
        Action::DetachAgain { policies } => Change::To {
            next: next(&|_| {}),
            iam: IamStep::TakeAgain(Taken {
                detached_policy_arns: policies.clone(),
                deny_policy_arn: None,
            }),
            kind: EventKind::DriftRepaired,
        },
        Action::DenyAgain { policy } => Change::To {
            next: next(&|_| {}),
            iam: IamStep::TakeAgain(Taken {
                detached_policy_arns: Vec::new(),
                deny_policy_arn: Some(policy.clone()),
            }),
            kind: EventKind::DriftRepaired,
        },
        Action::CompleteCut { policy } => Change::To {
            next: next(&|_| {}),
            iam: IamStep::TakeAgain(Taken {
                detached_policy_arns: Vec::new(),
                deny_policy_arn: Some(policy.clone()),
            }),
            kind: EventKind::Enforced,
        },
        Action::EndOverrides => Change::To {
            next: next(&|_| {}),
            iam: IamStep::Nothing,
            kind: EventKind::OverrideExpired,
        },
    }
}
