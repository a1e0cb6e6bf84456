//! What reconcile finds when it puts three truths side by side — the ledger, IAM and AWS
//! Budgets — and what it does about each principal. Pure: the `reconcile` flow gathers the
//! truths and carries out the action.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::money::Usd;
use crate::state::{BlockCause, EffectiveCap, PrincipalState, Status};

/// What Budgets says about a principal's budget right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetTruth {
    /// `CalculatedSpend.ActualSpend` in USD; `None` if Budgets gave none in USD.
    pub actual_spend: Option<Usd>,
    /// The key of the budget's current period (`2026-11`), as alerts name periods.
    pub period_key: String,
}

/// The three truths about one principal.
#[derive(Clone, Debug)]
pub struct Truths<'a> {
    pub state: &'a PrincipalState,
    /// The managed policies IAM shows attached now; `None` if IAM has no such principal
    /// (for a person on a shared role: no such role).
    pub attached_managed: Option<&'a [String]>,
    /// Access is cut by a deny policy (deny mode, shared roles), so the managed policies stay
    /// attached through a block and their presence says nothing.
    pub cut_by_deny: bool,
    /// Whether the seatcap deny policy the state records (`deny_policy_arn`) is attached
    /// (to the principal, or to a shared role); `None` when none is recorded.
    pub deny_attached: Option<bool>,
    /// For a person on a shared role: whether the recorded shard's document denies them
    /// under the role's current unique id (a recreated role has a new one); `None` when not
    /// known or not such a person.
    pub deny_names_person: Option<bool>,
    /// `None` if the principal's budget is gone.
    pub budget: Option<&'a BudgetTruth>,
}

/// One disagreement between the truths. Serialised into reconcile's report and logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// Spend is at or over the effective cap but access is on: an alert was lost or late.
    OverCapWhileActive { spend: Usd, cap: Usd },
    /// Blocked by the cap but spend is now under the effective cap (cap raised in Budgets,
    /// override, new period).
    UnderCapWhileBlocked {
        spend: Usd,
        /// `None`: an exemption is active.
        cap: Option<Usd>,
    },
    /// Someone attached managed policies again while the principal is blocked.
    ReattachedWhileBlocked { policies: Vec<String> },
    /// Someone (or a re-provisioned permission set) detached seatcap's deny policy while the
    /// principal is blocked.
    DenyRemovedWhileBlocked { policy: String },
    /// The shard is attached, but its document does not deny the person (the role was
    /// recreated with a new unique id, or the document was rewritten behind seatcap's back).
    DenyMissesPersonWhileBlocked { policy: String },
    /// Blocked on an IAM Identity Center role that does not carry the shard listing the
    /// person: the permission set does not reference it, so the deny is not in force.
    NotEnforceable { policy: String, role: String },
    /// A block recorded as not enforceable whose shard the role now carries.
    InForceNow { policy: String },
    /// A block on an Identity Center role recorded, by the previous version, in a per-role
    /// shard (which IAM never let it attach to such a role).
    OldShardOnIdentityCenterRole { policy: String },
    /// Active, but none of the managed policies is attached: seatcap has nothing to cut, and
    /// does not guess whether access went missing or comes from elsewhere.
    NoManagedPolicyWhileActive,
    /// The principal's budget no longer exists: spend cannot be checked.
    BudgetGone { budget: String },
    /// IAM has no such user, role or group any more.
    PrincipalGone,
    /// A budget filtered on seatcap's cost tag that no principal in the ledger owns.
    UnownedBudget { budget: String },
    /// Overrides past their expiry: they no longer count, and are removed.
    OverridesExpired { ids: Vec<String> },
}

