//! The price rows pricing-sync read from the AWS Price List API, kept in the ledger as
//! `PRICES` / `SYNCED` (the shipped table's text format), for metering to merge over the
//! table it was built with. A newer sync replaces an older one, never the other way round.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{Ledger, LedgerError, dynamo_error, key};
use crate::price::{PriceTable, Row};

const PRICES_PK: &str = "PRICES";
const SYNCED_SK: &str = "SYNCED";

impl Ledger {
    /// Records `rows` as read at `at`, unless a later sync is recorded already.
    pub async fn put_synced_prices(
        &self,
        rows: Vec<Row>,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let Some(table) = PriceTable::from_rows(rows) else {
            return Ok(false);
        };
        let mut item = key(PRICES_PK.to_owned(), SYNCED_SK);
        item.insert("table".into(), AttributeValue::S(table.to_csv()));
        item.insert("synced_at".into(), AttributeValue::S(at.to_rfc3339()));
        item.insert(
            "families".into(),
            AttributeValue::N(table.rows().len().to_string()),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR synced_at < :at")
            .expression_attribute_values(":at", AttributeValue::S(at.to_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(dynamo_error("PutItem")(e)),
        }
    }

    /// The rows of the latest sync and when it ran (`None`: never synced). Rows that do
    /// not read are an error: metering then keeps the table it has.
    pub async fn synced_prices(&self) -> Result<Option<(Vec<Row>, String)>, LedgerError> {
        let found = self
            .batch_get(vec![key(PRICES_PK.to_owned(), SYNCED_SK)])
            .await?;
        let Some(item) = found.into_iter().next() else {
            return Ok(None);
        };
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        };
        let table = PriceTable::parse(&text("table")).map_err(|e| LedgerError::Corrupt {
            key: format!("{PRICES_PK}/{SYNCED_SK}"),
            message: e.to_string(),
        })?;
        Ok(Some((table.rows().to_vec(), text("synced_at"))))
    }
}
