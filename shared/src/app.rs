//! The application: configuration plus one client per AWS service, built once per cold start
//! and shared by every invocation.

use std::sync::Arc;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};

use crate::budgets::Budgets;
use crate::config::{Config, ConfigError};
use crate::iam::Iam;
use crate::ledger::Ledger;
use crate::notify::Notifier;

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
        let ledger = Ledger::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.table,
            config.claim_ttl_days,
        );
        let iam = Iam::new(aws_sdk_iam::Client::new(sdk));
        let notifier = Notifier::new(
            aws_sdk_sns::Client::new(sdk),
            config.notify_topic_arn.clone(),
            config.slack_webhook_url.clone(),
        );
        let budgets = Budgets::new(aws_sdk_budgets::Client::new(sdk));
        App {
            config: Arc::new(config),
            ledger,
            iam,
            notifier,
            budgets,
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
