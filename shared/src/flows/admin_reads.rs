//! Finance's reads: `status`, `list`, `history` and `usage`. They change nothing; the state
//! answers carry this month's metered spend beside the state (`metered_usd`,
//! `metered_period`), and `usage` sums a month's metered spend by person, model or team.

use serde_json::{Value, json};

use super::admin::{AdminError, Answer, ok, view};
use crate::app::App;
use crate::ledger::Subject;
use crate::request::*;
use crate::state::Status;
use crate::usage::{Holder, UsageBy, tally};

impl App {
    /// `{"ok": true, "healthy", "checks": [...]}`: what the deployment needs and lacks, each
    /// check with its fix. Today: every IAM Identity Center role seatcap has people on, and
    /// whether it carries all of the account's Identity Center shards (its permission set
    /// references them); one pass over the status index and one IAM read per such role.
    /// Whether Bedrock logs invocations to the group metering subscribes to
    /// (`SEATCAP_INVOCATION_LOG_GROUP`), or at all when that is not set.
    async fn invocation_logging_check(&self) -> Value {
        let bedrock = crate::inference_profiles::InferenceProfiles::from_sdk(&self.sdk);
        let expected = self.config.invocation_log_group.as_deref();
        let group = expected.unwrap_or("<log group>");
        let fix = vec![format!(
            "aws bedrock put-model-invocation-logging-configuration --logging-config \
             '{{\"cloudWatchConfig\": {{\"logGroupName\": \"{group}\", \"roleArn\": \"<a role Bedrock may write the group with>\"}}, \"textDataDeliveryEnabled\": false, \"imageDataDeliveryEnabled\": false, \"embeddingDataDeliveryEnabled\": false}}'"
        )];
        match bedrock.logging_destinations().await {
            Err(error) => json!({"check": "invocation_logging", "ok": false, "error": error,
                "fix": ["grant the admin function bedrock:GetModelInvocationLoggingConfiguration (the template does)"]}),
            Ok((log_group, bucket)) => {
                let ok = match expected {
                    Some(expected) => log_group.as_deref() == Some(expected),
                    None => log_group.is_some() || bucket.is_some(),
                };
                json!({"check": "invocation_logging", "ok": ok, "log_group": log_group,
                    "s3_bucket": bucket, "expected_log_group": expected,
                    "fix": if ok { Vec::new() } else { fix }})
            }
        }
    }