impl Finding {
    /// The finding's name in reports, logs and metric names.
    pub fn name(&self) -> &'static str {
        match self {
            Finding::OverCapWhileActive { .. } => "over_cap_while_active",
            Finding::UnderCapWhileBlocked { .. } => "under_cap_while_blocked",
            Finding::ReattachedWhileBlocked { .. } => "reattached_while_blocked",
            Finding::DenyRemovedWhileBlocked { .. } => "deny_removed_while_blocked",
            Finding::DenyMissesPersonWhileBlocked { .. } => "deny_misses_person_while_blocked",
            Finding::NotEnforceable { .. } => "not_enforceable",
            Finding::InForceNow { .. } => "in_force_now",
            Finding::OldShardOnIdentityCenterRole { .. } => "old_shard_on_identity_center_role",
            Finding::NoManagedPolicyWhileActive => "no_managed_policy_while_active",
            Finding::BudgetGone { .. } => "budget_gone",
            Finding::PrincipalGone => "principal_gone",
            Finding::UnownedBudget { .. } => "unowned_budget",
            Finding::OverridesExpired { .. } => "overrides_expired",
        }
    }
}

/// What reconcile does about a principal. At most one action: they exclude each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    None,
    /// Cut access as the lost alert would have: a cap block in the budget's current period.
    Enforce {
        spend: Usd,
        period: String,
    },
    /// Give back what seatcap detached.
    Restore {
        spend: Usd,
        period: String,
    },
    /// Detach the managed policies attached again during the block.
    DetachAgain {
        policies: Vec<String>,
    },
    /// Attach seatcap's deny policy again (an Identity Center principal's: write its shard
    /// again, and read whether the role carries it).
    DenyAgain {
        policy: String,
    },
    /// An Identity Center principal's shard is on the role now: take it again, which finds
    /// the deny in force, and tell people they are cut off.
    CompleteCut {
        policy: String,
    },
    /// Only remove expired overrides (every other action removes them too).
    EndOverrides,
}

