//! Configuration: read from the environment once, at cold start, into one typed struct.
//! A bad value stops the start with a message that names the variable and the fix.

use std::collections::HashSet;

use crate::decide::Ladder;
use crate::money::Usd;
use crate::principal::PrincipalArn;

/// `enforce` cuts access; `dry-run` records and notifies what it would do and changes no IAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry-run",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub table: String,
    /// The only policies seatcap ever detaches or attaches.
    pub managed_policy_arns: Vec<String>,
    /// The managed policies that grant premium models, taken first by a `downgrade` rung.
    pub premium_policy_arns: Vec<String>,
    pub notify_topic_arn: String,
    pub slack_webhook: Option<SlackWebhook>,
    pub mode: Mode,
    pub protected_principals: HashSet<PrincipalArn>,
    pub ladder: Ladder,
    /// Who people should ask for a higher cap, shown in every message.
    pub finance_contact: String,
    /// Admin requests above this cap or override are refused as likely typos.
    pub max_amount_usd: Usd,
    /// How long idempotency claims are kept: longer than the longest budget period.
    pub claim_ttl_days: u32,
    /// Set when seatcap keeps each principal's AWS Budget in step with its cap
    /// (`SEATCAP_ALERT_TOPIC_ARN`); without it the admin changes the ledger only.
    pub budget_sync: Option<BudgetSync>,
    /// The cost-allocation tag whose value names a principal's spend: seatcap's budgets
    /// filter on it, and reconcile reports such budgets that no principal owns.
    pub cost_tag_key: String,
    /// How access is cut for IAM users, roles and groups (a person on a shared role is
    /// always cut by a per-person deny on the role).
    pub enforcement: Enforcement,
    /// How many seatcap deny policies one shared role may carry (shards of its deny list).
    pub deny_shards_per_role: usize,
    /// Roles of the account's own whose trust policy makes each session's name its person's
    /// (`SEATCAP_SESSION_NAMED_ROLES`): only on these, and on IAM Identity Center's roles,
    /// may a person on a shared role have a cap of their own.
    pub session_named_roles: HashSet<String>,
    /// The CloudWatch Logs group Bedrock's invocation logs go to and metering subscribes
    /// to (`SEATCAP_INVOCATION_LOG_GROUP`): what `doctor` checks Bedrock logs to.
    pub invocation_log_group: Option<String>,
    /// How budget-alert checks that a delivery is SNS's (`SEATCAP_SNS_SIGNATURE`,
    /// `SEATCAP_SNS_CERT_PEM`): by default, against the certificate SNS names.
    pub sns_signature: crate::sns_signature::Verification,
    /// Who may change caps through the admin's Function URL (`SEATCAP_FINANCE_PRINCIPALS`:
    /// ARNs, `*` for any run of characters). Empty: whoever the URL's IAM authorization
    /// lets in.
    pub finance_principals: Vec<String>,
    /// Overrides above this (and exemptions) wait for a second finance principal's approval
    /// (`SEATCAP_APPROVAL_OVER_USD`); unset, every grant takes effect at once.
    pub approval_over_usd: Option<Usd>,
    /// Whether a direct `lambda invoke` of the admin is served, its actor recorded as
    /// claimed (`SEATCAP_DIRECT_INVOKE=claimed`, the default), or refused (`off`).
    pub direct_invoke: bool,
}

/// `SEATCAP_ENFORCEMENT`: how a principal's Bedrock access is cut at the cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Detach the managed Bedrock policies; restore attaches exactly those again.
    Detach,
    /// Attach seatcap's explicit-deny policy, which also closes access granted elsewhere
    /// (groups, broad admin policies); restore detaches exactly that policy.
    Deny,
}

/// How `set_cap` creates and updates AWS Budgets.
#[derive(Clone, Debug)]
pub struct BudgetSync {
    /// The SNS topic every budget notifies: the one budget-alert listens on.
    pub alert_topic_arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set; {1}")]
    Missing(&'static str, &'static str),
    #[error("{name}=`{value}`: {problem}")]
    Invalid {
        name: &'static str,
        value: String,
        problem: String,
    },
}

