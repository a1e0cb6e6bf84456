//! The application: configuration plus one client per AWS service, built once per cold start
//! and shared by every invocation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use chrono::{DateTime, Utc};

use crate::budgets::Budgets;
use crate::config::{Config, ConfigError};
use crate::iam::Iam;
use crate::ledger::Ledger;
use crate::notify::Notifier;
use crate::web::WebClient;

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
    /// The SDK's configuration, for clients only one function needs (metering's S3 reads):
    /// built where they are used, so the other functions' binaries do not carry them.
    pub sdk: SdkConfig,
    /// What a metering process remembers between batches.
    pub metering: Arc<crate::flows::metering::MeteringMemory>,
    /// Who is asking, for an admin request: verified through the Function URL, or claimed
    /// by a direct invoke. `None` for seatcap's own functions.
    pub caller: Option<crate::identity::Caller>,
    /// Checks alert deliveries are SNS's; keeps the certificates it fetched for the process.
    pub sns: Arc<crate::sns_signature::SnsSignatures>,
    pub clock: Clock,
    /// The current invocation's deadline, after which Lambda ends the process: how long
    /// this writer may hold an intent or a lease (see [`App::hold_until`]).
    pub deadline: Option<SystemTime>,
}

/// How long a writer with no deadline (a local run, a test) holds what it holds.
const DEFAULT_HOLD: Duration = Duration::from_secs(60);
/// Lambda's longest timeout: no invocation holds anything longer.
const MAX_HOLD: Duration = Duration::from_secs(15 * 60);
/// Clocks of different hosts differ a little.
const HOLD_MARGIN: Duration = Duration::from_secs(2);

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
        let web = WebClient::default();
        let notifier = Notifier::new(
            aws_sdk_sns::Client::new(sdk),
            config.notify_topic_arn.clone(),
            config.slack_webhook.clone(),
            sdk.clone(),
            web.clone(),
        );
        let budgets = Budgets::new(aws_sdk_budgets::Client::new(sdk));
        let sns = Arc::new(crate::sns_signature::SnsSignatures::new(
            config.sns_signature.clone(),
            config
                .budget_sync
                .as_ref()
                .map(|s| s.alert_topic_arn.clone()),
            web,
        ));
        App {
            caller: None,
            sns,
            config: Arc::new(config),
            ledger,
            iam,
            notifier,
            budgets,
            lambda: aws_sdk_lambda::Client::new(sdk),
            sdk: sdk.clone(),
            metering: Arc::default(),
            clock,
            deadline: None,
        }
    }

    /// This app for one invocation: what it holds ends with the invocation's deadline.
    pub fn for_invocation(&self, context: &lambda_runtime::Context) -> App {
        App {
            deadline: Some(context.deadline()),
            ..self.clone()
        }
    }

    /// Until when a write-ahead intent or a lease taken now is held: the end of this
    /// invocation (Lambda ends the process then, so no IAM call of its can follow), and a
    /// margin for clocks. Another writer completes the work only after that.
    pub fn hold_until(&self) -> DateTime<Utc> {
        let left = match self.deadline {
            Some(deadline) => deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .min(MAX_HOLD),
            None => DEFAULT_HOLD,
        };
        self.now() + chrono::Duration::from_std(left + HOLD_MARGIN).unwrap_or_default()
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
