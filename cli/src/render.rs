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
    for request in answer["cap_requests"].as_array().into_iter().flatten() {
        line(
            "awaiting",
            format!(
                "cap ${} (request {}, asked by {}; another finance principal approves it with `seatcap approve-override`)",
                text(&request["cap_usd"]),
                text(&request["id"]),
                text(&request["requested_by"]),
            ),
        );
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

/// `usage`: one row per person, model or team, largest first, with a bar to scale, and the
/// month's total (a group's row repeats its members' spend: marked, not added again).
pub fn usage(answer: &Value) -> String {
    const BAR: i128 = 30;
    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
    let largest = rows
        .iter()
        .filter_map(|r| r["micro_usd"].as_i64())
        .max()
        .unwrap_or(0)
        .max(1);
    let lines: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let micros = r["micro_usd"].as_i64().unwrap_or(0).max(0);
            // Rounded up: any spend at all shows.
            let width = (i128::from(micros) * BAR + i128::from(largest) - 1) / i128::from(largest);
            let key = if r["group"] == true {
                format!("{} (group: its members')", text(&r["key"]))
            } else {
                text(&r["key"])
            };
            [
                key,
                format!("${}", text(&r["usd"])),
                r.get("calls").map_or("-".to_owned(), text),
                "█".repeat(usize::try_from(width).unwrap_or(0)),
            ]
        })
        .collect();
    let by = answer["by"].as_str().unwrap_or("person").to_uppercase();
    let mut out = table([by.as_str(), "USD", "CALLS", ""], &lines);
    out.push_str(&format!(
        "total ${} in {} calls, {} (metered: an estimate; AWS Budgets is the bill)\n",
        text(&answer["total_usd"]),
        text(&answer["total_calls"]),
        text(&answer["period"]),
    ));
    out
}

/// The answer of `flush_notifications`.
pub fn flush(answer: &Value) -> String {
    format!(
        "delivered {}, still pending {}, failed for good {}\n",
        answer["delivered"], answer["pending"], answer["failed"]
    )
}

/// The answer of `doctor`: each check, and the commands that fix a failing one.
pub fn doctor(answer: &Value) -> String {
    let mut out = String::new();
    let checks = answer["checks"].as_array().cloned().unwrap_or_default();
    for check in &checks {
        let mark = if check["ok"] == true { "ok  " } else { "FAIL" };
        if check["check"] == "invocation_logging" {
            let to = match (check["log_group"].as_str(), check["s3_bucket"].as_str()) {
                (Some(group), _) => format!("to log group {group}"),
                (None, Some(bucket)) => format!("to S3 bucket {bucket} only"),
                (None, None) => check["error"]
                    .as_str()
                    .map_or("off".to_owned(), |e| format!("unknown: {e}")),
            };
            out.push_str(&format!(
                "{mark} invocation_logging: Bedrock logs invocations {to}\n"
            ));
            for command in check["fix"].as_array().into_iter().flatten() {
                out.push_str(&format!("     fix: {}\n", command.as_str().unwrap_or("?")));
            }
            continue;
        }
        out.push_str(&format!(
            "{mark} {}: role {} (permission set {}, {} people)\n",
            check["check"].as_str().unwrap_or("?"),
            check["role"].as_str().unwrap_or("?"),
            check["permission_set"].as_str().unwrap_or("?"),
            check["people"],
        ));
        if let Some(missing) = check["missing"].as_array().filter(|m| !m.is_empty()) {
            let names: Vec<&str> = missing.iter().filter_map(Value::as_str).collect();
            out.push_str(&format!(
                "     the permission set does not reference: {}\n     fix (in the Identity Center account, SSO_INSTANCE_ARN set):\n",
                names.join(", ")
            ));
            for command in check["fix"].as_array().into_iter().flatten() {
                out.push_str(&format!("       {}\n", command.as_str().unwrap_or("?")));
            }
        }
    }
    if !checks
        .iter()
        .any(|c| c["check"] == "identity_center_references")
    {
        out.push_str("no Identity Center roles to check: nobody on one has a cap\n");
    }
    out.push_str(if answer["healthy"] == true {
        "healthy\n"
    } else {
        "NOT healthy: fix the above\n"
    });
    out
}

/// The answer of `subscribe_email`.
/// The answer of `prices set`.
pub fn price_set(answer: &Value) -> String {
    format!(
        "{} ({}) now costs ${} in and ${} out per million tokens, from {}\n",
        answer["model"].as_str().unwrap_or("?"),
        answer["family"].as_str().unwrap_or("?"),
        answer["input_per_million_usd"].as_str().unwrap_or("?"),
        answer["output_per_million_usd"].as_str().unwrap_or("?"),
        answer["used_from"].as_str().unwrap_or("the next batch"),
    )
}

pub fn subscription(answer: &Value) -> String {
    format!(
        "subscribed ({}); filter {}\nSNS sends the address a confirmation link first.\n",
        answer["subscription_arn"].as_str().unwrap_or("?"),
        answer["filter_policy"]
    )
}
