//! A group principal's spend is its members': which of the ledger's group principals each
//! IAM user calling Bedrock belongs to. Read from the ledger (the account's group
//! principals: two index queries) and IAM (one `GetGroup` per group principal), kept for
//! a few minutes per process: the cost follows the number of capped groups, not of callers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::app::App;
use crate::iam::IamError;
use crate::ledger::LedgerError;
use crate::principal::{ArnParts, PrincipalArn, split_arn};

/// How long a membership read is used: someone added to a capped group is charged to it
/// at most this much later.
const FRESH_FOR: Duration = Duration::minutes(5);

/// User ARN → the group principals the user is in.
type Members = HashMap<String, Vec<PrincipalArn>>;

/// One account's memberships, and when they were read.
type Read = (DateTime<Utc>, Arc<Members>);

/// Memberships per account (`partition:account`).
#[derive(Default)]
pub struct GroupMemberships {
    read: Mutex<HashMap<String, Read>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Iam(#[from] IamError),
}

/// The account an IAM user ARN is in, if it is one.
fn user_account(identity: &str) -> Option<String> {
    match split_arn(identity)? {
        ArnParts {
            partition,
            service: "iam",
            account,
            resource,
        } if resource.starts_with("user/") => Some(format!("{partition}:{account}")),
        _ => None,
    }
}

impl App {
    /// For each IAM user among `identities`, the group principals it is a member of (users
    /// in no capped group, and identities that are no user, are left out).
    pub(crate) async fn capped_groups_of<'a>(
        &self,
        identities: impl Iterator<Item = &'a String>,
    ) -> Result<BTreeMap<String, Vec<PrincipalArn>>, MembershipError> {
        let mut groups = BTreeMap::new();
        for identity in identities {
            let Some(account) = user_account(identity) else {
                continue;
            };
            let members = self.members_in(&account).await?;
            if let Some(of) = members.get(identity) {
                groups.insert(identity.clone(), of.clone());
            }
        }
        Ok(groups)
    }

    async fn members_in(&self, account: &str) -> Result<Arc<Members>, MembershipError> {
        let now = self.now();
        if let Some((at, members)) = self.metering.groups.read.lock().ok().and_then(|read| {
            read.get(account)
                .filter(|(at, _)| *at <= now && now.signed_duration_since(*at) < FRESH_FOR)
                .cloned()
        }) {
            tracing::debug!(%account, read_at = %at, "group memberships from the cache");
            return Ok(members);
        }
        let (partition, id) = account.split_once(':').unwrap_or(("aws", account));
        let mut members = Members::new();
        for group in self.ledger.group_principals(partition, id).await? {
            for user in self.iam.group_members(&group).await? {
                members.entry(user).or_default().push(group.clone());
            }
        }
        let members = Arc::new(members);
        if let Ok(mut read) = self.metering.groups.read.lock() {
            read.insert(account.to_owned(), (now, members.clone()));
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_iam_users_can_be_group_members() {
        assert_eq!(
            user_account("arn:aws:iam::123456789012:user/team/alice").as_deref(),
            Some("aws:123456789012")
        );
        for other in [
            "arn:aws:iam::123456789012:role/Dev",
            "arn:aws:sts::123456789012:assumed-role/Dev/alice",
            "not an arn",
        ] {
            assert_eq!(user_account(other), None, "{other}");
        }
    }
}
