//! The commit engine: the one way any writer (alert, admin, period-rollover, reconcile)
//! changes a principal.
//!
//! 1. Read the state. If it holds an unfinished [`Intent`]: wait while its writer may still
//!    be at work; after that, complete it from the record (or, if IAM refuses, reverse it).
//! 2. Decide, purely, from the state read ([`Decided`]).
//! 3. No IAM to change: one conditional write (state, claims, audit) and done.
//! 4. Otherwise plan the IAM step (read what a cut would take), write the intent
//!    conditionally on the version read (**write-ahead**), change IAM, and confirm with a
//!    second conditional write. Only the writer whose intent landed touches IAM, so a
//!    writer that lost a race has nothing to undo, and never gives back what another took.
//! 5. After the commit: the check after a cut, the budget's re-armed notifications (when
//!    the change moved the effective cap within a period), and the notices.
//!
//! An intent is held until its writer's deadline ([`App::hold_until`]): Lambda ends the
//! process then, so a writer that completes it cannot race the one that wrote it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::access::RemainingAccess;
use crate::app::App;
use crate::config::Mode;
use crate::enforce::EnforceError;
use crate::intent::{Done, IamStep, Intent, PlannedStep, Taken};
use crate::ledger::{AuditEvent, Claim, Commit, CommitError, EventKind, LedgerError, Subject};
use crate::notify::{Notice, NoticeKind};
use crate::principal::PrincipalArn;
use crate::state::PrincipalState;

/// What a writer decided from one read of the state: nothing to write (`K`, the writer's
/// answer), or a change whose report is `R`.
pub enum Decided<R, K = R> {
    Keep(K),
    Change(Box<Change<R>>),
}

/// A change to commit: the state after it, the IAM step it needs, and what goes with it.
pub struct Change<R> {
    /// The state after the change; its version, and what a cut takes, are the engine's.
    pub next: PrincipalState,
    pub step: IamStep,
    /// Filed under the principal. The engine adds what the step took or gave back and, for
    /// an [`AuditEvent::state_change`], the state before and the state as committed.
    pub audit: AuditEvent,
    /// Must not exist yet: a claim that does makes the outcome [`Outcome::Claimed`].
    pub claims: Vec<Claim>,
    /// Budget → principal, written with the change (the budget must be unowned or this
    /// principal's).
    pub owner: Option<(String, PrincipalArn)>,
    pub release_owner: Option<(String, PrincipalArn)>,
    /// Sent once the change holds (a cut-off notice becomes `enforcement_incomplete` if
    /// the check after the cut finds access left).
    pub notices: Vec<Notice>,
    pub report: R,
}

/// A change as committed.
#[derive(Debug)]
pub struct Committed<R> {
    pub report: R,
    pub before: Option<PrincipalState>,
    pub state: PrincipalState,
    /// What IAM did: taken (a cut, or taken again) or given back.
    pub step: Option<PlannedStep>,
    /// After a cut: where Bedrock access remains.
    pub remaining: Vec<RemainingAccess>,
    pub notification_failures: usize,
}

#[derive(Debug)]
pub enum Outcome<R, K = R> {
    /// Nothing was written; the writer's answer.
    Kept(K),
    Committed(Box<Committed<R>>),
    /// A claim existed: this happened before (another delivery committed first).
    Claimed,
    /// The budget belongs to another principal now.
    OwnerTaken,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Enforce(#[from] EnforceError),
    #[error("{principal}: a change by {by} is under way until {until}; retry after it")]
    Busy {
        principal: String,
        by: String,
        until: DateTime<Utc>,
    },
    #[error("gave up after {0} conflicting writes to the ledger; retry")]
    TooManyConflicts(usize),
    /// Dry-run mode changes no IAM, so a change that needs it is not made.
    #[error("seatcap is in dry-run mode and changes no IAM; it would {0}")]
    DryRun(String),
    #[error("{0}: this writer's change was completed or reversed by another writer; retry")]
    Superseded(String),
    #[error("{0} has no state in the ledger to change")]
    NotInLedger(String),
}

const MAX_ATTEMPTS: usize = 8;
/// Polls of a held intent before giving up: about 30 s in all (see [`pause`]).
const MAX_WAITS: u32 = 60;

/// Whether an intent is carried out by the writer that wrote it, or completed by another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// `cut`: the step is a cut, so the check after it runs.
    First {
        cut: bool,
    },
    Completing,
}

