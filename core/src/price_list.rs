//! The AWS Price List API's Bedrock products (`GetProducts`, service code
//! `AmazonBedrockFoundationModels`) read into price table rows, for the daily pricing-sync.
//!
//! A product is one rate: `product.attributes.servicename` names the model ("Claude Sonnet
//! 4.5 (Amazon Bedrock Edition)"), `product.attributes.usagetype` the component and scope
//! (`USE1-MP:USE1_InputTokenCount_Global-Units`: input tokens at the global rate; without
//! `_Global` the regional rate; `_Batch` batch), and `terms.OnDemand.*.priceDimensions.*`
//! the price (`pricePerUnit.USD` per `unit`, "1M tokens" or "1K tokens"). Newer models
//! publish another grammar (`USE1-MP:USE1_input_tokens_standard-Units`,
//! `..._output_tokens_global_standard-Units`, some without the region prefix, with units
//! like "Million Response Tokens" or Marketplace's `Units`), read the same. Only on-demand
//! input and output rates of named models become rows; everything else is skipped and
//! said why. The table's cache multipliers (0.1x read, 1.25x/2x write) stay as they are.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::price::{PriceTable, Row};

/// One product's rate, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rate {
    family: String,
    global: bool,
    output: bool,
    per_million: Decimal,
}

/// What a sync read: the rows it could build, and the products it left out (and why).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Synced {
    pub rows: Vec<Row>,
    pub skipped: Vec<String>,
}

/// A model's family from its Price List name: "Claude Sonnet 4.5 (Amazon Bedrock Edition)"
/// → `claude-sonnet-4-5`, the form model ids carry.
pub fn family_of(servicename: &str) -> Option<String> {
    let name = servicename.trim();
    let name = name
        .strip_suffix("(Amazon Bedrock Edition)")
        .unwrap_or(name)
        .trim()
        .to_lowercase();
    let family: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    (!family.is_empty()).then_some(family)
}

