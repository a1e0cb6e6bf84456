//! Cutting a principal's Bedrock access and giving back exactly what was taken, whichever
//! way it was cut:
//!
//! * **detach** (IAM users, roles, groups; the default): the managed Bedrock policies are
//!   detached; restore attaches those again.
//! * **deny** (`SEATCAP_ENFORCEMENT=deny`): seatcap's explicit-deny policy is attached,
//!   which also closes access granted elsewhere; restore detaches exactly that policy.
//! * **a person on a shared role** (always): their session is added to the role's deny list
//!   (see [`crate::deny`]); restore removes it. The list lives in the ledger; one writer at
//!   a time holds a lease on it (a conditional write) while it rewrites the role's deny
//!   policies, so two blocks on one role at once cannot lose one, and IAM never shows a
//!   list older than the ledger's.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use crate::access::RemainingAccess;
use crate::app::App;
use crate::config::Enforcement;
use crate::deny::{self, DenyListFull, RoleDenyList};
use crate::iam::IamError;
use crate::ledger::{CommitError, LedgerError, RoleDenials};
use crate::principal::{PrincipalArn, PrincipalKind};
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

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error(transparent)]
    Iam(#[from] IamError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    DenyListFull(#[from] DenyListFull),
    #[error("role {0}: another change to its deny list held it for too long; retry")]
    RoleBusy(String),
}

impl From<CommitError> for EnforceError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Ledger(e) => EnforceError::Ledger(e),
            CommitError::Conflict => EnforceError::Ledger(LedgerError::Dynamo {
                operation: "PutItem",
                message: "role deny list changed under a held lease".into(),
            }),
        }
    }
}

/// How long a writer may hold a role's deny list: its IAM calls take well under a second.
const LEASE_SECONDS: i64 = 30;
/// Waiting for another writer's lease: about 30 s in all before giving up.
const LEASE_WAITS: u32 = 200;

/// How this principal's access is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Detach,
    Deny,
    SessionDeny,
}

impl App {
    pub fn method_for(&self, principal: &PrincipalArn) -> Method {
        match (principal.kind(), self.config.enforcement) {
            (PrincipalKind::AssumedRole, _) => Method::SessionDeny,
            (_, Enforcement::Deny) => Method::Deny,
            (_, Enforcement::Detach) => Method::Detach,
        }
    }

    /// Whether a `downgrade` rung can take this principal's premium models alone: only by
    /// detaching, and only with premium policies configured.
    pub fn can_downgrade(&self, principal: &PrincipalArn) -> bool {
        self.method_for(principal) == Method::Detach && !self.config.premium_policy_arns.is_empty()
    }

    /// Takes the premium-model policies only (a `downgrade` rung), adding them to `taken`.
    pub async fn take_premium(
        &self,
        principal: &PrincipalArn,
        taken: &mut Taken,
    ) -> Result<(), EnforceError> {
        self.detach_into(principal, &self.config.premium_policy_arns, taken)
            .await
    }

    /// Detaches each of `policies` not in `taken` yet, recording each one detached.
    async fn detach_into(
        &self,
        principal: &PrincipalArn,
        policies: &[String],
        taken: &mut Taken,
    ) -> Result<(), EnforceError> {
        let policies: Vec<&String> = policies
            .iter()
            .filter(|p| !taken.detached_policy_arns.contains(p))
            .collect();
        let results =
            futures::future::join_all(policies.iter().map(|p| self.iam.detach(principal, p))).await;
        let mut first_error = None;
        for (policy, result) in policies.into_iter().zip(results) {
            match result {
                Ok(crate::iam::Detached::Yes) => taken.detached_policy_arns.push(policy.clone()),
                Ok(crate::iam::Detached::WasNotAttached) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), |e| Err(e.into()))
    }

