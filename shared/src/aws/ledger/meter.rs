//! Metered spend in the ledger: counters per principal (or unmanaged identity), month and
//! day, `P#<arn>` / `METER#<period>` (`2026-12`, `2026-12-02`), added to with DynamoDB `ADD` in the same transaction as a
//! claim per Bedrock request id (`INV#<request id>`), so a redelivered batch, or a request
//! id seen in two batches, counts once. The counter keeps its money per model too
//! (`model_micro_usd#<model id>`), and sits in the status index under `meter#<period>`, so
//! finance's `usage` reads a month's counters with one paginated query, never a scan.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{
    CANCELLED_ATTEMPTS, ClaimItem, Ledger, LedgerError, SEEN_SK, STATE_SK, StateItem, dynamo_error,
    from_item, key, to_item,
};
use crate::principal::PrincipalArn;
use crate::state::{PrincipalState, Status};
use crate::usage::Counter;

/// One transaction holds at most 100 items: the month's and the day's counters and 98
/// claims.
const CLAIMS_PER_TRANSACTION: usize = 98;
/// The transaction's items before the claims.
const COUNTERS: usize = 2;
/// A counter's money for one model: this prefix and the model id.
const MODEL_PREFIX: &str = "model_micro_usd#";
/// Model ids are short; a longer one (not Bedrock's) is kept to this many characters.
const MODEL_ID_KEPT: usize = 200;

/// One metered call to count: its claim (the request id, or `<request id>@<group>` for a
/// group's share), its cost and its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteredCall {
    pub claim: String,
    pub micros: i64,
    pub model: String,
}

/// The status-index partition of a month's counters.
fn meter_status(period: &str) -> String {
    format!("meter#{period}")
}

fn meter_sk(period: &str) -> String {
    format!("METER#{period}")
}

fn identity_pk(arn: &str) -> String {
    format!("P#{arn}")
}

/// What the ledger holds for one identity a batch names: its state (a managed principal)
/// and its metered spend so far in the period.
#[derive(Debug, Default)]
pub struct MeterRead {
    pub states: HashMap<String, PrincipalState>,
    /// Micro-dollars by `(arn, period)`.
    pub metered: HashMap<(String, String), i64>,
}

/// What one principal's share of a batch added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counted {
    pub micros: i64,
    pub calls: usize,
    /// Request ids counted before (a redelivery, or the same call in two batches).
    pub duplicates: usize,
}

impl Ledger {
    /// In one consistent read (per 100 keys): the states of `candidates` and the counters of
    /// `(arn, period)`.
    pub async fn read_meters(
        &self,
        candidates: &[String],
        counters: &[(String, String)],
    ) -> Result<MeterRead, LedgerError> {
        let keys: Vec<_> = candidates
            .iter()
            .map(|arn| key(identity_pk(arn), STATE_SK))
            .chain(
                counters
                    .iter()
                    .map(|(arn, period)| key(identity_pk(arn), &meter_sk(period))),
            )
            .collect();
        let mut read = MeterRead::default();
        for chunk in keys.chunks(100) {
            for item in self.batch_get(chunk.to_vec()).await? {
                let text = |name: &str| match item.get(name) {
                    Some(AttributeValue::S(s)) => s.clone(),
                    _ => String::new(),
                };
                let (pk, sk) = (text("pk"), text("sk"));
                let arn = pk.strip_prefix("P#").unwrap_or_default().to_owned();
                if sk == STATE_SK {
                    let state = from_item::<StateItem>(item)?.state;
                    read.states.insert(arn, state);
                } else if let Some(period) = sk.strip_prefix("METER#") {
                    let micros = match item.get("micro_usd") {
                        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
                        _ => 0,
                    };
                    read.metered.insert((arn, period.to_owned()), micros);
                }
            }
        }
        Ok(read)
    }

