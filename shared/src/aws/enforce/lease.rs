//! The one way a deny list and the policies written from it change: under the list's lease,
//! fenced. Used by both lists seatcap keeps, a plain shared role's ([`super::shared_role`])
//! and the account's Identity Center shards ([`super::identity_center`]).
//!
//! A writer takes the lease with a conditional write and holds it until its own deadline;
//! every lease taken has the next version, and each shard's document names the version it
//! was written under (`SeatcapV<n>`). A writer that finds a newer version in IAM than its own
//! lease stops instead of writing an older list over a newer one, and one whose lease has
//! run out writes nothing.

use std::time::Duration;

use tracing::warn;

use super::EnforceError;
use crate::app::App;
use crate::deny;
use crate::ledger::{CommitError, DenyListItem, Lease};

/// Waiting for another writer's lease: about 30 s in all before giving up.
const LEASE_WAITS: u32 = 200;

/// Releases the lease `held` with `next`, the list as changed, or with the list as it was
/// read if the change failed (its IAM writes were fenced, and the engine reverses it).
/// Returns the change's outcome, or why the release did not land.
pub(super) async fn release<T: DenyListItem, R>(
    app: &App,
    held: &T,
    next: T,
    outcome: Result<R, EnforceError>,
) -> Result<R, EnforceError> {
    let mut released = match &outcome {
        Ok(_) => next,
        Err(_) => held.clone(),
    };
    *released.lease_mut() = Lease {
        version: held.lease().version + 1,
        held_by: None,
        held_until: None,
    };
    match app
        .ledger
        .put_deny_list(&released, Some(held.lease().version))
        .await
    {
        Ok(()) => outcome,
        Err(CommitError::Ledger(e)) => Err(e.into()),
        // Another writer took the lease after this one's ran out: its list is the truth.
        Err(_) => {
            warn!(list = %held.label(), "deny list lease lost before release");
            outcome?;
            Err(EnforceError::RoleBusy(held.label()))
        }
    }
}

/// Takes the lease on the list stored under `pk` (or `fresh()`, the first time), waiting
/// for another writer's to end. Returns the list as leased: its version is the lease's
/// fencing token. Every lease taken is given back with [`release`].
pub(super) async fn lease<T, F, Fut>(app: &App, pk: &str, fresh: F) -> Result<T, EnforceError>
where
    T: DenyListItem,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, EnforceError>>,
{
    let holder = uuid::Uuid::new_v4().simple().to_string();
    let mut label = pk.to_owned();
    for wait in 0..LEASE_WAITS {
        let now = app.now();
        let current = match app.ledger.load_deny_list::<T>(pk).await? {
            Some(current) => current,
            None => fresh().await?,
        };
        label = current.label();
        let lease = current.lease();
        let busy = lease.held_by.is_some() && lease.held_until.is_some_and(|t| t > now);
        if !busy {
            let mut leased = current.clone();
            *leased.lease_mut() = Lease {
                version: lease.version + 1,
                held_by: Some(holder.clone()),
                held_until: Some(app.hold_until()),
            };
            let expected = (lease.version > 0).then_some(lease.version);
            match app.ledger.put_deny_list(&leased, expected).await {
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
    warn!(list = %label, "deny list still leased after waiting");
    Err(EnforceError::RoleBusy(label))
}

/// Makes `document` the default version of seatcap's policy `arn`, unless IAM already has a
/// document written under a newer lease than `lease` (the fence). `current` is IAM's
/// document if the caller has read it.
pub(super) async fn write_fenced(
    app: &App,
    label: &str,
    arn: &str,
    name: &str,
    document: &serde_json::Value,
    lease: &Lease,
    current: Option<(String, serde_json::Value)>,
) -> Result<(), EnforceError> {
    let current = match current {
        Some(current) => Some(current),
        None => app.iam.own_policy_document(arn).await?,
    };
    let replacing = match current {
        Some((version_id, written)) => {
            let found = deny::written_version(&written).unwrap_or(0);
            if found > lease.version {
                warn!(
                    list = label,
                    held = lease.version,
                    found,
                    "a newer deny list is in IAM; not overwriting it"
                );
                return Err(EnforceError::Fenced {
                    role: label.to_owned(),
                    held: lease.version,
                    found,
                });
            }
            Some(version_id)
        }
        None => None,
    };
    still_held(app, label, lease)?;
    app.iam
        .put_own_policy(arn, name, document, replacing.as_deref())
        .await?;
    Ok(())
}

/// A writer whose lease has run out stops before writing IAM.
pub(super) fn still_held(app: &App, label: &str, lease: &Lease) -> Result<(), EnforceError> {
    match lease.held_until {
        Some(until) if until <= app.now() => Err(EnforceError::RoleBusy(label.to_owned())),
        _ => Ok(()),
    }
}
