//! Notifications: one [`Notice`] model, rendered for Slack (Block Kit) and for email (plain
//! text through the notification SNS topic, with attributes that subscriptions filter on).
//! Delivery failures are returned, never raised: enforcement has already happened and must
//! not be undone or delayed by a chat outage.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sns::Client as SnsClient;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::config::{SlackWebhook, check_webhook_url};
use crate::decide::Audience;
use crate::web::WebClient;

use seatcap_core::notice::truncate;
pub use seatcap_core::notice::{Notice, NoticeKind};

/// Where a notice goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The main (finance) Slack channel.
    Slack,
    /// The principal's team channel, from `teams` in the webhook secret.
    TeamSlack,
    /// The notification SNS topic (email subscribers, filtered on its attributes).
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Slack => "slack",
            Channel::TeamSlack => "team_slack",
            Channel::Email => "email",
        }
    }
}

/// Whether a failed delivery is worth trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The receiver refused the message itself (`invalid_payload`, `channel_not_found`, ...):
    /// sending it again cannot help.
    Never,
    /// Overloaded, down or unreachable: try again, not before `after` when the receiver said
    /// so (Slack's 429 `Retry-After`).
    Later { after: Option<Duration> },
}

/// A delivery that did not happen, for the audit. Never carries the webhook URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryFailure {
    pub channel: Channel,
    pub error: String,
    pub retry: Retry,
}

#[derive(Clone)]
pub struct Notifier {
    web: WebClient,
    slack: Option<SlackWebhook>,
    /// The webhook URLs, read from their secret on the first post of a cold start and kept.
    slack_routes: Arc<OnceCell<SlackRoutes>>,
    /// Credentials, region and endpoint for reading the webhook's secret.
    sdk: aws_config::SdkConfig,
    sns: SnsClient,
    topic_arn: String,
}

impl Notifier {
    pub fn new(
        sns: SnsClient,
        topic_arn: String,
        slack: Option<SlackWebhook>,
        sdk: aws_config::SdkConfig,
        web: WebClient,
    ) -> Self {
        Notifier {
            web,
            slack,
            slack_routes: Arc::default(),
            sdk,
            sns,
            topic_arn,
        }
    }

    /// The Slack webhooks, if Slack is configured. Read lazily, so a cold start makes no
    /// call it may not need, and once: a failed read is tried again on the next post. Errors
    /// name the secret, never its value.
    async fn slack_routes(&self) -> Result<Option<&SlackRoutes>, String> {
        let Some(source) = &self.slack else {
            return Ok(None);
        };
        let routes = self
            .slack_routes
            .get_or_try_init(|| async {
                let value = crate::secret::read(&self.sdk, self.web.get()?, source).await?;
                SlackRoutes::parse(&value).map_err(|problem| format!("{source:?}: {problem}"))
            })
            .await?;
        Ok(Some(routes))
    }

    /// Sends `notice` to every channel; returns the deliveries that failed.
    pub async fn send(&self, notice: &Notice) -> Vec<DeliveryFailure> {
        let (slack, team, email) = futures::join!(
            self.send_to(Channel::Slack, notice),
            self.send_to(Channel::TeamSlack, notice),
            self.send_to(Channel::Email, notice)
        );
        [slack, team, email]
            .into_iter()
            .filter_map(Result::err)
            .collect()
    }

    /// Sends `notice` to one channel (a retry from the outbox goes only where it failed).
    /// A channel the notice is not for (no team channel, say) is a success with no post.
    pub async fn send_to(&self, channel: Channel, notice: &Notice) -> Result<(), DeliveryFailure> {
        match channel {
            Channel::Slack | Channel::TeamSlack => self.post_slack(channel, notice).await,
            Channel::Email => self.publish_email(notice).await,
        }
    }