/// Reads one product document; `Err` says why it is not an on-demand token rate of a model.
fn rate_of(document: &str) -> Result<Rate, String> {
    let product: Value = serde_json::from_str(document).map_err(|e| format!("not JSON: {e}"))?;
    let attributes = &product["product"]["attributes"];
    let usagetype = attributes["usagetype"].as_str().unwrap_or_default();
    let servicename = attributes["servicename"].as_str().unwrap_or_default();
    // `USE1-MP:USE1_InputTokenCount_Global-Units` (the older grammar) or
    // `USE1-MP:USE1_input_tokens_global_standard-Units` (the newer models'); the region
    // prefix after `MP:` may be absent.
    let not_a_token_rate = || format!("usage type {usagetype:?} is not a token rate");
    let after = usagetype
        .split_once("MP:")
        .map(|(_, rest)| rest.trim_end_matches("-Units"))
        .ok_or_else(not_a_token_rate)?;
    let component = match after.split_once('_') {
        Some((region, rest))
            if !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            rest
        }
        _ => after,
    };
    let newer_grammar = component.ends_with("_standard");
    let (output, global) = match component {
        "input_tokens_standard" => (false, false),
        "input_tokens_global_standard" => (false, true),
        "output_tokens_standard" => (true, false),
        "output_tokens_global_standard" => (true, true),
        newer if newer.contains("_tokens") => {
            return Err(format!(
                "{usagetype}: a {newer} rate, not on-demand input or output"
            ));
        }
        older => {
            let mut parts = older.split('_');
            let output = match parts.next() {
                Some("InputTokenCount") => false,
                Some("OutputTokenCount") => true,
                _ => return Err(format!("{usagetype}: not an input or output rate")),
            };
            let mut global = false;
            for flag in parts {
                match flag {
                    "Global" => global = true,
                    other => return Err(format!("{usagetype}: a {other} rate, not on-demand")),
                }
            }
            (output, global)
        }
    };
    let family = family_of(servicename).ok_or_else(|| format!("{usagetype}: no model name"))?;
    let dimension = product["terms"]["OnDemand"]
        .as_object()
        .into_iter()
        .flat_map(|terms| terms.values())
        .filter_map(|term| term["priceDimensions"].as_object())
        .flat_map(|dimensions| dimensions.values())
        .next()
        .ok_or_else(|| format!("{usagetype}: no on-demand price"))?;
    let price: Decimal = dimension["pricePerUnit"]["USD"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .filter(|p: &Decimal| *p > Decimal::ZERO && *p < Decimal::from(1_000_000))
        .ok_or_else(|| format!("{usagetype}: no usable USD price"))?;
    let unit = dimension["unit"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    // Marketplace's `Units` of a `-Units` token usage type are millions of tokens (as the
    // bill's usage amounts are).
    let marketplace_units = unit == "units" && newer_grammar && usagetype.ends_with("-Units");
    let per_million = if unit.contains("1m") || unit.contains("million") || marketplace_units {
        price
    } else if unit.contains("1k") || unit.contains("thousand") {
        price * Decimal::from(1000)
    } else {
        return Err(format!(
            "{usagetype}: unit {unit:?} is not per 1K or 1M tokens"
        ));
    };
    Ok(Rate {
        family,
        global,
        output,
        per_million,
    })
}

/// Rows from `GetProducts` documents, dated `date`. A family gets a row when its global
/// (or, lacking it, regional) input and output rates are both there; the regional
/// multiplier is regional input over global input (1 when either is missing).
pub fn rows_from_products(documents: &[String], date: &str) -> Synced {
    let mut synced = Synced::default();
    // family → (global?, output?) → price per million
    let mut rates: BTreeMap<String, BTreeMap<(bool, bool), Decimal>> = BTreeMap::new();
    for document in documents {
        match rate_of(document) {
            Ok(rate) => {
                rates
                    .entry(rate.family)
                    .or_default()
                    .insert((rate.global, rate.output), rate.per_million);
            }
            Err(why) => synced.skipped.push(why),
        }
    }
    for (family, rates) in rates {
        let at = |global: bool, output: bool| rates.get(&(global, output)).copied();
        let (input, output) = match (at(true, false), at(true, true)) {
            (Some(i), Some(o)) => (i, o),
            _ => match (at(false, false), at(false, true)) {
                (Some(i), Some(o)) => (i, o),
                _ => {
                    synced
                        .skipped
                        .push(format!("{family}: no input and output rate of one scope"));
                    continue;
                }
            },
        };
        let regional_multiplier = match (at(false, false), at(true, false)) {
            (Some(regional), Some(global)) => regional
                .checked_div(global)
                .map(|m| m.round_dp(4))
                .unwrap_or(Decimal::ONE),
            _ => Decimal::ONE,
        };
        synced.rows.push(Row {
            family,
            input,
            output,
            regional_multiplier,
            source: "AWS Price List API (AmazonBedrockFoundationModels)".into(),
            date: date.to_owned(),
            // The Price List's long-context products are not read: the shipped rows' stay.
            long_context: None,
        });
    }
    synced
}

/// The table metering prices with: the shipped rows, each replaced by the synced row of
/// its family when there is one, and the synced families the shipped table lacks.
pub fn merged(shipped: &PriceTable, synced: &[Row]) -> PriceTable {
    let mut rows: BTreeMap<String, Row> = shipped
        .rows()
        .iter()
        .map(|row| (row.family.clone(), row.clone()))
        .collect();
    for row in synced {
        let mut row = row.clone();
        if row.long_context.is_none() {
            row.long_context = rows
                .get(&row.family)
                .and_then(|shipped| shipped.long_context);
        }
        rows.insert(row.family.clone(), row);
    }
    PriceTable::from_rows(rows.into_values().collect()).unwrap_or_else(|| shipped.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn product(servicename: &str, usagetype: &str, usd: &str, unit: &str) -> String {
        json!({"product": {"productFamily": "", "attributes": {"servicename": servicename,
            "usagetype": usagetype, "regionCode": "us-east-1"}, "sku": "X"},
            "terms": {"OnDemand": {"X.T": {"priceDimensions": {"X.T.D": {"unit": unit,
                "pricePerUnit": {"USD": usd}, "description": ""}}}}}})
        .to_string()
    }

    const SONNET: &str = "Claude Sonnet 4.5 (Amazon Bedrock Edition)";

    #[test]
    fn a_models_global_and_regional_rates_make_one_row() {
        let documents = vec![
            product(
                SONNET,
                "USE1-MP:USE1_InputTokenCount_Global-Units",
                "3.0000000000",
                "1M tokens",
            ),
            product(
                SONNET,
                "USE1-MP:USE1_OutputTokenCount_Global-Units",
                "15",
                "1M tokens",
            ),
            product(
                SONNET,
                "USE1-MP:USE1_InputTokenCount-Units",
                "3.3",
                "1M tokens",
            ),
            product(
                SONNET,
                "USE1-MP:USE1_OutputTokenCount-Units",
                "16.5",
                "1M tokens",
            ),
            product(
                SONNET,
                "USE1-MP:USE1_InputTokenCount_Batch-Units",
                "1.5",
                "1M tokens",
            ),
            product(
                SONNET,
                "USE1-MP:USE1_CacheReadInputTokenCount_Global-Units",
                "0.3",
                "1M tokens",
            ),
            product(
                "Claude Haiku 4.5",
                "USE1-MP:USE1_InputTokenCount-Units",
                "0.0011",
                "1K tokens",
            ),
            product(
                "Claude Haiku 4.5",
                "USE1-MP:USE1_OutputTokenCount-Units",
                "0.0055",
                "1K tokens",
            ),
            product(
                "Claude Opus 9",
                "USE1-MP:USE1_InputTokenCount_Global-Units",
                "0",
                "1M tokens",
            ),
            "not json".into(),
        ];
        let synced = rows_from_products(&documents, "2026-12-02");
        let row = |family: &str| synced.rows.iter().find(|r| r.family == family).cloned();
        let sonnet = row("claude-sonnet-4-5").expect("a Sonnet row");
        assert_eq!(
            (sonnet.input, sonnet.output, sonnet.regional_multiplier),
            (Decimal::from(3), Decimal::from(15), "1.1".parse().unwrap())
        );
        // Only regional rates, per 1K tokens: per million, multiplier 1.
        let haiku = row("claude-haiku-4-5").expect("a Haiku row");
        assert_eq!(
            (haiku.input, haiku.output, haiku.regional_multiplier),
            ("1.1".parse().unwrap(), "5.5".parse().unwrap(), Decimal::ONE)
        );
        // A zero price is no price; a lone input rate is no row.
        assert!(row("claude-opus-9").is_none());
        assert_eq!(synced.skipped.len(), 4, "{:?}", synced.skipped);
    }

    /// The newer grammar, as the public record shows it (no verbatim `GetProducts` document
    /// of these products is published): `USE1-MP:USE1_input_tokens_standard-Units` and
    /// `USE1_output_tokens_standard-Units` with their SKUs for Opus 5 and Sonnet 5.5, read
    /// from `pricing get-products` on 2026-10-01 (a public repository's model table, found
    /// by `search`); the `_global_standard` forms, the flat form without a region, and the
    /// batch, flex, priority and cache dimensions beside them (a public Bedrock pricing
    /// parser's notes on the same offer, 2026-09). Figures: Opus 5's published $5.50 / $27.50
    /// regional and 10 % less global.
    #[test]
    fn the_newer_usage_type_grammar_reads_the_same() {
        const OPUS: &str = "Claude Opus 5 (Amazon Bedrock Edition)";
        let documents = vec![
            product(
                OPUS,
                "USE1-MP:USE1_input_tokens_standard-Units",
                "5.5",
                "1M tokens",
            ),
            product(
                OPUS,
                "USE1-MP:USE1_output_tokens_standard-Units",
                "27.5",
                "Million Response Tokens",
            ),
            product(
                OPUS,
                "USE1-MP:USE1_input_tokens_global_standard-Units",
                "5",
                "Units",
            ),
            product(
                OPUS,
                "USE1-MP:USE1_output_tokens_global_standard-Units",
                "25",
                "Units",
            ),
            product(
                OPUS,
                "USE1-MP:USE1_input_tokens_batch-Units",
                "2.75",
                "1M tokens",
            ),
            product(
                OPUS,
                "USE1-MP:USE1_cache_write_tokens_1h_standard-Units",
                "11",
                "1M tokens",
            ),
            product(OPUS, "USE1-MP:input_tokens_flex-Units", "2", "1M tokens"),
            product(
                "GPT Six (Amazon Bedrock Edition)",
                "USE1-MP:input_tokens_standard-Units",
                "1.25",
                "1M tokens",
            ),
            product(
                "GPT Six (Amazon Bedrock Edition)",
                "USE1-MP:output_tokens_standard-Units",
                "10",
                "1M tokens",
            ),
        ];
        let synced = rows_from_products(&documents, "2026-12-03");
        let row = |family: &str| synced.rows.iter().find(|r| r.family == family).cloned();
        let opus = row("claude-opus-5").expect("an Opus 5 row");
        assert_eq!(
            (opus.input, opus.output, opus.regional_multiplier),
            (Decimal::from(5), Decimal::from(25), "1.1".parse().unwrap())
        );
        let flat = row("gpt-six").expect("a row from the flat form");
        assert_eq!(
            (flat.input, flat.output),
            ("1.25".parse().unwrap(), Decimal::TEN)
        );
        assert_eq!(
            synced.skipped.len(),
            3,
            "batch, cache, flex: {:?}",
            synced.skipped
        );
        assert!(
            synced
                .skipped
                .iter()
                .any(|s| s.contains("cache_write_tokens_1h_standard"))
        );
    }

    #[test]
    fn synced_rows_replace_their_familys_shipped_row_and_keep_the_rest() {
        let shipped = PriceTable::shipped();
        let synced = vec![Row {
            family: "claude-sonnet-4-5".into(),
            input: Decimal::from(4),
            output: Decimal::from(20),
            regional_multiplier: Decimal::ONE,
            source: "AWS Price List API (AmazonBedrockFoundationModels)".into(),
            date: "2026-12-02".into(),
            long_context: None,
        }];
        let table = merged(shipped, &synced);
        assert_eq!(table.rows().len(), shipped.rows().len());
        let sonnet = table.row_for("global.anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert_eq!(sonnet.map(|r| r.output), Some(Decimal::from(20)));
        let opus = table.row_for("global.anthropic.claude-opus-4-5-20251101-v1:0");
        assert_eq!(opus.map(|r| r.output), Some(Decimal::from(25)));
        // Stored in the ledger as text, read back the same.
        assert_eq!(PriceTable::parse(&table.to_csv()), Ok(table));
    }

    #[test]
    fn names_become_the_families_model_ids_carry() {
        assert_eq!(family_of(SONNET).as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(
            family_of("Claude Opus 4.1").as_deref(),
            Some("claude-opus-4-1")
        );
        assert_eq!(family_of(" ( ) "), None);
    }

    proptest::proptest! {
        #[test]
        fn no_document_panics_the_reader(text in "\\PC*") {
            let _ = rows_from_products(&[text], "2026-12-02");
        }
    }
}
