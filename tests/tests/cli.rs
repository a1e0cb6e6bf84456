//! The `seatcap` CLI binary, run as finance runs it, against the real admin binary (through a
//! local Lambda Invoke API) and moto.

use std::collections::HashMap;
use std::process::Output;
use std::sync::Arc;

use seatcap_tests::{
    Account, Function, binary, invocation_record, logs_batch, moto, serve_invoke_api, sns_event,
    todays_budget_alert,
};
use serde_json::{Value, json};

struct Finance {
    account: Account,
    alerts: Function,
    env: HashMap<String, String>,
}

async fn setup() -> Finance {
    let account = Account::new().await;
    let alerts = Function::start(binary("budget-alert"), &account.env()).await;
    let admin = Arc::new(Function::start(binary("admin"), &account.env()).await);
    // A deployment from before the Function URL: the CLI finds none and invokes directly.
    let invoke_url = serve_invoke_api(
        HashMap::from([("seatcap-admin".to_owned(), admin)]),
        HashMap::new(),
    )
    .await;
    let mut env = account.env();
    // The CLI reaches Lambda through the local Invoke API and STS through moto.
    env.insert("AWS_ENDPOINT_URL".into(), moto().endpoint.clone());
    env.insert("AWS_ENDPOINT_URL_LAMBDA".into(), invoke_url);
    Finance {
        account,
        alerts,
        env,
    }
}

impl Finance {
    async fn seatcap(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(binary("seatcap"))
            .args(args)
            .env_clear()
            .envs(&self.env)
            .output()
            .await
            .expect("run seatcap")
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_caps_lists_overrides_and_reads_history_with_short_names() {
    let f = setup().await;
    let alice = f
        .account
        .create_principal("user", "alice", &[&f.account.bedrock_policy_arn])
        .await;

    let set = f
        .seatcap(&["set-cap", "alice", "200", "--reason", "Q4 seat"])
        .await;
    assert!(set.status.success(), "{}", stderr(&set));
    let table = stdout(&set);
    assert!(
        table.contains(alice.as_str()) && table.contains("ACTIVE") && table.contains("$200.00"),
        "{table}"
    );

    let alert = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "212.00");
    f.alerts
        .invoke(&sns_event("m-1", &alert))
        .await
        .expect_response();

    let blocked = f.seatcap(&["list", "--blocked"]).await;
    let listing = stdout(&blocked);
    assert!(listing.starts_with("PRINCIPAL"), "{listing}");
    assert!(
        listing.contains(alice.as_str()) && listing.contains("$212.00"),
        "{listing}"
    );

    let json = f.seatcap(&["--json", "status", "alice"]).await;
    let status: Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(status["status"], "blocked");

    let granted = f
        .seatcap(&[
            "override",
            "alice",
            "+100",
            "--until",
            "2026-12-31",
            "--reason",
            "launch",
        ])
        .await;
    assert!(granted.status.success(), "{}", stderr(&granted));
    assert!(
        stdout(&granted).contains("restored         yes"),
        "{}",
        stdout(&granted)
    );
    assert_eq!(
        f.account.attached(&alice).await,
        vec![f.account.bedrock_policy_arn.clone()]
    );

    let history = f.seatcap(&["history", "alice", "--limit", "10"]).await;
    let lines = stdout(&history);
    let first_event = lines.lines().nth(1).unwrap_or_default();
    assert!(
        first_event.contains("override_granted") && first_event.contains("launch"),
        "{lines}"
    );
    // The actor is the caller's AWS identity when --actor is not given.
    assert!(
        first_event.contains(&format!("arn:aws:sts::{}:assumed-role/", f.account.id)),
        "{lines}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_failures_exit_non_zero_with_a_clear_message() {
    let f = setup().await;
    let refused = f
        .seatcap(&[
            "set-cap", "alice", "-5", "--actor", "finance", "--reason", "typo",
        ])
        .await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("refused (invalid_amount)"),
        "{}",
        stderr(&refused)
    );
    assert!(stderr(&refused).contains("nothing was changed"));

    let unknown = f.seatcap(&["status", "nobody"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("not_found"),
        "{}",
        stderr(&unknown)
    );

    let wrong_function = f
        .seatcap(&["--function", "no-such-function", "status", "alice"])
        .await;
    assert_eq!(wrong_function.status.code(), Some(1));
    assert!(
        stderr(&wrong_function).contains("could not invoke no-such-function"),
        "{}",
        stderr(&wrong_function)
    );

    let no_reason = f.seatcap(&["restore", "alice"]).await;
    assert_eq!(
        no_reason.status.code(),
        Some(2),
        "clap refuses a missing --reason"
    );
    assert!(stderr(&no_reason).contains("--reason"));
}

/// `seatcap usage`: the month's metered spend, from the metering binary's counters, by
/// person, model and team, as a table with bars; a bad period is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_shows_the_months_metered_spend_by_person_model_and_team() {
    let f = setup().await;
    let alice = f.account.create_principal("user", "alice", &[]).await;
    let bob = f.account.create_principal("user", "bob", &[]).await;
    for args in [
        [
            "set-cap", "alice", "200", "--team", "data", "--reason", "seat",
        ],
        ["set-cap", "bob", "200", "--reason", "seat", "", ""],
    ] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let set = f.seatcap(&args).await;
        assert!(set.status.success(), "{}", stderr(&set));
    }
    let stranger = format!("arn:aws:sts::{}:assumed-role/Other/x", f.account.id);
    let opus = "global.anthropic.claude-opus-4-5-20251101-v1:0";
    let haiku = "global.anthropic.claude-haiku-4-5-20251001-v1:0";
    let records = vec![
        invocation_record(alice.as_str(), "a1", opus, 1_000_000),
        invocation_record(alice.as_str(), "a2", opus, 1_000_000),
        invocation_record(alice.as_str(), "a3", haiku, 1_000_000),
        invocation_record(bob.as_str(), "b1", opus, 1_000_000),
        invocation_record(&stranger, "s1", haiku, 1_000_000),
    ];
    let metering = Function::start(binary("metering"), &f.account.env()).await;
    metering
        .invoke(&logs_batch(&records))
        .await
        .expect_response();

