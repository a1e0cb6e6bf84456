//! Logging: JSON lines through `tracing`, one object per event, with the Lambda request id
//! from the runtime's span. The level comes from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`.
//!
//! The filter is `tracing_subscriber`'s `Targets` (`info`, `seatcap=debug,warn`): a level
//! per target is all seatcap's logs need, and the regex engine behind `EnvFilter`'s span and
//! field directives was the largest thing in every binary that no call used.

use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init() {
    let spec = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_default();
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false);
    tracing_subscriber::registry()
        .with(json)
        .with(filter(&spec))
        .init();
}

/// The filter `spec` says; `info` for anything it cannot read. Lambda's `FATAL` is `error`.
fn filter(spec: &str) -> Targets {
    let spec = spec.trim().to_lowercase();
    let spec = if spec == "fatal" {
        "error".to_owned()
    } else {
        spec
    };
    let info = || Targets::new().with_default(tracing::Level::INFO);
    if spec.is_empty() {
        return info();
    }
    Targets::from_str(&spec).unwrap_or_else(|_| info())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn levels_from_rust_log_or_lambda_and_info_for_anything_else() {
        let enables =
            |spec: &str, target: &str, level: Level| filter(spec).would_enable(target, &level);
        assert!(enables("", "seatcap", Level::INFO));
        assert!(!enables("", "seatcap", Level::DEBUG));
        assert!(!enables("ERROR", "seatcap", Level::WARN));
        assert!(enables("FATAL", "seatcap", Level::ERROR));
        assert!(!enables("FATAL", "seatcap", Level::WARN));
        assert!(enables(
            "warn,seatcap=debug",
            "seatcap::flows",
            Level::DEBUG
        ));
        assert!(!enables(
            "warn,seatcap=debug",
            "aws_smithy_runtime",
            Level::INFO
        ));
        assert!(enables("seatcap=loudest", "seatcap", Level::INFO));
        assert!(!enables("seatcap=loudest", "seatcap", Level::DEBUG));
    }
}