pub const TABLE: &str = "SEATCAP_TABLE";
pub const PREMIUM_POLICY_ARNS: &str = "SEATCAP_PREMIUM_POLICY_ARNS";
pub const ENFORCEMENT: &str = "SEATCAP_ENFORCEMENT";
pub const DENY_SHARDS_PER_ROLE: &str = "SEATCAP_DENY_SHARDS_PER_ROLE";
pub const MANAGED_POLICY_ARNS: &str = "SEATCAP_MANAGED_POLICY_ARNS";
pub const NOTIFY_TOPIC_ARN: &str = "SEATCAP_NOTIFY_TOPIC_ARN";
pub const SLACK_WEBHOOK_URL: &str = "SEATCAP_SLACK_WEBHOOK_URL";
pub const SLACK_WEBHOOK_SECRET: &str = "SEATCAP_SLACK_WEBHOOK_SECRET";
pub const MODE: &str = "SEATCAP_MODE";
pub const PROTECTED_PRINCIPALS: &str = "SEATCAP_PROTECTED_PRINCIPALS";
pub const SESSION_NAMED_ROLES: &str = "SEATCAP_SESSION_NAMED_ROLES";
pub const INVOCATION_LOG_GROUP: &str = "SEATCAP_INVOCATION_LOG_GROUP";
pub const LADDER: &str = "SEATCAP_LADDER";
pub const FINANCE_CONTACT: &str = "SEATCAP_FINANCE_CONTACT";
pub const MAX_AMOUNT_USD: &str = "SEATCAP_MAX_AMOUNT_USD";
pub const CLAIM_TTL_DAYS: &str = "SEATCAP_CLAIM_TTL_DAYS";
pub const ALERT_TOPIC_ARN: &str = "SEATCAP_ALERT_TOPIC_ARN";
pub const COST_TAG_KEY: &str = "SEATCAP_COST_TAG_KEY";
pub const SNS_SIGNATURE: &str = "SEATCAP_SNS_SIGNATURE";
pub const SNS_CERT_PEM: &str = "SEATCAP_SNS_CERT_PEM";
pub const FINANCE_PRINCIPALS: &str = "SEATCAP_FINANCE_PRINCIPALS";
pub const DIRECT_INVOKE: &str = "SEATCAP_DIRECT_INVOKE";
pub const APPROVAL_OVER_USD: &str = "SEATCAP_APPROVAL_OVER_USD";

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// `lookup` returns a variable's value; an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let invalid = |name, value: &str, problem: String| ConfigError::Invalid {
            name,
            value: value.to_owned(),
            problem,
        };

        let table = get(TABLE).ok_or(ConfigError::Missing(
            TABLE,
            "set it to the ledger's DynamoDB table name",
        ))?;

        let policies_text = get(MANAGED_POLICY_ARNS).ok_or(ConfigError::Missing(
            MANAGED_POLICY_ARNS,
            "set it to the comma-separated ARNs of the Bedrock policies seatcap may detach",
        ))?;
        let managed_policy_arns: Vec<String> = split_list(&policies_text);
        if let Some(bad) = managed_policy_arns.iter().find(|arn| !is_policy_arn(arn)) {
            return Err(invalid(
                MANAGED_POLICY_ARNS,
                &policies_text,
                format!(
                    "`{bad}` is not a managed policy ARN (arn:aws:iam::<account>:policy/<name>)"
                ),
            ));
        }

        let notify_topic_arn = get(NOTIFY_TOPIC_ARN).ok_or(ConfigError::Missing(
            NOTIFY_TOPIC_ARN,
            "set it to the SNS topic that carries email notifications",
        ))?;
        if !notify_topic_arn.starts_with("arn:")
            || notify_topic_arn.split(':').nth(2) != Some("sns")
        {
            return Err(invalid(
                NOTIFY_TOPIC_ARN,
                &notify_topic_arn,
                "not an SNS topic ARN".into(),
            ));
        }

        let slack_webhook = match (get(SLACK_WEBHOOK_URL), get(SLACK_WEBHOOK_SECRET)) {
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(invalid(
                    SLACK_WEBHOOK_SECRET,
                    "<set>",
                    format!("set {SLACK_WEBHOOK_URL} or {SLACK_WEBHOOK_SECRET}, not both"),
                ));
            }
            // Never echo the URL: it is a credential.
            (Some(url), None) => Some(SlackWebhook::Url(
                check_webhook_url(&url)
                    .map(|()| url)
                    .map_err(|problem| invalid(SLACK_WEBHOOK_URL, "<redacted>", problem))?,
            )),
            (None, Some(arn)) => Some(
                SlackWebhook::from_arn(&arn)
                    .ok_or_else(|| invalid(
                        SLACK_WEBHOOK_SECRET,
                        &arn,
                        "expected a Secrets Manager secret ARN (arn:aws:secretsmanager:...:secret:...) \
                         or an SSM parameter ARN (arn:aws:ssm:...:parameter/...)"
                            .into(),
                    ))?,
            ),
        };

        let mode = match get(MODE).as_deref() {
            None | Some("enforce") => Mode::Enforce,
            Some("dry-run") => Mode::DryRun,
            Some(other) => {
                return Err(invalid(
                    MODE,
                    other,
                    "expected `enforce` or `dry-run`".into(),
                ));
            }
        };

        let protected_principals = match get(PROTECTED_PRINCIPALS) {
            None => HashSet::new(),
            Some(text) => split_list(&text)
                .iter()
                .map(|arn| arn.parse::<PrincipalArn>())
                .collect::<Result<_, _>>()
                .map_err(|e| invalid(PROTECTED_PRINCIPALS, &text, e.to_string()))?,
        };

        let invocation_log_group = get(INVOCATION_LOG_GROUP).filter(|g| !g.trim().is_empty());
        let session_named_roles: HashSet<String> = match get(SESSION_NAMED_ROLES) {
            None => HashSet::new(),
            Some(text) => {
                let roles = split_list(&text);
                let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
                if let Some(bad) = roles
                    .iter()
                    .find(|r| r.is_empty() || r.len() > 64 || !r.chars().all(allowed))
                {
                    return Err(invalid(
                        SESSION_NAMED_ROLES,
                        &text,
                        format!(
                            "`{bad}` is not an IAM role name (role names, comma-separated, no paths)"
                        ),
                    ));
                }
                roles.into_iter().collect()
            }
        };

        let ladder = match get(LADDER) {
            None => Ladder::default(),
            Some(text) => text
                .parse()
                .map_err(|e: crate::decide::LadderError| invalid(LADDER, &text, e.to_string()))?,
        };

        let finance_contact =
            get(FINANCE_CONTACT).unwrap_or_else(|| "your finance team".to_owned());

        let max_amount_usd = match get(MAX_AMOUNT_USD) {
            None => Usd::from_cents(100_000_00),
            Some(text) => Usd::parse_request_amount(&text, Usd::from_cents(i64::MAX))
                .map_err(|e| invalid(MAX_AMOUNT_USD, &text, e.to_string()))?,
        };

        let claim_ttl_days = match get(CLAIM_TTL_DAYS) {
            None => 400,
            Some(text) => text.parse().ok().filter(|d| *d >= 2).ok_or_else(|| {
                invalid(
                    CLAIM_TTL_DAYS,
                    &text,
                    "expected a whole number of days, at least 2".into(),
                )
            })?,
        };

        let budget_sync = match get(ALERT_TOPIC_ARN) {
            None => None,
            Some(arn) if arn.starts_with("arn:") && arn.split(':').nth(2) == Some("sns") => {
                Some(BudgetSync {
                    alert_topic_arn: arn,
                })
            }
            Some(other) => {
                return Err(invalid(
                    ALERT_TOPIC_ARN,
                    &other,
                    "not an SNS topic ARN".into(),
                ));
            }
        };

        let cost_tag_key = get(COST_TAG_KEY).unwrap_or_else(|| "seatcap-principal".to_owned());

        let premium_policy_arns = get(PREMIUM_POLICY_ARNS)
            .map(|text| split_list(&text))
            .unwrap_or_default();
        if let Some(stray) = premium_policy_arns
            .iter()
            .find(|p| !managed_policy_arns.contains(p))
        {
            return Err(invalid(
                PREMIUM_POLICY_ARNS,
                stray,
                format!("not one of {MANAGED_POLICY_ARNS}: seatcap touches no other policy"),
            ));
        }
        if ladder.downgrades() && premium_policy_arns.is_empty() {
            return Err(invalid(
                LADDER,
                &ladder.to_string(),
                format!("a downgrade rung needs {PREMIUM_POLICY_ARNS}: the policies it takes"),
            ));
        }

        let enforcement = match get(ENFORCEMENT).as_deref() {
            None | Some("detach") => Enforcement::Detach,
            Some("deny") => Enforcement::Deny,
            Some(other) => {
                return Err(invalid(
                    ENFORCEMENT,
                    other,
                    "expected `detach` or `deny`".into(),
                ));
            }
        };

        // The role keeps at least one managed policy of its own (its permission set's).
        let max_shards = crate::deny::MAX_ATTACHED_TO_ROLE - 1;
        let deny_shards_per_role = match get(DENY_SHARDS_PER_ROLE) {
            None => crate::deny::DEFAULT_SHARDS_PER_ROLE,
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=max_shards).contains(n))
                .ok_or_else(|| {
                    invalid(
                        DENY_SHARDS_PER_ROLE,
                        &text,
                        format!(
                            "expected 1 to {max_shards}: IAM attaches at most {} managed \
                             policies to a role (10 without a quota raise)",
                            crate::deny::MAX_ATTACHED_TO_ROLE
                        ),
                    )
                })?,
        };

        use crate::sns_signature::Verification;
        let sns_signature = match (get(SNS_SIGNATURE).as_deref(), get(SNS_CERT_PEM)) {
            (Some("off"), _) => Verification::Off,
            (None | Some("on"), Some(pem)) => Verification::pinned(&pem)
                .map_err(|problem| invalid(SNS_CERT_PEM, "(PEM text)", problem))?,
            (None | Some("on"), None) => Verification::Fetch,
            (Some(other), _) => {
                return Err(invalid(
                    SNS_SIGNATURE,
                    other,
                    "expected `on` (the default) or `off` (local runs only)".into(),
                ));
            }
        };

        let finance_principals = get(FINANCE_PRINCIPALS)
            .map(|text| split_list(&text))
            .unwrap_or_default();
        if let Some(bad) = finance_principals
            .iter()
            .find(|p| !(p.starts_with("arn:") && p.split(':').count() >= 6))
        {
            return Err(invalid(
                FINANCE_PRINCIPALS,
                bad,
                "expected comma-separated ARNs, `*` for any run of characters (e.g. arn:aws:sts::123456789012:assumed-role/Finance/*)".into(),
            ));
        }
        let direct_invoke = match get(DIRECT_INVOKE).as_deref() {
            None | Some("claimed") => true,
            Some("off") => false,
            Some(other) => {
                return Err(invalid(
                    DIRECT_INVOKE,
                    other,
                    "expected `claimed` (served, the actor recorded as claimed) or `off`".into(),
                ));
            }
        };

        let approval_over_usd = match get(APPROVAL_OVER_USD) {
            None => None,
            Some(text) => Some(
                Usd::parse_request_amount(&text, Usd::from_cents(i64::MAX))
                    .map_err(|e| invalid(APPROVAL_OVER_USD, &text, e.to_string()))?,
            ),
        };

        Ok(Config {
            approval_over_usd,
            finance_principals,
            direct_invoke,
            sns_signature,
            premium_policy_arns,
            cost_tag_key,
            enforcement,
            deny_shards_per_role,
            session_named_roles,
            invocation_log_group,
            table,
            managed_policy_arns,
            notify_topic_arn,
            slack_webhook,
            mode,
            protected_principals,
            ladder,
            finance_contact,
            max_amount_usd,
            claim_ttl_days,
            budget_sync,
        })
    }

    pub fn is_managed_policy(&self, arn: &str) -> bool {
        self.managed_policy_arns.iter().any(|m| m == arn)
    }
}

