//! Metering's ladder as people meet it (issue 24): the rungs are the effective cap's (an
//! override raises them, an exemption has none, a lapse lowers them again), a downgrade
//! still leaves the cap rung to take the rest, concurrent batches decide on the counter
//! after their own `ADD`, and one principal whose cut fails does not stop the others.
//! The built metering binary where the wall clock will do; the in-process app on an
//! injected clock where time must pass (an override's lapse).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use seatcap::App;
use seatcap::ledger::EventKind;
use seatcap::principal::PrincipalArn;
use seatcap::state::{BlockCause, Status};
use seatcap_tests::{Account, Function, binary, invocation_record, logs_batch};
use serde_json::{Value, json};

const OPUS: &str = "global.anthropic.claude-opus-4-5-20251101-v1:0";

/// `n` Opus 4.5 calls of `cents` each (its output is $25 per million tokens: 400 tokens a
/// cent), ids `<prefix>-<i>`.
fn calls(identity: &PrincipalArn, prefix: &str, n: usize, cents: u64) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            invocation_record(
                identity.as_str(),
                &format!("{prefix}-{i}-{}", uuid_tail()),
                OPUS,
                cents * 400,
            )
        })
        .collect();
    logs_batch(&records)
}

fn uuid_tail() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

async fn admin(app: &App, request: Value) -> Value {
    let answer = app.handle_admin(request).await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    answer
}

async fn capped(
    account: &Account,
    app: &App,
    name: &str,
    cap: &str,
    policies: &[&str],
) -> PrincipalArn {
    let user = account.create_principal("user", name, policies).await;
    admin(
        app,
        json!({"action": "set_cap", "principal": user.as_str(), "budget": format!("seatcap-{name}"),
            "cap_usd": cap, "actor": "finance", "reason": "seat"}),
    )
    .await;
    user
}

async fn status(account: &Account, principal: &PrincipalArn) -> (Status, Option<BlockCause>) {
    let state = account.ledger().load(principal).await.unwrap().unwrap();
    assert!(state.pending.is_none(), "{state:?}");
    (state.status, state.block_cause)
}

async fn count(account: &Account, principal: &PrincipalArn, kind: EventKind) -> usize {
    account
        .history(principal)
        .await
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

fn metered_now(account: &Account, at: DateTime<Utc>) -> App {
    account.app(&[], Arc::new(move || at))
}

/// A $20 cap with a $10 override: $24 keeps access (the 80 % rung of $30 warns), $42 cuts.
/// An exemption never cuts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_raises_the_rungs_and_an_exemption_has_none() {
    let account = Account::new().await;
    let app = account.app(&[], seatcap::app::system_clock());
    let alice = capped(
        &account,
        &app,
        "alice",
        "20",
        &[&account.bedrock_policy_arn],
    )
    .await;
    let erin = capped(&account, &app, "erin", "20", &[&account.bedrock_policy_arn]).await;
    let until = (Utc::now() + Duration::days(2)).to_rfc3339();
    admin(
        &app,
        json!({"action": "grant_override", "principal": alice.as_str(), "extra_usd": "10.00",
            "expires_at": until, "actor": "finance", "reason": "launch"}),
    )
    .await;
    admin(
        &app,
        json!({"action": "grant_override", "principal": erin.as_str(), "exempt": true,
            "expires_at": until, "actor": "finance", "reason": "incident"}),
    )
    .await;
    let metering = Function::start(binary("metering"), &account.env()).await;

    let first = metering
        .invoke(&calls(&alice, "a", 24, 100))
        .await
        .expect_response();
    assert_eq!(status(&account, &alice).await.0, Status::Active, "{first}");
    assert_eq!(first["alerts"][0]["outcome"], "warn", "{first}");
    let second = metering
        .invoke(&calls(&alice, "b", 18, 100))
        .await
        .expect_response();
    assert_eq!(
        status(&account, &alice).await,
        (Status::Blocked, Some(BlockCause::Cap)),
        "$42 of an effective $30: {second}"
    );
    assert!(account.attached(&alice).await.is_empty());

    let exempt = metering
        .invoke(&calls(&erin, "e", 10, 1000))
        .await
        .expect_response();
    assert_eq!(status(&account, &erin).await.0, Status::Active, "{exempt}");
    assert_eq!(account.attached(&erin).await.len(), 1);
}

