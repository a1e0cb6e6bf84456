//! What metering prices a batch's calls with: the price table (shipped, with pricing-sync's
//! rows over it), the model each application inference profile routes to, and the reports
//! of what it could not price exactly (an unknown model, a call billed by another unit),
//! each once per model and month. It may read the ledger's prices, write those reports, and
//! ask Bedrock about a profile; nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracing::warn;

use crate::audit::{AuditEvent, EventKind};
use crate::inference_profiles::{InferenceProfiles, ProfileError};
use crate::ledger::{Ledger, LedgerError};
use crate::metrics;
use crate::price::PriceTable;

/// How long a read of pricing-sync's rows is used: a day's sync reaches metering within
/// the hour.
const PRICES_FRESH_FOR: chrono::Duration = chrono::Duration::hours(1);

/// How old a table a batch that met an unknown model prices with: none, so finance's
/// price for it is the next batch's. Such batches are rare (each model is reported and
/// alarmed), and the read is one GetItem and one Query.
pub(crate) const UNKNOWN_FRESH_FOR: chrono::Duration = chrono::Duration::zero();

/// How long a profile Bedrock would not resolve (gone, not readable) is priced fail closed
/// before it is asked again: a grant fixed by the platform team applies within the hour.
const UNRESOLVED_FOR: chrono::Duration = chrono::Duration::hours(1);

/// How many profiles one batch resolves at once.
const RESOLVING_CONCURRENCY: usize = 4;

/// The model a profile routes to, or since when and why Bedrock would not say.
type Route = Result<String, (DateTime<Utc>, String)>;

/// What a metering process remembers about prices between batches.
#[derive(Default)]
pub struct PriceMemory {
    /// The prices and when they were read.
    table: Mutex<Option<(DateTime<Utc>, Arc<Prices>)>>,
    /// Application inference profile → the model it routes to (for good), or why not (and
    /// since when: asked again after [`UNRESOLVED_FOR`]).
    profiles: Mutex<BTreeMap<String, Route>>,
    /// Built on the first profile a batch names: most accounts never name one.
    client: OnceLock<InferenceProfiles>,
    /// (model, period) reported: the ledger's claim says so once and for all; this only
    /// spares the process asking again.
    pub(crate) reported: Mutex<BTreeSet<(String, String)>>,
}

impl PriceMemory {
    /// A memory whose profiles are resolved by `profiles` (a test's client).
    pub fn with_profiles(profiles: InferenceProfiles) -> PriceMemory {
        let memory = PriceMemory::default();
        let _ = memory.client.set(profiles);
        memory
    }
}

/// What a batch is priced with.
pub(crate) struct Prices {
    /// The shipped table with pricing-sync's rows over it: AWS's prices.
    pub known: PriceTable,
    /// Finance's prices, each for exactly one model name (scope and provider stripped):
    /// never a prefix of others, and never for a call billed by units.
    finance: BTreeMap<String, PriceTable>,
}

impl Prices {
    /// Finance's price for exactly `model`, if it set one.
    pub fn finance_for(&self, model: &str) -> Option<&PriceTable> {
        self.finance.get(crate::price::model_name(model))
    }
}

/// The ports pricing uses.
pub(crate) struct MeteredPrices<'a> {
    pub ledger: &'a Ledger,
    pub sdk: &'a SdkConfig,
    pub memory: &'a PriceMemory,
}