    /// Cuts `principal`'s access, adding what it takes to `taken` as it goes: on an error,
    /// `taken` says what was taken before it, for the caller to give back or record.
    pub async fn cut(
        &self,
        principal: &PrincipalArn,
        taken: &mut Taken,
    ) -> Result<(), EnforceError> {
        match self.method_for(principal) {
            Method::Detach => {
                self.detach_into(principal, &self.config.managed_policy_arns, taken)
                    .await
            }
            Method::Deny => {
                let arn = self.deny_all_policy(principal).await?;
                self.iam.attach(principal, &arn).await?;
                taken.deny_policy_arn = Some(arn);
                Ok(())
            }
            Method::SessionDeny => {
                let arn = Box::pin(self.change_role_denials(principal, Change::Deny)).await?;
                taken.deny_policy_arn = arn;
                Ok(())
            }
        }
    }

    /// Gives back what `taken` says was taken.
    pub async fn give_back(
        &self,
        principal: &PrincipalArn,
        taken: &Taken,
    ) -> Result<(), EnforceError> {
        if let Some(arn) = &taken.deny_policy_arn {
            if principal.kind() == PrincipalKind::AssumedRole {
                Box::pin(self.change_role_denials(principal, Change::Allow)).await?;
            } else {
                self.iam.detach(principal, arn).await?;
            }
        }
        self.iam
            .attach_all(principal, &taken.detached_policy_arns)
            .await?;
        Ok(())
    }

    /// Takes again exactly what `taken` says (undoing a give-back that lost a race).
    pub async fn take_again(
        &self,
        principal: &PrincipalArn,
        taken: &Taken,
    ) -> Result<(), EnforceError> {
        self.iam
            .detach_all(principal, &taken.detached_policy_arns)
            .await?;
        if let Some(arn) = &taken.deny_policy_arn {
            if principal.kind() == PrincipalKind::AssumedRole {
                Box::pin(self.change_role_denials(principal, Change::Deny)).await?;
            } else {
                self.iam.attach(principal, arn).await?;
            }
        }
        Ok(())
    }

    /// After a cut: where Bedrock access remains. A deny (deny mode, shared roles) overrides
    /// every allow, so only a detach can leave access behind: another policy on the
    /// principal or, for a user, its groups. A check that fails is reported as such.
    pub async fn remaining_after_cut(&self, principal: &PrincipalArn) -> Vec<RemainingAccess> {
        if self.method_for(principal) != Method::Detach {
            return Vec::new();
        }
        // Boxed, like the other deep IAM paths here: see `change_role_denials`.
        match Box::pin(self.iam.remaining_bedrock_access(principal)).await {
            Ok(remaining) => remaining,
            Err(e) => vec![RemainingAccess {
                on: principal.kind_name().to_owned(),
                policy: format!("unknown: could not check ({})", e.brief),
            }],
        }
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
        let event = crate::ledger::AuditEvent::new(
            now,
            crate::ledger::EventKind::EnforcementIncomplete,
            actor,
            json!({"remaining_access": remaining}),
        );
        self.ledger
            .append(
                vec![(crate::ledger::Subject::Principal(principal.clone()), event)],
                now,
            )
            .await
    }