/// An override that lapses mid-month: the next batch decides again on the plain cap and
/// cuts, though the cap's rung was passed while the override still counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_that_lapses_makes_the_next_batch_cut() {
    let account = Account::new().await;
    // An injected clock: a fixed day, far from any month's edge.
    let monday = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 23, 9, 0, 0).unwrap();
    let app = metered_now(&account, monday);
    let alice = capped(
        &account,
        &app,
        "alice",
        "20",
        &[&account.bedrock_policy_arn],
    )
    .await;
    admin(
        &app,
        json!({"action": "grant_override", "principal": alice.as_str(), "extra_usd": "10.00",
            "expires_at": (monday + Duration::hours(1)).to_rfc3339(), "actor": "finance", "reason": "demo day"}),
    )
    .await;
    let records = |prefix: &str, n: usize| -> Vec<String> {
        (0..n)
            .map(|i| {
                let mut record =
                    invocation_record(alice.as_str(), &format!("{prefix}-{i}"), OPUS, 40_000);
                record["timestamp"] = json!(monday.to_rfc3339());
                record.to_string()
            })
            .collect()
    };
    // $24 under the override: a warning, access stays.
    app.meter_records(&records("a", 24)).await.unwrap();
    assert_eq!(status(&account, &alice).await.0, Status::Active);
    // Two hours later the override has lapsed; one more dollar cuts.
    let later = metered_now(&account, monday + Duration::hours(2));
    let report = later.meter_records(&records("b", 1)).await.unwrap();
    assert_eq!(
        report.cut_again,
        vec![alice.to_string()],
        "{:?}",
        report.alerts
    );
    assert_eq!(
        status(&account, &alice).await,
        (Status::Blocked, Some(BlockCause::Cap))
    );
    assert!(account.attached(&alice).await.is_empty());
    assert_eq!(count(&account, &alice, EventKind::Enforced).await, 1);
}

/// Finance restores someone over the cap without raising it: access comes back, and the
/// next metered spend cuts again (as reconcile would within the hour). The README says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_over_the_cap_lasts_until_the_next_metered_spend() {
    let account = Account::new().await;
    let app = account.app(&[], seatcap::app::system_clock());
    let alice = capped(
        &account,
        &app,
        "alice",
        "20",
        &[&account.bedrock_policy_arn],
    )
    .await;
    let metering = Function::start(binary("metering"), &account.env()).await;
    metering
        .invoke(&calls(&alice, "a", 21, 100))
        .await
        .expect_response();
    assert_eq!(status(&account, &alice).await.0, Status::Blocked);
    admin(
        &app,
        json!({"action": "restore", "principal": alice.as_str(), "actor": "finance", "reason": "finish the demo"}),
    )
    .await;
    assert_eq!(account.attached(&alice).await.len(), 1, "given back");
    let again = metering
        .invoke(&calls(&alice, "b", 1, 100))
        .await
        .expect_response();
    assert_eq!(again["cut_again"], json!([alice.as_str()]), "{again}");
    assert!(account.attached(&alice).await.is_empty());
}

