//! Finance's commands in-process against moto: overrides, manual blocks, protection, list and
//! history, and that every refusal changes nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{TimeZone, Utc};
use seatcap::App;
use seatcap::principal::PrincipalArn;
use seatcap_tests::{Account, budget_alert};
use serde_json::{Value, json};

/// A clock that starts on 21 November 2026 and moves one second each time it is read, so
/// audit events have distinct, ordered times without any test sleeping.
fn app(account: &Account, extra: &[(&str, &str)]) -> App {
    let ticks = Arc::new(AtomicI64::new(0));
    let start = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    account.app(
        extra,
        Arc::new(move || start + chrono::Duration::seconds(ticks.fetch_add(1, Ordering::SeqCst))),
    )
}

async fn admin(app: &App, request: Value) -> Value {
    app.handle_admin(request)
        .await
        .expect("no infrastructure failure")
}

async fn ok(app: &App, request: Value) -> Value {
    let answer = admin(app, request.clone()).await;
    assert_eq!(answer["ok"], true, "{request} → {answer}");
    answer
}

fn with(principal: &PrincipalArn, action: &str, extra: Value) -> Value {
    let mut request = json!({"action": action, "principal": principal.as_str(), "actor": "finance@example.com", "reason": "test"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        request[k] = v;
    }
    request
}

/// alice, capped at $200, cut off by a $212 ACTUAL alert.
async fn blocked_alice(account: &Account, app: &App) -> PrincipalArn {
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    ok(
        app,
        with(
            &alice,
            "set_cap",
            json!({"budget": "seatcap-alice", "cap_usd": "200"}),
        ),
    )
    .await;
    app.handle_delivery(
        "m-cap",
        &budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "212.00"),
    )
    .await
    .unwrap();
    assert!(account.attached(&alice).await.is_empty());
    alice
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_above_spend_restores_at_once_and_revoking_it_cuts_again() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let alice = blocked_alice(&account, &app).await;

    let small = ok(
        &app,
        with(
            &alice,
            "grant_override",
            json!({"extra_usd": "10.00", "expires_at": "2026-11-30T23:59:59Z"}),
        ),
    )
    .await;
    assert_eq!(
        (small["status"].clone(), small["restored"].clone()),
        (json!("blocked"), json!(false)),
        "$210 < $212"
    );

    let enough = ok(
        &app,
        with(
            &alice,
            "grant_override",
            json!({"extra_usd": "50.00", "expires_at": "2026-11-30T23:59:59Z"}),
        ),
    )
    .await;
    assert_eq!(enough["status"], "active", "{enough}");
    assert_eq!(enough["effective_cap_usd"], "260.00");
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );

    let revoked = ok(&app, with(&alice, "revoke_override", json!({}))).await;
    assert_eq!(
        revoked["status"], "blocked",
        "spend $212 is over the $200 cap again: {revoked}"
    );
    assert!(account.attached(&alice).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exemption_lifts_the_cap_until_it_expires() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let alice = blocked_alice(&account, &app).await;
    let exempt = ok(
        &app,
        with(
            &alice,
            "grant_override",
            json!({"exempt": true, "expires_at": "2026-12-15T00:00:00Z"}),
        ),
    )
    .await;
    assert_eq!(
        (
            exempt["status"].clone(),
            exempt["effective_cap_usd"].clone()
        ),
        (json!("active"), json!("exempt"))
    );
    let report = app
        .handle_delivery(
            "m-2",
            &budget_alert("seatcap-alice", "ACTUAL", "200.00", "160.00", "900.00"),
        )
        .await
        .unwrap();
    assert!(format!("{report:?}").contains("Warn"), "{report:?}");
    assert_eq!(account.attached(&alice).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_overrides_are_refused_and_change_nothing() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let alice = blocked_alice(&account, &app).await;
    let before = ok(
        &app,
        json!({"action": "status", "principal": alice.as_str()}),
    )
    .await;
    for (extra, code) in [
        (
            json!({"extra_usd": "50", "expires_at": "2026-11-01T00:00:00Z"}),
            "invalid_expiry",
        ),
        (
            json!({"extra_usd": "50", "expires_at": "2027-03-01T00:00:00Z"}),
            "invalid_expiry",
        ),
        (
            json!({"extra_usd": "50", "expires_at": "next friday"}),
            "invalid_expiry",
        ),
        (
            json!({"extra_usd": "50", "exempt": true, "expires_at": "2026-11-30T00:00:00Z"}),
            "invalid_request",
        ),
        (
            json!({"expires_at": "2026-11-30T00:00:00Z"}),
            "invalid_request",
        ),
        (
            json!({"extra_usd": "0.001", "expires_at": "2026-11-30T00:00:00Z"}),
            "invalid_amount",
        ),
        (
            json!({"extra_usd": "50", "expires_at": "2026-11-30T00:00:00Z", "reason": ""}),
            "invalid_request",
        ),
    ] {
        let answer = admin(&app, with(&alice, "grant_override", extra.clone())).await;
        assert_eq!(answer["error"]["code"], code, "{extra} → {answer}");
    }
    let unknown_id = admin(
        &app,
        with(&alice, "revoke_override", json!({"override_id": "nope"})),
    )
    .await;
    assert_eq!(unknown_id["error"]["code"], "not_found");
    assert_eq!(
        ok(
            &app,
            json!({"action": "status", "principal": alice.as_str()})
        )
        .await,
        before
    );
    assert!(account.attached(&alice).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_block_survives_a_cap_raise_until_restore() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let bob = account
        .create_principal(
            "user",
            "bob",
            &[&account.bedrock_policy_arn, &account.other_policy_arn],
        )
        .await;
    ok(
        &app,
        with(
            &bob,
            "set_cap",
            json!({"budget": "seatcap-bob", "cap_usd": "200"}),
        ),
    )
    .await;

    let blocked = ok(&app, with(&bob, "block", json!({}))).await;
    assert_eq!(
        (blocked["status"].clone(), blocked["block_cause"].clone()),
        (json!("blocked"), json!("manual"))
    );
    assert_eq!(
        account.attached(&bob).await,
        vec![account.other_policy_arn.clone()]
    );
    assert_eq!(
        ok(&app, with(&bob, "block", json!({}))).await["changed"],
        false
    );

    let raised = ok(
        &app,
        with(
            &bob,
            "set_cap",
            json!({"budget": "seatcap-bob", "cap_usd": "5000"}),
        ),
    )
    .await;
    assert_eq!(
        raised["status"], "blocked",
        "a manual block is not lifted by money"
    );

    ok(&app, with(&bob, "restore", json!({}))).await;
    assert_eq!(account.attached(&bob).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protecting_lifts_a_cap_block_and_unprotecting_over_the_cap_cuts_again() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let alice = blocked_alice(&account, &app).await;

    let protected = ok(&app, with(&alice, "protect", json!({}))).await;
    assert_eq!(
        (protected["status"].clone(), protected["protected"].clone()),
        (json!("active"), json!(true))
    );
    assert_eq!(account.attached(&alice).await.len(), 1);
    app.handle_delivery(
        "m-2",
        &budget_alert("seatcap-alice", "ACTUAL", "200.00", "160.00", "300.00"),
    )
    .await
    .unwrap();
    assert_eq!(
        account.attached(&alice).await.len(),
        1,
        "protected: never enforced"
    );

    let unprotected = ok(&app, with(&alice, "unprotect", json!({}))).await;
    assert_eq!(unprotected["status"], "blocked", "{unprotected}");
    assert!(account.attached(&alice).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_the_status_index() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let blocked = blocked_alice(&account, &app).await;
    for name in ["p1", "p2", "p3", "p4"] {
        ok(
            &app,
            with(
                &account.principal("user", name),
                "set_cap",
                json!({"budget": format!("b-{name}"), "cap_usd": "100"}),
            ),
        )
        .await;
    }

    let only_blocked = ok(&app, json!({"action": "list", "status": "blocked"})).await;
    assert_eq!(only_blocked["principals"].as_array().unwrap().len(), 1);
    assert_eq!(only_blocked["principals"][0]["principal"], blocked.as_str());

    let mut seen = Vec::new();
    let mut request = json!({"action": "list", "limit": 2});
    for _ in 0..10 {
        let page = ok(&app, request.clone()).await;
        let principals = page["principals"].as_array().unwrap();
        assert!(principals.len() <= 2);
        seen.extend(
            principals
                .iter()
                .map(|p| p["principal"].as_str().unwrap().to_owned()),
        );
        match page.get("next_token") {
            Some(token) => request["next_token"] = token.clone(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[0], blocked.as_str(), "blocked first");
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique, seen, "no principal twice");

    let bad = admin(&app, json!({"action": "list", "next_token": "garbage"})).await;
    assert_eq!(bad["error"]["code"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_newest_first_paginated_and_says_who_why_before_and_after() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let alice = blocked_alice(&account, &app).await;
    let blocked = account.ledger().load(&alice).await.unwrap().unwrap();
    ok(
        &app,
        with(&alice, "restore", json!({"reason": "approved by CFO"})),
    )
    .await;
    let restored = account.ledger().load(&alice).await.unwrap().unwrap();

    let first = ok(
        &app,
        json!({"action": "history", "principal": alice.as_str(), "limit": 2}),
    )
    .await;
    let events = first["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["kind"], "restored");
    assert_eq!(events[0]["actor"], "finance@example.com");
    assert_eq!(events[0]["reason"], "approved by CFO");
    assert_eq!(events[0]["detail"]["before"]["status"], "blocked");
    assert_eq!(events[0]["detail"]["after"]["status"], "active");
    // Exactly the state replaced and the state committed (the restore's write-ahead intent
    // in between is neither).
    let at = serde_json::from_value(events[0]["at"].clone()).unwrap();
    assert_eq!(events[0]["detail"]["before"], blocked.view(at));
    assert_eq!(events[0]["detail"]["after"], restored.view(at));
    assert_eq!(events[1]["kind"], "enforced");

    let rest = ok(&app, json!({"action": "history", "principal": alice.as_str(), "limit": 2, "next_token": first["next_token"]})).await;
    let kinds: Vec<_> = rest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("cap_set")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutating_action_refuses_bad_input_and_changes_nothing() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let alice = blocked_alice(&account, &app).await;
    let before = ok(
        &app,
        json!({"action": "status", "principal": alice.as_str()}),
    )
    .await;
    let extra = |action: &str| match action {
        "set_cap" => json!({"budget": "seatcap-alice", "cap_usd": "300"}),
        "adopt_budget" => json!({"budget": "seatcap-alice"}),
        "grant_override" => json!({"extra_usd": "50", "expires_at": "2026-11-30T00:00:00Z"}),
        _ => json!({}),
    };
    for action in [
        "set_cap",
        "adopt_budget",
        "grant_override",
        "revoke_override",
        "restore",
        "block",
        "protect",
        "unprotect",
    ] {
        for (field, value, code) in [
            ("reason", json!(""), "invalid_request"),
            ("actor", json!("  "), "invalid_request"),
            (
                "principal",
                json!("arn:aws:iam::123:user/alice"),
                "invalid_principal",
            ),
            ("surprise", json!(1), "invalid_request"),
        ] {
            let mut request = with(&alice, action, extra(action));
            request[field] = value;
            let answer = admin(&app, request.clone()).await;
            assert_eq!(answer["error"]["code"], code, "{request} → {answer}");
        }
        let mut no_reason = with(&alice, action, extra(action));
        no_reason.as_object_mut().unwrap().remove("reason");
        assert_eq!(
            admin(&app, no_reason).await["error"]["code"],
            "invalid_request",
            "{action} without reason"
        );
    }
    assert_eq!(
        ok(
            &app,
            json!({"action": "status", "principal": alice.as_str()})
        )
        .await,
        before
    );
    assert!(account.attached(&alice).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_finance_requests_racing_never_lose_one() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    for round in 0..8 {
        let name = format!("racer-{round}");
        let principal = account
            .create_principal("user", &name, &[&account.bedrock_policy_arn])
            .await;
        ok(
            &app,
            with(
                &principal,
                "set_cap",
                json!({"budget": format!("b-{name}"), "cap_usd": "200"}),
            ),
        )
        .await;
        let (a, b) = (app.clone(), app.clone());
        let (p1, p2) = (principal.clone(), principal.clone());
        let protect = tokio::spawn(async move { ok(&a, with(&p1, "protect", json!({}))).await });
        let grant = tokio::spawn(async move {
            ok(
                &b,
                with(
                    &p2,
                    "grant_override",
                    json!({"extra_usd": "25", "expires_at": "2026-11-30T00:00:00Z"}),
                ),
            )
            .await
        });
        protect.await.unwrap();
        grant.await.unwrap();
        // Both changes are in the final state: neither overwrote the other.
        let state = account.ledger().load(&principal).await.unwrap().unwrap();
        assert!(state.protected, "round {round}: protect lost");
        assert_eq!(state.overrides.len(), 1, "round {round}: override lost");
        assert_eq!(state.version, 2, "round {round}: two changes, two versions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_subscriptions_filter_on_the_notices_attributes() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let alice = account.principal("user", "alice");
    let sns = aws_sdk_sns::Client::new(&account.sdk);
    let subscriptions = || async {
        let out = sns
            .list_subscriptions_by_topic()
            .topic_arn(&account.notify_topic_arn)
            .send()
            .await
            .unwrap();
        let mut found = Vec::new();
        for sub in out.subscriptions.unwrap_or_default() {
            let attributes = sns
                .get_subscription_attributes()
                .subscription_arn(sub.subscription_arn.clone().unwrap())
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap_or_default();
            let filter: Value = serde_json::from_str(&attributes["FilterPolicy"]).unwrap();
            found.push((sub.endpoint.unwrap(), filter));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    };

    // Bad requests change nothing.
    for (request, code) in [
        (
            json!({"email": "alice at example.com", "principal": alice.as_str()}),
            "invalid_email",
        ),
        (json!({"email": "alice@example.com"}), "invalid_request"),
        (
            json!({"email": "alice@example.com", "principal": alice.as_str(), "audience": "finance"}),
            "invalid_request",
        ),
        (
            json!({"email": "alice@example.com", "audience": "everyone"}),
            "invalid_request",
        ),
        (
            json!({"email": "alice@example.com", "principal": "alice"}),
            "invalid_principal",
        ),
    ] {
        let mut request = request;
        request["action"] = json!("subscribe_email");
        request["actor"] = json!("finance");
        request["reason"] = json!("onboarding");
        let answer = admin(&app, request.clone()).await;
        assert_eq!(answer["error"]["code"], code, "{request} → {answer}");
    }
    assert!(subscriptions().await.is_empty());

    let person = ok(
        &app,
        json!({"action": "subscribe_email", "email": "alice@example.com", "principal": alice.as_str(),
               "actor": "finance", "reason": "onboarding"}),
    )
    .await;
    assert_eq!(
        person["filter_policy"]["principal"],
        json!([alice.as_str()])
    );
    ok(
        &app,
        json!({"action": "subscribe_email", "email": "finance@example.com", "audience": "finance",
               "actor": "finance", "reason": "month-end"}),
    )
    .await;
    assert_eq!(
        subscriptions().await,
        vec![
            (
                "alice@example.com".to_owned(),
                json!({"principal": [alice.as_str()], "audience": ["person", "person_and_finance"]})
            ),
            (
                "finance@example.com".to_owned(),
                json!({"severity": ["warning", "critical"]})
            ),
        ]
    );
    let history = account
        .ledger()
        .history(&seatcap::ledger::Subject::Principal(alice.clone()), 5)
        .await
        .unwrap();
    assert_eq!(history[0].kind, seatcap::ledger::EventKind::EmailSubscribed);
}
