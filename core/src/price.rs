//! What a call costs: the price table shipped with seatcap (`core/data/prices.csv`, each row
//! with its source and date) applied to an invocation's tokens. Exact decimal arithmetic;
//! a model the table does not know is priced at its highest rate (fail closed) and flagged.

use rust_decimal::Decimal;

use crate::invocation::{Invocation, Tokens};
use crate::money::Usd;

const SHIPPED: &str = include_str!("../data/prices.csv");

/// One model family's prices, USD per million tokens at the global rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The model id's family, e.g. `claude-sonnet-4-5` (matched after the scope and the
    /// provider: `us.anthropic.claude-sonnet-4-5-20250929-v1:0`).
    pub family: String,
    pub input: Decimal,
    pub output: Decimal,
    /// Geographic profiles and in-region ids cost this many times the global rate.
    pub regional_multiplier: Decimal,
    pub source: String,
    pub date: String,
    /// The (input, output) rates of a call whose input, cache included, is over
    /// [`LONG_CONTEXT_TOKENS`], on the models that charge more for it; `None` for the rest.
    pub long_context: Option<(Decimal, Decimal)>,
}

/// Input tokens (plain and cache together) above which a long-context rate applies.
pub const LONG_CONTEXT_TOKENS: u64 = 200_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceTable {
    rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("price table line {line}: {problem}")]
pub struct PriceTableError {
    pub line: usize,
    pub problem: String,
}

/// A call's cost, and whether its model was unknown (priced at the highest rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub usd: Usd,
    pub unknown_model: bool,
}

/// Whether a call named a provisioned-throughput model
/// (`arn:aws:bedrock:<region>:<account>:provisioned-model/<id>`): billed by the hour the
/// capacity is bought for, not per token, so its calls are counted and priced at nothing
/// (the bill has the hours; Budgets sees them).
pub fn is_provisioned(model_id: &str) -> bool {
    model_id.starts_with("arn:") && model_id.contains(":provisioned-model/")
}

/// Whether a call named an application inference profile
/// (`arn:aws:bedrock:<region>:<account>:application-inference-profile/<id>`): an ARN that
/// names no model, resolved through `bedrock:GetInferenceProfile` before it is priced.
pub fn is_application_profile(model_id: &str) -> bool {
    model_id.starts_with("arn:") && model_id.contains(":application-inference-profile/")
}