    /// seatcap's deny-everything-Bedrock policy in the principal's account, created the
    /// first time it is needed.
    async fn deny_all_policy(&self, principal: &PrincipalArn) -> Result<String, IamError> {
        let name = "seatcap-deny-bedrock";
        let arn = format!(
            "arn:{}:iam::{}:policy{}{name}",
            partition(principal),
            principal.account_id(),
            deny::POLICY_PATH
        );
        let document = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "SeatcapCapReached",
                "Effect": "Deny",
                "Action": deny::DENIED_ACTIONS,
                "Resource": "*"
            }]
        });
        self.iam.ensure_own_policy(&arn, name, &document).await?;
        Ok(arn)
    }

    /// Adds or removes a person on their role's deny list under the list's lease, and
    /// rewrites the shard policy that changed. Returns the shard's ARN (`Deny`) or `None`.
    /// Callers box it: inlined, its state machine made the functions' futures too deep for
    /// the compiler's layout queries.
    async fn change_role_denials(
        &self,
        principal: &PrincipalArn,
        change: Change,
    ) -> Result<Option<String>, EnforceError> {
        let role = principal.role_name().unwrap_or_default();
        let account = principal.account_id();
        let session = principal.name();
        let (held, read_version) = self.lease_role(account, role).await?;
        let mut next = held.clone();
        let outcome = self.apply_to_role(principal, &mut next.list, change).await;
        // Release: the changed list if IAM was changed, the old one otherwise.
        let list = match &outcome {
            Ok(_) => next.list,
            Err(_) => held.list.clone(),
        };
        let released = RoleDenials {
            list,
            version: read_version + 2,
            held_by: None,
            held_until: None,
            ..held
        };
        self.ledger
            .put_role(&released, Some(read_version + 1))
            .await?;
        let shard = outcome?;
        info!(%principal, role, session, ?change, ?shard, "role deny list changed");
        Ok(shard.map(|n| deny::shard_policy_arn(partition(principal), account, role, n)))
    }

    /// The IAM half of a deny-list change: the shard policy that changed is rewritten (or
    /// detached from the role when it denies nobody any more).
    async fn apply_to_role(
        &self,
        principal: &PrincipalArn,
        list: &mut RoleDenyList,
        change: Change,
    ) -> Result<Option<usize>, EnforceError> {
        let role = principal.role_name().unwrap_or_default();
        let session = principal.name();
        let (shard, was_empty) = match change {
            Change::Deny => {
                if let Some(n) = list.shard_of(session) {
                    // Listed already: make sure the shard is on the role (idempotent; this
                    // is how reconcile repairs a shard detached behind seatcap's back).
                    let arn = deny::shard_policy_arn(
                        partition(principal),
                        principal.account_id(),
                        role,
                        n,
                    );
                    self.iam.attach(principal, &arn).await?;
                    return Ok(Some(n));
                }
                let n = list.add(role, session, self.config.deny_shards_per_role)?;
                (n, list.shards[n].len() == 1)
            }
            Change::Allow => match list.remove(session) {
                None => return Ok(None),
                Some(n) => (n, false),
            },
        };
        let arn = deny::shard_policy_arn(partition(principal), principal.account_id(), role, shard);
        match list.shard_document(shard) {
            Some(document) => {
                let name = deny::shard_policy_name(role, shard);
                self.iam.put_own_policy(&arn, &name, &document).await?;
                if was_empty {
                    self.iam.attach(principal, &arn).await?;
                }
            }
            None => {
                self.iam.detach(principal, &arn).await?;
            }
        }
        Ok(match change {
            Change::Deny => Some(shard),
            Change::Allow => None,
        })
    }

    /// Takes the lease on a role's deny list (creating the list the first time), waiting
    /// for another writer's lease to end. Returns the list as read and its version.
    async fn lease_role(
        &self,
        account: &str,
        role: &str,
    ) -> Result<(RoleDenials, u64), EnforceError> {
        let holder = uuid::Uuid::new_v4().simple().to_string();
        for wait in 0..LEASE_WAITS {
            let now = self.now();
            let current = match self.ledger.load_role(account, role).await? {
                Some(current) => current,
                None => RoleDenials {
                    account: account.to_owned(),
                    role: role.to_owned(),
                    list: RoleDenyList::new(self.iam.role_id(role).await?),
                    version: 0,
                    held_by: None,
                    held_until: None,
                },
            };
            let busy = current.held_by.is_some() && current.held_until.is_some_and(|t| t > now);
            if !busy {
                let leased = RoleDenials {
                    held_by: Some(holder.clone()),
                    held_until: Some(now + chrono::Duration::seconds(LEASE_SECONDS)),
                    version: current.version + 1,
                    ..current.clone()
                };
                let expected = (current.version > 0).then_some(current.version);
                match self.ledger.put_role(&leased, expected).await {
                    Ok(()) => return Ok((leased, current.version)),
                    Err(CommitError::Conflict) => {}
                    Err(CommitError::Ledger(e)) => return Err(e.into()),
                }
            }
            // A writer holds the lease for a few IAM calls: check again soon, with jitter
            // so waiting writers do not all try at once.
            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
            let pause = 40 + u64::from(wait.min(10)) * 10 + jitter;
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        warn!(account, role, "role deny list still leased after waiting");
        Err(EnforceError::RoleBusy(role.to_owned()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Deny,
    Allow,
}

fn partition(principal: &PrincipalArn) -> &str {
    principal.as_str().split(':').nth(1).unwrap_or("aws")
}
