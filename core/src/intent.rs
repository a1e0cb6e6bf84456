//! What seatcap takes from a principal, what it is about to do to IAM, and the write-ahead
//! record of it (pure data).
//!
//! IAM and DynamoDB cannot change together. So before touching IAM a writer records, with a
//! conditional write on the principal's state, exactly what it is about to do (an
//! [`Intent`]); only the writer whose record landed goes on to IAM, and it confirms with a
//! second conditional write. A writer that finds a record whose holder is gone (timed out,
//! killed) completes it from the record. Nothing is ever guessed from IAM's answers, so a
//! crash between IAM and the ledger, or two deliveries at once, cannot leave a policy
//! detached that the ledger does not know of.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, Claim};
use crate::identity_center::NotEnforceable;
use crate::notice::Notice;
use crate::state::PrincipalState;

/// What seatcap took from a principal; restore gives back exactly this.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    pub detached_policy_arns: Vec<String>,
    pub deny_policy_arn: Option<String>,
}

impl Taken {
    pub fn of(state: &PrincipalState) -> Taken {
        Taken {
            detached_policy_arns: state.detached_policy_arns.clone(),
            deny_policy_arn: state.deny_policy_arn.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.detached_policy_arns.is_empty() && self.deny_policy_arn.is_none()
    }

    /// Adds this to `other`.
    pub fn merge_into(&self, other: &mut Taken) {
        for policy in &self.detached_policy_arns {
            if !other.detached_policy_arns.contains(policy) {
                other.detached_policy_arns.push(policy.clone());
            }
        }
        if self.deny_policy_arn.is_some() {
            other.deny_policy_arn.clone_from(&self.deny_policy_arn);
        }
    }

    /// Records this in `state`, keeping what the state already says was taken.
    pub fn record_in(&self, state: &mut PrincipalState) {
        for policy in &self.detached_policy_arns {
            if !state.detached_policy_arns.contains(policy) {
                state.detached_policy_arns.push(policy.clone());
            }
        }
        if self.deny_policy_arn.is_some() {
            state.deny_policy_arn.clone_from(&self.deny_policy_arn);
        }
    }
}

/// What an IAM step did: what is taken after it and, for a deny IAM does not apply (an
/// Identity Center role that does not carry the shard listing the person), why that deny
/// is not in force. A give-back leaves nothing unenforced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Done {
    pub taken: Taken,
    pub not_enforceable: Option<NotEnforceable>,
}

impl Done {
    pub fn taken(taken: Taken) -> Done {
        Done {
            taken,
            not_enforceable: None,
        }
    }

    /// Records a take's result in `state`: what is taken (kept with what the state already
    /// says), and whether it is in force.
    pub fn record_in(&self, state: &mut PrincipalState) {
        self.taken.record_in(state);
        let since = state
            .not_enforceable
            .as_ref()
            .filter(|was| {
                self.not_enforceable
                    .as_ref()
                    .is_some_and(|now| now.policy_arn == was.policy_arn)
            })
            .map(|was| was.since);
        state.not_enforceable.clone_from(&self.not_enforceable);
        if let (Some(now), Some(since)) = (&mut state.not_enforceable, since) {
            // Not in force since the first time it was found so, not since this check.
            now.since = since;
        }
    }
}

/// How much a cut takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// All Bedrock access, the principal's way (detach, deny, or the shared role's list).
    Everything,
    /// The premium-model policies only (a `downgrade` rung).
    Premium,
}

/// What a writer decides IAM must do before its new state holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IamStep {
    Nothing,
    /// Cut access: what exactly is read from IAM just before the intent is written.
    Cut(Scope),
    /// Give back exactly what was taken (a restore).
    GiveBack(Taken),
    /// Take exactly these again (policies attached again behind seatcap's back).
    TakeAgain(Taken),
}

/// An IAM step with everything it touches named: what an intent records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", content = "taken")]
pub enum PlannedStep {
    /// Take these (a cut, or taking again): detach the policies, add the deny.
    Take(Taken),
    /// Give these back: attach the policies, remove the deny.
    GiveBack(Taken),
}

impl PlannedStep {
    /// The step that puts IAM back as it was before this one.
    pub fn reverse(&self) -> PlannedStep {
        match self {
            PlannedStep::Take(t) => PlannedStep::GiveBack(t.clone()),
            PlannedStep::GiveBack(t) => PlannedStep::Take(t.clone()),
        }
    }
}

/// The write-ahead record of a change under way, kept in the principal's state item while
/// IAM is being changed (`pending`). Written and cleared by conditional writes only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub id: String,
    /// Who is making the change (the audit's actor).
    pub by: String,
    pub step: PlannedStep,
    pub started_at: DateTime<Utc>,
    /// Until then the writer may still be at work; after it, its process has ended (a
    /// Lambda function's deadline), so another writer may complete the change.
    pub held_until: DateTime<Utc>,
    /// The state to commit once IAM is done (its version is set then).
    pub then: Box<PrincipalState>,
    /// Audit events filed under the principal with the confirmation.
    #[serde(default)]
    pub events: Vec<AuditEvent>,
    /// Claims written with the confirmation (the alert's, so a redelivery that finds the
    /// intent completes it rather than being taken for a duplicate).
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// What to tell people once the change holds: whoever confirms sends them.
    #[serde(default)]
    pub notices: Vec<Notice>,
}

impl Intent {
    pub fn is_held(&self, now: DateTime<Utc>) -> bool {
        now < self.held_until
    }
}