/// What the write of a decided change came to.
enum Written<R> {
    Done(Box<Committed<R>>),
    Conflict,
    Claimed,
    OwnerTaken,
}

impl App {
    /// Changes `principal` as `decide` says, decided afresh from each read, through the
    /// protocol above. `actor` completes unfinished intents it finds.
    pub async fn commit_change<R, K>(
        &self,
        principal: &PrincipalArn,
        actor: &str,
        mut decide: impl FnMut(Option<&PrincipalState>, DateTime<Utc>) -> Decided<R, K>,
    ) -> Result<Outcome<R, K>, EngineError> {
        let mut waits = 0;
        let mut attempts = 0;
        while attempts < MAX_ATTEMPTS {
            let now = self.now();
            let state = self.ledger.load(principal).await?;
            if let Some(state) = &state
                && let Some(intent) = &state.pending
            {
                if intent.is_held(now) {
                    if waits >= MAX_WAITS {
                        return Err(EngineError::Busy {
                            principal: principal.to_string(),
                            by: intent.by.clone(),
                            until: intent.held_until,
                        });
                    }
                    waits += 1;
                    tokio::time::sleep(pause(waits)).await;
                    continue;
                }
                Box::pin(self.complete(state, intent, actor)).await?;
                continue;
            }
            let change = match decide(state.as_ref(), now) {
                Decided::Keep(report) => return Ok(Outcome::Kept(report)),
                Decided::Change(change) => *change,
            };
            match Box::pin(self.write(principal, actor, state, change, now)).await? {
                Written::Done(committed) => return Ok(Outcome::Committed(committed)),
                Written::Claimed => return Ok(Outcome::Claimed),
                Written::OwnerTaken => return Ok(Outcome::OwnerTaken),
                Written::Conflict => {
                    info!(%principal, "ledger changed underneath the write; reading again");
                    attempts += 1;
                }
            }
        }
        Err(EngineError::TooManyConflicts(MAX_ATTEMPTS))
    }

