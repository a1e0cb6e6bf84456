//! The price rows pricing-sync read from the AWS Price List API, kept in the ledger as
//! `PRICES` / `SYNCED` (the shipped table's text format), for metering to merge over the
//! table it was built with. A newer sync replaces an older one, never the other way round.
//! Finance's prices for models no table knows are `PRICES` / `FINANCE#<family>`, one row
//! each, written with their audit in one transaction.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::cancellation::ItemRole;
use super::{CommitError, Ledger, LedgerError, Subject, dynamo_error, key};
use crate::audit::AuditEvent;
use crate::price::{PriceTable, Row};

const PRICES_PK: &str = "PRICES";
const SYNCED_SK: &str = "SYNCED";
const FINANCE_SK: &str = "FINANCE#";

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

    /// Records finance's `row` and its audit `event` together. `false`: a price for the
    /// family was written since it was read (`replaces`, its previous row's text).
    pub async fn put_finance_price(
        &self,
        row: &Row,
        replaces: Option<&str>,
        event: &AuditEvent,
    ) -> Result<bool, LedgerError> {
        let Some(table) = PriceTable::from_rows(vec![row.clone()]) else {
            return Ok(false);
        };
        let mut item = key(PRICES_PK.to_owned(), &format!("{FINANCE_SK}{}", row.family));
        item.insert("price_row".into(), AttributeValue::S(table.to_csv()));
        let price = match replaces {
            None => self.put(item, "attribute_not_exists(pk)", &[])?,
            Some(previous) => self.put(
                item,
                "price_row = :previous",
                &[(":previous", AttributeValue::S(previous.to_owned()))],
            )?,
        };
        let audit = self.event_put(&Subject::System, event)?;
        match self
            .transact(vec![price, audit], &[ItemRole::State, ItemRole::Event])
            .await
        {
            Ok(()) => Ok(true),
            Err(CommitError::Conflict) => Ok(false),
            Err(CommitError::Ledger(e)) => Err(e),
            Err(e @ (CommitError::Claimed | CommitError::OwnerTaken)) => Err(LedgerError::Dynamo {
                operation: "TransactWriteItems",
                message: format!("recording a finance price: {e}"),
            }),
        }
    }

    /// Finance's rows, each with its item's text (the condition of its replacement).
    pub async fn finance_prices(&self) -> Result<Vec<(Row, String)>, LedgerError> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :finance)")
            .expression_attribute_values(":pk", AttributeValue::S(PRICES_PK.to_owned()))
            .expression_attribute_values(":finance", AttributeValue::S(FINANCE_SK.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error("Query"))?;
        let mut rows = Vec::new();
        for item in answer.items() {
            let text = match item.get("price_row") {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => String::new(),
            };
            let sk = match item.get("sk") {
                Some(AttributeValue::S(s)) => s.as_str(),
                _ => "",
            };
            let table = PriceTable::parse(&text).map_err(|e| LedgerError::Corrupt {
                key: format!("{PRICES_PK}/{sk}"),
                message: e.to_string(),
            })?;
            rows.extend(table.rows().iter().cloned().map(|row| (row, text.clone())));
        }
        Ok(rows)
    }
}
