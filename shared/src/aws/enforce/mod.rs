//! Cutting a principal's Bedrock access and giving back exactly what was taken, whichever
//! way it was cut. One [`Enforcement`] per way, each in its own file:
//!
//! * [`detach`] (IAM users, roles, groups; the default): the managed Bedrock policies are
//!   detached; giving back attaches those again.
//! * [`deny_policy`] (`SEATCAP_ENFORCEMENT=deny`): seatcap's explicit-deny policy is
//!   attached, which also closes access granted elsewhere; giving back detaches it.
//! * [`shared_role`] (a person on a plain shared role, always): their session joins the
//!   role's deny list; giving back takes them off it.
//! * [`identity_center`] (a person on, or a cap on, a role IAM Identity Center made,
//!   always): IAM refuses every write to such a role, so the entry goes into the account's
//!   Identity Center shards, which the permission set references; nothing is written to
//!   the role.
//!
//! How to cut is the configuration's choice; what to give back is the record's: a
//! [`Taken`] says what was taken, and each part of it goes back the way it was taken, even
//! if the configuration has changed since. Every operation is idempotent, because a writer
//! that completes another's unfinished change runs it again from the record.

mod deny_policy;
mod detach;
mod identity_center;
mod lease;
mod shared_role;

use futures::future::BoxFuture;
use serde_json::json;

use crate::access::RemainingAccess;
use crate::app::App;
use crate::config::Enforcement as Configured;
use crate::deny::DenyListFull;
use crate::iam::IamError;
use crate::intent::{Done, PlannedStep, Scope};
use crate::ledger::{AuditEvent, EventKind, LedgerError, Subject};
use crate::principal::{PrincipalArn, PrincipalKind};

pub use crate::intent::Taken;

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error(transparent)]
    Iam(IamError),
    /// IAM refused to change a protected entity (a role IAM Identity Center made): no retry
    /// changes that, and seatcap's own paths never write to one; this names one that did.
    #[error(
        "IAM refused {operation} on {principal}: it is protected (only modifiable by AWS). seatcap cuts people on IAM Identity Center roles through the permission set's seatcap-sso-deny-* policies; report this path as a bug"
    )]
    Protected {
        operation: &'static str,
        principal: String,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    DenyListFull(#[from] DenyListFull),
    #[error("role {0}: another change to its deny list held it for too long; retry")]
    RoleBusy(String),
    /// A newer writer of the role's deny list has written IAM: this one stops rather than
    /// write an older list over it.
    #[error(
        "role {role}: its deny list was written under lease {found}, newer than this writer's {held}; not overwritten"
    )]
    Fenced { role: String, held: u64, found: u64 },
    /// A policy under seatcap's name whose document seatcap did not write (made first by
    /// someone else, or changed): attaching it could grant instead of deny.
    #[error(
        "{policy} holds a document seatcap did not write; it is not attached. Security: inspect and delete it (seatcap creates it again)"
    )]
    NotSeatcaps { policy: String },
}

impl From<IamError> for EnforceError {
    fn from(e: IamError) -> Self {
        if e.is_unmodifiable() {
            EnforceError::Protected {
                operation: e.operation,
                principal: e.principal,
            }
        } else {
            EnforceError::Iam(e)
        }
    }
}

/// The cut planned before the intent is written: what it will take, and what IAM showed
/// attached when it was read (so the check after the cut need not read it again).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub taken: Taken,
    pub attached: Option<Vec<String>>,
}

impl Plan {
    /// A cut by seatcap's deny policy `arn` (its own, or the shard a shared role's list
    /// starts with until the cut names the real one); nothing of IAM's read.
    fn deny(arn: String) -> Plan {
        Plan {
            taken: Taken {
                detached_policy_arns: Vec::new(),
                deny_policy_arn: Some(arn),
            },
            attached: None,
        }
    }
}

/// One way of cutting access. Each operation may run more than once for one change (a
/// writer completing another's), so each must be idempotent.
pub(crate) trait Enforcement: Sync {
    /// Reads what a cut of `scope` would take from `principal`; changes nothing of the
    /// principal's (it may create seatcap's own deny policy).
    fn plan<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        scope: Scope,
    ) -> BoxFuture<'a, Result<Plan, EnforceError>>;

    /// Takes what `taken` names (this way's part of it); returns what is now taken, which
    /// is `taken` unless the way picks a place of its own (a shared role's shard), and
    /// whether IAM enforces it.
    fn take<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        taken: &'a Taken,
    ) -> BoxFuture<'a, Result<Done, EnforceError>>;

    /// Gives back what `taken` names (this way's part of it).
    fn give_back<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        taken: &'a Taken,
    ) -> BoxFuture<'a, Result<(), EnforceError>>;

    /// After a cut: where Bedrock access remains. `attached` is what IAM showed attached
    /// after the cut, when known. A deny wins over every allow, so only detaching can
    /// leave access behind.
    fn remaining<'a>(
        &'a self,
        _app: &'a App,
        _principal: &'a PrincipalArn,
        _attached: Option<Vec<String>>,
    ) -> BoxFuture<'a, Vec<RemainingAccess>> {
        Box::pin(async { Vec::new() })
    }
}