/// A block of a principal on an IAM Identity Center role, whose shard seatcap cannot attach
/// (IAM refuses every write to the role; the permission set's references attach it):
/// a shard the role does not carry is `not_enforceable`, told once and then only reported
/// until the reference exists, when the cut is completed; a deny the previous version
/// recorded in a per-role shard (which IAM never let it attach) moves to the shards.
fn identity_center(
    truths: &Truths<'_>,
    role: &str,
    findings: &mut Vec<Finding>,
    action: &mut Action,
) {
    let state = truths.state;
    let Some(policy) = &state.deny_policy_arn else {
        return;
    };
    if crate::identity_center::shard_number(policy).is_none() {
        let shards = crate::identity_center::shard_policy_arn(
            state.principal.partition(),
            state.principal.account_id(),
            0,
        );
        findings.push(Finding::OldShardOnIdentityCenterRole {
            policy: policy.clone(),
        });
        if *action == Action::None {
            *action = Action::DenyAgain { policy: shards };
        }
        return;
    }
    match (truths.deny_attached, &state.not_enforceable) {
        (Some(false), recorded) => {
            findings.push(Finding::NotEnforceable {
                policy: policy.clone(),
                role: role.to_owned(),
            });
            // Written and told once; until the permission set references the shard, a
            // take again would change nothing.
            if recorded.is_none() && *action == Action::None {
                *action = Action::DenyAgain {
                    policy: policy.clone(),
                };
            }
        }
        (Some(true), Some(_)) => {
            findings.push(Finding::InForceNow {
                policy: policy.clone(),
            });
            if *action == Action::None {
                *action = Action::CompleteCut {
                    policy: policy.clone(),
                };
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub findings: Vec<Finding>,
    pub action: Action,
}

/// The spend to judge a principal by: the highest figure known for the budget's current
/// period. Budgets refreshes `CalculatedSpend` a few times a day, so it can trail the alert
/// that blocked the principal; a figure from an earlier period never counts.
fn judged_spend(state: &PrincipalState, budget: &BudgetTruth) -> Option<Usd> {
    let reported = budget.actual_spend?;
    Some(
        state
            .spend_in(&budget.period_key)
            .map_or(reported, |known| known.max(reported)),
    )
}

/// Compares the truths about one principal and decides the one thing to do about them.
pub fn assess(truths: &Truths<'_>, now: DateTime<Utc>) -> Assessment {
    let state = truths.state;
    let mut findings = Vec::new();
    let Some(attached) = truths.attached_managed else {
        return Assessment {
            findings: vec![Finding::PrincipalGone],
            action: Action::None,
        };
    };
    if truths.budget.is_none() {
        findings.push(Finding::BudgetGone {
            budget: state.budget.clone(),
        });
    }
    let spend = truths.budget.and_then(|b| judged_spend(state, b));
    let cap = state.effective_cap(now);
    let cap_usd = match cap {
        EffectiveCap::Limited(cap) => Some(cap),
        EffectiveCap::Exempt => None,
    };
    let mut action = Action::None;
    let downgraded = state.block_cause == Some(BlockCause::Downgrade);
    if state.status == Status::Active || downgraded {
        if state.status == Status::Active && attached.is_empty() && !truths.cut_by_deny {
            findings.push(Finding::NoManagedPolicyWhileActive);
        }
        if let (Some(spend), Some(cap), Some(budget)) = (spend, cap_usd, truths.budget)
            && !state.protected
            && spend >= cap
        {
            findings.push(Finding::OverCapWhileActive { spend, cap });
            action = Action::Enforce {
                spend,
                period: budget.period_key.clone(),
            };
        }
    }
    match state.status {
        Status::Active => {}
        Status::Blocked => {
            // A downgrade took only the premium policies: the others stay attached.
            let back: Vec<String> = attached
                .iter()
                .filter(|p| !downgraded || state.detached_policy_arns.contains(p))
                .cloned()
                .collect();
            if !back.is_empty() && !truths.cut_by_deny && action == Action::None {
                findings.push(Finding::ReattachedWhileBlocked {
                    policies: back.clone(),
                });
                action = Action::DetachAgain { policies: back };
            }
            if let Some(role) = state.principal.identity_center_role() {
                identity_center(truths, role, &mut findings, &mut action);
            } else if let (Some(false), Some(policy)) =
                (truths.deny_attached, &state.deny_policy_arn)
                && action == Action::None
            {
                findings.push(Finding::DenyRemovedWhileBlocked {
                    policy: policy.clone(),
                });
                action = Action::DenyAgain {
                    policy: policy.clone(),
                };
            }
            if let (Some(true), Some(false), Some(policy)) = (
                truths.deny_attached,
                truths.deny_names_person,
                &state.deny_policy_arn,
            ) && action == Action::None
            {
                findings.push(Finding::DenyMissesPersonWhileBlocked {
                    policy: policy.clone(),
                });
                action = Action::DenyAgain {
                    policy: policy.clone(),
                };
            }
            // A restore re-attaches everything seatcap took, so it wins over detaching again.
            if let (Some(spend), Some(budget)) = (spend, truths.budget)
                && state.block_cause.is_some_and(BlockCause::ends_with_the_cap)
                && !cap.is_reached_by(spend)
            {
                findings.push(Finding::UnderCapWhileBlocked {
                    spend,
                    cap: cap_usd,
                });
                action = Action::Restore {
                    spend,
                    period: budget.period_key.clone(),
                };
            }
        }
    }
    let expired: Vec<String> = state
        .overrides
        .iter()
        .filter(|o| !o.is_active(now))
        .map(|o| o.id.clone())
        .collect();
    if !expired.is_empty() {
        findings.push(Finding::OverridesExpired { ids: expired });
        if action == Action::None {
            action = Action::EndOverrides;
        }
    }
    Assessment { findings, action }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::state::Override;

    const POLICY: &str = "arn:aws:iam::123456789012:policy/bedrock-invoke";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    fn alice(status: Status) -> PrincipalState {
        let mut state = PrincipalState::new(
            "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
            "seatcap-alice".into(),
            Usd::from_cents(200_00),
            now(),
        );
        if status == Status::Blocked {
            state.status = Status::Blocked;
            state.block_cause = Some(BlockCause::Cap);
            state.blocked_period = Some("2026-11".into());
            state.detached_policy_arns = vec![POLICY.into()];
            state.last_actual_usd = Some(Usd::from_cents(201_00));
        }
        state
    }

    fn budget(spend_cents: i64) -> BudgetTruth {
        BudgetTruth {
            actual_spend: Some(Usd::from_cents(spend_cents)),
            period_key: "2026-11".into(),
        }
    }

    fn assess_with(
        state: &PrincipalState,
        attached: Option<&[String]>,
        budget: Option<&BudgetTruth>,
    ) -> Assessment {
        assess(
            &Truths {
                state,
                attached_managed: attached,
                cut_by_deny: false,
                deny_attached: None,
                deny_names_person: None,
                budget,
            },
            now(),
        )
    }

    fn policy() -> Vec<String> {
        vec![POLICY.to_owned()]
    }

    #[test]
    fn agreeing_truths_find_nothing() {
        let assessment = assess_with(
            &alice(Status::Active),
            Some(&policy()),
            Some(&budget(50_00)),
        );
        assert_eq!(assessment.findings, []);
        assert_eq!(assessment.action, Action::None);
        let blocked = assess_with(&alice(Status::Blocked), Some(&[]), Some(&budget(205_00)));
        assert_eq!(blocked.findings, []);
    }

    #[test]
    fn spend_at_the_cap_while_active_is_enforced() {
        let assessment = assess_with(
            &alice(Status::Active),
            Some(&policy()),
            Some(&budget(200_00)),
        );
        assert_eq!(
            assessment.findings,
            [Finding::OverCapWhileActive {
                spend: Usd::from_cents(200_00),
                cap: Usd::from_cents(200_00)
            }]
        );
        assert_eq!(
            assessment.action,
            Action::Enforce {
                spend: Usd::from_cents(200_00),
                period: "2026-11".into()
            }
        );
    }

    #[test]
    fn protected_and_exempt_principals_are_never_enforced() {
        let mut protected = alice(Status::Active);
        protected.protected = true;
        let over = budget(900_00);
        assert_eq!(
            assess_with(&protected, Some(&policy()), Some(&over)).action,
            Action::None
        );
        let mut exempt = alice(Status::Active);
        exempt.overrides.push(Override {
            id: "o1".into(),
            extra_usd: None,
            exempt: true,
            expires_at: Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
            granted_by: "finance".into(),
            reason: "launch week".into(),
            approved_by: None,
        });
        assert_eq!(
            assess_with(&exempt, Some(&policy()), Some(&over)).findings,
            []
        );
    }

    #[test]
    fn a_cap_block_under_the_effective_cap_is_restored() {
        let mut state = alice(Status::Blocked);
        state.cap_usd = Usd::from_cents(500_00);
        let assessment = assess_with(&state, Some(&[]), Some(&budget(250_00)));
        assert_eq!(
            assessment.action,
            Action::Restore {
                spend: Usd::from_cents(250_00),
                period: "2026-11".into()
            }
        );
    }

    #[test]
    fn a_lagging_budget_does_not_undo_this_periods_block() {
        // Budgets still shows $150 while the alert that blocked alice said $201.
        let state = alice(Status::Blocked);
        assert_eq!(
            assess_with(&state, Some(&[]), Some(&budget(150_00))).action,
            Action::None
        );
        // In a new period the alert's amount is history: Budgets' figure alone counts.
        let december = BudgetTruth {
            actual_spend: Some(Usd::from_cents(3_00)),
            period_key: "2026-12".into(),
        };
        assert_eq!(
            assess_with(&state, Some(&[]), Some(&december)).action,
            Action::Restore {
                spend: Usd::from_cents(3_00),
                period: "2026-12".into()
            }
        );
    }

    #[test]
    fn last_periods_spend_does_not_keep_an_active_principal_over_the_cap() {
        // Blocked in November at $201, restored by an override, then December: Budgets
        // says $20. November's figure must not count.
        let mut state = alice(Status::Active);
        state.record_spend("2026-11".into(), Usd::from_cents(201_00));
        let december = BudgetTruth {
            actual_spend: Some(Usd::from_cents(20_00)),
            period_key: "2026-12".into(),
        };
        let assessment = assess_with(&state, Some(&policy()), Some(&december));
        assert_eq!(assessment.action, Action::None);
        // Within November the higher figure decides, even though Budgets lags.
        let assessment = assess_with(&state, Some(&policy()), Some(&budget(150_00)));
        assert!(matches!(assessment.action, Action::Enforce { .. }));
    }

    #[test]
    fn manual_blocks_are_never_restored_but_drift_is_detached_again() {
        let mut state = alice(Status::Blocked);
        state.block_cause = Some(BlockCause::Manual);
        assert_eq!(
            assess_with(&state, Some(&[]), Some(&budget(0))).action,
            Action::None
        );
        let drift = assess_with(&state, Some(&policy()), Some(&budget(0)));
        assert_eq!(
            drift.findings,
            [Finding::ReattachedWhileBlocked { policies: policy() }]
        );
        assert_eq!(drift.action, Action::DetachAgain { policies: policy() });
    }

    #[test]
    fn a_due_restore_wins_over_detaching_again() {
        let mut state = alice(Status::Blocked);
        state.cap_usd = Usd::from_cents(1000_00);
        let assessment = assess_with(&state, Some(&policy()), Some(&budget(300_00)));
        assert_eq!(assessment.findings.len(), 2);
        assert!(matches!(assessment.action, Action::Restore { .. }));
    }

    #[test]
    fn expired_overrides_end_alone_or_with_another_action() {
        let mut state = alice(Status::Active);
        state.overrides.push(Override {
            id: "o-old".into(),
            extra_usd: Some(Usd::from_cents(50_00)),
            exempt: false,
            expires_at: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            granted_by: "finance".into(),
            reason: "launch".into(),
            approved_by: None,
        });
        let quiet = assess_with(&state, Some(&policy()), Some(&budget(10_00)));
        assert_eq!(
            quiet.findings,
            [Finding::OverridesExpired {
                ids: vec!["o-old".into()]
            }]
        );
        assert_eq!(quiet.action, Action::EndOverrides);
        let over = assess_with(&state, Some(&policy()), Some(&budget(250_00)));
        assert!(matches!(over.action, Action::Enforce { .. }), "{over:?}");
        assert_eq!(over.findings.len(), 2);
    }

    #[test]
    fn missing_truths_are_reported_not_guessed() {
        let active = alice(Status::Active);
        let gone = assess_with(&active, Some(&policy()), None);
        assert_eq!(
            gone.findings,
            [Finding::BudgetGone {
                budget: "seatcap-alice".into()
            }]
        );
        assert_eq!(gone.action, Action::None);
        let blocked_without_budget = assess_with(&alice(Status::Blocked), Some(&[]), None);
        assert_eq!(blocked_without_budget.action, Action::None);

        let bare = assess_with(&active, Some(&[]), Some(&budget(10_00)));
        assert_eq!(bare.findings, [Finding::NoManagedPolicyWhileActive]);
        assert_eq!(bare.action, Action::None);

        let vanished = assess_with(&active, None, Some(&budget(900_00)));
        assert_eq!(vanished.findings, [Finding::PrincipalGone]);
        assert_eq!(vanished.action, Action::None);
    }

    #[test]
    fn a_deny_gone_during_a_block_is_attached_again() {
        let deny = "arn:aws:iam::123456789012:policy/seatcap/seatcap-deny-bedrock";
        let mut state = alice(Status::Blocked);
        state.detached_policy_arns.clear();
        state.deny_policy_arn = Some(deny.into());
        let attached = [POLICY.to_owned()];
        let truths = |deny_attached| Truths {
            state: &state,
            attached_managed: Some(&attached),
            cut_by_deny: true,
            deny_attached,
            deny_names_person: None,
            budget: None,
        };
        let gone = assess(&truths(Some(false)), now());
        assert!(gone.findings.contains(&Finding::DenyRemovedWhileBlocked {
            policy: deny.into()
        }));
        assert_eq!(
            gone.action,
            Action::DenyAgain {
                policy: deny.into()
            }
        );
        // In place: the managed policy still attached says nothing under a deny.
        let fine = assess(&truths(Some(true)), now());
        assert_eq!(fine.action, Action::None, "{fine:?}");
        // Attached, but its document no longer names the person: written again.
        let misses = assess(
            &Truths {
                deny_names_person: Some(false),
                ..truths(Some(true))
            },
            now(),
        );
        assert!(
            misses
                .findings
                .contains(&Finding::DenyMissesPersonWhileBlocked {
                    policy: deny.into()
                })
        );
        assert_eq!(
            misses.action,
            Action::DenyAgain {
                policy: deny.into()
            }
        );
    }
}