    /// [`Self::commit_change`] for many principals at once, from states read in bulk (a page
    /// of the status index, so no read each): the intents of those whose change only gives
    /// back or takes again what is on record go out [`BATCH`] to a transaction, then IAM,
    /// then the confirmations [`BATCH`] to a transaction. The protocol is the same; only the
    /// number of writes differs. Any principal the batch cannot carry (an intent found, a
    /// cut to plan, a write that conflicts) goes through [`Self::commit_change`] alone.
    pub async fn commit_many<R: Send, K>(
        &self,
        states: Vec<PrincipalState>,
        actor: &str,
        decide: impl Fn(Option<&PrincipalState>, DateTime<Utc>) -> Decided<R, K> + Sync,
    ) -> Vec<(PrincipalArn, Result<Outcome<R, K>, EngineError>)> {
        use futures::StreamExt;
        let now = self.now();
        let mut results = Vec::new();
        let mut alone = Vec::new();
        let mut batch = Vec::new();
        for state in states {
            if state.pending.is_some() {
                alone.push(state.principal.clone());
                continue;
            }
            match decide(Some(&state), now) {
                Decided::Keep(report) => {
                    let principal = state.principal.clone();
                    results.push((principal, Ok(Outcome::Kept(report))));
                }
                Decided::Change(change) => match batchable(&change.step) {
                    Some(step) => batch.push(self.intent_for(state, *change, step, actor, now)),
                    None => alone.push(state.principal.clone()),
                },
            }
        }
        // The intents, a transaction at a time; a chunk that does not land goes alone.
        let mut written = Vec::new();
        for chunk in chunks(batch) {
            let commits: Vec<Commit> = chunk
                .iter()
                .map(|(before, holding, _, _)| Commit {
                    state: Some((holding.clone(), Some(before.version))),
                    ..Commit::default()
                })
                .collect();
            match self.ledger.commit_all(&commits, now).await {
                Ok(()) => written.extend(chunk),
                Err(e) => {
                    info!(error = %e, principals = chunk.len(), "a batch of intents did not land; each goes alone");
                    alone.extend(chunk.into_iter().map(|(b, ..)| b.principal));
                }
            }
        }
        // IAM, a few principals at a time.
        let done: Vec<_> = futures::stream::iter(written)
            .map(|(before, holding, intent, report)| async move {
                let result = self.run_step(&holding.principal, &intent.step).await;
                (before, holding, intent, report, result)
            })
            .buffer_unordered(crate::handover::CONCURRENCY)
            .collect()
            .await;
        let mut to_confirm = Vec::new();
        for (before, holding, intent, report, result) in done {
            match result {
                Ok(taken) => to_confirm.push((before, holding, intent, report, taken)),
                Err(e) => {
                    self.reverse(&holding, &intent, actor, &e).await;
                    results.push((holding.principal.clone(), Err(e.into())));
                }
            }
        }
        // The confirmations, a transaction at a time; one that does not land is confirmed
        // principal by principal.
        let mut notices = Vec::new();
        for chunk in chunks(to_confirm) {
            let confirmations: Vec<(PrincipalState, Commit)> = chunk
                .iter()
                .map(|(_, holding, intent, _, taken)| confirmation(holding, intent, taken))
                .collect();
            let commits: Vec<Commit> = confirmations.iter().map(|(_, c)| c.clone()).collect();
            let landed = self.ledger.commit_all(&commits, now).await.is_ok();
            for ((before, holding, intent, report, taken), (state, _)) in
                chunk.into_iter().zip(confirmations)
            {
                let state = if landed {
                    Ok(state)
                } else {
                    self.confirm(&holding, &intent, &taken, actor, Run::First { cut: false })
                        .await
                };
                match state {
                    Ok(state) => {
                        self.sync_alarms(&holding.budget_alarms_usd, &state).await;
                        let mut said = intent.notices.clone();
                        if let Err(e) = self
                            .say_whether_in_force(&holding, &state, &intent.step, actor, &mut said)
                            .await
                        {
                            error!(principal = %holding.principal, error = %e, "could not record that a cut is not in force");
                        }
                        notices.extend(said);
                        let committed = Committed {
                            report,
                            before: Some(before),
                            state,
                            step: Some(intent.step.clone()),
                            remaining: Vec::new(),
                            notification_failures: 0,
                        };
                        results.push((
                            holding.principal.clone(),
                            Ok(Outcome::Committed(Box::new(committed))),
                        ));
                    }
                    Err(e) => results.push((holding.principal.clone(), Err(e))),
                }
            }
        }
        if let Err(e) = self.deliver_all(&notices).await {
            error!(error = %e, "could not record undelivered notices of a batch");
        }
        for principal in alone {
            let outcome = self.commit_change(&principal, actor, &decide).await;
            results.push((principal, outcome));
        }
        results
    }

    /// The intent a change writes, and the state holding it: `before` with the intent.
    fn intent_for<R>(
        &self,
        before: PrincipalState,
        change: Change<R>,
        step: PlannedStep,
        actor: &str,
        now: DateTime<Utc>,
    ) -> (PrincipalState, PrincipalState, Intent, R) {
        let Change {
            mut next,
            mut audit,
            claims,
            notices,
            report,
            ..
        } = change;
        if let PlannedStep::Take(taken) = &step {
            taken.record_in(&mut next);
        }
        self.arm(Some(&before), &mut next, now);
        next.version = before.version + 1;
        next.pending = None;
        // The views of the state are filled at the confirmation (see `confirmation`).
        record_step(&mut audit, Some(&step));
        let intent = Intent {
            id: uuid::Uuid::new_v4().simple().to_string(),
            by: actor.to_owned(),
            step,
            started_at: now,
            held_until: self.hold_until(),
            then: Box::new(next),
            events: vec![audit],
            claims,
            notices,
        };
        // Only the intent and the version change, so the state it replaced is the holding
        // state without them: the confirmation shows it in the audit from that.
        let mut holding = before.clone();
        holding.pending = Some(Box::new(intent.clone()));
        holding.version = before.version + 1;
        (before, holding, intent, report)
    }