impl PriceTable {
    /// The table shipped with this build, read once per process.
    pub fn shipped() -> &'static PriceTable {
        static SHIPPED_TABLE: std::sync::OnceLock<PriceTable> = std::sync::OnceLock::new();
        SHIPPED_TABLE.get_or_init(|| {
            PriceTable::parse(SHIPPED).expect("the shipped price table parses (unit-tested)")
        })
    }

    /// `family,input,output,regional_multiplier,source,date` rows, optionally followed by
    /// `,long_context_input,long_context_output`; `#` comments. (The two optional fields
    /// come last so that a table of the previous format reads as is, and a previous
    /// version reading this one takes them for part of the date.)
    pub fn parse(text: &str) -> Result<PriceTable, PriceTableError> {
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
            let (family, input, output, multiplier, source, date, long) = match fields[..] {
                [family, input, output, multiplier, source, date] => {
                    (family, input, output, multiplier, source, date, None)
                }
                [
                    family,
                    input,
                    output,
                    multiplier,
                    source,
                    date,
                    long_in,
                    long_out,
                ] => (
                    family,
                    input,
                    output,
                    multiplier,
                    source,
                    date,
                    Some((long_in, long_out)),
                ),
                _ => return Err(bad("expected 6 or 8 comma-separated fields".into())),
            };
            let number = |text: &str, what: &str| {
                text.parse::<Decimal>()
                    .ok()
                    .filter(|d| *d >= Decimal::ZERO && *d < Decimal::from(1_000_000))
                    .ok_or_else(|| bad(format!("{what} `{text}` is not a price")))
            };
            rows.push(Row {
                family: family.to_owned(),
                input: number(input, "input")?,
                output: number(output, "output")?,
                regional_multiplier: number(multiplier, "regional_multiplier")?,
                source: source.to_owned(),
                date: date.to_owned(),
                long_context: match long {
                    Some((i, o)) => Some((
                        number(i, "long_context_input")?,
                        number(o, "long_context_output")?,
                    )),
                    None => None,
                },
            });
        }
        if rows.is_empty() {
            return Err(PriceTableError {
                line: 0,
                problem: "no rows".into(),
            });
        }
        Ok(PriceTable { rows })
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// A table of `rows`; `None` for no rows (a table must price everything).
    pub fn from_rows(rows: Vec<Row>) -> Option<PriceTable> {
        (!rows.is_empty()).then_some(PriceTable { rows })
    }

    /// The table in the shipped file's format, which [`PriceTable::parse`] reads back.
    pub fn to_csv(&self) -> String {
        let mut text = String::from(
            "family,input,output,regional_multiplier,source,date,long_context_input,long_context_output\n",
        );
        for row in &self.rows {
            let source = row.source.replace([',', '\n', '\r'], " ");
            let long = row.long_context.map_or(String::new(), |(i, o)| {
                format!(",{},{}", i.normalize(), o.normalize())
            });
            text.push_str(&format!(
                "{},{},{},{},{},{}{long}\n",
                row.family.replace(',', " "),
                row.input.normalize(),
                row.output.normalize(),
                row.regional_multiplier.normalize(),
                source,
                row.date.replace(',', " "),
            ));
        }
        text
    }

    /// The row for `model_id`: the longest family its name starts with (so
    /// `claude-opus-4-5-...` is not taken for `claude-opus-4`).
    pub fn row_for(&self, model_id: &str) -> Option<&Row> {
        longest_family(model_id, &self.rows, |row| &row.family)
    }

    /// What `invocation` costs.
    pub fn cost(&self, invocation: &Invocation) -> Cost {
        self.cost_as(invocation, &invocation.model_id)
    }

    /// What `invocation` costs priced as `model`: what it names, or, for an application
    /// inference profile, the model the profile routes to (a foundation model's ARN, so at
    /// the in-region rate: the profile does not say whether it was copied from a `global.`
    /// one, and the regional rate is the higher).
    pub fn cost_as(&self, invocation: &Invocation, model: &str) -> Cost {
        if is_provisioned(model) {
            return Cost {
                usd: Usd::ZERO,
                unknown_model: false,
            };
        }
        let regional = !model_id_of(model).starts_with("global.");
        let (row, unknown_model) = match self.row_for(model) {
            Some(row) => (row.clone(), false),
            None => (self.highest(), true),
        };
        let multiplier = if regional {
            row.regional_multiplier
        } else {
            Decimal::ONE
        };
        let Tokens {
            input: plain,
            output: out,
            cache_read,
            cache_write_5m,
            cache_write_1h,
        } = invocation.tokens;
        // Over the long-context line, every token of the call is at the long rates.
        let whole_input = plain
            .saturating_add(cache_read)
            .saturating_add(cache_write_5m)
            .saturating_add(cache_write_1h);
        let (input, output) = match row.long_context {
            Some(long) if whole_input > LONG_CONTEXT_TOKENS => long,
            _ => (row.input, row.output),
        };
        // Checked: token counts are the log record's, unbounded. A sum beyond what a
        // Decimal holds is charged as the most it holds: fail closed, never a panic.
        let per_million = [
            (plain, input, Decimal::ONE),
            (out, output, Decimal::ONE),
            (cache_read, input, Decimal::new(1, 1)),
            (cache_write_5m, input, Decimal::new(125, 2)),
            (cache_write_1h, input, Decimal::TWO),
        ]
        .into_iter()
        .try_fold(Decimal::ZERO, |sum, (tokens, rate, factor)| {
            Decimal::from(tokens)
                .checked_mul(rate)?
                .checked_mul(factor)?
                .checked_mul(multiplier)?
                .checked_add(sum)
        });
        let mut usd = per_million.unwrap_or(Decimal::MAX) / Decimal::from(1_000_000);
        if invocation.batch {
            usd /= Decimal::TWO;
        }
        Cost {
            usd: Usd::new(usd),
            unknown_model,
        }
    }

    /// The highest rates of the table, for a model it does not know.
    fn highest(&self) -> Row {
        let max = |f: fn(&Row) -> Decimal| self.rows.iter().map(f).max().unwrap_or_default();
        Row {
            family: "(unknown: highest rate)".into(),
            input: max(|r| r.input),
            output: max(|r| r.output),
            regional_multiplier: max(|r| r.regional_multiplier),
            source: "fail closed".into(),
            date: String::new(),
            long_context: None,
        }
    }
}

