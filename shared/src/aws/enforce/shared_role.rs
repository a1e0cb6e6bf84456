//! A person on a plain shared role (a role of the account's own that many people assume,
//! such as the federated role of the Claude Code on Bedrock guidance): their session joins
//! the role's deny list (see [`crate::deny`]), and leaves it on restore. The list lives in
//! the ledger and changes only under its lease ([`super::lease`]); the role carries the
//! list's shard policies, which seatcap attaches and detaches itself. Roles that IAM
//! Identity Center made cannot be written at all: see [`super::identity_center`].

use futures::future::BoxFuture;
use tracing::{info, warn};

use super::lease::{lease, release, still_held, write_fenced};
use super::{EnforceError, Enforcement, Plan, partition};
use crate::app::App;
use crate::deny::{self, RoleDenyList};
use crate::intent::{Done, Scope, Taken};
use crate::ledger::{Lease, RoleDenials, role_pk};
use crate::principal::PrincipalArn;

pub(crate) struct SharedRole;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    Deny,
    Allow,
}

impl Enforcement for SharedRole {
    fn plan<'a>(
        &'a self,
        _app: &'a App,
        principal: &'a PrincipalArn,
        _scope: Scope,
    ) -> BoxFuture<'a, Result<Plan, EnforceError>> {
        // Which shard takes the person is decided under the lease; the record says the
        // role's first shard until the cut names the real one.
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
            let shard = change_role_denials(app, principal, Change::Deny).await?;
            Ok(Done::taken(Taken {
                detached_policy_arns: Vec::new(),
                deny_policy_arn: shard.map(|n| shard_arn(principal, n)),
            }))
        })
    }

    fn give_back<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        _taken: &'a Taken,
    ) -> BoxFuture<'a, Result<(), EnforceError>> {
        Box::pin(async move {
            change_role_denials(app, principal, Change::Allow).await?;
            Ok(())
        })
    }
}

fn shard_arn(principal: &PrincipalArn, n: usize) -> String {
    deny::shard_policy_arn(
        partition(principal),
        principal.account_id(),
        principal.role_name().unwrap_or_default(),
        n,
    )
}

/// Adds or removes a person on their role's deny list under the list's lease, and rewrites
/// the shard policy that changed. Returns the person's shard (`Deny`) or `None`.
async fn change_role_denials(
    app: &App,
    principal: &PrincipalArn,
    change: Change,
) -> Result<Option<usize>, EnforceError> {
    let role = principal.role_name().unwrap_or_default();
    let account = principal.account_id();
    let fresh = || async {
        Ok(RoleDenials {
            account: account.to_owned(),
            role: role.to_owned(),
            list: RoleDenyList::new(app.iam.role_id(role).await?),
            lease: Lease::default(),
        })
    };
    let held = lease(app, &role_pk(account, role), fresh).await?;
    let mut next = held.clone();
    let outcome = apply_to_role(app, principal, &mut next, change).await;
    let shard = release(app, &held, next, outcome).await?;
    info!(%principal, role, session = principal.name(), ?change, ?shard, "role deny list changed");
    Ok(shard)
}

/// The IAM half of a deny-list change: the shard policy that changed is rewritten (or
/// detached from the role when it denies nobody any more), under the lease `held`.
async fn apply_to_role(
    app: &App,
    principal: &PrincipalArn,
    held: &mut RoleDenials,
    change: Change,
) -> Result<Option<usize>, EnforceError> {
    let role = principal.role_name().unwrap_or_default();
    let session = principal.name();
    let (shard, was_empty) = match change {
        Change::Deny => {
            if let Some(n) = held.list.shard_of(session) {
                // Listed already (a change completed again, or reconcile's repair): make
                // IAM say what the list says, then make sure the shard is on the role.
                repair(app, principal, held, n).await?;
                app.iam.attach(principal, &shard_arn(principal, n)).await?;
                return Ok(Some(n));
            }
            let n = held
                .list
                .add(role, session, app.config.deny_shards_per_role)?;
            (n, held.list.shards[n].len() == 1)
        }
        Change::Allow => match held.list.remove(session) {
            None => return Ok(None),
            Some(n) => (n, false),
        },
    };
    if held
        .list
        .shard_document(shard, held.lease.version)
        .is_some()
    {
        write_shard(app, principal, held, shard, None).await?;
        if was_empty {
            app.iam
                .attach(principal, &shard_arn(principal, shard))
                .await?;
        }
    } else if principal.identity_center_role().is_none() {
        still_held(app, role, &held.lease)?;
        app.iam
            .detach(principal, &shard_arn(principal, shard))
            .await?;
    } else {
        // A list the previous version kept for an Identity Center role, emptied: IAM
        // refused every attach to that role, so its shard was never on it and there is
        // nothing to detach (IAM would refuse that too).
        warn!(%principal, role, shard, "an Identity Center role's old per-role shard emptied; left unattached");
    }
    Ok(match change {
        Change::Deny => Some(shard),
        Change::Allow => None,
    })
}

/// Makes IAM deny what the list says: a role recreated under the same name (a re-provisioned
/// permission set) has a new unique id, so every shard is written again with it; otherwise
/// shard `n` is written again if its document does not name the person.
async fn repair(
    app: &App,
    principal: &PrincipalArn,
    held: &mut RoleDenials,
    n: usize,
) -> Result<(), EnforceError> {
    let role = principal.role_name().unwrap_or_default();
    let role_id = app.iam.role_id(role).await?;
    if role_id != held.list.role_id {
        warn!(%principal, role, old = %held.list.role_id, new = %role_id, "the role was recreated; writing its deny list again");
        held.list.role_id = role_id;
        for shard in 0..held.list.shards.len() {
            if held
                .list
                .shard_document(shard, held.lease.version)
                .is_some()
            {
                write_shard(app, principal, held, shard, None).await?;
                app.iam
                    .attach(principal, &shard_arn(principal, shard))
                    .await?;
            }
        }
        return Ok(());
    }
    let me = format!("{}:{}", held.list.role_id, principal.name());
    let current = app
        .iam
        .own_policy_document(&shard_arn(principal, n))
        .await?;
    let names_me = current
        .as_ref()
        .is_some_and(|(_, doc)| deny::denied_user_ids(doc).contains(&me));
    if !names_me {
        warn!(%principal, role, shard = n, "the shard's document does not deny the person; writing it again");
        write_shard(app, principal, held, n, current).await?;
    }
    Ok(())
}

/// Writes shard `n`'s document from the list, fenced by the list's lease. `current` is
/// IAM's document if the caller has read it.
async fn write_shard(
    app: &App,
    principal: &PrincipalArn,
    held: &RoleDenials,
    n: usize,
    current: Option<(String, serde_json::Value)>,
) -> Result<(), EnforceError> {
    let role = principal.role_name().unwrap_or_default();
    let Some(document) = held.list.shard_document(n, held.lease.version) else {
        return Ok(());
    };
    write_fenced(
        app,
        role,
        &shard_arn(principal, n),
        &deny::shard_policy_name(role, n),
        &document,
        &held.lease,
        current,
    )
    .await
}
