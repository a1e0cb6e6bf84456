//! The application: configuration plus one client per AWS service, built once per cold start
//! and shared by every invocation.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use chrono::{DateTime, Utc};

use crate::budgets::Budgets;
use crate::config::{Config, ConfigError};
use crate::iam::Iam;
use crate::ledger::Ledger;
use crate::notify::Notifier;

/// Throttling, timeouts and 5xx are retried by every client with exponential backoff and
/// full jitter: the first retry within 200 ms, each wait up to twice the last, at most 8
/// attempts (about 25 s at worst). IAM publishes no rate limits, so patience is the policy.
fn retry_policy() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(200))
}

/// The source of "now". Injected so tests never sleep and scheduled runs can act on the
/// time of their event rather than the wall clock.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub ledger: Ledger,
    pub iam: Iam,
    pub notifier: Notifier,
    pub budgets: Budgets,
    /// Only for handing scheduled work over to a follow-up invocation.
    pub lambda: aws_sdk_lambda::Client,
    pub clock: Clock,
}

impl App {
    /// Reads the environment and builds the clients. Fails only on configuration: the SDK
    /// resolves credentials lazily, on the first call.
    pub async fn from_env() -> Result<App, ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_from_env().await;
        Ok(App::new(config, &sdk, system_clock()))
    }

    pub fn new(config: Config, sdk: &SdkConfig, clock: Clock) -> App {
        let sdk = &sdk.to_builder().retry_config(retry_policy()).build();
        let ledger = Ledger::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.table,
            config.claim_ttl_days,
        );
        let iam = Iam::new(aws_sdk_iam::Client::new(sdk));
        let notifier = Notifier::new(
            aws_sdk_sns::Client::new(sdk),
            config.notify_topic_arn.clone(),
            config.slack_webhook.clone(),
            sdk.clone(),
        );
        let budgets = Budgets::new(aws_sdk_budgets::Client::new(sdk));
        App {
            config: Arc::new(config),
            ledger,
            iam,
            notifier,
            budgets,
            lambda: aws_sdk_lambda::Client::new(sdk),
            clock,
        }
    }

    /// The cold start of every function: JSON logs, then configuration and clients. A bad
    /// configuration is logged with the variable to fix, and stops the start.
    pub async fn start() -> Result<App, ConfigError> {
        crate::telemetry::init();
        App::from_env()
            .await
            .inspect_err(|e| tracing::error!(error = %e, "configuration error; not starting"))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}
