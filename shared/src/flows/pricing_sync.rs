//! pricing-sync: the AWS Price List API's Bedrock rates for this region
//! (`AmazonBedrockFoundationModels`, `GetProducts` filtered on `regionCode`), read into
//! price rows ([`crate::price_list`]) and recorded in the ledger, where metering merges them
//! over the table it shipped with. A run that reads no usable rate records nothing and
//! fails (alarmed): metering keeps the prices it has.

use aws_config::SdkConfig;
use aws_sdk_pricing::error::DisplayErrorContext;
use aws_sdk_pricing::types::{Filter, FilterType};
use serde::Serialize;
use tracing::{info, warn};

use crate::app::App;
use crate::ledger::LedgerError;
use crate::metrics;
use crate::price_list::rows_from_products;

/// The Price List API answers in a few regions only; us-east-1 serves every region's prices.
const PRICE_LIST_REGION: &str = "us-east-1";
const SERVICE_CODE: &str = "AmazonBedrockFoundationModels";
/// How many skipped products a report names.
const SKIPPED_LISTED: usize = 5;

/// A Price List client (its own region: see [`PRICE_LIST_REGION`]).
pub fn price_list_client(sdk: &SdkConfig) -> aws_sdk_pricing::Client {
    let config = aws_sdk_pricing::config::Builder::from(sdk)
        .region(aws_sdk_pricing::config::Region::new(PRICE_LIST_REGION))
        .build();
    aws_sdk_pricing::Client::from_conf(config)
}

#[derive(Debug, Serialize)]
pub struct PricingSyncReport {
    pub region: String,
    pub products: usize,
    /// The families priced from the Price List, with their global input/output rates.
    pub families: Vec<String>,
    pub skipped: usize,
    pub skipped_examples: Vec<String>,
    /// `false` when a later sync was recorded meanwhile.
    pub recorded: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PricingSyncError {
    #[error("AWS Price List GetProducts failed: {0}")]
    PriceList(String),
    #[error(
        "the Price List had no usable Bedrock rate for {region} ({products} products read); metering keeps its prices"
    )]
    NothingUsable { region: String, products: usize },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl App {
    pub async fn sync_prices(
        &self,
        pricing: &aws_sdk_pricing::Client,
    ) -> Result<PricingSyncReport, PricingSyncError> {
        let region = self
            .sdk
            .region()
            .map_or_else(|| PRICE_LIST_REGION.to_owned(), ToString::to_string);
        let filter = Filter::builder()
            .r#type(FilterType::TermMatch)
            .field("regionCode")
            .value(&region)
            .build()
            .map_err(|e| PricingSyncError::PriceList(e.to_string()))?;
        let mut pages = pricing
            .get_products()
            .service_code(SERVICE_CODE)
            .filters(filter)
            .format_version("aws_v1")
            .into_paginator()
            .send();
        let mut documents = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| PricingSyncError::PriceList(DisplayErrorContext(&e).to_string()))?;
            documents.extend(page.price_list.unwrap_or_default());
        }
        let date = self.now().date_naive().to_string();
        let synced = rows_from_products(&documents, &date);
        if synced.rows.is_empty() {
            metrics::count("PricingSyncEmpty", 1);
            return Err(PricingSyncError::NothingUsable {
                region,
                products: documents.len(),
            });
        }
        let families = synced
            .rows
            .iter()
            .map(|r| {
                format!(
                    "{} ${}/${}",
                    r.family,
                    r.input.normalize(),
                    r.output.normalize()
                )
            })
            .collect();
        let recorded = self
            .ledger
            .put_synced_prices(synced.rows.clone(), self.now())
            .await?;
        if !synced.skipped.is_empty() {
            warn!(skipped = synced.skipped.len(), examples = ?&synced.skipped[..synced.skipped.len().min(SKIPPED_LISTED)], "Price List products not used");
        }
        let report = PricingSyncReport {
            region,
            products: documents.len(),
            families,
            skipped: synced.skipped.len(),
            skipped_examples: synced.skipped.into_iter().take(SKIPPED_LISTED).collect(),
            recorded,
        };
        info!(families = ?report.families, recorded, "prices synced");
        Ok(report)
    }
}
