//! The metering flow: Bedrock's model invocation logs, through a CloudWatch Logs
//! subscription, priced and added to each principal's spend for the month within a minute
//! of the calls, and acted on through the same ladder and commit engine as Budgets' alerts.
//!
//! One batch: decode → read each record (malformed ones counted, never fatal) → price →
//! group by identity → one consistent read of the states and counters it names → per
//! principal one transaction (`ADD` + a claim per request id: a redelivered batch counts
//! once) → for a managed principal whose metered figure newly reaches a rung this month,
//! the alert Budgets would send there, through the engine (audited `source: metered`).
//! AWS calls: 1 + one per distinct principal, + the engine's when a rung is reached.
//!
//! Accounts that log to S3 instead deliver an object-created event: the flow reads the
//! invocation log files it names (and nothing else of the bucket) and meters their records
//! the same way, so a call counts the same whichever way it arrived, and once if both did.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use base64::Engine;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::alert_delivery::{AlertError, AlertReport, Source};
use crate::app::App;
use crate::audit::{AuditEvent, EventKind};
use crate::group_spend::{GroupMemberships, MembershipError};
use crate::invocation::parse_record;
use crate::ledger::LedgerError;
use crate::ledger::{MeteredCall, Subject};
use crate::log_object::{LogObject, ObjectEventError, created_objects, is_invocation_log};
use crate::log_objects::{LogObjectError, LogObjects};
use crate::meter::{MeteredAction, metered_action, micros_of, usd_of_micros};
use crate::metered_prices::{FailClosed, MeteredPrices, PriceMemory, Prices, UNKNOWN_FRESH_FOR};
use crate::metrics;
use crate::money::Usd;

use crate::principal::{PrincipalArn, RoleSession, role_session};
use crate::unit_price::UnitPrices;

/// `{"awslogs": {"data": "<base64 of gzip of JSON>"}}`, as a subscription filter sends it.
#[derive(Debug, Deserialize)]
pub struct LogsEvent {
    pub awslogs: LogsData,
}

