//! Does a policy document still allow Bedrock invocation? (pure)
//!
//! Used after cutting access by detaching: any other policy on the principal (or, for a
//! user, on its groups) that allows `bedrock:InvokeModel` leaves access in place, and
//! seatcap reports the cut as incomplete instead of claiming it. Conservative on purpose:
//! an allow with conditions or narrow resources still counts, because seatcap cannot
//! evaluate them and a false "incomplete" costs a look while a false "cut off" costs money.

use serde::Serialize;
use serde_json::Value;

/// The actions whose allowance means the principal can still call models.
const INVOKE_ACTIONS: [&str; 2] = [
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
];

/// Where access remains after a cut.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemainingAccess {
    /// `user`, `role` or `group:<name>` (a user's group).
    pub on: String,
    /// A managed policy's ARN, or `inline:<policy name>`.
    pub policy: String,
}

/// Whether `document` has an `Allow` statement covering a Bedrock invoke action.
pub fn allows_bedrock_invoke(document: &Value) -> bool {
    statements(document).any(|statement| {
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            return false;
        }
        if let Some(actions) = statement.get("Action") {
            return INVOKE_ACTIONS
                .iter()
                .any(|action| patterns(actions).any(|p| matches(p, action)));
        }
        if let Some(not_actions) = statement.get("NotAction") {
            return INVOKE_ACTIONS
                .iter()
                .any(|action| !patterns(not_actions).any(|p| matches(p, action)));
        }
        false
    })
}

fn statements(document: &Value) -> impl Iterator<Item = &Value> {
    match document.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect::<Vec<_>>().into_iter(),
        Some(single @ Value::Object(_)) => vec![single].into_iter(),
        _ => Vec::new().into_iter(),
    }
}

fn patterns(value: &Value) -> impl Iterator<Item = &str> {
    match value {
        Value::String(one) => vec![one.as_str()].into_iter(),
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .into_iter(),
        _ => Vec::new().into_iter(),
    }
}

/// IAM action matching: case-insensitive, `*` any run of characters, `?` any one.
fn matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

/// IAM returns policy documents percent-encoded (RFC 3986); some emulators return them
/// plain. Either way, the JSON.
pub fn decode_document(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    serde_json::from_slice(&out).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn allow(action: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})
    }

    #[test]
    fn allows_that_cover_invoke_count() {
        for action in [
            json!("*"),
            json!("bedrock:*"),
            json!("bedrock:Invoke*"),
            json!("Bedrock:invokemodel"),
            json!(["s3:GetObject", "bedrock:InvokeModelWithResponseStream"]),
            json!("bedrock:Invoke?odel"),
        ] {
            assert!(allows_bedrock_invoke(&allow(action.clone())), "{action}");
        }
    }

    #[test]
    fn other_allows_and_denies_do_not() {
        for action in [
            json!("s3:*"),
            json!("bedrock:ListFoundationModels"),
            json!("bedrock:Get*"),
        ] {
            assert!(!allows_bedrock_invoke(&allow(action.clone())), "{action}");
        }
        let deny = json!({"Statement": {"Effect": "Deny", "Action": "bedrock:*", "Resource": "*"}});
        assert!(!allows_bedrock_invoke(&deny));
    }

    #[test]
    fn not_action_allows_everything_it_does_not_name() {
        let admin_but_iam =
            json!({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]});
        assert!(allows_bedrock_invoke(&admin_but_iam));
        let all_but_bedrock = json!({"Statement": [{"Effect": "Allow", "NotAction": ["bedrock:*"], "Resource": "*"}]});
        assert!(!allows_bedrock_invoke(&all_but_bedrock));
    }

    #[test]
    fn documents_decode_plain_or_percent_encoded() {
        let plain = r#"{"Statement":[]}"#;
        assert_eq!(decode_document(plain), Some(json!({"Statement": []})));
        let encoded = "%7B%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_document(encoded), Some(json!({"Statement": []})));
        assert_eq!(decode_document("%zz"), None);
    }
}