    async fn post_slack(&self, channel: Channel, notice: &Notice) -> Result<(), DeliveryFailure> {
        let failure = |error: String, retry: Retry| DeliveryFailure {
            channel,
            error,
            retry,
        };
        let later = Retry::Later { after: None };
        if channel == Channel::TeamSlack && notice.team.is_none() {
            return Ok(());
        }
        let Some(routes) = self.slack_routes().await.map_err(|e| failure(e, later))? else {
            return Ok(());
        };
        let Some(url) = routes.url_for(channel, notice) else {
            return Ok(());
        };
        let response = self
            .web
            .get()
            .map_err(|e| failure(e, later))?
            .post(url)
            .json(&notice.to_slack())
            .send()
            .await
            .map_err(|e| failure(e.without_url().to_string(), later))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.text().await.unwrap_or_default();
        if status.is_success() && body.trim() == "ok" {
            return Ok(());
        }
        let retry = if status.as_u16() == 429 {
            Retry::Later { after: retry_after }
        } else if status.is_server_error() {
            later
        } else {
            Retry::Never
        };
        Err(failure(
            format!("HTTP {}: {}", status.as_u16(), truncate(body.trim(), 200)),
            retry,
        ))
    }

    /// [`Self::send`] for many notices: Slack one post each (a webhook takes one message),
    /// email in `PublishBatch`es of ten. The failures of each notice, in order.
    pub async fn send_all(&self, notices: &[Notice]) -> Vec<Vec<DeliveryFailure>> {
        let mut failures: Vec<Vec<DeliveryFailure>> = Vec::with_capacity(notices.len());
        for notice in notices {
            let (slack, team) = futures::join!(
                self.send_to(Channel::Slack, notice),
                self.send_to(Channel::TeamSlack, notice)
            );
            failures.push([slack, team].into_iter().filter_map(Result::err).collect());
        }
        for (chunk, start) in notices.chunks(10).zip((0..).step_by(10)) {
            for (i, failure) in self.publish_batch(chunk).await {
                failures[start + i].push(failure);
            }
        }
        failures
    }

    /// One `PublishBatch` of at most ten notices; the failed entries by position.
    async fn publish_batch(&self, notices: &[Notice]) -> Vec<(usize, DeliveryFailure)> {
        let failed = |error: String| DeliveryFailure {
            channel: Channel::Email,
            error,
            retry: Retry::Later { after: None },
        };
        let entries: Vec<PublishBatchRequestEntry> = notices
            .iter()
            .enumerate()
            .filter_map(|(i, notice)| {
                let mut entry = PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .subject(notice.subject())
                    .message(notice.to_text());
                for (name, value) in email_attributes(notice) {
                    entry = entry.message_attributes(name, value);
                }
                entry.build().ok()
            })
            .collect();
        let sent = self
            .sns
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await;
        match sent {
            Ok(out) => out
                .failed()
                .iter()
                .filter_map(|f| {
                    let i: usize = f.id().parse().ok()?;
                    let why = format!("{}: {}", f.code(), f.message().unwrap_or_default());
                    Some((i, failed(why)))
                })
                .collect(),
            Err(e) => {
                let error = DisplayErrorContext(&e).to_string();
                (0..notices.len())
                    .map(|i| (i, failed(error.clone())))
                    .collect()
            }
        }
    }

    async fn publish_email(&self, notice: &Notice) -> Result<(), DeliveryFailure> {
        let mut publish = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(notice.subject())
            .message(notice.to_text());
        for (name, value) in email_attributes(notice) {
            publish = publish.message_attributes(name, value);
        }
        publish.send().await.map(drop).map_err(|e| DeliveryFailure {
            channel: Channel::Email,
            error: DisplayErrorContext(&e).to_string(),
            // The SDK has already retried what its retry policy deems transient; what is
            // left may still pass later (a throttled or unreachable SNS).
            retry: Retry::Later { after: None },
        })
    }
}

/// The attributes every email notice carries: what subscriptions filter on.
fn email_attributes(notice: &Notice) -> [(&'static str, MessageAttributeValue); 4] {
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .expect("data_type is set")
    };
    let audience = match notice.audience {
        Audience::Person => "person",
        Audience::PersonAndFinance => "person_and_finance",
        Audience::Security => "security",
    };
    [
        ("principal", attribute(notice.principal.as_str())),
        ("kind", attribute(notice.kind.as_str())),
        ("severity", attribute(notice.kind.severity())),
        ("audience", attribute(audience)),
    ]
}

