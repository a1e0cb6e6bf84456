//! A person on a role IAM Identity Center made (`AWSReservedSSO_<set>_<id>`): IAM refuses
//! every write to such a role, so seatcap never writes to it. The person joins the account's
//! Identity Center deny list ([`crate::identity_center`]), and the shard that lists them is
//! rewritten (a new default policy version; the one it replaces is deleted, so a shard
//! never nears IAM's five). The permission set references every shard, so Identity Center
//! has attached them to its role; a cut counts as enforced only after reading that the
//! person's shard is on the role. If it is not, the cut is recorded as `not_enforceable`
//! (with the fix), and reconcile completes it once the reference exists.
//!
//! A role principal on such a role (a cap on everyone who uses it) is denied the same way,
//! as every session of the role, whatever `SEATCAP_ENFORCEMENT` says: IAM would refuse both
//! the detach and the attach of a deny policy.

use futures::future::BoxFuture;
use tracing::{info, warn};

use super::lease::{lease, release, write_fenced};
use super::shared_role::Change;
use super::{EnforceError, Enforcement, Plan, partition};
use crate::app::App;
use crate::deny;
use crate::identity_center::{
    self as sso, Denied, NotEnforceable, SsoDenyList, WHOLE_ROLE, shard_policy_name,
};
use crate::intent::{Done, Scope, Taken};
use crate::ledger::{Lease, SsoDenials, sso_pk};
use crate::principal::{PrincipalArn, PrincipalKind};

pub(crate) struct IdentityCenter;

/// The list's name in logs and errors.
const LABEL: &str = "(Identity Center roles)";

impl Enforcement for IdentityCenter {
    fn plan<'a>(
        &'a self,
        _app: &'a App,
        principal: &'a PrincipalArn,
        _scope: Scope,
    ) -> BoxFuture<'a, Result<Plan, EnforceError>> {
        // Which shard takes the person is decided under the lease; the record says the
        // first shard until the cut names the real one.
        let arn = shard_arn(principal, 0);
        Box::pin(async move { Ok(Plan::deny(arn)) })
    }

    fn take<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        _taken: &'a Taken,
    ) -> BoxFuture<'a, Result<Done, EnforceError>> {
        Box::pin(async move {
            let n = change_denials(app, principal, Change::Deny)
                .await?
                .unwrap_or_default();
            let arn = shard_arn(principal, n);
            let (role, _) = who(principal);
            let attached = app.iam.role_attachments(role).await?;
            let not_enforceable = (!attached.contains(&arn)).then(|| {
                let missing = sso::missing_shards(
                    partition(principal),
                    principal.account_id(),
                    app.config.deny_shards_per_role,
                    &attached,
                );
                warn!(%principal, role, policy = %arn, ?missing, "the Identity Center role does not carry the shard: the cut is not in force");
                NotEnforceable {
                    role: role.to_owned(),
                    permission_set: sso::permission_set_name(role).unwrap_or(role).to_owned(),
                    policy_arn: arn.clone(),
                    missing,
                    since: app.now(),
                }
            });
            Ok(Done {
                taken: Taken {
                    detached_policy_arns: Vec::new(),
                    deny_policy_arn: Some(arn),
                },
                not_enforceable,
            })
        })
    }

    fn give_back<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        _taken: &'a Taken,
    ) -> BoxFuture<'a, Result<(), EnforceError>> {
        Box::pin(async move {
            change_denials(app, principal, Change::Allow).await?;
            Ok(())
        })
    }
}

/// The role and the session an entry names: a person's, or every session of a role
/// principal.
fn who(principal: &PrincipalArn) -> (&str, &str) {
    match principal.kind() {
        PrincipalKind::AssumedRole => (principal.role_name().unwrap_or_default(), principal.name()),
        _ => (principal.name(), WHOLE_ROLE),
    }
}

fn shard_arn(principal: &PrincipalArn, n: usize) -> String {
    sso::shard_policy_arn(partition(principal), principal.account_id(), n)
}

/// Adds or removes the principal on the account's Identity Center list under its lease, and
/// rewrites the shards that changed. Returns the principal's shard (`Deny`) or `None`.
async fn change_denials(
    app: &App,
    principal: &PrincipalArn,
    change: Change,
) -> Result<Option<usize>, EnforceError> {
    let account = principal.account_id();
    let (role, session) = who(principal);
    // The role's unique id now: entries are scoped by it, and a role Identity Center made
    // again (the permission set assigned anew) has a new one.
    let role_id = match change {
        Change::Deny => Some(app.iam.role_id(role).await?),
        Change::Allow => None,
    };
    let fresh = || async {
        Ok(SsoDenials {
            account: account.to_owned(),
            list: SsoDenyList::default(),
            lease: Lease::default(),
        })
    };
    let held = lease(app, &sso_pk(account), fresh).await?;
    let mut next = held.clone();
    let outcome = apply(app, principal, &mut next, role_id.as_deref()).await;
    let shard = release(app, &held, next, outcome).await?;
    info!(%principal, role, session, ?change, ?shard, "Identity Center deny list changed");
    Ok(shard)
}

/// The IAM half of a change to the Identity Center list, under the lease `held`: with
/// `role_id`, the principal is added (under that id); without, removed. Rewrites the
/// shards whose documents changed.
async fn apply(
    app: &App,
    principal: &PrincipalArn,
    held: &mut SsoDenials,
    role_id: Option<&str>,
) -> Result<Option<usize>, EnforceError> {
    let (role, session) = who(principal);
    let (n, mut rewrite) = match role_id {
        Some(role_id) => {
            let renamed = held.list.set_role_id(role, role_id);
            let listed = held.list.shard_of(role, session);
            let entry = Denied {
                role: role.to_owned(),
                role_id: role_id.to_owned(),
                session: session.to_owned(),
            };
            let n = held.list.add(entry, app.config.deny_shards_per_role)?;
            let mut rewrite = renamed;
            if listed != Some(n) && !rewrite.contains(&n) {
                rewrite.push(n);
            }
            if rewrite.is_empty() {
                // Listed already (a cut completed again, or reconcile's check): make IAM
                // say what the list says if it does not.
                let current = app
                    .iam
                    .own_policy_document(&shard_arn(principal, n))
                    .await?;
                let me = format!("{role_id}:{session}");
                let names_me = current
                    .as_ref()
                    .is_some_and(|(_, doc)| deny::denied_user_ids(doc).contains(&me));
                if names_me {
                    return Ok(Some(n));
                }
                warn!(%principal, shard = n, "the shard's document does not deny the principal; writing it again");
                write_shard(app, principal, held, n, current).await?;
                return Ok(Some(n));
            }
            (Some(n), rewrite)
        }
        None => match held.list.remove(role, session) {
            Some(n) => (None, vec![n]),
            None => return Ok(None),
        },
    };
    rewrite.sort_unstable();
    for shard in rewrite {
        write_shard(app, principal, held, shard, None).await?;
    }
    Ok(n)
}

async fn write_shard(
    app: &App,
    principal: &PrincipalArn,
    held: &SsoDenials,
    n: usize,
    current: Option<(String, serde_json::Value)>,
) -> Result<(), EnforceError> {
    write_fenced(
        app,
        LABEL,
        &shard_arn(principal, n),
        &shard_policy_name(n),
        &held.list.shard_document(n, held.lease.version),
        &held.lease,
        current,
    )
    .await
}