/// The model id a call names, however it names it: the id itself, a profile id, or the
/// ARN of a foundation model (`arn:aws:bedrock:<region>::foundation-model/<id>`, an
/// in-region call) or of a system inference profile
/// (`arn:aws:bedrock:<region>:<account>:inference-profile/<profile id>`). Clients pass ARNs
/// and the logs carry them as passed. An application inference profile's ARN names no
/// model (`application-inference-profile/<id>`): it is returned as is (see
/// [`is_application_profile`]).
pub fn model_id_of(named: &str) -> &str {
    if !named.starts_with("arn:") {
        return named;
    }
    [":foundation-model/", ":inference-profile/"]
        .iter()
        .find_map(|kind| named.split_once(kind).map(|(_, id)| id))
        .unwrap_or(named)
}

/// Of `rows`, the one whose family is the longest that `model_id`'s name starts with, as a
/// whole word (`claude-opus-4-5-...` is not `claude-opus-4`'s).
pub(crate) fn longest_family<'a, R>(
    model_id: &str,
    rows: &'a [R],
    family: impl Fn(&R) -> &str,
) -> Option<&'a R> {
    let name = model_name(model_id);
    rows.iter()
        .filter(|row| {
            name.strip_prefix(family(row)).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('-') || rest.starts_with(':')
            })
        })
        .max_by_key(|row| family(row).len())
}

