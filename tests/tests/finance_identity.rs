//! Who finance is: the real `seatcap` CLI signs its requests (SigV4) to the admin binary's
//! Function URL, which checks the signature as Lambda does; the audit names the caller AWS
//! verified, never a field. Only finance changes caps, nobody their own, and a direct invoke
//! is either refused or recorded as claimed.

use std::collections::HashMap;
use std::process::Output;
use std::sync::Arc;

use seatcap_tests::{
    Account, Function, Signer, binary, moto, serve_function_url, serve_invoke_api,
};
use serde_json::{Value, json};

struct Deployed {
    account: Account,
    invoke_url: String,
}

/// The admin binary behind its Function URL (and the Invoke API), `env` on top.
async fn deploy(account: Account, signers: &[Signer], env: &[(&str, &str)]) -> Deployed {
    let mut function_env = account.env();
    for (k, v) in env {
        function_env.insert((*k).to_owned(), (*v).to_owned());
    }
    let admin = Arc::new(Function::start(binary("admin"), &function_env).await);
    let url = serve_function_url(admin.clone(), signers).await;
    // Lambda reports the URL, so the CLI finds it by itself.
    let invoke_url = serve_invoke_api(
        HashMap::from([("seatcap-admin".to_owned(), admin)]),
        HashMap::from([("seatcap-admin".to_owned(), url.clone())]),
    )
    .await;
    Deployed {
        account,
        invoke_url,
    }
}

impl Deployed {
    /// The CLI run as `who` (their credentials), through the URL unless `args` say `--direct`.
    async fn seatcap(&self, who: &Signer, args: &[&str]) -> Output {
        let mut env = self.account.env();
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
    let deployed = deploy(account, &[bob.clone(), ann.clone()], &[]).await;
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