    /// Adds `calls`, all made on `day` (`YYYY-MM-DD`), to `arn`'s counters for that day and
    /// its month, each claim once ever: one transaction per 98 calls, both `ADD`s and the
    /// claims together. A claim that exists already drops its call (a duplicate) and the
    /// rest is sent again.
    pub async fn count_metered(
        &self,
        arn: &str,
        day: &str,
        calls: &[MeteredCall],
        now: DateTime<Utc>,
    ) -> Result<Counted, LedgerError> {
        let mut counted = Counted::default();
        for chunk in calls.chunks(CLAIMS_PER_TRANSACTION) {
            let mut pending: Vec<&MeteredCall> = chunk.iter().collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                match self.add_once(arn, day, &pending, now).await? {
                    Added::Done => {
                        counted.micros += pending.iter().map(|c| c.micros).sum::<i64>();
                        counted.calls += pending.len();
                        break;
                    }
                    Added::Seen(seen) => {
                        counted.duplicates += seen.len();
                        let mut index = 0;
                        pending.retain(|_| {
                            index += 1;
                            !seen.contains(&(index - 1))
                        });
                    }
                    Added::Retry if attempt < CANCELLED_ATTEMPTS => {
                        let pause = 25u64 << attempt.min(6);
                        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    }
                    Added::Retry => {
                        return Err(LedgerError::Dynamo {
                            operation: "TransactWriteItems",
                            message: format!(
                                "metering still throttled or in conflict after {CANCELLED_ATTEMPTS} attempts"
                            ),
                        });
                    }
                }
            }
        }
        Ok(counted)
    }

    /// One counter's `ADD`: money, calls and money per model, and its place in the status
    /// index (`meter#<period>`).
    fn counter_update(
        &self,
        arn: &str,
        period: &str,
        calls: &[&MeteredCall],
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, LedgerError> {
        let micros: i64 = calls.iter().map(|c| c.micros).sum();
        let mut by_model: BTreeMap<String, i64> = BTreeMap::new();
        for call in calls {
            let model: String = call.model.chars().take(MODEL_ID_KEPT).collect();
            *by_model.entry(model).or_default() += call.micros;
        }
        let mut adds = vec!["micro_usd :m".to_owned(), "calls :n".to_owned()];
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(identity_pk(arn), &meter_sk(period))))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":m", AttributeValue::N(micros.to_string()))
            .expression_attribute_values(":n", AttributeValue::N(calls.len().to_string()))
            .expression_attribute_values(":t", AttributeValue::S(now.to_rfc3339()))
            .expression_attribute_values(":s", AttributeValue::S(meter_status(period)));
        for (i, (model, micros)) in by_model.iter().enumerate() {
            adds.push(format!("#m{i} :m{i}"));
            update = update
                .expression_attribute_names(format!("#m{i}"), format!("{MODEL_PREFIX}{model}"))
                .expression_attribute_values(
                    format!(":m{i}"),
                    AttributeValue::N(micros.to_string()),
                );
        }
        let update = update
            .update_expression(format!(
                "ADD {} SET updated_at = :t, #status = :s",
                adds.join(", ")
            ))
            .build()
            .map_err(dynamo_error("TransactWriteItems"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn add_once(
        &self,
        arn: &str,
        day: &str,
        calls: &[&MeteredCall],
        now: DateTime<Utc>,
    ) -> Result<Added, LedgerError> {
        let month = day.get(..7).unwrap_or(day);
        let mut items = vec![
            self.counter_update(arn, month, calls, now)?,
            self.counter_update(arn, day, calls, now)?,
        ];
        let expires_at = (now + self.claim_ttl).timestamp();
        for call in calls {
            let claim = to_item(&ClaimItem {
                pk: format!("INV#{}", call.claim),
                sk: SEEN_SK,
                at: now,
                expires_at,
            })?;
            items.push(self.put(claim, "attribute_not_exists(pk)", &[])?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Added::Done),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
        else {
            return Err(dynamo_error("TransactWriteItems")(error));
        };
        let codes: Vec<Option<&str>> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code())
            .collect();
        // Items 0 and 1 are the counters; item i + 2 is call i's claim.
        let seen: Vec<usize> = codes
            .iter()
            .enumerate()
            .skip(COUNTERS)
            .filter(|(_, code)| **code == Some("ConditionalCheckFailed"))
            .map(|(i, _)| i - COUNTERS)
            .collect();
        if !seen.is_empty() {
            return Ok(Added::Seen(seen));
        }
        let retry = codes
            .iter()
            .flatten()
            .any(|c| super::cancellation::is_retried(c));
        if retry {
            Ok(Added::Retry)
        } else {
            Err(LedgerError::Dynamo {
                operation: "TransactWriteItems",
                message: format!("metering transaction cancelled: {codes:?}"),
            })
        }
    }

    /// Every item of the status index's `status` partition whose key starts with `prefix`,
    /// all pages.
    async fn status_partition(
        &self,
        status: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, LedgerError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(super::STATUS_INDEX)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", AttributeValue::S(status.to_owned()));
        query = match prefix {
            Some(prefix) => query
                .key_condition_expression("#status = :status AND begins_with(pk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned())),
            None => query.key_condition_expression("#status = :status"),
        };
        let pages = query
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        pages
            .into_iter()
            .map(|item| item.map_err(dynamo_error("Query")))
            .collect()
    }

    /// Whether the ledger caps anyone on role `role` one by one (a principal
    /// `assumed-role/<role>/<session>`), whatever their status: at most two queries of the
    /// status index, one item each.
    pub async fn has_people_on_role(
        &self,
        partition: &str,
        account: &str,
        role: &str,
    ) -> Result<bool, LedgerError> {
        let prefix = identity_pk(&format!(
            "arn:{partition}:sts::{account}:assumed-role/{role}/"
        ));
        for status in [Status::Active, Status::Blocked] {
            let found = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(super::STATUS_INDEX)
                .key_condition_expression("#status = :status AND begins_with(pk, :prefix)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(
                    ":status",
                    AttributeValue::S(status.as_str().to_owned()),
                )
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone()))
                .limit(1)
                .send()
                .await
                .map_err(dynamo_error("Query"))?;
            if found.count > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The group principals of one account the ledger holds, whatever their status: two
    /// queries of the status index (its sort key is the principal's key), not a scan.
    pub async fn group_principals(
        &self,
        partition: &str,
        account: &str,
    ) -> Result<Vec<PrincipalArn>, LedgerError> {
        let prefix = identity_pk(&format!("arn:{partition}:iam::{account}:group/"));
        let mut groups = Vec::new();
        for status in [Status::Active, Status::Blocked] {
            for item in self
                .status_partition(status.as_str(), Some(&prefix))
                .await?
            {
                if let Some(AttributeValue::S(pk)) = item.get("pk")
                    && let Some(Ok(group)) = pk.strip_prefix("P#").map(str::parse)
                {
                    groups.push(group);
                }
            }
        }
        Ok(groups)
    }

    /// Every counter of `period` (`YYYY-MM` or `YYYY-MM-DD`): principals and unmanaged
    /// identities, groups included. Counters last written by a version before the status
    /// index held them are not found until their next call.
    pub async fn counters_of(&self, period: &str) -> Result<Vec<Counter>, LedgerError> {
        let items = self.status_partition(&meter_status(period), None).await?;
        let number = |value: Option<&AttributeValue>| match value {
            Some(AttributeValue::N(n)) => n.parse::<i64>().unwrap_or(0),
            _ => 0,
        };
        let mut counters = Vec::new();
        for item in items {
            let Some(AttributeValue::S(pk)) = item.get("pk") else {
                continue;
            };
            counters.push(Counter {
                arn: pk.strip_prefix("P#").unwrap_or(pk).to_owned(),
                micros: number(item.get("micro_usd")),
                calls: number(item.get("calls")),
                by_model: item
                    .iter()
                    .filter_map(|(name, value)| {
                        let model = name.strip_prefix(MODEL_PREFIX)?;
                        Some((model.to_owned(), number(Some(value))))
                    })
                    .collect(),
            });
        }
        Ok(counters)
    }

    /// Whether `claim` has been made (a consistent read).
    pub async fn claimed(&self, claim: &crate::audit::Claim) -> Result<bool, LedgerError> {
        let found = self.batch_get(vec![key(claim.key(), SEEN_SK)]).await?;
        Ok(!found.is_empty())
    }

    /// `arn`'s metered micro-dollars in `period` (0 when nothing was metered).
    pub async fn metered(&self, arn: &PrincipalArn, period: &str) -> Result<i64, LedgerError> {
        let read = self
            .read_meters(&[], &[(arn.to_string(), period.to_owned())])
            .await?;
        Ok(read
            .metered
            .get(&(arn.to_string(), period.to_owned()))
            .copied()
            .unwrap_or(0))
    }
}

enum Added {
    Done,
    /// Indices of calls whose request id was counted before.
    Seen(Vec<usize>),
    Retry,
}