/// A 90 % downgrade rung takes the premium models, then the cap rung takes the rest, both
/// from metering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metering_downgrades_at_90_percent_and_cuts_the_rest_at_the_cap() {
    let account = Account::new().await;
    let cheap =
        seatcap_tests::moto::create_policy(&account.iam, "bedrock-haiku", "bedrock:InvokeModel")
            .await;
    let ladder = [
        (
            "SEATCAP_LADDER",
            "50=person,80=finance,90=downgrade,100=enforce",
        ),
        (
            "SEATCAP_PREMIUM_POLICY_ARNS",
            account.bedrock_policy_arn.as_str(),
        ),
    ];
    let managed = format!("{},{cheap}", account.bedrock_policy_arn);
    let mut env = account.env();
    env.insert("SEATCAP_MANAGED_POLICY_ARNS".into(), managed.clone());
    for (k, v) in ladder {
        env.insert(k.into(), v.into());
    }
    let mut overrides: Vec<(&str, &str)> = ladder.to_vec();
    overrides.push(("SEATCAP_MANAGED_POLICY_ARNS", &managed));
    let app = account.app(&overrides, seatcap::app::system_clock());
    let george = capped(
        &account,
        &app,
        "george",
        "20",
        &[&account.bedrock_policy_arn, &cheap],
    )
    .await;
    let metering = Function::start(binary("metering"), &env).await;

    let first = metering
        .invoke(&calls(&george, "a", 91, 20))
        .await
        .expect_response();
    assert_eq!(
        status(&account, &george).await,
        (Status::Blocked, Some(BlockCause::Downgrade)),
        "{first}"
    );
    assert_eq!(account.attached(&george).await, vec![cheap.clone()]);
    let second = metering
        .invoke(&calls(&george, "b", 35, 20))
        .await
        .expect_response();
    assert_eq!(
        status(&account, &george).await,
        (Status::Blocked, Some(BlockCause::Cap)),
        "$25.20 of $20: {second}"
    );
    assert!(account.attached(&george).await.is_empty());
}

/// Two and then five batches of one person at once, which cross the cap together: each
/// decides on the counter after its own ADD, so the crossing is seen; the cut happens once
/// and every call is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_that_cross_the_cap_together_cut_once() {
    for batches in [2usize, 5] {
        let account = Account::new().await;
        let app = account.app(&[], seatcap::app::system_clock());
        let alice = capped(
            &account,
            &app,
            "alice",
            "200",
            &[&account.bedrock_policy_arn],
        )
        .await;
        let env = account.env();
        let metering: Vec<Function> = futures::future::join_all(
            (0..batches).map(|_| Function::start(binary("metering"), &env)),
        )
        .await;
        // $189.60 so far, under the 100 % rung.
        metering[0]
            .invoke(&calls(&alice, "before", 1, 18_960))
            .await
            .expect_response();
        assert_eq!(status(&account, &alice).await.0, Status::Active);
        // Each batch alone stays under $200; together they pass it.
        let each = 1_100 / batches as u64 + 1;
        let events: Vec<Value> = (0..batches)
            .map(|n| calls(&alice, &format!("b{n}"), 1, each))
            .collect();
        let answers =
            futures::future::join_all(metering.iter().zip(&events).map(|(f, e)| f.invoke(e))).await;
        let counted: u64 = answers
            .into_iter()
            .map(|a| a.expect_response()["counted"].as_u64().unwrap())
            .sum();
        assert_eq!(counted, batches as u64, "{batches} batches");
        assert_eq!(
            status(&account, &alice).await,
            (Status::Blocked, Some(BlockCause::Cap)),
            "{batches} batches crossing together"
        );
        assert_eq!(
            count(&account, &alice, EventKind::Enforced).await,
            1,
            "{batches}"
        );
        assert!(account.attached(&alice).await.is_empty());
    }
}

/// A batch holding a principal whose cut fails (its IAM user was deleted) and another over
/// the cap: the second is cut, the first audited `metered_cut_failed`, the invocation
/// fails; the redelivery counts nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_cut_does_not_stop_the_others_in_the_batch() {
    let account = Account::new().await;
    let app = account.app(&[], seatcap::app::system_clock());
    let alice = capped(
        &account,
        &app,
        "alice",
        "20",
        &[&account.bedrock_policy_arn],
    )
    .await;
    let bob = capped(&account, &app, "bob", "20", &[&account.bedrock_policy_arn]).await;
    // Alice left: her IAM user is gone, her cap still in the ledger.
    account
        .iam
        .detach_user_policy()
        .user_name("alice")
        .policy_arn(&account.bedrock_policy_arn)
        .send()
        .await
        .unwrap();
    account
        .iam
        .delete_user()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    let metering = Function::start(binary("metering"), &account.env()).await;
    let mut records: Vec<Value> = Vec::new();
    for (who, prefix) in [(&alice, "a"), (&bob, "b")] {
        for i in 0..25 {
            records.push(invocation_record(
                who.as_str(),
                &format!("{prefix}-{i}"),
                OPUS,
                40_000,
            ));
        }
    }
    let event = logs_batch(&records);
    let failed = metering.invoke(&event).await;
    let seatcap_tests::Invocation::Error(error) = failed else {
        panic!("the invocation must fail for alice: {failed:?}");
    };
    assert!(error.to_string().contains("alice"), "{error}");
    assert_eq!(
        status(&account, &bob).await,
        (Status::Blocked, Some(BlockCause::Cap)),
        "bob is cut though alice's cut failed"
    );
    assert!(account.attached(&bob).await.is_empty());
    assert_eq!(
        count(&account, &alice, EventKind::MeteredCutFailed).await,
        1
    );

    // Lambda delivers it again: nothing counted twice, bob not cut twice.
    let again = metering.invoke(&event).await;
    assert!(
        matches!(again, seatcap_tests::Invocation::Error(_)),
        "{again:?}"
    );
    let period = seatcap::period::month_key(Utc::now());
    assert_eq!(
        account.ledger().metered(&bob, &period).await.unwrap(),
        25_000_000
    );
    assert_eq!(count(&account, &bob, EventKind::Enforced).await, 1);
}

