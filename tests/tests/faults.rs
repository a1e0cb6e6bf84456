//! Faults moto cannot make, injected with aws-smithy-mocks on the IAM client while the
//! ledger stays on moto.

use std::sync::Arc;

use aws_sdk_iam::operation::attach_user_policy::AttachUserPolicyOutput;
use aws_sdk_iam::operation::detach_user_policy::{DetachUserPolicyError, DetachUserPolicyOutput};
use aws_sdk_iam::types::error::ServiceFailureException;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::{TimeZone, Utc};
use seatcap::alert_delivery::AlertError;
use seatcap::iam::Iam;
use seatcap_tests::{Account, budget_alert};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_failure_mid_enforcement_gives_back_what_was_detached_and_records_nothing() {
    let account = Account::new().await;
    let second_policy = format!("arn:aws:iam::{}:policy/bedrock-opus", account.id);
    let policies = format!("{},{second_policy}", account.bedrock_policy_arn);
    let mut app = account.app(
        &[("SEATCAP_MANAGED_POLICY_ARNS", &policies)],
        Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()),
    );
    let alice = account.principal("user", "alice");
    let answer = app
        .handle_admin(
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
            "cap_usd": "200", "actor": "finance", "reason": "test"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["ok"], true);

    // The first policy detaches; IAM fails on the second.
    let first = account.bedrock_policy_arn.clone();
    let detach_first = mock!(aws_sdk_iam::Client::detach_user_policy)
        .match_requests(move |r| r.policy_arn() == Some(first.as_str()))
        .then_output(|| DetachUserPolicyOutput::builder().build());
    let second = second_policy.clone();
    let detach_second_fails = mock!(aws_sdk_iam::Client::detach_user_policy)
        .match_requests(move |r| r.policy_arn() == Some(second.as_str()))
        .then_error(|| {
            DetachUserPolicyError::ServiceFailureException(
                ServiceFailureException::builder()
                    .message("internal failure")
                    .build(),
            )
        });
    let give_back = account.bedrock_policy_arn.clone();
    let reattach = mock!(aws_sdk_iam::Client::attach_user_policy)
        .match_requests(move |r| {
            r.policy_arn() == Some(give_back.as_str()) && r.user_name() == Some("alice")
        })
        .then_output(|| AttachUserPolicyOutput::builder().build());
    let listed =
        seatcap_tests::attached_user_policies(&[&account.bedrock_policy_arn, &second_policy]);
    let second = second_policy.clone();
    let reattach_second = mock!(aws_sdk_iam::Client::attach_user_policy)
        .match_requests(move |r| r.policy_arn() == Some(second.as_str()))
        .then_output(|| AttachUserPolicyOutput::builder().build());
    app.iam = Iam::new(mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [
            &listed,
            &detach_first,
            &detach_second_fails,
            &reattach,
            &reattach_second
        ]
    ));

    let alert = budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00");
    let error = app
        .handle_delivery("m-1", &alert)
        .await
        .expect_err("the invocation must fail so SNS retries");
    assert!(matches!(error, AlertError::Iam(_)), "{error}");
    assert_eq!(
        reattach.num_calls(),
        1,
        "the policy detached before the failure was given back"
    );

    // The intent was written, then cleared as reversed: active, nothing pending, no claim,
    // so the retry starts from scratch.
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(
        (state.version, state.status, state.pending.is_none()),
        (2, seatcap::state::Status::Active, true)
    );
    assert!(state.detached_policy_arns.is_empty());
    let history = account
        .ledger()
        .history(&seatcap::ledger::Subject::Principal(alice.clone()), 10)
        .await
        .unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.kind == seatcap::ledger::EventKind::IntentReversed),
        "{history:?}"
    );
    let lookup = account
        .ledger()
        .lookup_alert(
            "m-1",
            &seatcap::alert::parse_budget_alert(&alert)
                .unwrap()
                .natural_key(),
            "seatcap-alice",
        )
        .await
        .unwrap();
    assert_eq!(lookup, seatcap::ledger::AlertLookup::Owner(alice));
}

