//! `set_price`: finance's price for a model no table prices yet, so its calls stop being
//! metered at the table's highest rate. It may read the price tables and write one price
//! row with its audit; nothing else. A model the shipped table, pricing-sync or the unit
//! table prices is refused: finance's price can make nothing cheaper than AWS says it is.

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::info;

use crate::audit::{AuditEvent, EventKind};
use crate::finance_price::{SetPrice, validate_set_price};
use crate::ledger::{Ledger, LedgerError};
use crate::price::PriceTable;
use crate::request::Refusal;
use crate::unit_price::UnitPrices;

/// How often a price written between a read and its write is read again.
const ATTEMPTS: usize = 3;

pub(crate) struct FinancePrices<'a> {
    pub ledger: &'a Ledger,
    /// Whether AWS verified the caller (the audit says so).
    pub actor_verified: Option<bool>,
}

impl FinancePrices<'_> {
    pub async fn set(
        &self,
        request: &SetPrice,
        now: DateTime<Utc>,
    ) -> Result<Result<serde_json::Value, Refusal>, LedgerError> {
        let (row, (actor, reason)) = match validate_set_price(request, now) {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let synced = self.ledger.synced_prices().await?;
        let known = match synced {
            Some((rows, _)) => crate::price_list::merged(PriceTable::shipped(), &rows),
            None => PriceTable::shipped().clone(),
        };
        let model = request.model.trim();
        if let Some(priced) = known.row_for(model) {
            return Ok(Err(Refusal::new(
                "model_already_priced",
                format!(
                    "{model} is priced by the `{}` row ({} / {} per million tokens, {}): \
                     finance prices only models no table knows",
                    priced.family, priced.input, priced.output, priced.source
                ),
            )));
        }
        if let Some(priced) = UnitPrices::shipped().row_for(model) {
            return Ok(Err(Refusal::new(
                "model_already_priced",
                format!(
                    "{model} is billed per unit (`{}`, {} each): it has no token price",
                    priced.family, priced.usd
                ),
            )));
        }
        for _ in 0..ATTEMPTS {
            let previous = self
                .ledger
                .finance_prices()
                .await?
                .into_iter()
                .find(|(r, _)| r.family == row.family);
            let detail = json!({"model": model, "family": row.family,
                "input_per_million_usd": row.input.to_string(),
                "output_per_million_usd": row.output.to_string(),
                "replaces": previous.as_ref().map(|(r, _)| json!({
                    "input_per_million_usd": r.input.to_string(),
                    "output_per_million_usd": r.output.to_string(), "source": r.source}))});
            let event = AuditEvent {
                actor_verified: self.actor_verified,
                ..AuditEvent::new(now, EventKind::PriceSet, &actor, detail.clone())
            }
            .because(&reason);
            let written = self
                .ledger
                .put_finance_price(
                    &row,
                    previous.as_ref().map(|(_, text)| text.as_str()),
                    &event,
                )
                .await?;
            if written {
                info!(%model, family = %row.family, %actor, "finance set a model's price");
                let mut answer = detail;
                answer["ok"] = true.into();
                answer["used_from"] = "the next metering batch that calls the model".into();
                return Ok(Ok(answer));
            }
        }
        Ok(Err(Refusal::new(
            "conflict",
            format!("{model}'s price kept changing while it was set: try again"),
        )))
    }
}
