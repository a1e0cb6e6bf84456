//! Deny mode: seatcap's own explicit-deny policy is attached to the principal, which closes
//! Bedrock whatever else allows it; restore detaches exactly that policy.

use futures::future::BoxFuture;
use serde_json::json;

use super::{EnforceError, Enforcement, Plan, partition};
use crate::app::App;
use crate::deny;
use crate::intent::{Done, Scope, Taken};
use crate::principal::PrincipalArn;

pub(crate) struct DenyPolicy;

/// seatcap's deny-everything-Bedrock policy's name, under [`deny::POLICY_PATH`].
const NAME: &str = "seatcap-deny-bedrock";

impl Enforcement for DenyPolicy {
    fn plan<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        _scope: Scope,
    ) -> BoxFuture<'a, Result<Plan, EnforceError>> {
        Box::pin(async move {
            let arn = format!(
                "arn:{}:iam::{}:policy{}{NAME}",
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
            // Created the first time it is needed: seatcap's own policy, not the principal's.
            // One of that name with any other document is someone else's: never attached.
            if !app.iam.ensure_own_policy(&arn, NAME, &document).await? {
                return Err(EnforceError::NotSeatcaps { policy: arn });
            }
            Ok(Plan::deny(arn))
        })
    }

    fn take<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        taken: &'a Taken,
    ) -> BoxFuture<'a, Result<Done, EnforceError>> {
        Box::pin(async move {
            if let Some(arn) = &taken.deny_policy_arn {
                // Attaching twice is not an error in IAM.
                app.iam.attach(principal, arn).await?;
            }
            Ok(Done::taken(taken.clone()))
        })
    }

    fn give_back<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        taken: &'a Taken,
    ) -> BoxFuture<'a, Result<(), EnforceError>> {
        Box::pin(async move {
            if let Some(arn) = &taken.deny_policy_arn {
                app.iam.detach(principal, arn).await?;
            }
            Ok(())
        })
    }
}