/// Where the Slack webhook URL comes from. Its `Debug` never shows the URL.
#[derive(Clone, PartialEq, Eq)]
pub enum SlackWebhook {
    /// `SEATCAP_SLACK_WEBHOOK_URL`: the URL itself (local runs).
    Url(String),
    /// `SEATCAP_SLACK_WEBHOOK_SECRET` naming a Secrets Manager secret.
    SecretsManager(String),
    /// `SEATCAP_SLACK_WEBHOOK_SECRET` naming an SSM parameter (a SecureString).
    SsmParameter(String),
}

impl SlackWebhook {
    fn from_arn(arn: &str) -> Option<SlackWebhook> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _, "secretsmanager", region, account, resource]
                if !region.is_empty() && !account.is_empty() && resource.starts_with("secret:") =>
            {
                Some(SlackWebhook::SecretsManager(arn.to_owned()))
            }
            ["arn", _, "ssm", region, account, resource]
                if !region.is_empty()
                    && !account.is_empty()
                    && resource.starts_with("parameter/") =>
            {
                Some(SlackWebhook::SsmParameter(arn.to_owned()))
            }
            _ => None,
        }
    }
}

impl std::fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlackWebhook::Url(_) => f.write_str("Url(<redacted>)"),
            SlackWebhook::SecretsManager(arn) => write!(f, "SecretsManager({arn})"),
            SlackWebhook::SsmParameter(arn) => write!(f, "SsmParameter({arn})"),
        }
    }
}