impl Notifier {
    /// Subscribes `email` to the notification topic with `filter_policy` (on the message
    /// attributes every notice carries). SNS asks the address to confirm; until then the
    /// answer is `pending confirmation`.
    pub async fn subscribe_email(
        &self,
        email: &str,
        filter_policy: &serde_json::Value,
    ) -> Result<String, String> {
        self.sns
            .subscribe()
            .topic_arn(&self.topic_arn)
            .protocol("email")
            .endpoint(email)
            .attributes("FilterPolicy", filter_policy.to_string())
            .return_subscription_arn(true)
            .send()
            .await
            .map(|out| {
                out.subscription_arn
                    .unwrap_or_else(|| "pending confirmation".into())
            })
            .map_err(|e| DisplayErrorContext(&e).to_string())
    }
}

/// Where Slack messages go: the main (finance) channel, and optional team channels.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackRoutes {
    main: String,
    teams: BTreeMap<String, String>,
}

impl SlackRoutes {
    /// A secret's value: the URL itself, or JSON `{"url": "...", "teams": {"atlas": "..."}}`
    /// (`url` is also the shape the Secrets Manager console suggests for key/value secrets).
    /// Problems name the part at fault, never a URL.
    pub fn parse(value: &str) -> Result<SlackRoutes, String> {
        #[derive(Deserialize)]
        struct Shape {
            url: String,
            #[serde(default)]
            teams: BTreeMap<String, String>,
        }
        let trimmed = value.trim();
        let shape = if trimmed.starts_with('{') {
            serde_json::from_str::<Shape>(trimmed).map_err(|e| {
                format!(
                    "expected {{\"url\": ..., \"teams\": {{...}}}} (line {}, column {})",
                    e.line(),
                    e.column()
                )
            })?
        } else {
            Shape {
                url: trimmed.to_owned(),
                teams: BTreeMap::new(),
            }
        };
        check_webhook_url(&shape.url)?;
        for (team, url) in &shape.teams {
            check_webhook_url(url).map_err(|problem| format!("team `{team}`: {problem}"))?;
        }
        Ok(SlackRoutes {
            main: shape.url,
            teams: shape.teams,
        })
    }

    /// The URL `channel` posts `notice` to, if it is for that channel at all. A team that
    /// has a channel hears its members' own messages there; the main channel hears the rest,
    /// and every message for finance or security, so nothing goes unheard.
    fn url_for(&self, channel: Channel, notice: &Notice) -> Option<&str> {
        let team_url = notice
            .team
            .as_ref()
            .and_then(|team| self.teams.get(team))
            .filter(|_| notice.audience != Audience::Security);
        match channel {
            Channel::TeamSlack => team_url.map(String::as_str),
            Channel::Slack if notice.audience == Audience::Person && team_url.is_some() => None,
            Channel::Slack => Some(&self.main),
            Channel::Email => None,
        }
    }
}

