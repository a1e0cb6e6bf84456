//! A person on a shared role (an IAM Identity Center permission set): their session joins
//! the role's deny list (see [`crate::deny`]), and leaves it on restore. The list lives in
//! the ledger; one writer at a time holds a lease on it (a conditional write) while it
//! rewrites the role's deny policies.
//!
//! The lease ends with its holder's deadline, and it is fenced: each shard's document names
//! the lease version it was written under, and a writer that finds a newer version in IAM
//! than its own lease stops instead of writing an older list over a newer one.

use std::time::Duration;

use futures::future::BoxFuture;
use tracing::{info, warn};

use super::{EnforceError, Enforcement, Plan, partition};
use crate::app::App;
use crate::deny::{self, RoleDenyList};

use crate::intent::{Scope, Taken};
use crate::ledger::{CommitError, RoleDenials};
use crate::principal::PrincipalArn;

pub(crate) struct SharedRole;

/// Waiting for another writer's lease: about 30 s in all before giving up.
const LEASE_WAITS: u32 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
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
        Box::pin(async move {
            Ok(Plan {
                taken: Taken {
                    detached_policy_arns: Vec::new(),
                    deny_policy_arn: Some(arn),
                },
                attached: None,
            })
        })
    }

    fn take<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        _taken: &'a Taken,
    ) -> BoxFuture<'a, Result<Taken, EnforceError>> {
        Box::pin(async move {
            let shard = change_role_denials(app, principal, Change::Deny).await?;
            Ok(Taken {
                detached_policy_arns: Vec::new(),
                deny_policy_arn: shard.map(|n| shard_arn(principal, n)),
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
    let session = principal.name();
    let held = lease_role(app, account, role).await?;
    let mut next = held.clone();
    let outcome = apply_to_role(app, principal, &mut next, change).await;
    // Release: the changed list if IAM was changed, the list as read otherwise.
    let list = match &outcome {
        Ok(_) => next.list,
        Err(_) => held.list.clone(),
    };
    let released = RoleDenials {
        list,
        version: held.version + 1,
        held_by: None,
        held_until: None,
        ..held.clone()
    };
    match app.ledger.put_role(&released, Some(held.version)).await {
        Ok(()) => {}
        Err(CommitError::Ledger(e)) => return Err(e.into()),
        // Another writer took the lease after this one's ran out: its list is the truth.
        Err(_) => {
            warn!(%principal, role, "role deny list lease lost before release");
            outcome?;
            return Err(EnforceError::RoleBusy(role.to_owned()));
        }
    }
    let shard = outcome?;
    info!(%principal, role, session, ?change, ?shard, "role deny list changed");
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
    if held.list.shard_document(shard, held.version).is_some() {
        write_shard(app, principal, held, shard, None).await?;
        if was_empty {
            app.iam
                .attach(principal, &shard_arn(principal, shard))
                .await?;
        }
    } else {
        still_held(app, held)?;
        app.iam
            .detach(principal, &shard_arn(principal, shard))
            .await?;
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
            if held.list.shard_document(shard, held.version).is_some() {
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

/// Writes shard `n`'s document from the list, unless IAM already has one written under a
/// newer lease (the fence). `current` is IAM's document if the caller has read it.
async fn write_shard(
    app: &App,
    principal: &PrincipalArn,
    held: &RoleDenials,
    n: usize,
    current: Option<(String, serde_json::Value)>,
) -> Result<(), EnforceError> {
    let role = principal.role_name().unwrap_or_default();
    let arn = shard_arn(principal, n);
    let Some(document) = held.list.shard_document(n, held.version) else {
        return Ok(());
    };
    let current = match current {
        Some(current) => Some(current),
        None => app.iam.own_policy_document(&arn).await?,
    };
    let replacing = match current {
        Some((version_id, written)) => {
            let found = deny::written_version(&written).unwrap_or(0);
            if found > held.version {
                warn!(%principal, role, held = held.version, found, "a newer deny list is in IAM; not overwriting it");
                return Err(EnforceError::Fenced {
                    role: role.to_owned(),
                    held: held.version,
                    found,
                });
            }
            Some(version_id)
        }
        None => None,
    };
    still_held(app, held)?;
    app.iam
        .put_own_policy(
            &arn,
            &deny::shard_policy_name(role, n),
            &document,
            replacing.as_deref(),
        )
        .await?;
    Ok(())
}

/// A writer whose lease has run out stops before writing IAM.
fn still_held(app: &App, held: &RoleDenials) -> Result<(), EnforceError> {
    match held.held_until {
        Some(until) if until <= app.now() => Err(EnforceError::RoleBusy(held.role.clone())),
        _ => Ok(()),
    }
}

/// Takes the lease on a role's deny list (creating the list the first time), waiting for
/// another writer's lease to end. Returns the list as leased: its version is the lease's
/// fencing token.
async fn lease_role(app: &App, account: &str, role: &str) -> Result<RoleDenials, EnforceError> {
    let holder = uuid::Uuid::new_v4().simple().to_string();
    for wait in 0..LEASE_WAITS {
        let now = app.now();
        let current = match app.ledger.load_role(account, role).await? {
            Some(current) => current,
            None => RoleDenials {
                account: account.to_owned(),
                role: role.to_owned(),
                list: RoleDenyList::new(app.iam.role_id(role).await?),
                version: 0,
                held_by: None,
                held_until: None,
            },
        };
        let busy = current.held_by.is_some() && current.held_until.is_some_and(|t| t > now);
        if !busy {
            let leased = RoleDenials {
                held_by: Some(holder.clone()),
                held_until: Some(app.hold_until()),
                version: current.version + 1,
                ..current.clone()
            };
            let expected = (current.version > 0).then_some(current.version);
            match app.ledger.put_role(&leased, expected).await {
                Ok(()) => return Ok(leased),
                Err(CommitError::Ledger(e)) => return Err(e.into()),
                Err(_) => {}
            }
        }
        // A writer holds the lease for a few IAM calls: check again soon, with jitter so
        // waiting writers do not all try at once.
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
        let pause = 40 + u64::from(wait.min(10)) * 10 + jitter;
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    warn!(account, role, "role deny list still leased after waiting");
    Err(EnforceError::RoleBusy(role.to_owned()))
}
