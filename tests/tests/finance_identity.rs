//! Who finance is: the real `seatcap` CLI signs its requests (SigV4) to the admin binary's
//! Function URL, which checks the signature as Lambda does; the audit names the caller AWS
//! verified, never a field. Only finance changes caps, nobody their own, and a direct invoke
//! is either refused or recorded as claimed. Above the approval line, an override takes a
//! second finance principal.

use std::collections::HashMap;
use std::process::Output;
use std::sync::Arc;

use seatcap::principal::PrincipalArn;
use seatcap_tests::{
    Account, Function, Signer, binary, moto, serve_function_url, serve_invoke_api, sns_event,
    todays_budget_alert,
};
use serde_json::{Value, json};

struct Deployed {
    account: Account,
    invoke_url: String,
    /// A second instance of the admin behind a URL of its own: Lambda runs concurrent
    /// requests in separate instances, and a race needs two.
    second_url: String,
}

/// The admin binary behind its Function URL (and the Invoke API), `env` on top.
async fn deploy(account: Account, signers: &[Signer], env: &[(&str, &str)]) -> Deployed {
    let mut function_env = account.env();
    for (k, v) in env {
        function_env.insert((*k).to_owned(), (*v).to_owned());
    }
    let admin = Arc::new(Function::start(binary("admin"), &function_env).await);
    let url = serve_function_url(admin.clone(), signers).await;
    let second = Arc::new(Function::start(binary("admin"), &function_env).await);
    let second_url = serve_function_url(second, signers).await;
    // Lambda reports the URL, so the CLI finds it by itself.
    let invoke_url = serve_invoke_api(
        HashMap::from([("seatcap-admin".to_owned(), admin)]),
        HashMap::from([("seatcap-admin".to_owned(), url.clone())]),
    )
    .await;
    Deployed {
        account,
        invoke_url,
        second_url,
    }
}

impl Deployed {
    /// The CLI run as `who` (their credentials), through the URL unless `args` say `--direct`.
    async fn seatcap(&self, who: &Signer, args: &[&str]) -> Output {
        self.seatcap_to(None, who, args).await
    }

    /// [`Self::seatcap`] to the second instance of the admin.
    async fn seatcap_to_second(&self, who: &Signer, args: &[&str]) -> Output {
        self.seatcap_to(Some(&self.second_url), who, args).await
    }

    async fn seatcap_to(&self, url: Option<&str>, who: &Signer, args: &[&str]) -> Output {
        let mut env = self.account.env();
        if let Some(url) = url {
            env.insert("SEATCAP_ADMIN_URL".into(), url.to_owned());
        }
        env.extend(who.env().map(|(k, v)| (k.to_owned(), v)));
        env.insert("AWS_ENDPOINT_URL".into(), moto().endpoint.clone());
        env.insert("AWS_ENDPOINT_URL_LAMBDA".into(), self.invoke_url.clone());
        tokio::process::Command::new(binary("seatcap"))
            .args(args)
            .env_clear()
            .envs(&env)
            .output()
            .await
            .expect("run seatcap")
    }