    async fn write<R>(
        &self,
        principal: &PrincipalArn,
        actor: &str,
        before: Option<PrincipalState>,
        mut change: Change<R>,
        now: DateTime<Utc>,
    ) -> Result<Written<R>, EngineError> {
        if change.step != IamStep::Nothing && self.config.mode == Mode::DryRun {
            return Err(EngineError::DryRun(describe(&change.step)));
        }
        let cut = matches!(change.step, IamStep::Cut(_));
        let (planned, attached) = match &change.step {
            IamStep::Nothing => (None, None),
            IamStep::Cut(scope) => {
                let plan = self.plan_cut(principal, *scope).await?;
                (Some(PlannedStep::Take(plan.taken)), plan.attached)
            }
            IamStep::GiveBack(taken) => (Some(PlannedStep::GiveBack(taken.clone())), None),
            IamStep::TakeAgain(taken) => (Some(PlannedStep::Take(taken.clone())), None),
        };
        let planned = planned.filter(|p| !step_taken(p).is_empty());
        let (owner, release_owner) = (change.owner.take(), change.release_owner.take());

        let Some(step) = planned else {
            // No IAM to change: one conditional write.
            let Change {
                mut next,
                mut audit,
                claims,
                mut notices,
                report,
                ..
            } = change;
            let expected = before.as_ref().map(|s| s.version);
            self.arm(before.as_ref(), &mut next, now);
            next.version = expected.map_or(0, |v| v + 1);
            next.pending = None;
            record_step(&mut audit, None);
            record_views(&mut audit, before.as_ref(), &next);
            let commit = Commit {
                claims,
                state: Some((next.clone(), expected)),
                owner,
                release_owner,
                events: vec![(Subject::Principal(principal.clone()), audit)],
            };
            return match self.ledger.commit(commit, now).await {
                Ok(()) => {
                    let remaining = if cut {
                        self.after_cut(principal, actor, attached, &mut notices, now)
                            .await?
                    } else {
                        Vec::new()
                    };
                    let owned_before = before.as_ref().map(|b| b.budget_alarms_usd.clone());
                    self.sync_alarms(&owned_before.unwrap_or_default(), &next)
                        .await;
                    let notification_failures = self.deliver_all(&notices).await?;
                    Ok(Written::Done(Box::new(Committed {
                        report,
                        before,
                        state: next,
                        step: None,
                        remaining,
                        notification_failures,
                    })))
                }
                Err(e) => conflict(e),
            };
        };
        // Something is taken or given back, so there is a state on record it came from.
        let Some(before) = before else {
            return Err(EngineError::NotInLedger(principal.to_string()));
        };

        // Write-ahead: the intent first, conditional on the version read.
        let (before, holding, intent, report) = self.intent_for(before, change, step, actor, now);
        let write = Commit {
            state: Some((holding.clone(), Some(before.version))),
            owner,
            release_owner,
            ..Commit::default()
        };
        if let Err(e) = self.ledger.commit(write, now).await {
            return conflict(e);
        }
        let (state, remaining, notification_failures) =
            Box::pin(self.carry_out(&holding, &intent, actor, attached, Run::First { cut }))
                .await?;
        Ok(Written::Done(Box::new(Committed {
            report,
            before: Some(before),
            state,
            step: Some(intent.step.clone()),
            remaining,
            notification_failures,
        })))
    }

