//! Calls Bedrock bills by another unit than tokens: an image, a second of video
//! (`core/data/unit_prices.csv`, each row with its source and date). Such a call is never
//! counted as nothing: a model neither table knows, or a record that does not say how many
//! units it made, is priced fail closed and reported.

use rust_decimal::Decimal;

use crate::invocation::Invocation;
use crate::money::Usd;
use crate::price::{PriceTableError, longest_family};

const SHIPPED: &str = include_str!("../data/unit_prices.csv");

/// A video's length when the record does not give it: one shot of Nova Reel's.
const ASSUMED_VIDEO_SECONDS: u64 = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Image,
    VideoSecond,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitRow {
    pub family: String,
    pub unit: Unit,
    pub usd: Decimal,
    pub source: String,
    pub date: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitPrices {
    rows: Vec<UnitRow>,
}

/// What a call billed by units costs, and why it was priced fail closed, if it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitCost {
    pub usd: Usd,
    pub fail_closed: Option<&'static str>,
}

impl UnitPrices {
    /// The table shipped with this build, read once per process.
    pub fn shipped() -> &'static UnitPrices {
        static TABLE: std::sync::OnceLock<UnitPrices> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| {
            UnitPrices::parse(SHIPPED).expect("the shipped unit price table parses (unit-tested)")
        })
    }

    /// `family,unit,usd,source,date` rows (`unit` is `image` or `video_second`); `#` comments.
    pub fn parse(text: &str) -> Result<UnitPrices, PriceTableError> {
        let mut rows = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("family,") {
                continue;
            }
            let bad = |problem: String| PriceTableError {
                line: n + 1,
                problem,
            };
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [family, unit, usd, source, date] = fields[..] else {
                return Err(bad("expected 5 comma-separated fields".into()));
            };
            let unit = match unit {
                "image" => Unit::Image,
                "video_second" => Unit::VideoSecond,
                other => return Err(bad(format!("unit `{other}` is not image or video_second"))),
            };
            let usd = usd
                .parse::<Decimal>()
                .ok()
                .filter(|d| *d > Decimal::ZERO && *d < Decimal::from(1_000))
                .ok_or_else(|| bad(format!("usd `{usd}` is not a price")))?;
            rows.push(UnitRow {
                family: family.to_owned(),
                unit,
                usd,
                source: source.to_owned(),
                date: date.to_owned(),
            });
        }
        if rows.is_empty() {
            return Err(PriceTableError {
                line: 0,
                problem: "no rows".into(),
            });
        }
        Ok(UnitPrices { rows })
    }

    pub fn rows(&self) -> &[UnitRow] {
        &self.rows
    }

    /// The row for `model`: the longest family its name starts with.
    pub fn row_for(&self, model: &str) -> Option<&UnitRow> {
        longest_family(model, &self.rows, |row| &row.family)
    }

    /// What `invocation` costs priced as `model`, if it is billed by units: its model has a
    /// row here, or it carried no token counts and `tokens_priced` says the token table does
    /// not know its model either (then the highest rate here, for what it made). `None`: a
    /// call billed by tokens (or a text call that failed without saying so).
    pub fn cost(
        &self,
        invocation: &Invocation,
        model: &str,
        tokens_priced: bool,
    ) -> Option<UnitCost> {
        let units = &invocation.units;
        let (row, fail_closed) = match self.row_for(model) {
            Some(row) => (row.clone(), None),
            // A model no table knows that made images or video, or logged no token counts:
            // a prompt's few tokens are not what it cost.
            None if !tokens_priced
                && (!invocation.tokens_counted
                    || units.images.is_some()
                    || units.video_seconds.is_some()) =>
            {
                (
                    self.highest(units.video_seconds.is_some()),
                    Some(
                        "a model neither price table knows, billed by neither tokens nor a known unit",
                    ),
                )
            }
            None => return None,
        };
        let (count, fail_closed) = match (row.unit, units.images, units.video_seconds) {
            (Unit::Image, Some(images), _) => (images, fail_closed),
            (Unit::VideoSecond, _, Some(seconds)) => (seconds, fail_closed),
            (Unit::Image, None, _) => (
                1,
                fail_closed.or(Some(
                    "the record does not say how many images: priced as one",
                )),
            ),
            (Unit::VideoSecond, _, None) => (
                ASSUMED_VIDEO_SECONDS,
                fail_closed.or(Some(
                    "the record does not say how long the video is: priced as 6 seconds",
                )),
            ),
        };
        let usd = row
            .usd
            .checked_mul(Decimal::from(count))
            .unwrap_or(Decimal::MAX);
        let usd = if invocation.batch {
            usd / Decimal::TWO
        } else {
            usd
        };
        Some(UnitCost {
            usd: Usd::new(usd),
            fail_closed,
        })
    }

    fn highest(&self, video: bool) -> UnitRow {
        let unit = if video {
            Unit::VideoSecond
        } else {
            Unit::Image
        };
        let usd = self
            .rows
            .iter()
            .filter(|r| r.unit == unit)
            .map(|r| r.usd)
            .max()
            .unwrap_or(Decimal::ONE);
        UnitRow {
            family: "(unknown: highest rate)".into(),
            unit,
            usd,
            source: "fail closed".into(),
            date: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::parse_record;
    use serde_json::{Value, json};

    fn record(model: &str, input: Value, output: Value) -> Invocation {
        let text = json!({"schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
            "timestamp": "2026-12-01T10:21:07Z", "identity": {"arn": "arn:aws:iam::1:user/a"},
            "requestId": "r", "operation": "InvokeModel", "modelId": model,
            "input": input, "output": output})
        .to_string();
        parse_record(&text).unwrap().unwrap()
    }

    fn usd(text: &str) -> Usd {
        Usd::new(text.parse().unwrap())
    }

    #[test]
    fn the_shipped_table_parses_and_every_row_names_its_source_and_date() {
        let table = UnitPrices::shipped();
        assert!(table.rows().len() >= 8);
        for row in table.rows() {
            assert!(!row.source.is_empty() && row.date.len() == 10, "{row:?}");
        }
    }

    #[test]
    fn images_are_priced_per_image_the_body_shows_or_the_request_asked_for() {
        let table = UnitPrices::shipped();
        let canvas = "amazon.nova-canvas-v1:0";
        // The response body's images, when image data is logged.
        let shown = record(
            canvas,
            json!({"inputContentType": "application/json"}),
            json!({"outputBodyJson": {"images": ["<base64>", "<base64>", "<base64>"]}}),
        );
        assert_eq!(shown.units.images, Some(3));
        assert!(!shown.tokens_counted);
        let cost = table.cost(&shown, canvas, false).unwrap();
        assert_eq!((cost.usd, cost.fail_closed), (usd("0.24"), None));
        // Else what the request asked for.
        let asked = record(
            "stability.stable-image-ultra-v1:1",
            json!({"inputBodyJson": {"imageGenerationConfig": {"numberOfImages": 2}}}),
            json!({}),
        );
        let cost = table
            .cost(&asked, "stability.stable-image-ultra-v1:1", false)
            .unwrap();
        assert_eq!(cost.usd, usd("0.28"));
        // Neither: one image, reported. Never nothing, even with a prompt's token count.
        let mut unsaid = record(
            "amazon.titan-image-generator-v2:0",
            json!({"inputTokenCount": 12}),
            json!({}),
        );
        let cost = table
            .cost(&unsaid, "amazon.titan-image-generator-v2:0", false)
            .unwrap();
        assert_eq!(cost.usd, usd("0.012"));
        assert!(cost.fail_closed.is_some());
        unsaid.batch = true;
        assert_eq!(
            table
                .cost(&unsaid, "amazon.titan-image-generator-v2:0", false)
                .unwrap()
                .usd,
            usd("0.006")
        );
    }

    #[test]
    fn video_is_priced_per_second_and_an_unknown_tokenless_model_fails_closed() {
        let table = UnitPrices::shipped();
        let reel = record(
            "amazon.nova-reel-v1:1",
            json!({"inputBodyJson": {"videoGenerationConfig": {"durationSeconds": 12}}}),
            json!({}),
        );
        assert_eq!(
            table
                .cost(&reel, "amazon.nova-reel-v1:1", false)
                .unwrap()
                .usd,
            usd("0.96")
        );
        let enveloped = record(
            "amazon.nova-reel-v1:1",
            json!({}),
            json!({"outputVideoDurationSeconds": 30}),
        );
        assert_eq!(
            table
                .cost(&enveloped, "amazon.nova-reel-v1:1", false)
                .unwrap()
                .usd,
            usd("2.40")
        );

        // A model neither table knows, with no token counts: the highest image rate.
        let stranger = record("acme.paint-9", json!({}), json!({}));
        let cost = table.cost(&stranger, "acme.paint-9", false).unwrap();
        assert_eq!(cost.usd, usd("0.14"));
        assert!(cost.fail_closed.is_some());
        // The same with a prompt's token count and two images in the body: per image.
        let counted_prompt = record(
            "acme.paint-9",
            json!({"inputTokenCount": 12}),
            json!({"outputBodyJson": {"images": ["a", "b"]}}),
        );
        assert_eq!(
            table
                .cost(&counted_prompt, "acme.paint-9", false)
                .unwrap()
                .usd,
            usd("0.28")
        );
        // A request asking for no images is not believed.
        let zero = record(
            "amazon.nova-canvas-v1:0",
            json!({"inputBodyJson": {"imageGenerationConfig": {"numberOfImages": 0}}}),
            json!({}),
        );
        assert_eq!(zero.units.images, None);
        assert!(
            table
                .cost(&zero, "amazon.nova-canvas-v1:0", false)
                .unwrap()
                .fail_closed
                .is_some()
        );
        // A text model's call without counts failed without saying so: not billed by units.
        let text = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
        assert_eq!(
            table.cost(&record(text, json!({}), json!({})), text, true),
            None
        );
        // A text call with counts is the token table's.
        let counted = record(
            text,
            json!({"inputTokenCount": 5}),
            json!({"outputTokenCount": 9}),
        );
        assert_eq!(table.cost(&counted, text, true), None);
    }

    #[test]
    fn a_broken_table_says_which_line() {
        let broken = "family,unit,usd,source,date\nnova-canvas,frame,0.04,X,2026-01-01\n";
        assert_eq!(UnitPrices::parse(broken).unwrap_err().line, 2);
        assert!(UnitPrices::parse("nova-canvas,image,0,X,2026-01-01").is_err());
    }
}
