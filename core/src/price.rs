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
}

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

impl PriceTable {
    /// The table shipped with this build, read once per process.
    pub fn shipped() -> &'static PriceTable {
        static SHIPPED_TABLE: std::sync::OnceLock<PriceTable> = std::sync::OnceLock::new();
        SHIPPED_TABLE.get_or_init(|| {
            PriceTable::parse(SHIPPED).expect("the shipped price table parses (unit-tested)")
        })
    }

    /// `family,input,output,regional_multiplier,source,date` rows; `#` comments.
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
            let fields: Vec<&str> = line.splitn(6, ',').map(str::trim).collect();
            let [family, input, output, multiplier, source, date] = fields[..] else {
                return Err(bad("expected 6 comma-separated fields".into()));
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
        let mut text = String::from("family,input,output,regional_multiplier,source,date\n");
        for row in &self.rows {
            let source = row.source.replace([',', '\n', '\r'], " ");
            text.push_str(&format!(
                "{},{},{},{},{},{}\n",
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
        let name = model_name(model_id);
        self.rows
            .iter()
            .filter(|row| {
                name.strip_prefix(row.family.as_str()).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('-') || rest.starts_with(':')
                })
            })
            .max_by_key(|row| row.family.len())
    }

    /// What `invocation` costs.
    pub fn cost(&self, invocation: &Invocation) -> Cost {
        let regional = !invocation.model_id.starts_with("global.");
        let (row, unknown_model) = match self.row_for(&invocation.model_id) {
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
        let (input, output) = (row.input, row.output);
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
        }
    }
}

/// `us.anthropic.claude-sonnet-4-5-20250929-v1:0` → `claude-sonnet-4-5-20250929-v1:0`.
fn model_name(model_id: &str) -> &str {
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
}
