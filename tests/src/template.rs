//! The ledger table's definition, read from `template.yaml`: the one place it is written.

use serde_norway::Value;

use crate::moto::workspace_root;

pub struct LedgerTable {
    pub billing_mode: String,
    /// (attribute, S|N|B)
    pub attributes: Vec<(String, String)>,
    /// (attribute, HASH|RANGE)
    pub key_schema: Vec<(String, String)>,
    pub indexes: Vec<Index>,
    pub ttl_attribute: Option<String>,
}

pub struct Index {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection: String,
}

impl LedgerTable {
    pub fn from_template() -> LedgerTable {
        let path = workspace_root().join("template.yaml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        LedgerTable::from_yaml(&text)
    }

    pub fn from_yaml(text: &str) -> LedgerTable {
        let template: Value = serde_norway::from_str(text).expect("template.yaml is YAML");
        let props = &template["Resources"]["Ledger"]["Properties"];
        assert_eq!(
            template["Resources"]["Ledger"]["Type"].as_str(),
            Some("AWS::DynamoDB::Table")
        );
        let pairs = |list: &Value, a: &str, b: &str| -> Vec<(String, String)> {
            list.as_sequence()
                .expect("a list")
                .iter()
                .map(|e| (string(&e[a]), string(&e[b])))
                .collect()
        };
        LedgerTable {
            billing_mode: string(&props["BillingMode"]),
            attributes: pairs(
                &props["AttributeDefinitions"],
                "AttributeName",
                "AttributeType",
            ),
            key_schema: pairs(&props["KeySchema"], "AttributeName", "KeyType"),
            indexes: props["GlobalSecondaryIndexes"]
                .as_sequence()
                .map(|list| {
                    list.iter()
                        .map(|i| Index {
                            name: string(&i["IndexName"]),
                            key_schema: pairs(&i["KeySchema"], "AttributeName", "KeyType"),
                            projection: string(&i["Projection"]["ProjectionType"]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ttl_attribute: props["TimeToLiveSpecification"]["AttributeName"]
                .as_str()
                .map(str::to_owned),
        }
    }
}

fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string in the table definition, got {value:?}"))
        .to_owned()
}