    async fn history(&self, who: &Signer, principal: &str) -> Vec<Value> {
        let out = self.seatcap(who, &["--json", "history", principal]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        answer["events"].as_array().cloned().unwrap_or_default()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn refused_with(out: &Output, code: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("refused ({code})")),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_through_the_url_is_audited_by_its_verified_arn_and_nobody_serves_themselves() {
    let account = Account::new().await;
    let ann = account.signer("Finance", "ann@example.com").await;
    let bob = account.signer("Developers", "bob@example.com").await;
    let finance = format!("arn:aws:sts::{}:assumed-role/Finance/*", account.id);
    let deployed = deploy(
        account,
        &[ann.clone(), bob.clone()],
        &[
            ("SEATCAP_FINANCE_PRINCIPALS", &finance),
            ("SEATCAP_DIRECT_INVOKE", "off"),
        ],
    )
    .await;
    let account = &deployed.account;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;

    // Finance sets a cap, claiming to be the CFO: the audit names Ann as AWS verified her.
    let set = deployed
        .seatcap(
            &ann,
            &[
                "set-cap",
                alice.as_str(),
                "200",
                "--reason",
                "Q4 seat",
                "--actor",
                "cfo@example.com",
            ],
        )
        .await;
    assert!(set.status.success(), "{}", text(&set.stderr));
    let events = deployed.history(&ann, alice.as_str()).await;
    let cap_set = events
        .iter()
        .find(|e| e["kind"] == "cap_set")
        .expect("cap_set audited");
    assert_eq!(cap_set["actor"], ann.arn.as_str(), "{cap_set}");
    assert_eq!(cap_set["actor_verified"], true, "{cap_set}");

    // A developer may read, but not change anyone's cap.
    let status = deployed.seatcap(&bob, &["status", alice.as_str()]).await;
    assert!(status.status.success(), "{}", text(&status.stderr));
    let raise = deployed
        .seatcap(
            &bob,
            &["set-cap", alice.as_str(), "900", "--reason", "mine"],
        )
        .await;
    refused_with(&raise, "forbidden");

    // Finance people are people with caps too: Ann's own session on the shared role.
    let ann_seat = ann.arn.as_str();
    let own = deployed
        .seatcap(
            &ann,
            &[
                "set-cap",
                ann_seat,
                "100",
                "--budget",
                "seatcap-ann",
                "--reason",
                "me",
            ],
        )
        .await;
    refused_with(&own, "self_service");
    let exempt = deployed
        .seatcap(
            &ann,
            &[
                "override",
                ann_seat,
                "exempt",
                "--until",
                "2099-01-01",
                "--reason",
                "me",
            ],
        )
        .await;
    refused_with(&exempt, "self_service");
    // Alice's block by Ann, then Ann may not lift a block of her own either; blocking
    // herself is allowed (separation of duties protects raises, not cuts).
    let block = deployed
        .seatcap(&ann, &["block", alice.as_str(), "--reason", "audit"])
        .await;
    assert!(block.status.success(), "{}", text(&block.stderr));
    assert!(account.attached(&alice).await.is_empty());

    // Direct invoke is switched off: refused, even with a finance actor claimed.
    let direct = deployed
        .seatcap(
            &ann,
            &["--direct", "restore", alice.as_str(), "--reason", "x"],
        )
        .await;
    refused_with(&direct, "forbidden");
    assert!(account.attached(&alice).await.is_empty(), "nothing changed");

    // Nothing refused above left a trace of a change in the audit.
    let kinds: Vec<Value> = deployed
        .history(&ann, alice.as_str())
        .await
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("blocked"), json!("cap_set")], "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_cannot_restore_or_exempt_itself_and_a_forged_signature_is_refused() {
    // No finance list: whoever IAM lets through the URL may change caps, but never their own.
    let account = Account::new().await;
    let role = format!("arn:aws:iam::{}:role/Developers", account.id);
    let bob = account.signer("Developers", "bob@example.com").await;
    let ann = account.signer("Finance", "ann@example.com").await;
    // Bob has a cap of his own on the developers' role: declared session-named (its trust
    // policy pins the session name).
    let deployed = deploy(
        account,
        &[bob.clone(), ann.clone()],
        &[("SEATCAP_SESSION_NAMED_ROLES", "Developers")],
    )
    .await;
    let bob_seat = bob.arn.as_str();
    let set = deployed
        .seatcap(
            &ann,
            &[
                "set-cap",
                bob_seat,
                "200",
                "--budget",
                "seatcap-bob",
                "--reason",
                "seat",
            ],
        )
        .await;
    assert!(set.status.success(), "{}", text(&set.stderr));
    let block = deployed
        .seatcap(&ann, &["block", bob_seat, "--reason", "over"])
        .await;
    assert!(block.status.success(), "{}", text(&block.stderr));

    refused_with(
        &deployed
            .seatcap(&bob, &["restore", bob_seat, "--reason", "please"])
            .await,
        "self_service",
    );
    refused_with(
        &deployed
            .seatcap(
                &bob,
                &[
                    "override",
                    bob_seat,
                    "exempt",
                    "--until",
                    "2099-01-01",
                    "--reason",
                    "x",
                ],
            )
            .await,
        "self_service",
    );
    // Nor through the role every developer shares.
    refused_with(
        &deployed
            .seatcap(
                &bob,
                &[
                    "set-cap",
                    &role,
                    "900",
                    "--budget",
                    "seatcap-devs",
                    "--reason",
                    "x",
                ],
            )
            .await,
        "self_service",
    );

    // A request signed with a secret that is not Bob's never reaches the function.
    let forged = Signer {
        secret_access_key: "not-bobs-secret".into(),
        ..bob.clone()
    };
    let out = deployed
        .seatcap(&forged, &["restore", bob_seat, "--reason", "forged"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("HTTP 403"),
        "{}",
        text(&out.stderr)
    );
    let status = deployed
        .seatcap(&ann, &["--json", "status", bob_seat])
        .await;
    let answer: Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(answer["status"], "blocked", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_invoke_is_served_for_old_scripts_with_its_actor_recorded_as_claimed() {
    let account = Account::new().await;
    let ann = account.signer("Finance", "ann@example.com").await;
    let deployed = deploy(account, std::slice::from_ref(&ann), &[]).await;
    let account = &deployed.account;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    let set = deployed
        .seatcap(
            &ann,
            &[
                "--direct",
                "--actor",
                "cfo@example.com",
                "set-cap",
                alice.as_str(),
                "200",
                "--reason",
                "x",
            ],
        )
        .await;
    assert!(set.status.success(), "{}", text(&set.stderr));
    let events = deployed.history(&ann, alice.as_str()).await;
    assert_eq!(events[0]["actor"], "cfo@example.com", "{events:?}");
    assert_eq!(events[0]["actor_verified"], false, "{events:?}");
}

// The two-person rule: an override above SEATCAP_APPROVAL_OVER_USD, or an exemption, is a
// request that counts for nothing until a second finance principal approves it.

const APPROVAL: [(&str, &str); 1] = [("SEATCAP_APPROVAL_OVER_USD", "100")];

/// A finance deployment with the approval line, Alice cut off at her $200 cap by the real
/// budget-alert binary, and three finance people.
async fn alice_cut_off_with_three_in_finance() -> (Deployed, PrincipalArn, [Signer; 3]) {
    let account = Account::new().await;
    let ann = account.signer("Finance", "ann@example.com").await;
    let carl = account.signer("Finance", "carl@example.com").await;
    let dave = account.signer("Finance", "dave@example.com").await;
    let finance = format!("arn:aws:sts::{}:assumed-role/Finance/*", account.id);
    let alerts = Function::start(binary("budget-alert"), &account.env()).await;
    let deployed = deploy(
        account,
        &[ann.clone(), carl.clone(), dave.clone()],
        &[
            ("SEATCAP_FINANCE_PRINCIPALS", &finance),
            APPROVAL[0],
            // Finance's trust policy pins each session's name to its person.
            ("SEATCAP_SESSION_NAMED_ROLES", "Finance"),
        ],
    )
    .await;
    let account = &deployed.account;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    let set = deployed
        .seatcap(
            &ann,
            &["set-cap", alice.as_str(), "200", "--reason", "seat"],
        )
        .await;
    assert!(set.status.success(), "{}", text(&set.stderr));
    let alert = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "212.00");
    alerts
        .invoke(&sns_event("m-cut", &alert))
        .await
        .expect_response();
    assert!(account.attached(&alice).await.is_empty());
    (deployed, alice, [ann, carl, dave])
}

fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

impl Deployed {
    async fn status(&self, who: &Signer, principal: &str) -> Value {
        let out = self.seatcap(who, &["--json", "status", principal]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    /// Asks for +$`extra` for `principal` as `who`; the request's id.
    async fn request_override(&self, who: &Signer, principal: &str, extra: &str) -> String {
        let until = in_days(5);
        let out = self
            .seatcap(
                who,
                &[
                    "--json", "override", principal, extra, "--until", &until, "--reason", "launch",
                ],
            )
            .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        answer["override_requests"][0]["grant"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a request waits: {answer}"))
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_above_the_line_takes_effect_only_when_a_second_person_approves_it() {
    let (deployed, alice, [ann, carl, _]) = alice_cut_off_with_three_in_finance().await;
    let account = &deployed.account;
    let alice = alice.as_str();

    let id = deployed.request_override(&ann, alice, "+500").await;
    let waiting = deployed.status(&carl, alice).await;
    assert_eq!(
        waiting["status"], "blocked",
        "a request changes no cap: {waiting}"
    );
    assert_eq!(waiting["effective_cap_usd"], "200.00", "{waiting}");
    assert!(account.attached(&alice.parse().unwrap()).await.is_empty());
    let pending = deployed
        .seatcap(&carl, &["--json", "list", "--pending"])
        .await;
    let listed: Value = serde_json::from_slice(&pending.stdout).expect("JSON");
    assert_eq!(
        listed["principals"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let table = deployed.seatcap(&carl, &["status", alice]).await;
    assert!(
        text(&table.stdout).contains("awaiting"),
        "{}",
        text(&table.stdout)
    );

    // The one who asked cannot approve it.
    refused_with(
        &deployed
            .seatcap(&ann, &["approve-override", alice, &id, "--reason", "me"])
            .await,
        "second_approver_required",
    );
    // A second finance principal does: the override holds and gives access back.
    let approved = deployed
        .seatcap(
            &carl,
            &[
                "--json",
                "approve-override",
                alice,
                &id,
                "--reason",
                "CFO ok",
            ],
        )
        .await;
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let answer: Value = serde_json::from_slice(&approved.stdout).expect("JSON");
    assert_eq!(answer["status"], "active", "{answer}");
    assert_eq!(answer["restored"], true, "{answer}");
    assert_eq!(
        account.attached(&alice.parse().unwrap()).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    // Both names in the audit: Carl (verified) approved what Ann asked for.
    let events = deployed.history(&carl, alice).await;
    let granted = events
        .iter()
        .find(|e| e["kind"] == "override_granted")
        .expect("override_granted audited");
    assert_eq!(granted["actor"], carl.arn.as_str(), "{granted}");
    assert_eq!(granted["actor_verified"], true, "{granted}");
    let grant = &granted["detail"]["after"]["overrides"][0];
    assert_eq!(grant["granted_by"], ann.arn.as_str(), "{granted}");
    assert_eq!(grant["approved_by"], carl.arn.as_str(), "{granted}");
    let requested = events
        .iter()
        .find(|e| e["kind"] == "override_requested")
        .expect("override_requested audited");
    assert_eq!(requested["actor"], ann.arn.as_str(), "{requested}");
    // Approved once: again, it is gone.
    refused_with(
        &deployed
            .seatcap(
                &carl,
                &["approve-override", alice, &id, "--reason", "again"],
            )
            .await,
        "not_found",
    );

    // At or under the line, a grant takes effect at once.
    let small = deployed
        .seatcap(
            &ann,
            &[
                "--json",
                "override",
                alice,
                "+100",
                "--until",
                &in_days(5),
                "--reason",
                "x",
            ],
        )
        .await;
    let answer: Value = serde_json::from_slice(&small.stdout).expect("JSON");
    assert_eq!(answer["effective_cap_usd"], "800.00", "{answer}");
    assert!(answer.get("override_requests").is_none(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvers_at_once_grant_the_override_once() {
    let (deployed, alice, [ann, carl, dave]) = alice_cut_off_with_three_in_finance().await;
    let account = &deployed.account;
    let principal = alice.as_str();
    for round in 0..3 {
        let id = deployed.request_override(&ann, principal, "+500").await;
        let by_carl = ["approve-override", principal, &id, "--reason", "carl"];
        let by_dave = ["approve-override", principal, &id, "--reason", "dave"];
        let (a, b) = tokio::join!(
            deployed.seatcap(&carl, &by_carl),
            deployed.seatcap_to_second(&dave, &by_dave),
        );
        let codes = [a.status.code(), b.status.code()];
        assert!(
            codes.contains(&Some(0)) && codes.contains(&Some(2)),
            "round {round}: one approves, the other finds it gone: {codes:?} {} {}",
            text(&a.stderr),
            text(&b.stderr)
        );
        let loser = if a.status.success() { &b } else { &a };
        assert!(
            text(&loser.stderr).contains("refused (not_found)"),
            "{}",
            text(&loser.stderr)
        );
        let state = deployed.status(&ann, principal).await;
        assert_eq!(state["status"], "active", "round {round}: {state}");
        assert_eq!(
            state["overrides"].as_array().map(Vec::len),
            Some(1),
            "{state}"
        );
        assert_eq!(
            account.attached(&alice).await,
            vec![account.bedrock_policy_arn.clone()],
            "round {round}"
        );
        // Cut again for the next round: revoke (spend $212 > $200) cuts at once.
        let revoke = deployed
            .seatcap(
                &ann,
                &["revoke-override", principal, "--reason", "next round"],
            )
            .await;
        assert!(revoke.status.success(), "{}", text(&revoke.stderr));
        assert!(account.attached(&alice).await.is_empty(), "round {round}");
    }
    let granted = deployed
        .history(&ann, principal)
        .await
        .iter()
        .filter(|e| e["kind"] == "override_granted")
        .count();
    assert_eq!(granted, 3, "one grant a round");
}

/// One person, one identity. Ann on IAM Identity Center's finance permission set is Ann on
/// the developers' set too: she cannot grant, restore or raise herself there. And two
/// sessions of a finance role whose session names the caller picks are not two people:
/// neither may approve (`approver_not_a_person`), whoever asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_on_two_roles_is_one_person_and_a_chosen_session_name_approves_nothing() {
    let account = Account::new().await;
    let dev_role = "AWSReservedSSO_ClaudeDev_0123456789abcdef";
    let finance_role = "AWSReservedSSO_Finance_fedcba9876543210";
    account
        .identity_center_role_named(dev_role, &[0, 1, 2, 3, 4])
        .await;
    let ann_finance = account.signer(finance_role, "ann@example.com").await;
    let ann2 = account.signer("Finance", "ann@example.com").await;
    let ann3 = account.signer("Finance", "ann2@example.com").await;
    let finance = format!(
        "arn:aws:sts::{}:assumed-role/{finance_role}/*,arn:aws:sts::{}:assumed-role/Finance/*",
        account.id, account.id
    );
    let deployed = deploy(
        account,
        &[ann_finance.clone(), ann2.clone(), ann3.clone()],
        &[("SEATCAP_FINANCE_PRINCIPALS", &finance), APPROVAL[0]],
    )
    .await;
    let ann_dev = deployed.account.sso_person(dev_role, "ann@example.com");
    let carol = deployed
        .account
        .create_principal("user", "carol", &[&deployed.account.bedrock_policy_arn])
        .await;
    for seat in [ann_dev.as_str(), carol.as_str()] {
        let set = deployed
            .seatcap(
                &ann2,
                &[
                    "set-cap",
                    seat,
                    "200",
                    "--budget",
                    &format!("b-{}", seat.len()),
                    "--reason",
                    "seat",
                ],
            )
            .await;
        assert!(set.status.success(), "{}", text(&set.stderr));
    }
    for args in [
        vec![
            "set-cap",
            ann_dev.as_str(),
            "900",
            "--budget",
            "b-x",
            "--reason",
            "me",
        ],
        vec!["restore", ann_dev.as_str(), "--reason", "me"],
        vec![
            "override",
            ann_dev.as_str(),
            "+50",
            "--until",
            "2099-01-01",
            "--reason",
            "me",
        ],
    ] {
        refused_with(&deployed.seatcap(&ann_finance, &args).await, "self_service");
    }

    // Finance/ann asks; Finance/ann2 (maybe ann herself) may not approve, nor may ann.
    let id = deployed
        .request_override(&ann2, carol.as_str(), "+500")
        .await;
    for approver in [&ann3, &ann2] {
        refused_with(
            &deployed
                .seatcap(
                    approver,
                    &["approve-override", carol.as_str(), &id, "--reason", "ok"],
                )
                .await,
            "approver_not_a_person",
        );
    }
    let state = deployed.status(&ann_finance, carol.as_str()).await;
    assert_eq!(
        state["effective_cap_usd"], "200.00",
        "nothing approved: {state}"
    );
}

/// The line cannot be split: with a $100 line, one finance person's $60 takes effect, a
/// second $60 (the cap would rise by $120) waits, and a second person's approval applies it
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_grants_under_the_line_by_one_person_make_the_second_wait() {
    let (deployed, alice, [ann, carl, _]) = alice_cut_off_with_three_in_finance().await;
    let alice = alice.as_str();
    let until = in_days(5);
    let first = deployed
        .seatcap(
            &ann,
            &[
                "--json", "override", alice, "+60", "--until", &until, "--reason", "launch",
            ],
        )
        .await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let first: Value = serde_json::from_slice(&first.stdout).expect("JSON");
    assert_eq!(first["effective_cap_usd"], "260.00", "{first}");
    assert!(first.get("override_requests").is_none(), "{first}");

    let id = deployed.request_override(&ann, alice, "+60").await;
    let waiting = deployed.status(&carl, alice).await;
    assert_eq!(
        waiting["effective_cap_usd"], "260.00",
        "the second waits: {waiting}"
    );

    let approve = [
        "--json",
        "approve-override",
        alice,
        id.as_str(),
        "--reason",
        "ok",
    ];
    let approved = deployed.seatcap(&carl, &approve).await;
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let approved: Value = serde_json::from_slice(&approved.stdout).expect("JSON");
    assert_eq!(approved["effective_cap_usd"], "320.00", "{approved}");
    refused_with(&deployed.seatcap(&carl, &approve).await, "not_found");
    assert_eq!(
        deployed.status(&carl, alice).await["effective_cap_usd"],
        "320.00",
        "applied once"
    );
}

/// The same person's two $60 grants at once, on a $100 line: each is decided on the state
/// its write lands on, so one takes effect and the other waits, whichever wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_grants_at_once_under_the_line_still_make_one_wait() {
    let account = Account::new().await;
    let app = account.app(&[APPROVAL[0]], seatcap::app::system_clock());
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    let set = app
        .handle_admin(
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
            "cap_usd": "200", "actor": "ann", "reason": "seat"}),
        )
        .await
        .unwrap();
    assert_eq!(set["ok"], true, "{set}");
    let grant = json!({"action": "grant_override", "principal": alice.as_str(), "extra_usd": "60.00",
        "expires_at": (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339(),
        "actor": "ann", "reason": "launch"});
    let (a, b) = tokio::join!(app.handle_admin(grant.clone()), app.handle_admin(grant));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a["ok"].clone(), b["ok"].clone()),
        (json!(true), json!(true)),
        "{a} {b}"
    );
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(
        (state.overrides.len(), state.override_requests.len()),
        (1, 1),
        "one applied, one waiting: {state:?}"
    );
}

/// Finance prices a model no table knows (issue 24), through the CLI and the Function URL:
/// the next metering batch uses the price instead of the highest rate; nobody else may set
/// one, no known model may be made cheaper, and two finance people setting it at once
/// through two admin instances leave one price and both audits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_prices_a_model_no_table_knows_and_the_next_batch_uses_it() {
    let account = Account::new().await;
    let ann = account.signer("Finance", "ann@example.com").await;
    let cy = account.signer("Finance", "cy@example.com").await;
    let bob = account.signer("Developers", "bob@example.com").await;
    let finance = format!("arn:aws:sts::{}:assumed-role/Finance/*", account.id);
    let deployed = deploy(
        account,
        &[ann.clone(), cy.clone(), bob.clone()],
        &[("SEATCAP_FINANCE_PRINCIPALS", &finance)],
    )
    .await;
    let account = &deployed.account;
    let model = "us.acme.model-x-v1:0";
    let metering = Function::start(binary("metering"), &account.env()).await;
    let dev = format!("arn:aws:iam::{}:user/dev", account.id);
    let batch = |request: &str| {
        seatcap_tests::logs_batch(&[seatcap_tests::invocation_record(
            &dev, request, model, 1_000_000,
        )])
    };
    let metered = |report: &Value| report["spend"][0]["added_usd"].as_str().unwrap().to_owned();
    // Unknown: the highest rate ($75 per million out, in-region 1.1x).
    let before = metering.invoke(&batch("r-x-1")).await.expect_response();
    assert_eq!(metered(&before), "82.50", "{before}");

    let refused = deployed
        .seatcap(
            &bob,
            &[
                "prices", "set", model, "--input", "1", "--output", "1", "--reason", "cheap",
            ],
        )
        .await;
    refused_with(&refused, "forbidden");
    let known = deployed
        .seatcap(
            &ann,
            &[
                "prices",
                "set",
                "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "--input",
                "0.01",
                "--output",
                "0.01",
                "--reason",
                "cheaper",
            ],
        )
        .await;
    refused_with(&known, "model_already_priced");
    let free = deployed
        .seatcap(
            &ann,
            &[
                "prices", "set", model, "--input", "0", "--output", "0", "--reason", "free",
            ],
        )
        .await;
    refused_with(&free, "invalid_price");

    // Ann and Cy at once, through two instances: both written, one after the other.
    let args = [
        "prices", "set", model, "--input", "2", "--output", "8", "--reason", "quote",
    ];
    let (by_ann, by_cy) = tokio::join!(
        deployed.seatcap(&ann, &args),
        deployed.seatcap_to_second(&cy, &args),
    );
    assert!(by_ann.status.success(), "{}", text(&by_ann.stderr));
    assert!(by_cy.status.success(), "{}", text(&by_cy.stderr));
    assert!(
        text(&by_ann.stdout).contains("now costs $2 in and $8 out"),
        "{}",
        text(&by_ann.stdout)
    );
    let audits: Vec<_> = account
        .ledger()
        .history(&seatcap::ledger::Subject::System, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == seatcap::ledger::EventKind::PriceSet)
        .collect();
    assert_eq!(audits.len(), 2, "{audits:?}");
    assert_eq!(
        audits
            .iter()
            .filter(|e| e.detail["replaces"].is_null())
            .count(),
        1,
        "the second replaced the first: {audits:?}"
    );
    assert_eq!(account.ledger().finance_prices().await.unwrap().len(), 1);

    // The same metering process's next batch: $8 per million out.
    let after = metering.invoke(&batch("r-x-2")).await.expect_response();
    assert_eq!(metered(&after), "8.00", "{after}");
    assert!(after.get("unknown_models").is_none(), "{after}");

    // The price is that model's alone: its next version is still unknown, and a call of it
    // without token counts is still priced per unit, fail closed.
    let mut next_version =
        seatcap_tests::invocation_record(&dev, "r-x-3", "us.acme.model-x-v2:0", 1_000_000);
    next_version["input"]["inputTokenCount"] = json!(0);
    let mut tokenless = seatcap_tests::invocation_record(&dev, "r-x-4", model, 0);
    tokenless["input"] = json!({"inputContentType": "application/json"});
    tokenless["output"] = json!({});
    let other = metering
        .invoke(&seatcap_tests::logs_batch(&[next_version, tokenless]))
        .await
        .expect_response();
    assert_eq!(metered(&other), "82.64", "$82.50 + $0.14: {other}");
    assert_eq!(
        other["unknown_models"],
        json!(["us.acme.model-x-v2:0"]),
        "{other}"
    );
    assert_eq!(other["units_assumed"], json!([model]), "{other}");
}