    /// Changes IAM as `intent` says, confirms, checks after a cut and notifies. If IAM
    /// refuses, gives back what the step took and clears the intent, then fails.
    async fn carry_out(
        &self,
        holding: &PrincipalState,
        intent: &Intent,
        actor: &str,
        attached: Option<Vec<String>>,
        run: Run,
    ) -> Result<(PrincipalState, Vec<RemainingAccess>, usize), EngineError> {
        let principal = &holding.principal;
        let done = match self.run_step(principal, &intent.step).await {
            Ok(done) => done,
            Err(e) => {
                self.reverse(holding, intent, actor, &e).await;
                return Err(e.into());
            }
        };
        let state = self.confirm(holding, intent, &done, actor, run).await?;
        self.sync_alarms(&holding.budget_alarms_usd, &state).await;
        let now = self.now();
        let mut notices = intent.notices.clone();
        self.say_whether_in_force(holding, &state, &intent.step, actor, &mut notices)
            .await?;
        let cut = match run {
            Run::First { cut } => cut,
            Run::Completing => {
                matches!(intent.step, PlannedStep::Take(_))
                    && intent.then.status == crate::state::Status::Blocked
            }
        };
        let remaining = if cut {
            self.after_cut(principal, actor, attached, &mut notices, now)
                .await?
        } else {
            Vec::new()
        };
        let failures = self.deliver_all(&notices).await?;
        Ok((state, remaining, failures))
    }

    /// An unfinished intent whose writer's time is up: complete it from the record.
    async fn complete(
        &self,
        holding: &PrincipalState,
        intent: &Intent,
        actor: &str,
    ) -> Result<(), EngineError> {
        warn!(
            principal = %holding.principal, intent = %intent.id, by = %intent.by, started_at = %intent.started_at,
            "completing a change whose writer did not finish"
        );
        crate::metrics::count("IntentsCompleted", 1);
        self.carry_out(holding, intent, actor, None, Run::Completing)
            .await
            .map(drop)
    }

    /// Confirms `intent` with what its step did (`done`): the state it planned, with what
    /// is now taken, and its claims and audit; claims that exist already are left out (a
    /// writer completing this change may have written them with the alert's).
    async fn confirm(
        &self,
        holding: &PrincipalState,
        intent: &Intent,
        done: &Done,
        actor: &str,
        run: Run,
    ) -> Result<PrincipalState, EngineError> {
        let now = self.now();
        let (state, Commit { mut events, .. }) = confirmation(holding, intent, done);
        let subject = Subject::Principal(holding.principal.clone());
        if run == Run::Completing {
            events.push((
                subject.clone(),
                AuditEvent::new(
                    now,
                    EventKind::IntentCompleted,
                    actor,
                    json!({"intent": intent.id, "by": intent.by, "started_at": intent.started_at, "step": intent.step}),
                ),
            ));
        }
        let mut claims = intent.claims.clone();
        loop {
            let commit = Commit {
                claims: std::mem::take(&mut claims),
                state: Some((state.clone(), Some(holding.version))),
                events: events.clone(),
                ..Commit::default()
            };
            match self.ledger.commit(commit, now).await {
                Ok(()) => return Ok(state),
                Err(CommitError::Claimed) => continue,
                Err(CommitError::Ledger(e)) => return Err(e.into()),
                Err(_) => {
                    return Err(EngineError::Superseded(holding.principal.to_string()));
                }
            }
        }
    }

    /// IAM refused the step: give back what it took so far and clear the intent, so IAM is
    /// as the ledger says. If that fails too, the intent stays for the next writer.
    async fn reverse(
        &self,
        holding: &PrincipalState,
        intent: &Intent,
        actor: &str,
        cause: &EnforceError,
    ) {
        let principal = &holding.principal;
        if let Err(e) = self.run_step(principal, &intent.step.reverse()).await {
            error!(%principal, error = %e, intent = %intent.id, "could not reverse a failed change; the next writer completes it");
            return;
        }
        let now = self.now();
        let mut cleared = holding.clone();
        cleared.pending = None;
        cleared.version = holding.version + 1;
        cleared.updated_at = now;
        let event = AuditEvent::new(
            now,
            EventKind::IntentReversed,
            actor,
            json!({"intent": intent.id, "by": intent.by, "step": intent.step, "error": cause.to_string()}),
        );
        let commit = Commit {
            state: Some((cleared, Some(holding.version))),
            events: vec![(Subject::Principal(principal.clone()), event)],
            ..Commit::default()
        };
        if let Err(e) = self.ledger.commit(commit, now).await {
            error!(%principal, error = %e, "could not clear a reversed change; the next writer completes it");
        }
    }