#[derive(Debug, Deserialize)]
pub struct LogsData {
    pub data: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogsBatch {
    message_type: String,
    #[serde(default)]
    log_events: Vec<LogEvent>,
}

#[derive(Debug, Deserialize)]
struct LogEvent {
    message: String,
}

/// What one batch did.
#[derive(Debug, Default, Serialize)]
pub struct MeteringReport {
    /// Why the event was not read at all (neither a CloudWatch Logs batch nor an S3 event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// S3 delivery: the log files read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<String>,
    /// S3 delivery: objects named but not read, and why (not a log file, gone, unreadable).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_objects: Vec<SkippedObject>,
    pub records: usize,
    /// Calls added to someone's spend.
    pub counted: usize,
    /// Calls counted before (a redelivered batch, a request id in two batches).
    pub duplicates: usize,
    /// Failed calls (their records say `errorCode`, or a text model's carry no token
    /// counts): they cost nothing.
    pub without_tokens: usize,
    /// Records that could not be read, and the first few reasons.
    pub malformed: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub malformed_reasons: Vec<String>,
    /// Calls on provisioned throughput: billed by the hour, so counted at nothing.
    #[serde(skip_serializing_if = "is_zero")]
    pub provisioned_calls: usize,
    /// Models the price table does not know: priced at its highest rate.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub unknown_models: BTreeSet<String>,
    /// Calls billed by another unit than tokens (images, seconds of video), priced so.
    #[serde(skip_serializing_if = "is_zero")]
    pub unit_priced_calls: usize,
    /// Models of such calls whose records did not say how many units they made (or that
    /// neither table knows): priced fail closed, reported once per month.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub units_assumed: BTreeSet<String>,
    /// Per principal (or unmanaged identity) and period: what this batch added.
    pub spend: Vec<MeteredSpend>,
    /// Alerts acted on because a metered figure reached a rung.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertReport>,
    /// Principals cut again: at or over the effective cap with access on, though no rung
    /// was new (an override lapsed or was revoked, a restore without a raise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cut_again: Vec<String>,
    /// Sessions reported now as charged to nobody on a role whose people have caps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unattributed_sessions: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SkippedObject {
    pub object: String,
    pub why: String,
}

#[derive(Debug, Serialize)]
pub struct MeteredSpend {
    /// The principal the spend is charged to, or the identity itself when no principal in
    /// the ledger is it (`managed: false`: counted and visible, charged to no one else).
    pub arn: String,
    pub managed: bool,
    /// The month, and the day within it, the calls were made.
    pub period: String,
    pub day: String,
    pub added_usd: String,
    pub metered_usd: String,
    pub calls: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MeteringError {
    /// The event is not a CloudWatch Logs batch: retrying cannot help, so it is reported.
    #[error("not a CloudWatch Logs subscription batch: {0}")]
    Undecodable(String),
    /// S3 failed reading a log file: the delivery is retried (then waits in the DLQ).
    #[error(transparent)]
    Storage(LogObjectError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Which users are in capped groups could not be read: retried, so no group misses spend.
    #[error(transparent)]
    Groups(#[from] MembershipError),
    #[error(transparent)]
    Alert(#[from] AlertError),
    /// Bedrock could not say for now which model a profile routes to: retried.
    #[error(transparent)]
    Profile(#[from] crate::inference_profiles::ProfileError),
    /// Everyone in the batch was counted and acted on, but acting failed for these: the
    /// invocation fails so Lambda delivers it again (counting is idempotent).
    #[error("metered cuts failed for {}: {}", .0.len(), .0.iter().map(|(p, why)| format!("{p}: {why}")).collect::<Vec<_>>().join("; "))]
    CutsFailed(Vec<(String, String)>),
}

impl MeteringReport {
    /// An event no retry can make readable: reported and counted, not retried.
    fn rejected(why: String) -> MeteringReport {
        warn!(%why, "metering event refused");
        metrics::count("MeteringRejectedBatches", 1);
        MeteringReport {
            rejected: Some(why),
            ..MeteringReport::default()
        }
    }
}

/// What a metering process remembers between batches.
#[derive(Default)]
pub struct MeteringMemory {
    pub(crate) groups: GroupMemberships,
    pub(crate) unattributed: crate::unattributed::Unattributed,
    pub(crate) prices: PriceMemory,
}

impl MeteringMemory {
    /// A memory whose application inference profiles `profiles` resolves (a test's client).
    pub fn with_profiles(profiles: crate::inference_profiles::InferenceProfiles) -> MeteringMemory {
        MeteringMemory {
            prices: PriceMemory::with_profiles(profiles),
            ..MeteringMemory::default()
        }
    }
}

/// How many principals' counting transactions one batch runs at once.
const COUNTING_CONCURRENCY: usize = 16;

/// How many malformed reasons a report lists.
const REASONS_LISTED: usize = 3;

/// The records of a subscription batch: base64, then gzip, then JSON. A `CONTROL_MESSAGE`
/// (CloudWatch Logs checking the destination) has none.
pub fn records_of(event: &LogsEvent) -> Result<Vec<String>, MeteringError> {
    let bad = |e: String| MeteringError::Undecodable(e);
    let gzipped = base64::engine::general_purpose::STANDARD
        .decode(event.awslogs.data.trim())
        .map_err(|e| bad(format!("base64: {e}")))?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(gzipped.as_slice())
        .take(64 << 20)
        .read_to_end(&mut json)
        .map_err(|e| bad(format!("gzip: {e}")))?;
    let batch: LogsBatch = serde_json::from_slice(&json).map_err(|e| bad(format!("JSON: {e}")))?;
    if batch.message_type != "DATA_MESSAGE" {
        return Ok(Vec::new());
    }
    Ok(batch.log_events.into_iter().map(|e| e.message).collect())
}

/// The month (`YYYY-MM`) of a day (`YYYY-MM-DD`).
fn month_of(day: &str) -> &str {
    day.get(..7).unwrap_or(day)
}

/// The principals an identity may be, most specific first: a user is itself; a session on
/// a role is the person on the shared role, else the role (by its name: a role with a path
/// is not found this way).
fn candidates(identity: &str) -> Vec<String> {
    match role_session(identity) {
        Some(RoleSession {
            partition,
            account,
            role,
            ..
        }) => vec![
            identity.to_owned(),
            format!("arn:{partition}:iam::{account}:role/{role}"),
        ],
        None => vec![identity.to_owned()],
    }
}

impl App {
    /// Meters one delivery of Bedrock invocation log records: a CloudWatch Logs batch, or
    /// an S3 event naming log files. An event that is neither is reported, not retried: no
    /// retry can make it readable.
    pub async fn handle_metering(&self, event: Value) -> Result<MeteringReport, MeteringError> {
        if let Some(objects) = created_objects(&event) {
            return self.meter_objects(objects).await;
        }
        let records = serde_json::from_value::<LogsEvent>(event)
            .map_err(|e| MeteringError::Undecodable(e.to_string()))
            .and_then(|event| records_of(&event));
        match records {
            Ok(records) => self.meter_records(&records).await,
            Err(MeteringError::Undecodable(why)) => Ok(MeteringReport::rejected(why)),
            Err(other) => Err(other),
        }
    }

    /// Meters the invocation log files an S3 event names. Another object in the bucket is
    /// never read; a file deleted or unreadable is reported; an S3 failure is retried.
    async fn meter_objects(
        &self,
        objects: Result<Vec<LogObject>, ObjectEventError>,
    ) -> Result<MeteringReport, MeteringError> {
        let objects = match objects {
            Ok(objects) => objects,
            Err(e) => return Ok(MeteringReport::rejected(e.to_string())),
        };
        let store = LogObjects::new(&self.sdk);
        let (mut records, mut read, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        for object in objects {
            if !is_invocation_log(&object.key) {
                skipped.push(SkippedObject {
                    object: object.to_string(),
                    why: "not a Bedrock invocation log file".into(),
                });
                continue;
            }
            match store.records(&object).await {
                Ok(lines) => {
                    records.extend(lines);
                    read.push(object.to_string());
                }
                Err(e @ (LogObjectError::Gone(_) | LogObjectError::Unreadable { .. })) => {
                    warn!(error = %e, "invocation log file not metered");
                    metrics::count("MeteringRejectedBatches", 1);
                    skipped.push(SkippedObject {
                        object: object.to_string(),
                        why: e.to_string(),
                    });
                }
                Err(e) => return Err(MeteringError::Storage(e)),
            }
        }
        let mut report = self.meter_records(&records).await?;
        report.objects = read;
        report.skipped_objects = skipped;
        Ok(report)
    }

    /// Meters invocation log records (one JSON record each), whatever delivered them.
    pub async fn meter_records(&self, records: &[String]) -> Result<MeteringReport, MeteringError> {
        let now = self.now();
        let pricing = MeteredPrices {
            ledger: &self.ledger,
            sdk: &self.sdk,
            memory: &self.metering.prices,
        };
        let mut prices = pricing.table(now, chrono::Duration::MAX).await?;
        let mut report = MeteringReport {
            records: records.len(),
            ..MeteringReport::default()
        };
        let mut invocations = Vec::with_capacity(records.len());
        for record in records {
            match parse_record(record) {
                Ok(Some(invocation)) => invocations.push(invocation),
                Ok(None) => report.without_tokens += 1,
                Err(e) => {
                    report.malformed += 1;
                    if report.malformed_reasons.len() < REASONS_LISTED {
                        report.malformed_reasons.push(e.to_string());
                    }
                }
            }
        }
        // Before anything is counted: a profile Bedrock cannot answer for now fails the
        // batch, and its retry prices the calls right.
        let profiles = invocations
            .iter()
            .map(|i| i.model_id.clone())
            .filter(|m| crate::price::is_application_profile(m))
            .collect();
        let routes = pricing.resolve(profiles, now).await?;
        // A model the table lacks may have been priced by finance since it was read.
        let lacking = |prices: &Prices| {
            invocations.iter().any(|i| {
                let model = match routes.get(&i.model_id) {
                    Some(Ok(model)) => model,
                    _ => &i.model_id,
                };
                !crate::price::is_provisioned(model)
                    && prices.known.row_for(model).is_none()
                    && UnitPrices::shipped().row_for(model).is_none()
            })
        };
        if lacking(&prices) {
            prices = pricing.table(now, UNKNOWN_FRESH_FOR).await?;
        }
        // identity → day (`YYYY-MM-DD`) → calls.
        let mut calls: BTreeMap<String, BTreeMap<String, Vec<MeteredCall>>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        // Calls priced fail closed: (model, period) → (the first identity, why).
        let mut fail_closed = BTreeMap::new();
        for invocation in invocations {
            let route = routes.get(&invocation.model_id);
            let model = match route {
                Some(Ok(model)) => model.as_str(),
                _ => invocation.model_id.as_str(),
            };
            let by_tokens = prices.known.cost_as(&invocation, model);
            let (usd, fail_closed_why) =
                match UnitPrices::shipped().cost(&invocation, model, !by_tokens.unknown_model) {
                    Some(by_units) => {
                        report.unit_priced_calls += 1;
                        if by_units.fail_closed.is_some() {
                            report.units_assumed.insert(invocation.model_id.clone());
                        }
                        (by_units.usd, by_units.fail_closed.map(FailClosed::Units))
                    }
                    // A text call that failed without saying so.
                    None if !invocation.tokens_counted => {
                        report.without_tokens += 1;
                        continue;
                    }
                    None if by_tokens.unknown_model && prices.finance_for(model).is_some() => (
                        prices.finance_for(model).map_or(by_tokens.usd, |finance| {
                            finance.cost_as(&invocation, model).usd
                        }),
                        None,
                    ),
                    None if by_tokens.unknown_model => {
                        report.unknown_models.insert(invocation.model_id.clone());
                        let why = match route {
                            Some(Err(why)) => FailClosed::Unresolved(why.clone()),
                            _ => FailClosed::UnknownModel,
                        };
                        (by_tokens.usd, Some(why))
                    }
                    None => (by_tokens.usd, None),
                };
            if crate::price::is_provisioned(&invocation.model_id) {
                report.provisioned_calls += 1;
            }
            if let Some(why) = fail_closed_why {
                fail_closed
                    .entry((
                        invocation.model_id.clone(),
                        crate::period::month_key(invocation.at),
                    ))
                    .or_insert((invocation.identity_arn.clone(), why));
            }
            // The same request twice in one batch is counted once (and one transaction may
            // not write one claim twice).
            if !seen.insert(invocation.request_id.clone()) {
                report.duplicates += 1;
                continue;
            }
            calls
                .entry(invocation.identity_arn.clone())
                .or_default()
                .entry(invocation.at.date_naive().to_string())
                .or_default()
                .push(MeteredCall {
                    claim: invocation.request_id,
                    micros: micros_of(usd),
                    model: invocation.model_id,
                });
        }
        for ((model, period), (identity, why)) in &fail_closed {
            pricing
                .report_fail_closed(model, period, identity, why, now)
                .await?;
        }
        if report.malformed > 0 {
            warn!(malformed = report.malformed, reasons = ?report.malformed_reasons, "unreadable invocation log records");
            metrics::count("MeteringMalformedRecords", report.malformed);
        }

        // A capped group's spend is its members': each member's calls count for the group
        // too, under a claim of the group's own (`<request id>@<group>`).
        let groups = self.capped_groups_of(calls.keys()).await?;
        let candidates_of: BTreeMap<&String, Vec<String>> =
            calls.keys().map(|id| (id, candidates(id))).collect();
        let group_arns = groups.values().flatten().map(|g| g.to_string());
        // One read: every candidate's state and counters. Each key once: BatchGetItem
        // refuses duplicates (two people on one role).
        let all: BTreeSet<String> = candidates_of
            .values()
            .flatten()
            .cloned()
            .chain(group_arns)
            .collect();
        let periods: BTreeSet<&str> = calls
            .values()
            .flat_map(|days| days.keys().map(|day| month_of(day)))
            .collect();
        let counters: Vec<(String, String)> = all
            .iter()
            .flat_map(|arn| periods.iter().map(move |p| (arn.clone(), (*p).to_owned())))
            .collect();
        let all: Vec<String> = all.into_iter().collect();
        let read = self.ledger.read_meters(&all, &counters).await?;

        // Who pays: the most specific managed candidate, else the identity itself; and the
        // capped groups a user is in.
        let mut charges: BTreeMap<(String, bool, String), Vec<MeteredCall>> = BTreeMap::new();
        let mut nobodys = Vec::new();
        for (identity, periods) in &calls {
            let charged = candidates_of[identity]
                .iter()
                .find(|c| read.states.contains_key(*c));
            if charged.is_none() {
                nobodys.push(identity);
            }
            let arn = charged.unwrap_or(identity).clone();
            for (period, batch) in periods {
                charges
                    .entry((arn.clone(), charged.is_some(), period.clone()))
                    .or_default()
                    .extend(batch.iter().cloned());
                for group in groups.get(identity).into_iter().flatten() {
                    charges
                        .entry((group.to_string(), true, period.clone()))
                        .or_default()
                        .extend(batch.iter().map(|call| MeteredCall {
                            claim: format!("{}@{group}", call.claim),
                            ..call.clone()
                        }));
                }
            }
        }

        let current = crate::period::month_key(now);
        report.unattributed_sessions = self
            .report_unattributed(nobodys.into_iter(), &current, now)
            .await?;
        // Added by this batch so far, per (arn, month): a batch spanning midnight charges a
        // principal one day after the other.
        let mut added: BTreeMap<(String, String), i64> = BTreeMap::new();
        // The managed principals this batch charged for the current month.
        let mut to_act: Vec<String> = Vec::new();
        // Each principal's transaction is independent of the others': they run side by
        // side (a batch of a thousand people is a thousand transactions), in a fixed order
        // of results; acting on the rungs follows, one principal at a time.
        let counted: Vec<_> = futures::stream::iter(charges)
            .map(|((arn, managed, day), batch)| async move {
                let counted = self.ledger.count_metered(&arn, &day, &batch, now).await;
                (arn, managed, day, counted)
            })
            .buffered(COUNTING_CONCURRENCY)
            .collect()
            .await;
        for (arn, managed, day, counted) in counted {
            let counted = counted?;
            report.counted += counted.calls;
            report.duplicates += counted.duplicates;
            let period = month_of(&day).to_owned();
            let so_far = added.entry((arn.clone(), period.clone())).or_default();
            *so_far = so_far.saturating_add(counted.micros);
            let before = read
                .metered
                .get(&(arn.clone(), period.clone()))
                .copied()
                .unwrap_or(0);
            let metered_micros = before.saturating_add(*so_far);
            let metered = usd_of_micros(metered_micros);
            report.spend.push(MeteredSpend {
                arn: arn.clone(),
                managed,
                period: period.clone(),
                day: day.clone(),
                added_usd: usd_of_micros(counted.micros).to_plain_string(),
                metered_usd: metered.to_plain_string(),
                calls: counted.calls,
            });
            info!(%arn, managed, %period, added_micros = counted.micros, metered = %metered, duplicates = counted.duplicates, "metered");
            // Only this month's spend acts; an ended month's is recorded, never acted on.
            // A redelivery counts nothing new but still acts: if its first delivery died
            // mid-cut, the engine completes the cut from its intent; if not, the claims
            // make the alert a duplicate.
            if period == current && read.states.contains_key(&arn) && !to_act.contains(&arn) {
                to_act.push(arn);
            }
        }
        Box::pin(self.act_on_metered(&to_act, &current, now, &mut report)).await?;
        metrics::count("MeteredCalls", report.counted);
        Ok(report)
    }
}

impl App {
    /// Acts on the ladder for each principal this batch charged, on the figure that
    /// includes this batch and every batch committed before it: the states and counters are
    /// read again (one consistent read) after the counting, so two batches that cross a rung
    /// together both see the crossing, and the rung's claim lets one act. Each principal on
    /// its own: one whose act fails (IAM refuses, the user is gone, a held intent) is
    /// audited `metered_cut_failed` and the others still act; then the invocation fails.
    async fn act_on_metered(
        &self,
        principals: &[String],
        period: &str,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut MeteringReport,
    ) -> Result<(), MeteringError> {
        if principals.is_empty() {
            return Ok(());
        }
        let counters: Vec<(String, String)> = principals
            .iter()
            .map(|arn| (arn.clone(), period.to_owned()))
            .collect();
        let fresh = self.ledger.read_meters(principals, &counters).await?;
        let mut failed = Vec::new();
        for arn in principals {
            let Some(state) = fresh.states.get(arn) else {
                continue;
            };
            let metered_micros = fresh
                .metered
                .get(&(arn.clone(), period.to_owned()))
                .copied()
                .unwrap_or(0);
            let protected =
                state.protected || self.config.protected_principals.contains(&state.principal);
            let action = metered_action(state, &self.config.ladder, metered_micros, protected, now);
            let principal = state.principal.clone();
            let outcome = match action {
                MeteredAction::Nothing => continue,
                MeteredAction::Alert(alert) => {
                    let message_id = format!(
                        "metered#{principal}#{period}#{}",
                        alert.threshold.to_plain_string()
                    );
                    Box::pin(self.act_on_alert(
                        &message_id,
                        &alert,
                        principal.clone(),
                        Source::Metered,
                    ))
                    .await
                    .map(|acted| report.alerts.push(acted))
                    .map_err(|e| e.to_string())
                }
                MeteredAction::CutAgain { spend } => {
                    self.cut_again(&principal, period, spend).await.map(|cut| {
                        if cut {
                            report.cut_again.push(principal.to_string());
                        }
                    })
                }
            };
            if let Err(why) = outcome {
                error!(%principal, error = %why, "metered cut failed; the others in the batch go on");
                failed.push((principal, why));
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        metrics::count("MeteredCutFailed", failed.len());
        let events = failed
            .iter()
            .map(|(principal, why)| {
                let event = AuditEvent::new(
                    now,
                    EventKind::MeteredCutFailed,
                    METERING,
                    serde_json::json!({"period": period, "error": why}),
                );
                (Subject::Principal(principal.clone()), event)
            })
            .collect();
        self.ledger.append(events, now).await?;
        Err(MeteringError::CutsFailed(
            failed
                .into_iter()
                .map(|(p, why)| (p.to_string(), why))
                .collect(),
        ))
    }

    /// A principal at or over its effective cap with access on, though no rung is new: cut
    /// through the engine as reconcile would, decided again on the state each attempt reads
    /// (a concurrent batch or finance may have acted). `true` if this cut.
    async fn cut_again(
        &self,
        principal: &PrincipalArn,
        period: &str,
        spend: Usd,
    ) -> Result<bool, String> {
        let reason = format!("metered: {spend} this month, at or over the effective cap");
        let answer = self
            .change_principal(principal, METERING, &reason, |fresh, now| {
                Ok(crate::change::block_at_cap(fresh, now, period, spend))
            })
            .await
            .map_err(|e| e.to_string())?;
        match answer {
            Ok(answer) => Ok(answer["changed"] == serde_json::Value::Bool(true)),
            Err(refusal) => Err(refusal.message),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The actor of what metering does.
const METERING: &str = "metering";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_on_a_role_is_the_person_first_then_the_role() {
        assert_eq!(
            candidates("arn:aws:sts::123456789012:assumed-role/Dev/alice@example.com"),
            vec![
                "arn:aws:sts::123456789012:assumed-role/Dev/alice@example.com".to_owned(),
                "arn:aws:iam::123456789012:role/Dev".to_owned()
            ]
        );
        assert_eq!(
            candidates("arn:aws:iam::123456789012:user/bob"),
            vec!["arn:aws:iam::123456789012:user/bob".to_owned()]
        );
    }

    #[test]
    fn an_undecodable_batch_is_a_typed_error() {
        let event = LogsEvent {
            awslogs: LogsData {
                data: "not base64!".into(),
            },
        };
        assert!(matches!(
            records_of(&event),
            Err(MeteringError::Undecodable(_))
        ));
    }
}
