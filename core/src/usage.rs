//! Finance's view of metered spend: one month's counters summed by person, by model or by
//! team. A capped group's counter repeats its members' calls, so groups are shown as
//! rows of their own but never added into a total twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meter::usd_of_micros;
use crate::principal::PrincipalKind;

/// What `usage` sums by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageBy {
    #[default]
    Person,
    Model,
    Team,
}

/// One principal's (or unmanaged identity's) counter for the month, as the ledger holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counter {
    pub arn: String,
    pub micros: i64,
    pub calls: i64,
    /// Micro-dollars per model id (counters written before per-model figures have none).
    pub by_model: BTreeMap<String, i64>,
}

/// Who a counter belongs to, for the team view: a capped principal and its team, or no one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Capped { team: Option<String> },
    Uncapped,
}

/// One line of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub key: String,
    pub usd: String,
    /// The same, in integer micro-dollars (for charts and sums without parsing).
    #[serde(rename = "micro_usd")]
    pub micros: i64,
    /// Calls, where the view counts them (not per model: a counter keeps money per model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<i64>,
    /// A group's row: its members' spend, already in theirs, so not in the total.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub group: bool,
}

/// The rows, largest first, and the month's total (groups' counters not added again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub rows: Vec<UsageRow>,
    pub total_usd: String,
    pub total_calls: i64,
}

fn is_group(arn: &str) -> bool {
    arn.parse::<crate::principal::PrincipalArn>()
        .is_ok_and(|p| p.kind() == PrincipalKind::Group)
}

/// Sums `counters` by `by`; `holder` says whose each ARN is (for the team view).
pub fn tally(counters: &[Counter], by: UsageBy, holder: impl Fn(&str) -> Holder) -> Usage {
    let (groups, people): (Vec<&Counter>, Vec<&Counter>) =
        counters.iter().partition(|c| is_group(&c.arn));
    let mut sums: BTreeMap<String, (i64, Option<i64>)> = BTreeMap::new();
    let mut add = |key: String, micros: i64, calls: Option<i64>| {
        let entry = sums.entry(key).or_insert((0, calls.map(|_| 0)));
        entry.0 = entry.0.saturating_add(micros);
        if let (Some(sum), Some(calls)) = (entry.1.as_mut(), calls) {
            *sum += calls;
        }
    };
    for counter in &people {
        match by {
            UsageBy::Person => add(counter.arn.clone(), counter.micros, Some(counter.calls)),
            UsageBy::Model => {
                let known: i64 = counter.by_model.values().sum();
                for (model, micros) in &counter.by_model {
                    add(model.clone(), *micros, None);
                }
                // Spend counted before counters kept models.
                if counter.micros > known {
                    add("(model not recorded)".into(), counter.micros - known, None);
                }
            }
            UsageBy::Team => {
                let team = match holder(&counter.arn) {
                    Holder::Capped { team: Some(team) } => team,
                    Holder::Capped { team: None } => "(no team)".into(),
                    Holder::Uncapped => "(no cap)".into(),
                };
                add(team, counter.micros, Some(counter.calls));
            }
        }
    }
    let mut rows: Vec<UsageRow> = sums
        .into_iter()
        .map(|(key, (micros, calls))| UsageRow {
            usd: usd_of_micros(micros).to_plain_string(),
            key,
            micros,
            calls,
            group: false,
        })
        .collect();
    if by == UsageBy::Person {
        rows.extend(groups.iter().map(|g| UsageRow {
            key: g.arn.clone(),
            usd: usd_of_micros(g.micros).to_plain_string(),
            micros: g.micros,
            calls: Some(g.calls),
            group: true,
        }));
    }
    rows.sort_by(|a, b| b.micros.cmp(&a.micros).then_with(|| a.key.cmp(&b.key)));
    let total: i64 = people.iter().map(|c| c.micros).fold(0, i64::saturating_add);
    Usage {
        rows,
        total_usd: usd_of_micros(total).to_plain_string(),
        total_calls: people.iter().map(|c| c.calls).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
    const BOB: &str = "arn:aws:iam::123456789012:user/bob";
    const TEAM: &str = "arn:aws:iam::123456789012:group/platform";
    const STRANGER: &str = "arn:aws:sts::123456789012:assumed-role/Other/x";

    fn counters() -> Vec<Counter> {
        vec![
            Counter {
                arn: ALICE.into(),
                micros: 30_000_000,
                calls: 3,
                by_model: [("opus".to_owned(), 25_000_000), ("haiku".into(), 5_000_000)].into(),
            },
            Counter {
                arn: BOB.into(),
                micros: 12_500_000,
                calls: 2,
                // Half of it counted before models were recorded.
                by_model: [("opus".to_owned(), 6_000_000)].into(),
            },
            Counter {
                arn: TEAM.into(),
                micros: 42_500_000,
                calls: 5,
                by_model: [("opus".to_owned(), 31_000_000)].into(),
            },
            Counter {
                arn: STRANGER.into(),
                micros: 1_000_000,
                calls: 1,
                by_model: [("haiku".to_owned(), 1_000_000)].into(),
            },
        ]
    }

    fn holder(arn: &str) -> Holder {
        match arn {
            ALICE => Holder::Capped {
                team: Some("data".into()),
            },
            BOB | TEAM => Holder::Capped { team: None },
            _ => Holder::Uncapped,
        }
    }

    fn keys(usage: &Usage) -> Vec<(&str, &str)> {
        usage
            .rows
            .iter()
            .map(|r| (r.key.as_str(), r.usd.as_str()))
            .collect()
    }

    #[test]
    fn by_person_shows_groups_without_counting_them_twice() {
        let usage = tally(&counters(), UsageBy::Person, holder);
        assert_eq!(
            keys(&usage),
            vec![
                (TEAM, "42.50"),
                (ALICE, "30.00"),
                (BOB, "12.50"),
                (STRANGER, "1.00")
            ]
        );
        assert!(usage.rows[0].group);
        assert_eq!((usage.total_usd.as_str(), usage.total_calls), ("43.50", 6));
    }

    #[test]
    fn by_model_sums_models_and_names_what_was_counted_before_models_were_kept() {
        let usage = tally(&counters(), UsageBy::Model, holder);
        assert_eq!(
            keys(&usage),
            vec![
                ("opus", "31.00"),
                ("(model not recorded)", "6.50"),
                ("haiku", "6.00")
            ]
        );
        assert_eq!(usage.total_usd, "43.50");
    }

    #[test]
    fn by_team_puts_each_person_under_their_team() {
        let usage = tally(&counters(), UsageBy::Team, holder);
        assert_eq!(
            keys(&usage),
            vec![
                ("data", "30.00"),
                ("(no team)", "12.50"),
                ("(no cap)", "1.00")
            ]
        );
        assert_eq!(usage.rows[0].calls, Some(3));
    }
}
