//! Detach mode: the managed Bedrock policies seatcap is configured with are detached from
//! the user, role or group, and attached again on restore. Only policies that IAM showed
//! attached are taken, so a restore never grants what was not there.

use futures::future::BoxFuture;

use super::{EnforceError, Enforcement, Plan};
use crate::access::RemainingAccess;
use crate::app::App;
use crate::intent::{Done, Scope, Taken};
use crate::principal::PrincipalArn;

pub(crate) struct Detach;

impl Enforcement for Detach {
    fn plan<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        scope: Scope,
    ) -> BoxFuture<'a, Result<Plan, EnforceError>> {
        Box::pin(async move {
            let wanted = match scope {
                Scope::Everything => &app.config.managed_policy_arns,
                Scope::Premium => &app.config.premium_policy_arns,
            };
            let attached = app.iam.attached_policies(principal).await?;
            let detached_policy_arns: Vec<String> = attached
                .iter()
                .filter(|p| wanted.contains(p))
                .cloned()
                .collect();
            let left = attached
                .into_iter()
                .filter(|p| !detached_policy_arns.contains(p))
                .collect();
            Ok(Plan {
                taken: Taken {
                    detached_policy_arns,
                    deny_policy_arn: None,
                },
                attached: Some(left),
            })
        })
    }

    fn take<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        taken: &'a Taken,
    ) -> BoxFuture<'a, Result<Done, EnforceError>> {
        Box::pin(async move {
            // `NoSuchEntity` (detached already, by this change's first run) is no error.
            app.iam
                .detach_all(principal, &taken.detached_policy_arns)
                .await?;
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
            app.iam
                .attach_all(principal, &taken.detached_policy_arns)
                .await?;
            Ok(())
        })
    }

    fn remaining<'a>(
        &'a self,
        app: &'a App,
        principal: &'a PrincipalArn,
        attached: Option<Vec<String>>,
    ) -> BoxFuture<'a, Vec<RemainingAccess>> {
        Box::pin(async move {
            match app.iam.remaining_bedrock_access(principal, attached).await {
                Ok(remaining) => remaining,
                Err(e) => vec![RemainingAccess {
                    on: principal.kind_name().to_owned(),
                    policy: format!("unknown: could not check ({})", e.brief),
                }],
            }
        })
    }
}
