//! Metering through the real `metering` binary and moto: Bedrock invocation log records in
//! CloudWatch Logs subscription batches (gzipped, base64), priced, counted once per request
//! id, charged to the right principal, and acted on at the ladder's rungs within the batch
//! that crosses them, before any Budgets alert.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use seatcap::App;
use seatcap::ledger::{EventKind, Subject};
use seatcap::principal::PrincipalArn;
use seatcap::state::Status;
use seatcap_tests::{
    Account, Function, KillingProxy, binary, eventbridge_object_created,
    invocation_record as record, log_file, log_file_key, logs_batch as batch, s3_objects_created,
    sns_event, todays_budget_alert,
};
use serde_json::{Value, json};

const OPUS: &str = "global.anthropic.claude-opus-4-5-20251101-v1:0";

/// `n` calls of Opus 4.5 with 1M output tokens each ($25 a call), ids `<prefix>-<i>`.
fn opus_calls(identity: &str, prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| record(identity, &format!("{prefix}-{i}"), OPUS, 1_000_000))
        .collect()
}

fn admin_app(account: &Account) -> App {
    account.app(&[], seatcap::app::system_clock())
}

async fn set_cap(app: &App, principal: &str, budget: &str) {
    let answer = app
        .handle_admin(
            json!({"action": "set_cap", "principal": principal, "budget": budget,
            "cap_usd": "200.00", "actor": "finance", "reason": "seat"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
}

async fn audit(account: &Account, principal: &PrincipalArn) -> Vec<(EventKind, Value)> {
    account
        .history(principal)
        .await
        .into_iter()
        .map(|e| (e.kind, e.detail))
        .collect()
}

/// Delivers `event` to a metering process that a proxy kills right after it relays the
/// answer to the call matching `call` (e.g. the detach): the process never answers.
async fn killed_right_after(account: &Account, call: &str, event: &Value) {
    let victim = Arc::new(Mutex::new(None));
    let upstream = account.endpoint.trim_start_matches("http://").to_owned();
    let proxy = KillingProxy::start(upstream, call.into(), victim.clone()).await;
    let mut env = account.env();
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
    let mut dying = Function::start(binary("metering"), &env).await;
    *victim.lock().unwrap() = dying.pid();
    let answer = dying.invoke_or_die(event, Duration::from_secs(3)).await;
    assert!(
        answer.is_none() && proxy.fired(),
        "killed right after {call}: {answer:?}"
    );
}

/// Puts the IAM users `users` in the IAM group `group`.
async fn join_group(account: &Account, group: &str, users: &[&str]) {
    for user in users {
        account
            .iam
            .add_user_to_group()
            .group_name(group)
            .user_name(*user)
            .send()
            .await
            .unwrap();
    }
}

fn outcomes(report: &Value) -> Vec<String> {
    report["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["outcome"].as_str().unwrap_or("duplicate").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_loop_is_cut_by_metering_at_the_cap_before_any_budgets_alert() {
    let account = Account::new().await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    set_cap(&admin_app(&account), alice.as_str(), "seatcap-alice").await;
    let metering = Function::start(binary("metering"), &account.env()).await;

    // $100: the 50 % rung, once.
    let first = metering
        .invoke(&batch(&opus_calls(alice.as_str(), "a", 4)))
        .await
        .expect_response();
    assert_eq!(first["counted"], 4, "{first}");
    assert_eq!(first["spend"][0]["metered_usd"], "100.00", "{first}");
    assert_eq!(outcomes(&first), vec!["warn"], "{first}");
    // $175: the 80 % rung.
    let second = metering
        .invoke(&batch(&opus_calls(alice.as_str(), "b", 3)))
        .await
        .expect_response();
    assert_eq!(outcomes(&second), vec!["warn"], "{second}");
    assert_eq!(account.attached(&alice).await.len(), 1);
    // $200: the cap. Cut within this batch.
    let crossing = batch(&opus_calls(alice.as_str(), "c", 1));
    let third = metering.invoke(&crossing).await.expect_response();
    assert_eq!(outcomes(&third), vec!["enforce"], "{third}");
    assert!(account.attached(&alice).await.is_empty(), "cut");
    let events = audit(&account, &alice).await;
    let (_, enforced) = events
        .iter()
        .find(|(k, _)| *k == EventKind::Enforced)
        .expect("enforced audited");
    assert_eq!(enforced["source"], "metered", "{enforced}");
    assert_eq!(enforced["amount_usd"], "200.00", "{enforced}");

    // The same batch again (CloudWatch Logs retries): counted once, nobody told twice.
    let again = metering.invoke(&crossing).await.expect_response();
    assert_eq!(
        (again["counted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(1)),
        "{again}"
    );
    assert_eq!(again["spend"][0]["metered_usd"], "200.00", "{again}");
    assert!(outcomes(&again).iter().all(|o| o == "duplicate"), "{again}");
    // One call logged twice in a batch: counted once.
    let twice = opus_calls(alice.as_str(), "t", 1);
    let doubled = metering
        .invoke(&batch(&[twice[0].clone(), twice[0].clone()]))
        .await
        .expect_response();
    assert_eq!(
        (doubled["counted"].clone(), doubled["duplicates"].clone()),
        (json!(1), json!(1)),
        "{doubled}"
    );
    assert_eq!(doubled["spend"][0]["metered_usd"], "225.00", "{doubled}");

    // More calls after the cut: counted, no new alert.
    let after = metering
        .invoke(&batch(&opus_calls(alice.as_str(), "d", 2)))
        .await
        .expect_response();
    assert_eq!(after["spend"][0]["metered_usd"], "275.00", "{after}");
    assert!(outcomes(&after).is_empty(), "{after}");

    // Finance sees the metered figure beside the state, in status and list.
    let status = admin_app(&account)
        .handle_admin(json!({"action": "status", "principal": alice.as_str()}))
        .await
        .unwrap();
    let month = seatcap::period::month_key(Utc::now());
    assert_eq!(
        (
            status["metered_usd"].clone(),
            status["metered_period"].clone()
        ),
        (json!("275.00"), json!(month)),
        "{status}"
    );
    let list = admin_app(&account)
        .handle_admin(json!({"action": "list"}))
        .await
        .unwrap();
    assert_eq!(list["principals"][0]["metered_usd"], "275.00", "{list}");

    // Budgets' own 100 % alert, hours later: the same alert, already acted on.
    let alerts = Function::start(binary("budget-alert"), &account.env()).await;
    let late = alerts
        .invoke(&sns_event(
            "m-budgets-100",
            &todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "203.10"),
        ))
        .await
        .expect_response();
    assert_eq!(late["reports"][0]["result"], "duplicate", "{late}");
    let cut_offs = audit(&account, &alice)
        .await
        .iter()
        .filter(|(k, _)| *k == EventKind::Enforced)
        .count();
    assert_eq!(cut_offs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_is_charged_to_the_person_on_a_shared_role_the_role_or_no_one() {
    let account = Account::new().await;
    let app = admin_app(&account);
    let role = "AWSReservedSSO_ClaudeDev_0123abcd";
    let alice = format!(
        "arn:aws:sts::{}:assumed-role/{role}/alice@example.com",
        account.id
    );
    let bob = format!(
        "arn:aws:sts::{}:assumed-role/{role}/bob@example.com",
        account.id
    );
    let team_role = format!("arn:aws:iam::{}:role/Team", account.id);
    let team_session = format!("arn:aws:sts::{}:assumed-role/Team/ci-runner", account.id);
    let stranger = format!("arn:aws:iam::{}:user/stranger", account.id);
    set_cap(&app, &alice, "seatcap-alice").await;
    set_cap(&app, &team_role, "seatcap-team").await;
    let metering = Function::start(binary("metering"), &account.env()).await;

    let sonnet = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
    let mut cached = record(&alice, "r-cache", sonnet, 2_000);
    cached["input"] = json!({"inputTokenCount": 1000, "cacheReadInputTokenCount": 100000,
        "cacheWriteInputTokenCount": 11000});
    cached["output"]["outputBodyJson"] = json!({"usage": {"cache_creation":
        {"ephemeral_5m_input_tokens": 10000, "ephemeral_1h_input_tokens": 1000}}});
    let records = vec![
        cached,
        record(
            &bob,
            "r-bob",
            "global.anthropic.claude-haiku-4-5-20251001-v1:0",
            1_000_000,
        ),
        record(&team_session, "r-team", OPUS, 40_000),
        record(
            &stranger,
            "r-stranger",
            "us.anthropic.claude-future-9",
            1_000,
        ),
        record(&alice, "r-failed", sonnet, 0)
            .as_object()
            .cloned()
            .map(|mut r| {
                r.remove("input");
                r.remove("output");
                Value::Object(r)
            })
            .unwrap(),
        json!("not a record"),
    ];
    let report = metering.invoke(&batch(&records)).await.expect_response();
    let spend: HashMap<String, (bool, String)> = report["spend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["arn"].as_str().unwrap().to_owned(),
                (
                    s["managed"] == true,
                    s["added_usd"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    // Alice, us. profile (Sonnet 4.5 at $3.30 / $16.50): 1000 in $0.0033, 2000 out $0.033,
    // 100,000 cache reads at $0.33 = $0.033, 10,000 5-minute writes at $4.125 = $0.04125,
    // 1,000 1-hour writes at $6.60 = $0.0066: $0.11715, shown to the cent.
    assert_eq!(spend[&alice], (true, "0.12".to_owned()), "{report}");
    // Bob has no cap of his own and his role has none: counted as himself, charged to no one.
    assert_eq!(spend[&bob], (false, "5.00".to_owned()), "{report}");
    // A session on a role with a cap: the role's.
    assert_eq!(spend[&team_role], (true, "1.00".to_owned()), "{report}");
    // An unknown model: the table's highest rate (Opus 4's $75 output, +10 % regional).
    assert_eq!(spend[&stranger], (false, "0.08".to_owned()), "{report}");
    assert_eq!(
        report["unknown_models"],
        json!(["us.anthropic.claude-future-9"])
    );
    assert_eq!(report["without_tokens"], 1, "{report}");
    assert_eq!(report["malformed"], 1, "{report}");
    let micros = account
        .ledger()
        .metered(
            &alice.parse().unwrap(),
            &seatcap::period::month_key(Utc::now()),
        )
        .await
        .unwrap();
    assert_eq!(micros, 117_150, "exact, in micro-dollars");

    // The unknown model was reported once; neither this process nor a new one, meeting it
    // again this month, reports it again.
    let later = vec![record(
        &stranger,
        "r-stranger-2",
        "us.anthropic.claude-future-9",
        1,
    )];
    metering.invoke(&batch(&later)).await.expect_response();
    let fresh = Function::start(binary("metering"), &account.env()).await;
    let mut later = later;
    later[0]["requestId"] = json!("r-stranger-3");
    let again_later = fresh.invoke(&batch(&later)).await.expect_response();
    assert_eq!(again_later["counted"], 1, "{again_later}");
    let reports: Vec<Value> = account
        .ledger()
        .history(&Subject::System, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::UnknownModelPriced)
        .map(|e| e.detail)
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["model"], "us.anthropic.claude-future-9");
    assert_eq!(reports[0]["first_caller"], stranger.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_for_one_person_count_every_call_once_and_cut_once() {
    let account = Account::new().await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    set_cap(&admin_app(&account), alice.as_str(), "seatcap-alice").await;
    // Two instances, as Lambda runs concurrent batches.
    let one = Function::start(binary("metering"), &account.env()).await;
    let two = Function::start(binary("metering"), &account.env()).await;
    // 5 calls each, 2 of them in both batches (a request id seen twice): 8 distinct, $200.
    let mut left = opus_calls(alice.as_str(), "x", 5);
    let mut right = opus_calls(alice.as_str(), "y", 3);
    right.extend(left[..2].iter().cloned());
    left.rotate_left(1);
    let (left, right) = (batch(&left), batch(&right));
    let (a, b) = tokio::join!(one.invoke(&left), two.invoke(&right));
    let (a, b) = (a.expect_response(), b.expect_response());
    let counted = a["counted"].as_u64().unwrap() + b["counted"].as_u64().unwrap();
    let duplicates = a["duplicates"].as_u64().unwrap() + b["duplicates"].as_u64().unwrap();
    assert_eq!((counted, duplicates), (8, 2), "{a} {b}");
    let period = seatcap::period::month_key(Utc::now());
    assert_eq!(
        account.ledger().metered(&alice, &period).await.unwrap(),
        200_000_000,
        "{a} {b}"
    );
    // Each batch decides on the counter after its own ADD, so the one that read last saw
    // the crossing: alice is cut by the pair itself, not by a later batch.
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(state.status, Status::Blocked, "{a} {b}");
    // More after it: one cut, IAM and the ledger agree.
    let next = one
        .invoke(&batch(&opus_calls(alice.as_str(), "z", 1)))
        .await
        .expect_response();
    let enforced = audit(&account, &alice)
        .await
        .iter()
        .filter(|(k, _)| *k == EventKind::Enforced)
        .count();
    assert_eq!(enforced, 1, "{a} {b} {next}");
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(state.status, Status::Blocked);
    assert!(account.attached(&alice).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metering_killed_after_the_cut_is_completed_by_the_redelivered_batch() {
    let account = Account::new().await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    set_cap(&admin_app(&account), alice.as_str(), "seatcap-alice").await;
    let runaway = batch(&opus_calls(alice.as_str(), "k", 8));

    killed_right_after(&account, "Action=DetachUserPolicy", &runaway).await;
    assert!(
        account.attached(&alice).await.is_empty(),
        "IAM cut before the death"
    );
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert!(state.pending.is_some(), "the ledger holds the intent");

    // CloudWatch Logs delivers the batch again, to a new process.
    let metering = Function::start(binary("metering"), &account.env()).await;
    let again = metering.invoke(&runaway).await.expect_response();
    assert_eq!(
        (again["counted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(8)),
        "{again}"
    );
    account.assert_cut(&alice).await;
    let kinds: Vec<EventKind> = audit(&account, &alice)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(kinds.contains(&EventKind::IntentCompleted), "{kinds:?}");
    // Finance restores: exactly the policy comes back.
    let restored = admin_app(&account)
        .handle_admin(json!({"action": "restore", "principal": alice.as_str(), "actor": "finance", "reason": "ok"}))
        .await
        .unwrap();
    assert_eq!(
        restored["reattached_policy_arns"],
        json!([account.bedrock_policy_arn]),
        "{restored}"
    );
}

/// Accounts that log to S3: the same calls cost the same delivered as a log file as in a
/// CloudWatch Logs batch, a call delivered both ways counts once, and only Bedrock's log
/// files are read (another object named by the event is skipped, a deleted one reported).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_delivery_counts_the_same_as_cloudwatch_logs_delivery() {
    let account = Account::new().await;
    let app = admin_app(&account);
    let alice = account.principal("user", "alice");
    let bob = account.principal("user", "bob");
    set_cap(&app, alice.as_str(), "seatcap-alice").await;
    set_cap(&app, bob.as_str(), "seatcap-bob").await;
    // The same four calls for each: Opus at $25 a call, and Sonnet with cache tokens.
    let calls = |who: &PrincipalArn, prefix: &str| {
        let mut calls = opus_calls(who.as_str(), prefix, 3);
        let mut cached = record(
            who.as_str(),
            &format!("{prefix}-cache"),
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            2_000,
        );
        cached["input"] = json!({"inputTokenCount": 1000, "cacheReadInputTokenCount": 100000,
            "cacheWriteInputTokenCount": 11000});
        calls.push(cached);
        calls
    };
    let (by_s3, by_logs) = (calls(&alice, "s3"), calls(&bob, "cw"));
    let mut file = by_s3[..3].to_vec();
    file.push(json!("a line that is no record"));
    let (first, second) = (
        log_file_key(&account.id, "a b"),
        log_file_key(&account.id, "c"),
    );
    let not_a_log = format!(
        "AWSLogs/{}/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
        account.id
    );
    let deleted = log_file_key(&account.id, "deleted");
    let bucket = account
        .log_bucket(&[
            (&first, log_file(&file)),
            (&second, log_file(&by_s3[3..])),
            (&not_a_log, b"{}".to_vec()),
        ])
        .await;
    let metering = Function::start(binary("metering"), &account.env()).await;

    // An S3 notification (keys URL-encoded) naming a log file, another object, a gone file.
    let notified = metering
        .invoke(&s3_objects_created(
            &bucket,
            &[&first, &not_a_log, &deleted],
        ))
        .await
        .expect_response();
    assert_eq!(notified["counted"], 3, "{notified}");
    assert_eq!(notified["malformed"], 1, "{notified}");
    assert_eq!(
        notified["objects"],
        json!([format!("s3://{bucket}/{first}")]),
        "{notified}"
    );
    let skipped: Vec<&str> = notified["skipped_objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        vec![
            format!("s3://{bucket}/{not_a_log}"),
            format!("s3://{bucket}/{deleted}")
        ],
        "{notified}"
    );
    // EventBridge's shape for the second file.
    let bridged = metering
        .invoke(&eventbridge_object_created(&bucket, &second))
        .await
        .expect_response();
    assert_eq!(bridged["counted"], 1, "{bridged}");
    // Bob's identical calls by CloudWatch Logs.
    let logged = metering.invoke(&batch(&by_logs)).await.expect_response();
    assert_eq!(logged["counted"], 4, "{logged}");

    let period = seatcap::period::month_key(Utc::now());
    let ledger = account.ledger();
    let (s3_micros, logs_micros) = (
        ledger.metered(&alice, &period).await.unwrap(),
        ledger.metered(&bob, &period).await.unwrap(),
    );
    // 3 x $25 + the cached Sonnet call without a 5m/1h split (all writes at 5 minutes):
    // $0.0033 + $0.033 + $0.033 + 11,000 x $4.125 / 1M = $0.045375 → $75.114675.
    assert_eq!((s3_micros, logs_micros), (75_114_675, 75_114_675));

    // Delivered again, either way: nothing counts twice.
    let again = metering
        .invoke(&s3_objects_created(&bucket, &[&first, &second]))
        .await
        .expect_response();
    let crossed = metering.invoke(&batch(&by_s3)).await.expect_response();
    assert_eq!(
        (&again["counted"], &again["duplicates"]),
        (&json!(0), &json!(4)),
        "{again}"
    );
    assert_eq!(
        (&crossed["counted"], &crossed["duplicates"]),
        (&json!(0), &json!(4)),
        "{crossed}"
    );
    assert_eq!(ledger.metered(&alice, &period).await.unwrap(), 75_114_675);
}

/// A group principal's spend is its members': each member's calls count for the group as
/// well as for the member (or, for a member with no cap, under the member's own ARN), the
/// group is cut when its members together reach its cap, and a redelivery counts nothing
/// twice, for the group or the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_spend_is_its_members_and_the_group_is_cut_at_its_cap() {
    let account = Account::new().await;
    let app = admin_app(&account);
    let platform = account
        .create_principal("group", "platform", &[&account.bedrock_policy_arn])
        .await;
    let carol = account.create_principal("user", "carol", &[]).await;
    let dan = account.create_principal("user", "dan", &[]).await;
    let erin = account.create_principal("user", "erin", &[]).await;
    join_group(&account, "platform", &["carol", "dan"]).await;
    set_cap(&app, platform.as_str(), "seatcap-platform").await;
    set_cap(&app, carol.as_str(), "seatcap-carol").await;
    let metering = Function::start(binary("metering"), &account.env()).await;

    // $100 each from Carol and Dan ($200: the group's cap), $100 from Erin (no group).
    let mut calls = opus_calls(carol.as_str(), "carol", 4);
    calls.extend(opus_calls(dan.as_str(), "dan", 4));
    calls.extend(opus_calls(erin.as_str(), "erin", 4));
    let report = metering.invoke(&batch(&calls)).await.expect_response();
    let spend: HashMap<String, (bool, String)> = report["spend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let arn = s["arn"].as_str().unwrap().to_owned();
            let figure = (
                s["managed"] == true,
                s["metered_usd"].as_str().unwrap().into(),
            );
            (arn, figure)
        })
        .collect();
    let expected: HashMap<String, (bool, String)> = [
        (platform.to_string(), (true, "200.00".to_owned())),
        (carol.to_string(), (true, "100.00".to_owned())),
        (dan.to_string(), (false, "100.00".to_owned())),
        (erin.to_string(), (false, "100.00".to_owned())),
    ]
    .into_iter()
    .collect();
    assert_eq!(spend, expected, "{report}");
    assert_eq!(
        report["counted"], 20,
        "12 calls, 8 of them for the group too"
    );

    // The group reached its cap: cut. Carol reached half of hers: warned, not cut.
    let group = account.ledger().load(&platform).await.unwrap().unwrap();
    assert_eq!(group.status, Status::Blocked, "{report}");
    assert!(account.attached(&platform).await.is_empty());
    let carols = audit(&account, &carol).await;
    assert!(
        carols.iter().all(|(kind, _)| *kind != EventKind::Enforced),
        "{carols:?}"
    );
    assert_eq!(
        account.ledger().load(&carol).await.unwrap().unwrap().status,
        Status::Active
    );

    // Redelivered: nothing counts twice, for the members or the group.
    let again = metering.invoke(&batch(&calls)).await.expect_response();
    assert_eq!(
        (&again["counted"], &again["duplicates"]),
        (&json!(0), &json!(20)),
        "{again}"
    );
    let period = seatcap::period::month_key(Utc::now());
    assert_eq!(
        account.ledger().metered(&platform, &period).await.unwrap(),
        200_000_000
    );
}

/// The group's counter under racing batches of two members (sharing request ids), and a
/// metering process killed right after it detached the group's policy: every call counts
/// once for the group, the redelivered batch completes the cut, and a restore gives back
/// exactly what was taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_racing_batches_and_a_death_after_the_groups_cut_converge() {
    let account = Account::new().await;
    let app = admin_app(&account);
    let platform = account
        .create_principal("group", "platform", &[&account.bedrock_policy_arn])
        .await;
    for user in ["carol", "dan"] {
        account.create_principal("user", user, &[]).await;
    }
    join_group(&account, "platform", &["carol", "dan"]).await;
    let (carol, dan) = (
        account.principal("user", "carol"),
        account.principal("user", "dan"),
    );
    set_cap(&app, platform.as_str(), "seatcap-platform").await;

    // Racing: $75 + $50 from two instances, one call in both batches: $100 for the group.
    let one = Function::start(binary("metering"), &account.env()).await;
    let two = Function::start(binary("metering"), &account.env()).await;
    let mut left = opus_calls(carol.as_str(), "c", 3);
    let mut right = opus_calls(dan.as_str(), "d", 1);
    right.push(left[0].clone());
    left.rotate_left(1);
    let (left, right) = (batch(&left), batch(&right));
    let (a, b) = tokio::join!(one.invoke(&left), two.invoke(&right));
    let (a, b) = (a.expect_response(), b.expect_response());
    let period = seatcap::period::month_key(Utc::now());
    assert_eq!(
        account.ledger().metered(&platform, &period).await.unwrap(),
        100_000_000,
        "{a} {b}"
    );

    // The batch that takes the group over its cap; the process dies after the detach.
    let runaway = batch(&opus_calls(dan.as_str(), "k", 5));
    killed_right_after(&account, "Action=DetachGroupPolicy", &runaway).await;
    assert!(account.attached(&platform).await.is_empty(), "cut in IAM");

    // Counting comes before acting: the group's share and Dan's own were counted before
    // the death, so the redelivery counts nothing and completes the cut.
    let again = one.invoke(&runaway).await.expect_response();
    assert_eq!(
        (&again["counted"], &again["duplicates"]),
        (&json!(0), &json!(10)),
        "{again}"
    );
    account.assert_cut(&platform).await;
    assert_eq!(
        account.ledger().metered(&platform, &period).await.unwrap(),
        225_000_000
    );
    let restored = app
        .handle_admin(json!({"action": "restore", "principal": platform.as_str(),
            "actor": "finance", "reason": "ok"}))
        .await
        .unwrap();
    assert_eq!(
        account.attached(&platform).await,
        vec![account.bedrock_policy_arn.clone()],
        "{restored}"
    );
}

/// The higher of the metered figure and Budgets' decides: calls still in flight at the cut
/// are metered after it ($250 against the $225 the cut recorded), so raising the cap to
/// $240 restores no one, and neither does reconcile; $260 does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_cap_restores_only_above_the_metered_spend() {
    let account = Account::new().await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    let app = admin_app(&account);
    set_cap(&app, alice.as_str(), "seatcap-alice").await;
    let metering = Function::start(binary("metering"), &account.env()).await;
    let cut = metering
        .invoke(&batch(&opus_calls(alice.as_str(), "run", 9)))
        .await
        .expect_response();
    assert!(outcomes(&cut).contains(&"enforce".to_owned()), "{cut}");
    let late = metering
        .invoke(&batch(&opus_calls(alice.as_str(), "in-flight", 1)))
        .await
        .expect_response();
    assert_eq!(late["spend"][0]["metered_usd"], "250.00", "{late}");

    let raise = |cap: &str| {
        json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
            "cap_usd": cap, "actor": "finance", "reason": "raise"})
    };
    let to_240 = app.handle_admin(raise("240.00")).await.unwrap();
    assert_eq!(
        (
            &to_240["status"],
            &to_240["restored"],
            &to_240["last_actual_usd"]
        ),
        (&json!("blocked"), &json!(false), &json!("250.00")),
        "{to_240}"
    );
    let report = app
        .reconcile(
            seatcap::reconcile::ReconcileEvent::default(),
            seatcap::handover::Pace::unlimited(),
        )
        .await
        .unwrap();
    let restored_by_reconcile = report
        .principals
        .iter()
        .any(|p| p.principal == alice && p.outcome == "done");
    assert!(!restored_by_reconcile, "{report:?}");
    assert!(account.attached(&alice).await.is_empty());

    let to_260 = app.handle_admin(raise("260.00")).await.unwrap();
    assert_eq!(to_260["restored"], true, "{to_260}");
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );
}

/// A runaway loop of a person on an IAM Identity Center role, metered: the cut goes into
/// the shard the permission set references, exactly that person, and nothing is written to
/// the role (IAM would refuse it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metering_cuts_an_identity_center_person_through_the_shard_alone() {
    let account = Account::new().await;
    let role = account
        .identity_center_role("ClaudeDev", &[0, 1, 2, 3, 4])
        .await;
    let alice = account.sso_person(&role, "alice@example.com");
    let bob = account.sso_person(&role, "bob@example.com");
    let app = admin_app(&account);
    set_cap(&app, alice.as_str(), "seatcap-alice").await;
    set_cap(&app, bob.as_str(), "seatcap-bob").await;
    let metering = Function::start(binary("metering"), &account.env()).await;

    let mut calls = opus_calls(alice.as_str(), "a", 8);
    calls.extend(opus_calls(bob.as_str(), "b", 1));
    let report = metering.invoke(&batch(&calls)).await.expect_response();
    assert!(
        outcomes(&report).contains(&"enforce".to_owned()),
        "{report}"
    );
    let id = account.role_id(&role).await;
    assert_eq!(
        account.sso_denied().await,
        std::collections::BTreeSet::from([format!("{id}:alice@example.com")])
    );
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(
        (state.status, state.not_enforceable.is_none()),
        (seatcap::state::Status::Blocked, true),
        "{state:?}"
    );
    assert_eq!(account.protected_roles.refused(&role), 0);
}