/// Alice, restored over her cap without a raise, then two batches at once: cut again once.
/// And a metering process killed right after the cut-again's detach: the redelivered batch
/// completes the cut from its intent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_again_races_and_survives_a_death_after_the_detach() {
    use std::sync::Mutex;
    let account = Account::new().await;
    let app = account.app(&[], seatcap::app::system_clock());
    let alice = capped(
        &account,
        &app,
        "alice",
        "20",
        &[&account.bedrock_policy_arn],
    )
    .await;
    let bob = capped(&account, &app, "bob", "20", &[&account.bedrock_policy_arn]).await;
    let env = account.env();
    let (one, two) = tokio::join!(
        Function::start(binary("metering"), &env),
        Function::start(binary("metering"), &env)
    );
    for who in [&alice, &bob] {
        one.invoke(&calls(who, "over", 21, 100))
            .await
            .expect_response();
        admin(
            &app,
            json!({"action": "restore", "principal": who.as_str(), "actor": "finance", "reason": "grace"}),
        )
        .await;
    }

    // Two batches at once for alice.
    let (left, right) = (calls(&alice, "l", 1, 100), calls(&alice, "r", 1, 100));
    let (a, b) = tokio::join!(one.invoke(&left), two.invoke(&right));
    let (a, b) = (a.expect_response(), b.expect_response());
    assert_eq!(
        status(&account, &alice).await,
        (Status::Blocked, Some(BlockCause::Cap)),
        "{a} {b}"
    );
    assert_eq!(
        count(&account, &alice, EventKind::Enforced).await,
        2,
        "the first cut and one cut again: {a} {b}"
    );

    // Bob's cut again dies right after IAM detached his policy.
    let victim = Arc::new(Mutex::new(None));
    let upstream = account.endpoint.trim_start_matches("http://").to_owned();
    let proxy = seatcap_tests::KillingProxy::start(
        upstream,
        "Action=DetachUserPolicy".into(),
        victim.clone(),
    )
    .await;
    let mut dying_env = env.clone();
    dying_env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
    let mut dying = Function::start(binary("metering"), &dying_env).await;
    *victim.lock().unwrap() = dying.pid();
    let event = calls(&bob, "d", 1, 100);
    let died = dying
        .invoke_or_die(&event, std::time::Duration::from_secs(3))
        .await;
    assert!(died.is_none() && proxy.fired(), "{died:?}");
    assert!(account.attached(&bob).await.is_empty(), "IAM was cut");
    let held = account.ledger().load(&bob).await.unwrap().unwrap();
    assert!(held.pending.is_some(), "the ledger not yet: {held:?}");
    // Lambda delivers the batch again once the dead process's time is up.
    let again = one.invoke(&event).await.expect_response();
    assert_eq!(
        status(&account, &bob).await,
        (Status::Blocked, Some(BlockCause::Cap)),
        "{again}"
    );
    assert!(
        account
            .history(&bob)
            .await
            .iter()
            .any(|e| e.kind == EventKind::IntentCompleted)
    );
}

