//! Human output: short, aligned, what finance reads at a glance.

use serde_json::Value;

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// One principal's state, as key/value lines.
pub fn state(answer: &Value) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: String| out.push_str(&format!("{key:<16} {value}\n"));
    line("principal", text(&answer["principal"]));
    line("budget", text(&answer["budget"]));
    let status = match (answer["status"].as_str(), answer["block_cause"].as_str()) {
        (Some("blocked"), Some(cause)) => format!("BLOCKED ({cause})"),
        (Some(status), _) => status.to_uppercase(),
        _ => "-".to_owned(),
    };
    line("status", status);
    line("cap", format!("${}", text(&answer["cap_usd"])));
    let effective = text(&answer["effective_cap_usd"]);
    if effective != text(&answer["cap_usd"]) {
        line(
            "effective cap",
            if effective == "exempt" {
                effective
            } else {
                format!("${effective}")
            },
        );
    }
    if !answer["last_actual_usd"].is_null() {
        line("spend", format!("${}", text(&answer["last_actual_usd"])));
    }
    if answer["protected"] == true {
        line("protected", "yes (never cut off)".to_owned());
    }
    for (key, label) in [
        ("detached_policy_arns", "detached"),
        ("reattached_policy_arns", "re-attached"),
    ] {
        if let Some(list) = answer[key].as_array().filter(|l| !l.is_empty()) {
            line(label, list.iter().map(text).collect::<Vec<_>>().join(", "));
        }
    }
    for request in answer["override_requests"].as_array().into_iter().flatten() {
        let grant = &request["grant"];
        let amount = if grant["exempt"] == true {
            "exempt".to_owned()
        } else {
            format!("+${}", text(&grant["extra_usd"]))
        };
        line(
            "awaiting",
            format!(
                "{amount} until {} (request {}, asked by {}; another finance principal approves it with `seatcap approve-override`)",
                text(&grant["expires_at"]),
                text(&grant["id"]),
                text(&grant["granted_by"]),
            ),
        );
    }
    if answer["restored"] == true {
        line("restored", "yes: Bedrock access is back".to_owned());
    }
    if answer["changed"] == false {
        line("changed", "no (already so)".to_owned());
    }
    for warning in answer["warnings"].as_array().into_iter().flatten() {
        line("warning", text(warning));
    }
    out
}

/// `list`: one principal a row.
pub fn principals(answer: &Value) -> String {
    let rows: Vec<[String; 5]> = answer["principals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            [
                text(&p["principal"]),
                text(&p["status"]),
                format!("${}", text(&p["cap_usd"])),
                p["last_actual_usd"]
                    .as_str()
                    .map_or("-".to_owned(), |s| format!("${s}")),
                text(&p["budget"]),
            ]
        })
        .collect();
    table(["PRINCIPAL", "STATUS", "CAP", "SPEND", "BUDGET"], &rows)
}

/// `history`: one event a row, newest first.
pub fn events(answer: &Value) -> String {
    let rows: Vec<[String; 4]> = answer["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let what = e["detail"]["decision"]["outcome"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| e["reason"].as_str().map(str::to_owned))
                .unwrap_or_default();
            // To the second, in UTC: enough to read, and what CloudTrail shows beside it.
            let at = text(&e["at"]);
            let at = at
                .get(..19)
                .map_or(at.clone(), |s| format!("{}Z", s.replace('T', " ")));
            [at, text(&e["kind"]), text(&e["actor"]), what]
        })
        .collect();
    table(["AT", "EVENT", "BY", "WHY / OUTCOME"], &rows)
}

fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    if rows.is_empty() {
        return "(none)\n".to_owned();
    }
    let mut widths: [usize; N] = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |cells: Vec<&str>| {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push(header.to_vec());
    for row in rows {
        push(row.iter().map(String::as_str).collect());
    }
    out
}

/// The answer of `flush_notifications`.
pub fn flush(answer: &Value) -> String {
    format!(
        "delivered {}, still pending {}, failed for good {}\n",
        answer["delivered"], answer["pending"], answer["failed"]
    )
}

/// The answer of `subscribe_email`.
pub fn subscription(answer: &Value) -> String {
    format!(
        "subscribed ({}); filter {}\nSNS sends the address a confirmation link first.\n",
        answer["subscription_arn"].as_str().unwrap_or("?"),
        answer["filter_policy"]
    )
}
