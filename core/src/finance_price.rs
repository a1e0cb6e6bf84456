//! Finance's price for a model seatcap does not know yet (`set_price`): until a row ships or
//! pricing-sync reads one, metering would price its calls at the table's highest rate. Only
//! a model no table prices may be given one, so no one can make a known model cheaper.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::price::{Row, model_id_of, model_name};
use crate::request::{Refusal, parse_actor_reason};

/// `{"action": "set_price", "model": ..., "input_per_million_usd": "2.50",
/// "output_per_million_usd": "10", "actor": ..., "reason": ...}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPrice {
    /// As calls name it: a model id, a profile id or their ARN.
    pub model: String,
    pub input_per_million_usd: String,
    pub output_per_million_usd: String,
    pub actor: String,
    pub reason: String,
}

/// The longest model name accepted.
const MAX_MODEL: usize = 200;

/// The row `request` asks for (the model's own name as its family, one rate for every
/// scope), and who asks why; or why not.
pub fn validate_set_price(
    request: &SetPrice,
    today: DateTime<Utc>,
) -> Result<(Row, (String, String)), Refusal> {
    let who = parse_actor_reason(&request.actor, &request.reason)?;
    let named = request.model.trim();
    let family = model_name(named);
    let plausible = !family.is_empty()
        && named.len() <= MAX_MODEL
        && family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        && !model_id_of(named).starts_with("arn:");
    if !plausible {
        return Err(Refusal::new(
            "invalid_model",
            format!(
                "`{named}` is not a model id as Bedrock names it (e.g. \
                 `us.acme.model-x-v1:0`, or its foundation-model or inference-profile ARN)"
            ),
        ));
    }
    let price = |text: &str, what: &str| {
        text.trim()
            .parse::<Decimal>()
            .ok()
            .filter(|d| *d > Decimal::ZERO && *d < Decimal::from(1_000_000))
            .ok_or_else(|| {
                Refusal::new(
                    "invalid_price",
                    format!(
                        "{what} `{text}` is not a price in USD per million tokens above 0 \
                         and below 1,000,000"
                    ),
                )
            })
    };
    let row = Row {
        family: family.to_owned(),
        input: price(&request.input_per_million_usd, "input_per_million_usd")?,
        output: price(&request.output_per_million_usd, "output_per_million_usd")?,
        regional_multiplier: Decimal::ONE,
        source: format!("finance ({}: {})", who.0, who.1).replace([',', '\n', '\r'], " "),
        date: today.format("%Y-%m-%d").to_string(),
        long_context: None,
    };
    Ok((row, who))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(model: &str, input: &str, output: &str) -> SetPrice {
        SetPrice {
            model: model.into(),
            input_per_million_usd: input.into(),
            output_per_million_usd: output.into(),
            actor: "arn:aws:iam::1:user/fin".into(),
            reason: "new model, sales quote, no commas".into(),
        }
    }

    #[test]
    fn a_price_is_the_models_own_row_at_one_rate() {
        let (row, (actor, _)) =
            validate_set_price(&request("us.acme.model-x-v1:0", "2.5", "10"), Utc::now()).unwrap();
        assert_eq!(row.family, "model-x-v1:0");
        assert_eq!((row.input, row.output), (Decimal::new(25, 1), Decimal::TEN));
        assert_eq!(row.regional_multiplier, Decimal::ONE);
        assert!(
            row.source.starts_with("finance (arn:aws:iam::1:user/fin"),
            "{row:?}"
        );
        assert!(!row.source.contains(','), "the table is CSV");
        assert_eq!(actor, "arn:aws:iam::1:user/fin");
        let arn = "arn:aws:bedrock:us-east-1::foundation-model/acme.model-x-v1:0";
        assert_eq!(
            validate_set_price(&request(arn, "2.5", "10"), Utc::now())
                .unwrap()
                .0
                .family,
            "model-x-v1:0"
        );
    }

    #[test]
    fn nothing_free_nothing_unreadable() {
        for (model, input, output, code) in [
            ("acme.model-x", "0", "10", "invalid_price"),
            ("acme.model-x", "2", "-1", "invalid_price"),
            ("acme.model-x", "2", "ten", "invalid_price"),
            ("acme.model-x", "2", "1000000", "invalid_price"),
            ("", "2", "10", "invalid_model"),
            ("acme.model x", "2", "10", "invalid_model"),
            ("acme.model,x", "2", "10", "invalid_model"),
            (
                "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc",
                "2",
                "10",
                "invalid_model",
            ),
        ] {
            let refused = validate_set_price(&request(model, input, output), Utc::now());
            assert_eq!(refused.unwrap_err().code, code, "{model} {input} {output}");
        }
    }
}