    let by_person = f.seatcap(&["usage"]).await;
    assert!(by_person.status.success(), "{}", stderr(&by_person));
    let table = stdout(&by_person);
    let lines: Vec<&str> = table.lines().collect();
    // Largest first, each with a bar to scale: Alice $55 (the longest), Bob $25, the stranger $5.
    assert!(
        lines[1].starts_with(alice.as_str()) && lines[1].contains("$55.00"),
        "{table}"
    );
    assert!(lines[1].ends_with(&"█".repeat(30)), "{table}");
    assert!(
        lines[2].starts_with(bob.as_str()) && lines[2].ends_with(&"█".repeat(14)),
        "{table}"
    );
    assert!(
        lines[3].starts_with(&stranger) && lines[3].contains("$5.00"),
        "{table}"
    );
    assert!(table.contains("total $85.00 in 5 calls"), "{table}");

    let by_model = stdout(&f.seatcap(&["usage", "--by", "model"]).await);
    assert!(
        by_model.contains(opus) && by_model.contains("$75.00"),
        "{by_model}"
    );
    assert!(
        by_model.contains(haiku) && by_model.contains("$10.00"),
        "{by_model}"
    );
    let by_team = stdout(&f.seatcap(&["usage", "--by", "team"]).await);
    for expected in ["data", "$55.00", "(no team)", "$25.00", "(no cap)", "$5.00"] {
        assert!(by_team.contains(expected), "{expected}: {by_team}");
    }

    // A month and its days: two calls either side of midnight of an earlier month.
    let mut late = invocation_record(alice.as_str(), "n1", opus, 1_000_000);
    late["timestamp"] = serde_json::json!("2026-11-10T23:59:59Z");
    let mut early = invocation_record(alice.as_str(), "n2", haiku, 1_000_000);
    early["timestamp"] = serde_json::json!("2026-11-11T00:00:01Z");
    metering
        .invoke(&logs_batch(&[late, early]))
        .await
        .expect_response();
    let total = |answer: &Output| {
        let answer: Value = serde_json::from_slice(&answer.stdout).unwrap();
        (answer["total_usd"].clone(), answer["total_calls"].clone())
    };
    for (period, usd, calls) in [
        ("2026-11", "30.00", 2),
        ("2026-11-10", "25.00", 1),
        ("2026-11-11", "5.00", 1),
    ] {
        let answer = f.seatcap(&["--json", "usage", "--period", period]).await;
        assert_eq!(total(&answer), (json!(usd), json!(calls)), "{period}");
    }

    let last_year = f.seatcap(&["--json", "usage", "--period", "2025-12"]).await;
    let answer: Value = serde_json::from_slice(&last_year.stdout).unwrap();
    assert_eq!(
        (&answer["rows"], &answer["total_usd"]),
        (&serde_json::json!([]), &serde_json::json!("0.00"))
    );
    let bad = f.seatcap(&["usage", "--period", "2026-13"]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", stdout(&bad));
    assert!(stderr(&bad).contains("invalid_period"), "{}", stderr(&bad));
}