/// A cap on one session of a role whose session names the caller picks is refused (the
/// person would call as `alice2`); on a declared role and on Identity Center's it is taken.
/// Calls from a session of a role with capped people that no principal matches are
/// reported once per session and month (`unattributed_session`): finance sees the escape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_session_name_cannot_escape_a_cut_or_charge_someone_else() {
    let account = Account::new().await;
    let app = account.app(&[], seatcap::app::system_clock());
    let on = |role: &str, session: &str| -> PrincipalArn {
        format!("arn:aws:sts::{}:assumed-role/{role}/{session}", account.id)
            .parse()
            .unwrap()
    };
    let refused = app
        .handle_admin(
            json!({"action": "set_cap", "principal": on("Dev", "alice").as_str(),
            "budget": "seatcap-alice", "cap_usd": "20", "actor": "finance", "reason": "seat"}),
        )
        .await
        .unwrap();
    assert_eq!(
        refused["error"]["code"], "session_name_not_enforced",
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SEATCAP_SESSION_NAMED_ROLES"),
        "{refused}"
    );
    assert!(
        account
            .ledger()
            .load(&on("Dev", "alice"))
            .await
            .unwrap()
            .is_none()
    );

    // On the declared role, and on an Identity Center role, a person may have a cap.
    let declared = on(seatcap_tests::moto::PLAIN_SHARED_ROLE, "alice");
    admin(
        &app,
        json!({"action": "set_cap", "principal": declared.as_str(), "budget": "seatcap-alice",
            "cap_usd": "20", "actor": "finance", "reason": "seat"}),
    )
    .await;
    let sso_role = account
        .identity_center_role("ClaudeDev", &[0, 1, 2, 3, 4])
        .await;
    let bob = account.sso_person(&sso_role, "bob@example.com");
    admin(
        &app,
        json!({"action": "set_cap", "principal": bob.as_str(), "budget": "seatcap-bob",
            "cap_usd": "20", "actor": "finance", "reason": "seat"}),
    )
    .await;

    // Someone else's session on a role with capped people: charged to nobody, reported once.
    let metering = Function::start(binary("metering"), &account.env()).await;
    let stranger = on(seatcap_tests::moto::PLAIN_SHARED_ROLE, "alice2");
    let first = metering
        .invoke(&calls(&stranger, "s", 2, 100))
        .await
        .expect_response();
    assert_eq!(
        first["unattributed_sessions"],
        json!([stranger.as_str()]),
        "{first}"
    );
    let again = metering
        .invoke(&calls(&stranger, "t", 1, 100))
        .await
        .expect_response();
    assert!(
        again.get("unattributed_sessions").is_none(),
        "once a month: {again}"
    );
    let reported = account
        .ledger()
        .history(&seatcap::ledger::Subject::System, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::UnattributedSession)
        .count();
    assert_eq!(reported, 1);
    // Alice's own spend is untouched by it.
    let period = seatcap::period::month_key(Utc::now());
    assert_eq!(
        account.ledger().metered(&declared, &period).await.unwrap(),
        0
    );
}

/// A call on provisioned throughput is billed by the hour, not by token: counted, at
/// nothing, and not taken for an unknown model (which would charge it the highest rate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_throughput_calls_are_counted_not_priced() {
    let account = Account::new().await;
    let app = account.app(&[], seatcap::app::system_clock());
    let alice = capped(
        &account,
        &app,
        "alice",
        "20",
        &[&account.bedrock_policy_arn],
    )
    .await;
    let metering = Function::start(binary("metering"), &account.env()).await;
    let model = format!(
        "arn:aws:bedrock:us-east-1:{}:provisioned-model/abc123def456",
        account.id
    );
    let record = invocation_record(alice.as_str(), "p-1", &model, 5_000_000);
    let report = metering
        .invoke(&logs_batch(&[record]))
        .await
        .expect_response();
    assert_eq!(
        (
            report["counted"].clone(),
            report["provisioned_calls"].clone()
        ),
        (json!(1), json!(1)),
        "{report}"
    );
    assert!(report.get("unknown_models").is_none(), "{report}");
    assert_eq!(report["spend"][0]["metered_usd"], "0.00", "{report}");
    assert_eq!(status(&account, &alice).await.0, Status::Active);
}
