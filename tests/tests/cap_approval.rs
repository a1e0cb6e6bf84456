//! The two-person line on `set_cap` raises (issue 25): raises in steps add up within the
//! period (with unapproved overrides), a raise above the line waits as a request that
//! changes nothing, the one who asked cannot approve it as any of their identities, and two
//! raises at once cannot both pass under the line. In-process admin, moto's ledger.

use std::sync::Arc;

use seatcap::App;
use seatcap::ledger::EventKind;
use seatcap::principal::PrincipalArn;
use seatcap_tests::Account;
use serde_json::{Value, json};

fn finance(account: &Account) -> App {
    account.app(
        &[("SEATCAP_APPROVAL_OVER_USD", "500")],
        Arc::new(chrono::Utc::now),
    )
}

async fn admin(app: &App, request: Value) -> Value {
    app.handle_admin(request).await.unwrap()
}

fn set_cap(who: &PrincipalArn, cap: &str, actor: &str) -> Value {
    json!({"action": "set_cap", "principal": who.as_str(), "budget": "seatcap-alice",
        "cap_usd": cap, "actor": actor, "reason": "crunch"})
}

async fn cap_of(account: &Account, who: &PrincipalArn) -> String {
    let state = account.ledger().load(who).await.unwrap().unwrap();
    state.cap_usd.to_plain_string()
}

#[tokio::test]
async fn raises_in_steps_above_the_line_wait_for_a_second_finance_person() {
    let account = Account::new().await;
    let app = finance(&account);
    let alice = account.create_principal("user", "alice", &[]).await;
    // A first cap is not a raise, whatever its size.
    assert_eq!(
        admin(&app, set_cap(&alice, "1000", "ann@example.com")).await["ok"],
        true
    );
    // $499, then $2 more by someone else: the second takes the month's rises over $500.
    assert_eq!(
        admin(&app, set_cap(&alice, "1499", "ann@example.com")).await["ok"],
        true
    );
    let held = admin(&app, set_cap(&alice, "1501", "cy@example.com")).await;
    assert_eq!(held["approval_needed"], true, "{held}");
    assert_eq!(cap_of(&account, &alice).await, "1499.00", "nothing changed");
    let id = held["request_id"].as_str().unwrap().to_owned();
    assert_eq!(held["cap_requests"][0]["id"], id.as_str(), "{held}");

    // Lowering never waits.
    let lowered = admin(&app, set_cap(&alice, "1200", "cy@example.com")).await;
    assert_eq!(lowered["ok"], true, "{lowered}");

    let approve = |actor: &str| {
        json!({"action": "approve_override", "principal": alice.as_str(), "request_id": id,
            "actor": actor, "reason": "agreed"})
    };
    let own = admin(&app, approve("cy@example.com")).await;
    assert_eq!(own["error"]["code"], "second_approver_required", "{own}");
    let approved = admin(&app, approve("dee@example.com")).await;
    assert_eq!(approved["ok"], true, "{approved}");
    assert_eq!(
        approved["approved"]["requested_by"], "cy@example.com",
        "{approved}"
    );
    assert_eq!(cap_of(&account, &alice).await, "1501.00");
    let again = admin(&app, approve("eve@example.com")).await;
    assert_eq!(
        again["error"]["code"], "not_found",
        "approved once: {again}"
    );

    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert!(state.cap_requests.is_empty(), "{state:?}");
    let approved_raise = state.cap_raises.last().unwrap();
    assert_eq!(
        (
            approved_raise.by.as_str(),
            approved_raise.approved_by.as_deref()
        ),
        ("cy@example.com", Some("dee@example.com"))
    );
    let kinds: Vec<EventKind> = account
        .history(&alice)
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&EventKind::CapRaiseRequested), "{kinds:?}");

    // An override counts toward the same line: $499 of raises then a $10 override waits.
    let until = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let bob = account.create_principal("user", "bob", &[]).await;
    let bob_cap = |cap: &str| {
        json!({"action": "set_cap", "principal": bob.as_str(), "budget": "seatcap-bob",
            "cap_usd": cap, "actor": "ann@example.com", "reason": "r"})
    };
    admin(&app, bob_cap("100")).await;
    assert_eq!(admin(&app, bob_cap("599")).await["ok"], true);
    let grant = admin(
        &app,
        json!({"action": "grant_override", "principal": bob.as_str(), "extra_usd": "10",
            "expires_at": until, "actor": "cy@example.com", "reason": "r"}),
    )
    .await;
    assert_eq!(
        grant["override_requests"].as_array().map(Vec::len),
        Some(1),
        "{grant}"
    );
}

/// A cap raise and an override at once, each under the line alone and over it together:
/// one goes through, the other waits for a second person (or is refused to be asked again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raise_and_an_override_at_once_cannot_both_pass_the_line() {
    let account = Account::new().await;
    let until = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    for round in 0..4 {
        let who = account
            .create_principal("user", &format!("racer-{round}"), &[])
            .await;
        let budget = format!("seatcap-racer-{round}");
        admin(
            &finance(&account),
            json!({"action": "set_cap", "principal": who.as_str(), "budget": budget,
                "cap_usd": "200", "actor": "ann@example.com", "reason": "seat"}),
        )
        .await;
        let (a, b) = (finance(&account), finance(&account));
        let (raised, granted) = tokio::join!(
            admin(
                &a,
                json!({"action": "set_cap", "principal": who.as_str(), "budget": budget,
                    "cap_usd": "501", "actor": "ann@example.com", "reason": "crunch"})
            ),
            admin(
                &b,
                json!({"action": "grant_override", "principal": who.as_str(),
                    "extra_usd": "300", "expires_at": until, "actor": "cy@example.com",
                    "reason": "launch"})
            ),
        );
        let state = account.ledger().load(&who).await.unwrap().unwrap();
        let rises = seatcap::cap_raise::unapproved_rise(&state, chrono::Utc::now());
        assert!(
            rises.as_decimal() <= rust_decimal::Decimal::from(500),
            "round {round}: {rises} unapproved: {raised} {granted}"
        );
        let waiting = state.cap_requests.len() + state.override_requests.len();
        let refused = usize::from(raised["error"]["code"] == "approval_needed");
        assert_eq!(waiting + refused, 1, "round {round}: {raised} {granted}");
    }
}
