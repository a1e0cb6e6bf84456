//! Reading a cancelled DynamoDB transaction: one reason per item, in the order written.

use super::{CommitError, LedgerError};

/// What each item of a transaction is, to read DynamoDB's cancellation reasons by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ItemRole {
    Claim,
    State,
    Owner,
    Event,
}

/// How a cancelled transaction ended, from its cancellation reasons (one per item, in order).
#[derive(Debug)]
pub(super) enum Cancelled {
    /// Throttled or in conflict with another transaction on the same items: nothing was
    /// decided, so the same write is sent again.
    Retry,
    Failed(CommitError),
}

/// A cancellation reason that decided nothing: the same transaction is sent again.
pub(super) fn is_retried(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingError"
            | "TransactionConflict"
            | "ProvisionedThroughputExceeded"
            | "RequestLimitExceeded"
    )
}

/// Reads the cancellation reasons: a failed condition on a claim is a duplicate, on the
/// owner a taken budget, on the state a conflict; throttling and transaction conflicts are
/// retried; anything else is an error (never mistaken for a duplicate).
pub(super) fn read_cancellation(codes: &[Option<&str>], roles: &[ItemRole]) -> Cancelled {
    let failed = |role: ItemRole| {
        codes
            .iter()
            .zip(roles)
            .any(|(code, r)| *r == role && *code == Some("ConditionalCheckFailed"))
    };
    let retry = codes.iter().flatten().any(|c| is_retried(c));
    let other: Vec<&str> = codes
        .iter()
        .flatten()
        .copied()
        .filter(|c| !matches!(*c, "None" | "ConditionalCheckFailed"))
        .collect();
    if failed(ItemRole::Claim) {
        Cancelled::Failed(CommitError::Claimed)
    } else if failed(ItemRole::Owner) {
        Cancelled::Failed(CommitError::OwnerTaken)
    } else if failed(ItemRole::State) {
        Cancelled::Failed(CommitError::Conflict)
    } else if retry {
        Cancelled::Retry
    } else {
        Cancelled::Failed(CommitError::Ledger(LedgerError::Dynamo {
            operation: "TransactWriteItems",
            message: format!("transaction cancelled: {other:?} (reasons {codes:?})"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [ItemRole; 4] = [
        ItemRole::Claim,
        ItemRole::State,
        ItemRole::Owner,
        ItemRole::Event,
    ];

    fn read(codes: [&str; 4]) -> Cancelled {
        let codes: Vec<Option<&str>> = codes.iter().map(|c| Some(*c)).collect();
        read_cancellation(&codes, &ROLES)
    }

    #[test]
    fn each_reason_means_what_it_says() {
        let claimed = read([
            "ConditionalCheckFailed",
            "ConditionalCheckFailed",
            "None",
            "None",
        ]);
        assert!(matches!(claimed, Cancelled::Failed(CommitError::Claimed)));
        let owner = read(["None", "None", "ConditionalCheckFailed", "None"]);
        assert!(matches!(owner, Cancelled::Failed(CommitError::OwnerTaken)));
        let moved = read(["None", "ConditionalCheckFailed", "None", "None"]);
        assert!(matches!(moved, Cancelled::Failed(CommitError::Conflict)));
        assert!(matches!(
            read(["None", "ThrottlingError", "None", "None"]),
            Cancelled::Retry
        ));
        assert!(matches!(
            read(["TransactionConflict", "None", "None", "None"]),
            Cancelled::Retry
        ));
        let other = read(["None", "ValidationError", "None", "None"]);
        assert!(matches!(other, Cancelled::Failed(CommitError::Ledger(_))));
    }
}