/// Whether `url` can be a webhook; the problem, never the URL, if not.
pub fn check_webhook_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err("not an http(s) URL".into())
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_policy_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "iam", "", account, resource]
        if (*account == "aws" || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())))
            && resource.strip_prefix("policy/").is_some_and(|name| !name.is_empty()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            (TABLE, "seatcap-ledger"),
            (
                MANAGED_POLICY_ARNS,
                "arn:aws:iam::123456789012:policy/bedrock-invoke",
            ),
            (
                NOTIFY_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:seatcap-notify",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in vars {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn minimal_environment_gets_sensible_defaults() {
        let config = config(&[]).unwrap();
        assert_eq!(config.mode, Mode::Enforce);
        assert_eq!(config.ladder, Ladder::default());
        assert!(config.slack_webhook.is_none());
        assert!(config.protected_principals.is_empty());
        assert!(config.is_managed_policy("arn:aws:iam::123456789012:policy/bedrock-invoke"));
        assert!(!config.is_managed_policy("arn:aws:iam::aws:policy/AdministratorAccess"));
    }

    #[test]
    fn lists_are_comma_separated_and_trimmed() {
        let config = config(&[
            (MANAGED_POLICY_ARNS, " arn:aws:iam::123456789012:policy/a , arn:aws:iam::aws:policy/AmazonBedrockFullAccess,"),
            (PROTECTED_PRINCIPALS, "arn:aws:iam::123456789012:role/break-glass"),
            (MODE, "dry-run"),
        ])
        .unwrap();
        assert_eq!(config.managed_policy_arns.len(), 2);
        assert_eq!(config.protected_principals.len(), 1);
        assert_eq!(config.mode, Mode::DryRun);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let missing = Config::from_lookup(|_| None).unwrap_err();
        assert!(
            missing.to_string().starts_with("SEATCAP_TABLE is not set"),
            "{missing}"
        );

        for (name, value) in [
            (MODE, "enforce-ish"),
            (MANAGED_POLICY_ARNS, "arn:aws:iam::123456789012:user/alice"),
            (NOTIFY_TOPIC_ARN, "seatcap-notify"),
            (PROTECTED_PRINCIPALS, "alice"),
            (LADDER, "100=person"),
            (MAX_AMOUNT_USD, "lots"),
            (CLAIM_TTL_DAYS, "0"),
            (ALERT_TOPIC_ARN, "budget-alerts"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}: {err}");
        }
    }

    #[test]
    fn the_webhook_comes_from_the_environment_or_a_secret_never_both() {
        let secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:seatcap/slack-AbCdEf";
        let parameter = "arn:aws:ssm:eu-west-1:123456789012:parameter/seatcap/slack";
        assert_eq!(
            config(&[(SLACK_WEBHOOK_SECRET, secret)])
                .unwrap()
                .slack_webhook,
            Some(SlackWebhook::SecretsManager(secret.into()))
        );
        assert_eq!(
            config(&[(SLACK_WEBHOOK_SECRET, parameter)])
                .unwrap()
                .slack_webhook,
            Some(SlackWebhook::SsmParameter(parameter.into()))
        );
        for bad in [
            "seatcap/slack",
            "arn:aws:s3:::bucket/key",
            "arn:aws:ssm:eu-west-1:1:document/x",
        ] {
            let err = config(&[(SLACK_WEBHOOK_SECRET, bad)]).unwrap_err();
            assert!(err.to_string().starts_with(SLACK_WEBHOOK_SECRET), "{err}");
        }
        let both = config(&[
            (SLACK_WEBHOOK_SECRET, secret),
            (SLACK_WEBHOOK_URL, "https://hooks.slack.com/services/SECRET"),
        ])
        .unwrap_err();
        assert!(!both.to_string().contains("SECRET/"), "{both}");
        let url =
            config(&[(SLACK_WEBHOOK_URL, "https://hooks.slack.com/services/SECRET")]).unwrap();
        assert!(
            !format!("{url:?}").contains("hooks.slack.com"),
            "Debug shows no URL"
        );
    }

    #[test]
    fn a_bad_slack_url_is_reported_without_echoing_it() {
        let err = config(&[(SLACK_WEBHOOK_URL, "hooks.slack.com/services/SECRET")]).unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}