    /// After a take: a deny IAM does not enforce ([`crate::identity_center::NotEnforceable`])
    /// is audited, counted and logged when first found, and the cut-off (or drift) notices
    /// say so instead, with the fix, to security and finance. A deny that was not in force
    /// and now is gets its `enforcement_completed`.
    async fn say_whether_in_force(
        &self,
        holding: &PrincipalState,
        state: &PrincipalState,
        step: &PlannedStep,
        actor: &str,
        notices: &mut [Notice],
    ) -> Result<(), LedgerError> {
        if !matches!(step, PlannedStep::Take(_)) {
            return Ok(());
        }
        let now = self.now();
        let principal = &state.principal;
        let event = match (&holding.not_enforceable, &state.not_enforceable) {
            (None, Some(not)) => {
                error!(%principal, role = %not.role, policy = %not.policy_arn, "cut recorded but not in force: the permission set does not reference seatcap's shard");
                crate::metrics::count("NotEnforceable", 1);
                Some(AuditEvent::new(
                    now,
                    EventKind::NotEnforceable,
                    actor,
                    json!(not),
                ))
            }
            (Some(was), None) => {
                info!(%principal, role = %was.role, "the cut is in force now: the role carries the shard");
                Some(AuditEvent::new(
                    now,
                    EventKind::EnforcementCompleted,
                    actor,
                    json!({"policy_arn": was.policy_arn, "not_enforceable_since": was.since}),
                ))
            }
            _ => None,
        };
        if let Some(not) = &state.not_enforceable {
            let (kind, audience, headline, next_step) = crate::announce::not_enforceable(not);
            for notice in notices
                .iter_mut()
                .filter(|n| matches!(n.kind, NoticeKind::CutOff | NoticeKind::Drift))
            {
                notice.kind = kind;
                notice.audience = audience;
                notice.headline.clone_from(&headline);
                notice.next_step.clone_from(&next_step);
            }
        }
        match event {
            Some(event) => {
                self.ledger
                    .append(vec![(Subject::Principal(principal.clone()), event)], now)
                    .await
            }
            None => Ok(()),
        }
    }

    /// The check after a cut: access left is audited, and cut-off notices say so instead.
    async fn after_cut(
        &self,
        principal: &PrincipalArn,
        actor: &str,
        attached: Option<Vec<String>>,
        notices: &mut [Notice],
        now: DateTime<Utc>,
    ) -> Result<Vec<RemainingAccess>, LedgerError> {
        let remaining = Box::pin(self.remaining_after_cut(principal, attached)).await;
        if !remaining.is_empty() {
            self.record_incomplete(principal, &remaining, actor, now)
                .await?;
            let (kind, audience, headline, next_step) = crate::announce::incomplete(&remaining);
            for notice in notices.iter_mut().filter(|n| n.kind == NoticeKind::CutOff) {
                notice.kind = kind;
                notice.audience = audience;
                notice.headline.clone_from(&headline);
                notice.next_step.clone_from(&next_step);
            }
        }
        Ok(remaining)
    }
}