impl std::fmt::Debug for SlackRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackRoutes")
            .field("main", &"<redacted>")
            .field("teams", &self.teams.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Usd;

    fn notice(headline: &str) -> Notice {
        Notice {
            kind: NoticeKind::CutOff,
            audience: Audience::PersonAndFinance,
            principal: "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
            budget: "seatcap-alice".into(),
            spend: Some(Usd::from_cents(205_00)),
            cap: Some(Usd::from_cents(200_00)),
            period: Some("2026-11".into()),
            team: None,
            headline: headline.into(),
            next_step: "Ask your finance team to raise your cap.".into(),
        }
    }

    #[test]
    fn text_rendering_says_who_what_and_next() {
        let text = notice("Bedrock access cut off").to_text();
        assert!(
            text.contains("Who:    arn:aws:iam::123456789012:user/alice"),
            "{text}"
        );
        assert!(text.contains("Spend:  $205.00 of $200.00 (103%)"), "{text}");
        assert!(text.contains("Period: 2026-11"), "{text}");
        assert!(text.contains("Next: Ask your finance team"), "{text}");
    }

    #[test]
    fn slack_blocks_respect_slack_limits() {
        let long = "x".repeat(5000);
        let payload = notice(&long).to_slack();
        let blocks = payload["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert_eq!(
            blocks[0]["text"]["text"].as_str().unwrap().chars().count(),
            150
        );
        assert!(payload["text"].as_str().unwrap().chars().count() <= 3000);
    }

    #[test]
    fn finance_gets_the_exact_command_and_everyone_the_console_link() {
        let cut_off = notice("Bedrock access cut off");
        assert_eq!(
            cut_off.finance_command().as_deref(),
            Some(
                "seatcap override arn:aws:iam::123456789012:user/alice +<usd> --until 2026-12-01 \
                 --reason \"<why>\""
            )
        );
        let text = cut_off.to_text();
        assert!(text.contains("Finance: seatcap override"), "{text}");
        let slack = cut_off.to_slack().to_string();
        assert!(slack.contains("*Finance:* `seatcap override"), "{slack}");

        let mut restored = notice("Bedrock access restored");
        restored.kind = NoticeKind::Restored;
        assert_eq!(restored.finance_command(), None);

        let mut spaced = notice("x");
        spaced.budget = "Team Atlas - Bob".into();
        assert_eq!(
            spaced.console_link(),
            "https://console.aws.amazon.com/costmanagement/home#/budgets/details?name=Team%20Atlas%20-%20Bob"
        );
    }

    #[test]
    fn subjects_fit_sns() {
        assert!(notice(&"y".repeat(300)).subject().chars().count() <= 100);
    }

    #[test]
    fn slack_routes_come_from_a_url_or_json_with_teams() {
        let plain = SlackRoutes::parse(" https://hooks.slack.test/finance \n").unwrap();
        assert_eq!(plain.main, "https://hooks.slack.test/finance");
        assert!(plain.teams.is_empty());

        let json = r#"{"url": "https://hooks.slack.test/finance",
                       "teams": {"atlas": "https://hooks.slack.test/atlas"}}"#;
        let routes = SlackRoutes::parse(json).unwrap();
        assert_eq!(routes.teams["atlas"], "https://hooks.slack.test/atlas");

        let secret_url = "https://hooks.slack.test/T000/B000/verysecret";
        for bad in [
            format!(r#"{{"teams": {{"atlas": "{secret_url}"}}}}"#),
            format!(r#"{{"url": "{secret_url}", "teams": {{"atlas": "ftp://{secret_url}"}}}}"#),
            "not a url".to_owned(),
        ] {
            let problem = SlackRoutes::parse(&bad).unwrap_err();
            assert!(!problem.contains("verysecret"), "{problem}");
        }
        let problem = SlackRoutes::parse(r#"{"url": "https://a.test", "teams": {"atlas": "x"}}"#)
            .unwrap_err();
        assert!(problem.starts_with("team `atlas`"), "{problem}");
        assert!(!format!("{routes:?}").contains("hooks.slack.test"));
    }

    #[test]
    fn team_channels_hear_their_members_and_finance_hears_the_rest() {
        let routes = SlackRoutes::parse(
            r#"{"url": "https://main.test", "teams": {"atlas": "https://atlas.test"}}"#,
        )
        .unwrap();
        let mut n = notice("x");
        let to = |n: &Notice| {
            (
                routes.url_for(Channel::Slack, n),
                routes.url_for(Channel::TeamSlack, n),
            )
        };
        n.team = Some("atlas".into());
        n.audience = Audience::Person;
        assert_eq!(to(&n), (None, Some("https://atlas.test")));
        n.audience = Audience::PersonAndFinance;
        assert_eq!(
            to(&n),
            (Some("https://main.test"), Some("https://atlas.test"))
        );
        n.audience = Audience::Security;
        assert_eq!(to(&n), (Some("https://main.test"), None));
        n.audience = Audience::Person;
        n.team = Some("borealis".into());
        assert_eq!(to(&n), (Some("https://main.test"), None));
        n.team = None;
        assert_eq!(to(&n), (Some("https://main.test"), None));
    }
}