/// IAM refuses every detach (a policy condition seatcap's role does not meet, say): each
/// delivery fails so SNS/Lambda retry, and people hear of it once, not once per retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_enforcement_is_announced_once_however_often_it_is_retried() {
    let account = Account::new().await;
    let slack = seatcap_tests::SlackReceiver::start().await;
    let mut app = account.app(
        &[("SEATCAP_SLACK_WEBHOOK_URL", &slack.url)],
        Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()),
    );
    let alice = account.principal("user", "alice");
    let answer = app
        .handle_admin(
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
            "cap_usd": "200", "actor": "finance", "reason": "test", "team": "atlas"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["ok"], true);
    let refuse = mock!(aws_sdk_iam::Client::detach_user_policy).then_error(|| {
        DetachUserPolicyError::ServiceFailureException(
            ServiceFailureException::builder()
                .message("not authorized to perform iam:DetachUserPolicy")
                .build(),
        )
    });
    let listed = seatcap_tests::attached_user_policies(&[&account.bedrock_policy_arn]);
    let give_back = mock!(aws_sdk_iam::Client::attach_user_policy)
        .then_output(|| AttachUserPolicyOutput::builder().build());
    app.iam = Iam::new(mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [&listed, &refuse, &give_back]
    ));

    let alert = budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00");
    for _ in 0..3 {
        let error = app.handle_delivery("m-1", &alert).await.unwrap_err();
        assert!(matches!(error, AlertError::Iam(_)), "{error}");
    }

    let received = slack.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let text = received[0].to_string();
    assert!(text.contains("could NOT be cut off"), "{text}");
    assert!(text.contains("enforcement_failed · critical"), "{text}");
    assert!(
        text.contains("not authorized to perform iam:DetachUserPolicy"),
        "{text}"
    );
    let emails = account.sent_notifications().await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].2["audience"], "security");
    let audited: Vec<_> = account
        .ledger()
        .history(&seatcap::ledger::Subject::Principal(alice.clone()), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == seatcap::ledger::EventKind::EnforcementFailed)
        .collect();
    assert_eq!(audited.len(), 1, "{audited:?}");
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(state.status, seatcap::state::Status::Active);
}

/// DynamoDB cancels a transaction for many reasons; each item says which. A claim that
/// exists is a duplicate, a state that moved is a conflict, throttling and transaction
/// conflicts are tried again, and anything else is an error: never a duplicate, so a real
/// alert is never dropped because DynamoDB was busy.
#[tokio::test]
async fn a_cancelled_transaction_is_read_by_its_reasons() {
    use aws_sdk_dynamodb::operation::transact_write_items::{
        TransactWriteItemsError, TransactWriteItemsOutput,
    };
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use seatcap::ledger::{Claim, Commit, CommitError, Ledger};

    let cancelled = |codes: &'static [&'static str]| {
        move || {
            TransactWriteItemsError::TransactionCanceledException(
                TransactionCanceledException::builder()
                    .set_cancellation_reasons(Some(
                        codes
                            .iter()
                            .map(|c| CancellationReason::builder().code(*c).build())
                            .collect(),
                    ))
                    .build(),
            )
        }
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    let state = seatcap::state::PrincipalState::new(
        "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
        "seatcap-alice".into(),
        seatcap::money::Usd::from_cents(200_00),
        now,
    );
    let commit = || Commit {
        claims: vec![Claim::Message("m-1".into())],
        state: Some((state.clone(), Some(0))),
        ..Commit::default()
    };
    let ledger_of = |rules: &[&aws_smithy_mocks::Rule]| {
        let client = aws_smithy_mocks::mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, rules);
        Ledger::new(client, "seatcap-ledger", 400)
    };

    // Throttled on the state item, then through: retried, and it lands.
    let throttled = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .then_error(cancelled(&["None", "ThrottlingError"]));
    let landed = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let ledger = ledger_of(&[&throttled, &landed]);
    ledger
        .commit(commit(), now)
        .await
        .expect("retried, then written");
    assert_eq!((throttled.num_calls(), landed.num_calls()), (1, 1));

    let outcome = |codes: &'static [&'static str]| {
        let rule =
            mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(cancelled(codes));
        let ledger = ledger_of(&[&rule]);
        async move { ledger.commit(commit(), now).await.unwrap_err() }
    };
    assert!(matches!(
        outcome(&["ConditionalCheckFailed", "None"]).await,
        CommitError::Claimed
    ));
    assert!(matches!(
        outcome(&["None", "ConditionalCheckFailed"]).await,
        CommitError::Conflict
    ));
    let other = outcome(&["None", "ValidationError"]).await;
    assert!(
        matches!(&other, CommitError::Ledger(e) if e.to_string().contains("ValidationError")),
        "{other}"
    );
}