/// The state a confirmation writes, and its commit (conditional on the intent's version).
fn confirmation(
    holding: &PrincipalState,
    intent: &Intent,
    done: &Done,
) -> (PrincipalState, Commit) {
    let mut state = (*intent.then).clone();
    match &intent.step {
        PlannedStep::Take(_) => done.record_in(&mut state),
        // The deny that was not in force is gone with the rest.
        PlannedStep::GiveBack(given) if given.deny_policy_arn.is_some() => {
            state.not_enforceable = None;
        }
        PlannedStep::GiveBack(_) => {}
    }
    state.version = holding.version + 1;
    state.pending = None;
    let before = PrincipalState {
        pending: None,
        version: holding.version.saturating_sub(1),
        ..holding.clone()
    };
    let subject = Subject::Principal(holding.principal.clone());
    let commit = Commit {
        claims: intent.claims.clone(),
        state: Some((state.clone(), Some(holding.version))),
        events: intent
            .events
            .iter()
            .map(|event| {
                let mut event = event.clone();
                record_views(&mut event, Some(&before), &state);
                (subject.clone(), event)
            })
            .collect(),
        ..Commit::default()
    };
    (state, commit)
}

/// Principals per batched transaction: a confirmation is its state and an event or two,
/// well within DynamoDB's 100 items.
pub const BATCH: usize = 25;

fn chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut chunks = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(BATCH).collect());
    }
    chunks
}

/// A step the batch can carry: one whose every target is on record already.
fn batchable(step: &IamStep) -> Option<PlannedStep> {
    match step {
        IamStep::GiveBack(taken) if !taken.is_empty() => Some(PlannedStep::GiveBack(taken.clone())),
        IamStep::TakeAgain(taken) if !taken.is_empty() => Some(PlannedStep::Take(taken.clone())),
        _ => None,
    }
}

fn conflict<R>(e: CommitError) -> Result<Written<R>, EngineError> {
    match e {
        CommitError::Conflict => Ok(Written::Conflict),
        CommitError::Claimed => Ok(Written::Claimed),
        CommitError::OwnerTaken => Ok(Written::OwnerTaken),
        CommitError::Ledger(e) => Err(e.into()),
    }
}

fn step_taken(step: &PlannedStep) -> &Taken {
    match step {
        PlannedStep::Take(t) | PlannedStep::GiveBack(t) => t,
    }
}

fn describe(step: &IamStep) -> String {
    match step {
        IamStep::Nothing => "change nothing".to_owned(),
        IamStep::Cut(scope) => format!("cut access ({scope:?})"),
        IamStep::GiveBack(taken) => format!("give back {taken:?}"),
        IamStep::TakeAgain(taken) => format!("take again {taken:?}"),
    }
}

/// The audit says what IAM did.
fn record_step(audit: &mut AuditEvent, step: Option<&PlannedStep>) {
    let Value::Object(detail) = &mut audit.detail else {
        return;
    };
    let none = Taken::default();
    let (taken, given_back) = match step {
        Some(PlannedStep::Take(t)) => (t, &none),
        Some(PlannedStep::GiveBack(t)) => (&none, t),
        None => (&none, &none),
    };
    detail.insert(
        "detached_policy_arns".into(),
        json!(taken.detached_policy_arns),
    );
    detail.insert("added_deny_policy_arn".into(), json!(taken.deny_policy_arn));
    detail.insert(
        "reattached_policy_arns".into(),
        json!(given_back.detached_policy_arns),
    );
    detail.insert(
        "removed_deny_policy_arn".into(),
        json!(given_back.deny_policy_arn),
    );
}

/// An [`AuditEvent::state_change`] shows the state before the change and the state as
/// committed, as they stood at the event's time. A `before` already there is kept: an
/// intent written by an earlier version carries its views, and the holding state it left
/// is not exactly the state it replaced.
fn record_views(audit: &mut AuditEvent, before: Option<&PrincipalState>, after: &PrincipalState) {
    let at = audit.at;
    let Value::Object(detail) = &mut audit.detail else {
        return;
    };
    if detail.get("before").is_some_and(Value::is_null) {
        detail.insert("before".into(), json!(before.map(|s| s.view(at))));
    }
    if detail.contains_key("after") {
        detail.insert("after".into(), after.view(at));
    }
}

/// Waiting for a held intent: short at first (a writer's IAM calls take well under a
/// second), then up to half a second, with jitter.
fn pause(wait: u32) -> Duration {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 25);
    Duration::from_millis(50 + u64::from(wait.min(9)) * 50 + jitter)
}