/// Why a call was priced at the table's highest rate, for its report.
pub(crate) enum FailClosed {
    /// The table has no row for the model the call names (or its profile routes to).
    UnknownModel,
    /// An application inference profile Bedrock would not resolve.
    Unresolved(String),
    /// A call billed by units whose record does not say how many, or of a model neither
    /// table knows: why, and what it was priced as.
    Units(&'static str),
}

impl MeteredPrices<'_> {
    /// The table calls are priced with: the shipped one, with the rows of pricing-sync's
    /// latest run (the AWS Price List API) over it, and finance's rows for models neither
    /// has; read at most hourly, or when it is older than `fresh_within` (a batch that met
    /// a model AWS's prices lack reads them again: finance may just have priced it, or
    /// corrected its price). Until
    /// a sync has run, or if its record cannot be read, the shipped table prices.
    pub async fn table(
        &self,
        now: DateTime<Utc>,
        fresh_within: chrono::Duration,
    ) -> Result<Arc<Prices>, LedgerError> {
        let fresh_within = fresh_within.min(PRICES_FRESH_FOR);
        let cached = self.memory.table.lock().ok().and_then(|p| {
            p.as_ref()
                .filter(|(at, _)| *at <= now && now.signed_duration_since(*at) < fresh_within)
                .map(|(_, table)| table.clone())
        });
        if let Some(table) = cached {
            return Ok(table);
        }
        let known = match self.ledger.synced_prices().await {
            Ok(Some((rows, synced_at))) => {
                tracing::debug!(%synced_at, families = rows.len(), "prices from pricing-sync");
                crate::price_list::merged(PriceTable::shipped(), &rows)
            }
            Ok(None) => PriceTable::shipped().clone(),
            // A record that does not read: price with the shipped table, say so loudly.
            Err(LedgerError::Corrupt { key, message }) => {
                warn!(%key, %message, "pricing-sync's prices unreadable: the shipped table prices");
                PriceTable::shipped().clone()
            }
            Err(e) => return Err(e),
        };
        let finance = match self.ledger.finance_prices().await {
            Ok(rows) => rows,
            Err(LedgerError::Corrupt { key, message }) => {
                warn!(%key, %message, "finance's prices unreadable: priced without them");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        // Finance's rows only where no other row prices the model: never cheaper than AWS.
        let finance = finance
            .into_iter()
            .map(|(row, _)| row)
            .filter(|row| known.row_for(&row.family).is_none())
            .filter_map(|row| Some((row.family.clone(), PriceTable::from_rows(vec![row])?)))
            .collect();
        let table = Arc::new(Prices { known, finance });
        if let Ok(mut memory) = self.memory.table.lock() {
            *memory = Some((now, table.clone()));
        }
        Ok(table)
    }

    /// The model each application inference profile of `profiles` routes to, or why it is
    /// not known (then its calls are priced fail closed). A transient failure fails the
    /// batch before anything is counted, so Lambda's retry prices it right.
    pub async fn resolve(
        &self,
        profiles: BTreeSet<String>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Result<String, String>>, ProfileError> {
        let mut resolved = BTreeMap::new();
        let mut ask = Vec::new();
        if let Ok(memory) = self.memory.profiles.lock() {
            for profile in profiles {
                match memory.get(&profile) {
                    Some(Ok(model)) => {
                        resolved.insert(profile, Ok(model.clone()));
                    }
                    Some(Err((since, why)))
                        if now.signed_duration_since(*since) < UNRESOLVED_FOR =>
                    {
                        resolved.insert(profile, Err(why.clone()));
                    }
                    _ => ask.push(profile),
                }
            }
        }
        if ask.is_empty() {
            return Ok(resolved);
        }
        let client = self
            .memory
            .client
            .get_or_init(|| InferenceProfiles::from_sdk(self.sdk));
        let answers: Vec<_> = futures::stream::iter(ask)
            .map(|profile| async move {
                let model = client.model_of(&profile).await;
                (profile, model)
            })
            .buffer_unordered(RESOLVING_CONCURRENCY)
            .collect()
            .await;
        for (profile, answer) in answers {
            let answer = match answer {
                Ok(model) => Ok(model),
                Err(ProfileError::Unresolvable { why, .. }) => {
                    warn!(%profile, %why, "application inference profile not resolved: its calls are priced fail closed");
                    Err(why)
                }
                Err(transient @ ProfileError::Transient { .. }) => return Err(transient),
            };
            if let Ok(mut memory) = self.memory.profiles.lock() {
                memory.insert(profile.clone(), answer.clone().map_err(|why| (now, why)));
            }
            resolved.insert(profile, answer);
        }
        Ok(resolved)
    }

    /// A call priced at the table's highest rate (fail closed) is reported once per model
    /// and period: an audit entry under seatcap's own subject, with a claim so that no
    /// other batch or process reports it again, and the `UnknownModelPrices` metric
    /// (alarmed) so the platform team adds its price or the grant.
    pub async fn report_fail_closed(
        &self,
        model: &str,
        period: &str,
        identity: &str,
        why: &FailClosed,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let key = (model.to_owned(), period.to_owned());
        let reported = &self.memory.reported;
        if reported.lock().is_ok_and(|r| r.contains(&key)) {
            return Ok(());
        }
        let priced_as = match why {
            FailClosed::Units(how) => *how,
            _ => "the price table's highest rates",
        };
        let mut details = serde_json::json!({"model": model, "period": period,
            "first_caller": identity, "priced_as": priced_as});
        if let FailClosed::Unresolved(unresolved) = why {
            details["profile_not_resolved"] = unresolved.clone().into();
        }
        let event = AuditEvent::new(now, EventKind::UnknownModelPriced, "metering", details);
        let claim = format!("unknown-model#{model}#{period}");
        if self
            .ledger
            .report_once(
                reported,
                key,
                claim,
                event,
                "an unknown model's first price",
            )
            .await?
        {
            warn!(%model, %period, first_caller = %identity, "model not priced by the table: metered at its highest rate");
            metrics::count("UnknownModelPrices", 1);
        }
        Ok(())
    }
}