/// How this principal's access is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Detach,
    Deny,
    SessionDeny,
    IdentityCenter,
}

impl Method {
    fn enforcement(self) -> &'static dyn Enforcement {
        match self {
            Method::Detach => &detach::Detach,
            Method::Deny => &deny_policy::DenyPolicy,
            Method::SessionDeny => &shared_role::SharedRole,
            Method::IdentityCenter => &identity_center::IdentityCenter,
        }
    }
}

impl App {
    /// A role IAM Identity Center made is never written to, whatever the configured mode
    /// (IAM refuses it): its people, or the role as a whole, are denied through the
    /// account's Identity Center shards.
    pub fn method_for(&self, principal: &PrincipalArn) -> Method {
        if principal.identity_center_role().is_some() {
            return Method::IdentityCenter;
        }
        match (principal.kind(), self.config.enforcement) {
            (PrincipalKind::AssumedRole, _) => Method::SessionDeny,
            (_, Configured::Deny) => Method::Deny,
            (_, Configured::Detach) => Method::Detach,
        }
    }

    /// Whether a `downgrade` rung can take this principal's premium models alone: only by
    /// detaching, and only with premium policies configured.
    pub fn can_downgrade(&self, principal: &PrincipalArn) -> bool {
        self.method_for(principal) == Method::Detach && !self.config.premium_policy_arns.is_empty()
    }

    /// What a cut of `scope` would take from `principal` now.
    pub async fn plan_cut(
        &self,
        principal: &PrincipalArn,
        scope: Scope,
    ) -> Result<Plan, EnforceError> {
        self.method_for(principal)
            .enforcement()
            .plan(self, principal, scope)
            .await
    }

    /// Runs a planned step; returns what is taken after it (for a give-back, what was given
    /// back). Safe to run again.
    pub async fn run_step(
        &self,
        principal: &PrincipalArn,
        step: &PlannedStep,
    ) -> Result<Done, EnforceError> {
        match step {
            PlannedStep::Take(taken) => self.take(principal, taken).await,
            PlannedStep::GiveBack(taken) => {
                self.give_back(principal, taken).await?;
                Ok(Done::taken(taken.clone()))
            }
        }
    }

    /// Takes exactly what `taken` names, each part its own way.
    async fn take(&self, principal: &PrincipalArn, taken: &Taken) -> Result<Done, EnforceError> {
        let mut now = Done::default();
        for (method, part) in parts(principal, taken) {
            let done = method.enforcement().take(self, principal, &part).await?;
            done.taken.merge_into(&mut now.taken);
            if done.not_enforceable.is_some() {
                now.not_enforceable = done.not_enforceable;
            }
        }
        Ok(now)
    }

    /// Gives back what `taken` says was taken: the deny first, then the policies.
    async fn give_back(&self, principal: &PrincipalArn, taken: &Taken) -> Result<(), EnforceError> {
        for (method, part) in parts(principal, taken).into_iter().rev() {
            method
                .enforcement()
                .give_back(self, principal, &part)
                .await?;
        }
        Ok(())
    }

    /// After a cut: where Bedrock access remains (see [`Enforcement::remaining`]).
    pub async fn remaining_after_cut(
        &self,
        principal: &PrincipalArn,
        attached: Option<Vec<String>>,
    ) -> Vec<RemainingAccess> {
        self.method_for(principal)
            .enforcement()
            .remaining(self, principal, attached)
            .await
    }

    /// Says loudly, in the log, the metrics and the audit, that a cut left access behind.
    pub async fn record_incomplete(
        &self,
        principal: &PrincipalArn,
        remaining: &[RemainingAccess],
        actor: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), LedgerError> {
        tracing::error!(%principal, ?remaining, "enforcement incomplete: Bedrock access remains");
        crate::metrics::count("EnforcementIncomplete", 1);
        let event = AuditEvent::new(
            now,
            EventKind::EnforcementIncomplete,
            actor,
            json!({"remaining_access": remaining}),
        );
        self.ledger
            .append(vec![(Subject::Principal(principal.clone()), event)], now)
            .await
    }
}

/// The parts of `taken` and the way each was taken: detached policies by detaching, a deny
/// policy by the principal's deny (its own, its shared role's list, or the account's
/// Identity Center shards), whichever the recorded policy says.
fn parts(principal: &PrincipalArn, taken: &Taken) -> Vec<(Method, Taken)> {
    let mut parts = Vec::new();
    if !taken.detached_policy_arns.is_empty() {
        parts.push((
            Method::Detach,
            Taken {
                detached_policy_arns: taken.detached_policy_arns.clone(),
                deny_policy_arn: None,
            },
        ));
    }
    if let Some(arn) = &taken.deny_policy_arn {
        let method = if crate::identity_center::shard_number(arn).is_some() {
            Method::IdentityCenter
        } else if principal.kind() == PrincipalKind::AssumedRole {
            Method::SessionDeny
        } else {
            Method::Deny
        };
        parts.push((
            method,
            Taken {
                detached_policy_arns: Vec::new(),
                deny_policy_arn: Some(arn.clone()),
            },
        ));
    }
    parts
}

fn partition(principal: &PrincipalArn) -> &str {
    principal.partition()
}
