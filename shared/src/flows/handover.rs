//! Scheduled work that may outlast one invocation. A run checks its deadline between pages
//! of principals; when too little time is left, it hands the rest to a new asynchronous
//! invocation of the same function, with a cursor, instead of dying at the timeout. The
//! work is made of conditional writes, so a page done twice changes nothing twice.

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde::Serialize;

use crate::app::App;
use crate::ledger::LedgerError;
use crate::principal::PrincipalArn;
use crate::state::{PrincipalState, Status};

/// Time kept in hand to finish the page in progress and invoke the follow-up. A page is at
/// most [`PAGE_SIZE`] principals, [`CONCURRENCY`] at a time, each a few AWS calls.
const RESERVE: Duration = Duration::from_secs(60);

/// Principals per page of the status index: the unit of work between deadline checks.
const PAGE_SIZE: i32 = 100;

/// Principals read per Query: one DynamoDB response (up to 1 MB) holds this many states,
/// so one call serves ten pages.
pub const FETCH_SIZE: i32 = 1000;

/// Principals changed at once: IAM's rate limits are per account and unpublished.
pub const CONCURRENCY: usize = 8;

/// How a scheduled run paces itself: pages of the status index, and a deadline checked
/// between pages, after which it stops taking on work.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub page_size: i32,
    deadline: Option<Instant>,
}

impl Pace {
    /// No deadline: run to the end (local runs, tests).
    pub fn unlimited() -> Pace {
        Pace {
            page_size: PAGE_SIZE,
            deadline: None,
        }
    }

    /// The invocation's own deadline, less the reserve (a quarter of the time left, for a
    /// function given a short timeout).
    pub fn of(context: &lambda_runtime::Context) -> Pace {
        let left = context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        Pace {
            page_size: PAGE_SIZE,
            deadline: Some(Instant::now() + left - RESERVE.min(left / 4)),
        }
    }

    /// Pages of `page_size` and a deadline already passed: one page per run, so tests can
    /// cut a run short wherever they like.
    pub fn one_page_of(page_size: i32) -> Pace {
        Pace {
            page_size,
            deadline: Some(Instant::now()),
        }
    }

    pub fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|at| Instant::now() >= at)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not hand the rest of the work to a new invocation of {function}: {message}")]
pub struct HandoverError {
    pub function: String,
    pub message: String,
}

/// How a walk over one status of the index ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Walk {
    /// Every principal with the status was handed to the work.
    Done,
    /// The deadline passed with principals left: the next run resumes after `after`, the
    /// last principal done.
    Stopped { after: PrincipalArn },
}

impl App {
    /// Hands the principals with `status` after `after` (in the index's order) to `work`, a
    /// page of `pace.page_size` at a time, until all are done, or the deadline has passed
    /// after a page and some are left. Reads [`FETCH_SIZE`] per Query, so a stop can fall
    /// in the middle of a read: it resumes after the last principal done, not the last read.
    pub async fn walk_status<E: From<LedgerError>>(
        &self,
        status: Status,
        mut after: Option<PrincipalArn>,
        pace: Pace,
        mut work: impl AsyncFnMut(Vec<PrincipalState>) -> Result<(), E>,
    ) -> Result<Walk, E> {
        loop {
            let (read, last) = self
                .ledger
                .list_page(status, FETCH_SIZE, after.as_ref())
                .await?;
            let mut pages = read.into_iter().peekable();
            while pages.peek().is_some() {
                let page: Vec<PrincipalState> = pages
                    .by_ref()
                    .take(pace.page_size.max(1) as usize)
                    .collect();
                let done = page.last().map(|s| s.principal.clone());
                work(page).await?;
                let more = pages.peek().is_some() || last.is_some();
                if let Some(done) = done
                    && more
                    && pace.deadline_passed()
                {
                    return Ok(Walk::Stopped { after: done });
                }
            }
            match last {
                None => return Ok(Walk::Done),
                Some(last) => after = Some(last),
            }
        }
    }

    /// Invokes `function` (this function's ARN) asynchronously with `event`, the cursor of
    /// the work left. Lambda retries an asynchronous invoke that fails to run.
    pub async fn hand_over(
        &self,
        function: &str,
        event: &impl Serialize,
    ) -> Result<(), HandoverError> {
        let failure = |message: String| HandoverError {
            function: function.to_owned(),
            message,
        };
        let payload = serde_json::to_vec(event).map_err(|e| failure(e.to_string()))?;
        self.lambda
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map(drop)
            .map_err(|e| failure(DisplayErrorContext(&e).to_string()))
    }
}