    pub(super) async fn doctor(&self) -> Result<Answer, AdminError> {
        // (partition, account, role) → people on it.
        let mut roles: std::collections::BTreeMap<(String, String, String), usize> =
            Default::default();
        for status in [Status::Blocked, Status::Active] {
            let mut after = None;
            loop {
                let (page, last) = self.ledger.list_page(status, 1000, after.as_ref()).await?;
                for state in &page {
                    let principal = &state.principal;
                    if let Some(role) = principal.identity_center_role() {
                        let key = (
                            principal.partition().to_owned(),
                            principal.account_id().to_owned(),
                            role.to_owned(),
                        );
                        *roles.entry(key).or_default() += 1;
                    }
                }
                match last {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
        let shards = self.config.deny_shards_per_role;
        let mut checks = Vec::new();
        for ((partition, account, role), people) in roles {
            let attached = self.iam.role_attachments(&role).await?;
            let missing =
                crate::identity_center::missing_shards(&partition, &account, shards, &attached);
            let set = crate::identity_center::permission_set_name(&role).unwrap_or(&role);
            let fix = if missing.is_empty() {
                Vec::new()
            } else {
                crate::identity_center::fix_commands(set, &missing)
            };
            checks.push(json!({
                "check": "identity_center_references",
                "role": role,
                "permission_set": set,
                "people": people,
                "ok": missing.is_empty(),
                "missing": missing,
                "fix": fix,
            }));
        }
        checks.push(self.invocation_logging_check().await);
        let healthy = checks.iter().all(|c| c["ok"] == true);
        Ok(Ok(ok(json!({"healthy": healthy, "checks": checks}))))
    }

    pub(super) async fn status(&self, principal: &str) -> Result<Answer, AdminError> {
        let principal = match parse_principal(principal) {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let Some(state) = self.ledger.load(&principal).await? else {
            return Ok(Err(not_found(&principal)));
        };
        let mut answer = ok(view(&state, self.now()));
        self.add_metered(std::slice::from_mut(&mut answer)).await?;
        Ok(Ok(answer))
    }

    /// `{"ok": true, "principals": [...], "next_token"?}`: blocked first, then active, each
    /// in ARN order, through the status index.
    pub(super) async fn list(&self, r: ListRequest) -> Result<Answer, AdminError> {
        let limit = match page_size(r.limit) {
            Ok(l) => l,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let statuses: Vec<Status> = r
            .status
            .map_or(vec![Status::Blocked, Status::Active], |s| vec![s]);
        let (mut status_index, mut after) = match r
            .next_token
            .as_deref()
            .map(|t| parse_list_token(t, &statuses))
        {
            None => (0, None),
            Some(Ok(position)) => position,
            Some(Err(refusal)) => return Ok(Err(refusal)),
        };
        let now = self.now();
        let mut principals = Vec::new();
        let mut next_token = None;
        while status_index < statuses.len() && principals.len() < limit as usize {
            let status = statuses[status_index];
            let room = limit as i32 - principals.len() as i32;
            let (page, last) = self.ledger.list_page(status, room, after.as_ref()).await?;
            // `pending`: a pass over the status index keeping those with open requests
            // (few, and asked for rarely: no index of their own).
            principals.extend(
                page.iter()
                    .filter(|s| !r.pending || s.open_override_requests(now).next().is_some())
                    .map(|s| view(s, now)),
            );
            match last {
                Some(last) => {
                    next_token = Some(format!("{}|{last}", status.as_str()));
                    after = Some(last);
                }
                None => {
                    next_token = None;
                    status_index += 1;
                    after = None;
                }
            }
        }
        if next_token.is_none() && status_index < statuses.len() && !principals.is_empty() {
            // The page filled up exactly at the end of one status: continue with the next.
            next_token = Some(format!("{}|", statuses[status_index].as_str()));
        }
        self.add_metered(&mut principals).await?;
        let mut answer = json!({"principals": principals});
        if let Some(token) = next_token {
            answer["next_token"] = Value::String(token);
        }
        Ok(Ok(ok(answer)))
    }

    /// `{"ok": true, "events": [...], "next_token"?}`, newest first.
    pub(super) async fn history(&self, r: HistoryRequest) -> Result<Answer, AdminError> {
        let validated = parse_principal(&r.principal).and_then(|p| Ok((p, page_size(r.limit)?)));
        let (principal, limit) = match validated {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Some(token) = &r.next_token
            && !token.starts_with("EV#")
        {
            return Ok(Err(Refusal::new(
                "invalid_request",
                "next_token is not one this function gave out",
            )));
        }
        let (events, next) = self
            .ledger
            .history_page(
                &Subject::Principal(principal),
                limit as i32,
                r.next_token.as_deref(),
            )
            .await?;
        let mut answer = json!({"events": events});
        if let Some(token) = next {
            answer["next_token"] = Value::String(token);
        }
        Ok(Ok(ok(answer)))
    }

    /// `{"ok": true, "period", "by", "rows": [{"key", "usd", "calls"?, "group"?}], "total_usd",
    /// "total_calls", "metered": true}`: the month's counters (one paginated query of the
    /// status index), and for the team view the states they belong to (one batch read).
    pub(super) async fn usage(&self, r: UsageRequest) -> Result<Answer, AdminError> {
        let period = match r.period.as_deref().map(parse_usage_period) {
            None => crate::period::month_key(self.now()),
            Some(Ok(period)) => period,
            Some(Err(refusal)) => return Ok(Err(refusal)),
        };
        let counters = self.ledger.counters_of(&period).await?;
        let states = if r.by == UsageBy::Team {
            let arns: Vec<String> = counters.iter().map(|c| c.arn.clone()).collect();
            self.ledger.read_meters(&arns, &[]).await?.states
        } else {
            Default::default()
        };
        let usage = tally(&counters, r.by, |arn| match states.get(arn) {
            Some(state) => Holder::Capped {
                team: state.team.clone(),
            },
            None => Holder::Uncapped,
        });
        Ok(Ok(ok(json!({
            "period": period,
            "by": r.by,
            "rows": usage.rows,
            "total_usd": usage.total_usd,
            "total_calls": usage.total_calls,
            // Metered figures are estimates from the invocation logs; Budgets is the bill.
            "metered": true,
        }))))
    }

    /// The spend a cap change decides with: the higher of Budgets' figure and this
    /// month's metered one (one read).
    pub(crate) async fn with_metered(
        &self,
        principal: &crate::principal::PrincipalArn,
        budgets: Option<crate::money::Usd>,
    ) -> Result<Option<crate::money::Usd>, AdminError> {
        let period = crate::period::month_key(self.now());
        let micros = self.ledger.metered(principal, &period).await?;
        Ok(crate::meter::highest_spend(budgets, micros))
    }

    /// Adds `metered_usd` and `metered_period` (this month) to state answers, in one read.
    async fn add_metered(&self, answers: &mut [Value]) -> Result<(), AdminError> {
        let period = crate::period::month_key(self.now());
        let arns: Vec<String> = answers
            .iter()
            .filter_map(|a| a["principal"].as_str().map(str::to_owned))
            .collect();
        if arns.is_empty() {
            return Ok(());
        }
        let counters: Vec<(String, String)> =
            arns.iter().map(|a| (a.clone(), period.clone())).collect();
        let read = self.ledger.read_meters(&[], &counters).await?;
        for answer in answers {
            let Some(arn) = answer["principal"].as_str().map(str::to_owned) else {
                continue;
            };
            let micros = read
                .metered
                .get(&(arn, period.clone()))
                .copied()
                .unwrap_or(0);
            answer["metered_usd"] =
                Value::String(crate::meter::usd_of_micros(micros).to_plain_string());
            answer["metered_period"] = Value::String(period.clone());
        }
        Ok(())
    }
}
