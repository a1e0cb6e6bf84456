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

/// One IAM statement of a function's role, as `template.yaml` writes it: what it allows.
/// Resources and conditions are left out: moto's evaluation matches only `Resource: "*"`
/// and no conditions (see the fixtures' notes), so the least-privilege test checks actions
/// and the static checkers (parliament, checkov) check the scoping.
#[derive(Clone, Debug)]
pub struct Grant {
    pub sid: String,
    pub actions: Vec<String>,
}

/// The statements of function `logical_id`'s role: its inline policies and the managed
/// policies it references unconditionally (`!Ref`; the Slack ones under `!If` are not).
pub fn function_grants(logical_id: &str) -> Vec<Grant> {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let template: Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    let resources = &template["Resources"];
    let function = &resources[logical_id];
    assert_eq!(
        function["Type"].as_str(),
        Some("AWS::Serverless::Function"),
        "{logical_id} is a function in template.yaml"
    );
    let mut grants = Vec::new();
    for policy in function["Properties"]["Policies"]
        .as_sequence()
        .expect("the function lists its policies")
    {
        // `!If [Option, !Ref Policy, !Ref AWS::NoValue]`: the policy a deployment with the
        // option on holds, so each option's permissions are proven with the option on.
        let policy = match policy {
            Value::Tagged(tagged) if tagged.tag == "If" => &tagged.value[1],
            policy => policy,
        };
        let document = match policy {
            Value::Tagged(tagged) if tagged.tag == "Ref" => {
                let name = tagged.value.as_str().expect("a resource name");
                &resources[name]["Properties"]["PolicyDocument"]
            }
            Value::Tagged(_) => continue,
            inline => inline,
        };
        for statement in document["Statement"].as_sequence().expect("statements") {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{statement:?}");
            let actions = match &statement["Action"] {
                Value::String(action) => vec![action.clone()],
                list => list
                    .as_sequence()
                    .expect("an action or a list of actions")
                    .iter()
                    .map(string)
                    .collect(),
            };
            grants.push(Grant {
                sid: string(&statement["Sid"]),
                actions,
            });
        }
    }
    grants
}

/// The IAM Identity Center deny shards the template creates when `DenyShardsPerRole` is
/// `shards`: (policy name, path, document), as the stack would make them.
pub fn sso_shards(shards: usize) -> Vec<(String, String, serde_json::Value)> {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let template: Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    (1..=shards)
        .map(|n| {
            let resource = &template["Resources"][format!("SsoDenyShard{n}").as_str()];
            assert_eq!(
                resource["Type"].as_str(),
                Some("AWS::IAM::ManagedPolicy"),
                "template.yaml declares SsoDenyShard{n}"
            );
            let props = &resource["Properties"];
            let document: serde_json::Value =
                serde_json::to_value(&props["PolicyDocument"]).expect("a JSON document");
            (
                string(&props["ManagedPolicyName"]),
                string(&props["Path"]),
                document,
            )
        })
        .collect()
}