/// `us.anthropic.claude-sonnet-4-5-20250929-v1:0` → `claude-sonnet-4-5-20250929-v1:0`.
pub fn model_name(model_id: &str) -> &str {
    let model_id = model_id_of(model_id);
    let id = [
        "global.", "us.", "eu.", "apac.", "us-gov.", "jp.", "au.", "ca.",
    ]
    .iter()
    .find_map(|scope| model_id.strip_prefix(scope))
    .unwrap_or(model_id);
    id.split_once('.').map_or(id, |(_provider, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn call(model: &str, tokens: Tokens) -> Invocation {
        Invocation {
            request_id: "r".into(),
            identity_arn: "arn:aws:iam::1:user/a".into(),
            model_id: model.into(),
            at: Utc::now(),
            tokens,
            batch: false,
            tokens_counted: true,
            units: Default::default(),
        }
    }

    fn usd(text: &str) -> Usd {
        Usd::new(text.parse().unwrap())
    }

    #[test]
    fn absurd_token_counts_at_absurd_prices_cost_the_most_not_a_panic() {
        let rich = Row {
            family: "claude-opus-4".into(),
            input: Decimal::from(999_999_000),
            output: Decimal::from(999_999_000),
            regional_multiplier: Decimal::new(11, 1),
            source: "test".into(),
            date: "2026-12-02".into(),
            long_context: None,
        };
        let table = PriceTable::from_rows(vec![rich]).unwrap();
        let all = Tokens {
            input: u64::MAX,
            output: u64::MAX,
            cache_read: u64::MAX,
            cache_write_5m: u64::MAX,
            cache_write_1h: u64::MAX,
        };
        let cost = table.cost(&call("us.anthropic.claude-opus-4-20250514-v1:0", all));
        assert_eq!(cost.usd, Usd::new(Decimal::MAX / Decimal::from(1_000_000)));
        assert_eq!(crate::meter::micros_of(cost.usd), i64::MAX);
    }

    #[test]
    fn the_shipped_table_parses_and_every_row_names_its_source_and_date() {
        let table = PriceTable::shipped();
        assert!(table.rows().len() >= 5);
        for row in table.rows() {
            assert!(!row.source.is_empty() && row.date.len() == 10, "{row:?}");
        }
    }

    #[test]
    fn global_and_regional_prices_and_cache_tokens_by_hand() {
        let table = PriceTable::shipped();
        let tokens = Tokens {
            input: 1_000,
            output: 2_000,
            cache_read: 100_000,
            cache_write_5m: 10_000,
            cache_write_1h: 1_000,
        };
        // Sonnet 4.5, global: $3 in, $15 out per million.
        // 1000*3 + 2000*15 + 100000*0.3 + 10000*3.75 + 1000*6 = 3000+30000+30000+37500+6000
        // = 106,500 per million = $0.1065.
        let global = table.cost(&call(
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            tokens.clone(),
        ));
        assert_eq!(
            global,
            Cost {
                usd: usd("0.1065"),
                unknown_model: false
            }
        );
        // The us. profile: 10 % more.
        let regional = table.cost(&call(
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            tokens.clone(),
        ));
        assert_eq!(regional.usd, usd("0.11715"));
        // Opus 4 (not 4.5) in-region: $15 / $75, no regional premium.
        let opus4 = table.cost(&call(
            "anthropic.claude-opus-4-20250514-v1:0",
            Tokens {
                input: 1_000_000,
                output: 1_000_000,
                ..Tokens::default()
            },
        ));
        assert_eq!(opus4.usd, usd("90"));
        let opus45 = table.cost(&call(
            "global.anthropic.claude-opus-4-5-20251101-v1:0",
            Tokens {
                input: 1_000_000,
                ..Tokens::default()
            },
        ));
        assert_eq!(opus45.usd, usd("5"));
        // Batch: half.
        let mut batch = call(
            "global.anthropic.claude-haiku-4-5-20251001-v1:0",
            Tokens {
                output: 1_000_000,
                ..Tokens::default()
            },
        );
        batch.batch = true;
        assert_eq!(table.cost(&batch).usd, usd("2.5"));
    }

    #[test]
    fn an_unknown_model_is_priced_at_the_highest_rate() {
        let table = PriceTable::shipped();
        let cost = table.cost(&call(
            "us.anthropic.claude-future-9",
            Tokens {
                output: 1_000_000,
                ..Tokens::default()
            },
        ));
        assert!(cost.unknown_model);
        // $75 output, times the highest regional multiplier (1.1).
        assert_eq!(cost.usd, usd("82.5"));
    }

    #[test]
    fn a_broken_table_says_which_line() {
        assert_eq!(
            PriceTable::parse("family,input\nx,1,2,1,s")
                .unwrap_err()
                .line,
            2
        );
        assert!(PriceTable::parse("x,abc,2,1,s,2026-01-01").is_err());
        assert!(PriceTable::parse("# nothing").is_err());
    }

    /// 100K input (under the long-context line) and a million output tokens.
    fn million_each() -> Tokens {
        Tokens {
            input: 100_000,
            output: 1_000_000,
            ..Tokens::default()
        }
    }

    /// Every model the shipped table prices, named as Bedrock's model ids and profiles name
    /// it, finds its own row: (the id a call carries, the family, its rows' input and output).
    #[test]
    fn every_shipped_model_is_priced_by_its_own_row() {
        let cases = [
            ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
            ("anthropic.claude-3-sonnet-20240229-v1:0", "claude-3-sonnet"),
            ("us.anthropic.claude-3-opus-20240229-v1:0", "claude-3-opus"),
            (
                "anthropic.claude-3-5-haiku-20241022-v1:0",
                "claude-3-5-haiku",
            ),
            (
                "anthropic.claude-3-5-sonnet-20241022-v2:0",
                "claude-3-5-sonnet",
            ),
            (
                "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
                "claude-3-7-sonnet",
            ),
            (
                "us.anthropic.claude-sonnet-4-20250514-v1:0",
                "claude-sonnet-4",
            ),
            ("us.anthropic.claude-opus-4-20250514-v1:0", "claude-opus-4"),
            (
                "us.anthropic.claude-opus-4-1-20250805-v1:0",
                "claude-opus-4-1",
            ),
            (
                "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "claude-sonnet-4-5",
            ),
            (
                "global.anthropic.claude-haiku-4-5-20251001-v1:0",
                "claude-haiku-4-5",
            ),
            (
                "global.anthropic.claude-opus-4-5-20251101-v1:0",
                "claude-opus-4-5",
            ),
            ("global.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
            ("global.anthropic.claude-sonnet-4-6", "claude-sonnet-4-6"),
            ("global.anthropic.claude-opus-4-7", "claude-opus-4-7"),
            ("us.anthropic.claude-opus-4-8", "claude-opus-4-8"),
            ("global.anthropic.claude-opus-5", "claude-opus-5"),
            ("global.anthropic.claude-sonnet-5", "claude-sonnet-5"),
            ("global.anthropic.claude-fable-5", "claude-fable-5"),
            ("us.amazon.nova-micro-v1:0", "nova-micro"),
            ("amazon.nova-lite-v1:0", "nova-lite"),
            ("us.amazon.nova-pro-v1:0", "nova-pro"),
            ("us.amazon.nova-premier-v1:0", "nova-premier"),
            ("global.amazon.nova-2-lite-v1:0", "nova-2-lite"),
            ("meta.llama3-8b-instruct-v1:0", "llama3-8b"),
            ("meta.llama3-70b-instruct-v1:0", "llama3-70b"),
            ("us.meta.llama3-1-8b-instruct-v1:0", "llama3-1-8b"),
            ("us.meta.llama3-1-70b-instruct-v1:0", "llama3-1-70b"),
            ("meta.llama3-1-405b-instruct-v1:0", "llama3-1-405b"),
            ("us.meta.llama3-2-1b-instruct-v1:0", "llama3-2-1b"),
            ("us.meta.llama3-2-3b-instruct-v1:0", "llama3-2-3b"),
            ("us.meta.llama3-2-11b-instruct-v1:0", "llama3-2-11b"),
            ("us.meta.llama3-2-90b-instruct-v1:0", "llama3-2-90b"),
            ("us.meta.llama3-3-70b-instruct-v1:0", "llama3-3-70b"),
            (
                "us.meta.llama4-maverick-17b-instruct-v1:0",
                "llama4-maverick-17b",
            ),
            ("us.meta.llama4-scout-17b-instruct-v1:0", "llama4-scout-17b"),
            ("mistral.mistral-large-2402-v1:0", "mistral-large-2402"),
            ("mistral.mistral-large-2407-v1:0", "mistral-large-2407"),
            (
                "mistral.mistral-large-3-675b-instruct",
                "mistral-large-3-675b",
            ),
            ("mistral.mistral-small-2402-v1:0", "mistral-small-2402"),
            ("us.mistral.pixtral-large-2502-v1:0", "pixtral-large-2502"),
            ("us.deepseek.r1-v1:0", "r1"),
            ("deepseek.v3-v1:0", "v3"),
            ("deepseek.v3.2", "v3.2"),
            ("openai.gpt-oss-20b-1:0", "gpt-oss-20b"),
            ("openai.gpt-oss-120b-1:0", "gpt-oss-120b"),
            ("cohere.command-r-v1:0", "command-r"),
            ("cohere.command-r-plus-v1:0", "command-r-plus"),
            ("qwen.qwen3-32b-v1:0", "qwen3-32b"),
            ("qwen.qwen3-coder-30b-a3b-v1:0", "qwen3-coder-30b-a3b"),
            ("qwen.qwen3-235b-a22b-2507-v1:0", "qwen3-235b-a22b"),
            ("qwen.qwen3-coder-480b-a35b-v1:0", "qwen3-coder-480b-a35b"),
            ("qwen.qwen3-next-80b-a3b", "qwen3-next-80b-a3b"),
            ("qwen.qwen3-vl-235b-a22b", "qwen3-vl-235b-a22b"),
            ("amazon.titan-embed-text-v1", "titan-embed-text-v1"),
            ("amazon.titan-embed-text-v2:0", "titan-embed-text-v2"),
            ("amazon.titan-embed-image-v1", "titan-embed-image-v1"),
            ("cohere.embed-english-v3", "embed-english-v3"),
            ("cohere.embed-multilingual-v3", "embed-multilingual-v3"),
            ("us.cohere.embed-v4:0", "embed-v4"),
            (
                "amazon.nova-2-multimodal-embeddings-v1:0",
                "nova-2-multimodal-embeddings",
            ),
        ];
        let table = PriceTable::shipped();
        for (id, family) in cases {
            let row = table.row_for(id).unwrap_or_else(|| panic!("{id}: no row"));
            assert_eq!(row.family, family, "{id}");
            let cost = table.cost(&call(id, million_each()));
            assert!(!cost.unknown_model, "{id}");
            let multiplier = if id.starts_with("global.") {
                Decimal::ONE
            } else {
                row.regional_multiplier
            };
            assert_eq!(
                cost.usd,
                Usd::new((row.input / Decimal::TEN + row.output) * multiplier),
                "{id}"
            );
        }
        // Every row is some case's: a row no model id reaches is a typo.
        for row in table.rows() {
            assert!(
                cases.iter().any(|(_, family)| *family == row.family),
                "{} is not reached by any case",
                row.family
            );
        }
    }

    /// The same tokens cost the same through every way a call names its model: the id, a
    /// geographic profile, the foundation model's ARN (in-region), the profile's ARN; and
    /// the global profile and its ARN at the global rate.
    #[test]
    fn every_way_a_call_names_its_model_costs_the_same() {
        let table = PriceTable::shipped();
        let cost = |id: &str| table.cost(&call(id, million_each()));
        let regional = [
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ];
        for id in regional {
            assert_eq!(
                cost(id),
                Cost {
                    usd: usd("16.83"),
                    unknown_model: false
                },
                "{id}"
            );
        }
        let global = [
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ];
        for id in global {
            assert_eq!(
                cost(id),
                Cost {
                    usd: usd("15.3"),
                    unknown_model: false
                },
                "{id}"
            );
        }
        // Provisioned throughput is billed by the hour: counted at nothing, not unknown.
        let provisioned = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123def456";
        assert!(is_provisioned(provisioned));
        assert_eq!(
            cost(provisioned),
            Cost {
                usd: Usd::ZERO,
                unknown_model: false
            }
        );
        // An application inference profile names no model: unknown, so fail closed.
        let application =
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6";
        assert!(cost(application).unknown_model);
        // Opus 4.6 on its global profile, the issue's case: $5 / $25, not the fail-closed $15 / $75.
        assert_eq!(
            cost("global.anthropic.claude-opus-4-6-v1"),
            Cost {
                usd: usd("25.5"),
                unknown_model: false
            }
        );
    }

    /// Over 200K input tokens, cache included, Sonnet 4.5 charges its long-context rates for
    /// the whole call; at or under it, the standard ones; a model without them never.
    #[test]
    fn long_context_rates_apply_over_200k_input_tokens() {
        let table = PriceTable::shipped();
        let sonnet = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
        let tokens = |input, cache_read| Tokens {
            input,
            cache_read,
            output: 1_000,
            ..Tokens::default()
        };
        // 150K plain + 100K cache read = 250K: $6 and $22.50 per million.
        assert_eq!(
            table.cost(&call(sonnet, tokens(150_000, 100_000))).usd,
            usd("0.9825")
        );
        assert_eq!(
            table.cost(&call(sonnet, tokens(200_000, 0))).usd,
            usd("0.615"),
            "exactly 200K is not over it"
        );
        assert_eq!(
            table
                .cost(&call(
                    "global.anthropic.claude-opus-4-5-20251101-v1:0",
                    tokens(300_000, 0)
                ))
                .usd,
            usd("1.525")
        );
        // The table's own format carries the two rates through a write and a read.
        let again = PriceTable::parse(&table.to_csv()).unwrap();
        assert_eq!(
            again.row_for(sonnet).unwrap().long_context,
            table.row_for(sonnet).unwrap().long_context
        );
        // A row of the previous format (six fields) reads as is.
        let old = PriceTable::parse("claude-sonnet-4-5,3,15,1.1,old,2026-12-01").unwrap();
        assert_eq!(old.rows()[0].long_context, None);
    }
}
