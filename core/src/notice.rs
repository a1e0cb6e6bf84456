//! The notice model: one [`Notice`] per thing people hear about, rendered for Slack (Block
//! Kit) and for email (plain text, and the attributes email subscriptions filter on).

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::decide::Audience;
use crate::money::Usd;
use crate::principal::PrincipalArn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Warning,
    Forecast,
    CutOff,
    WouldCutOff,
    ProtectedOverCap,
    Restored,
    /// Access given back behind seatcap's back, and taken away again.
    Drift,
    CapChanged,
    OverrideGranted,
    OverrideRevoked,
    OverrideExpired,
    /// The cap was reached but IAM refused to cut access: seatcap retries, people must look.
    EnforcementFailed,
    /// Access was cut as configured, but another policy still allows Bedrock.
    EnforcementIncomplete,
    /// The cap is reached and the person is on an IAM Identity Center role whose
    /// permission set does not reference seatcap's shard: the deny is written, not in force.
    NotEnforceable,
    /// Premium models taken at a downgrade rung; cheaper ones still work.
    Downgraded,
    /// The same in dry-run mode: nothing changed.
    WouldDowngrade,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Warning => "warning",
            NoticeKind::Forecast => "forecast",
            NoticeKind::CutOff => "cut_off",
            NoticeKind::WouldCutOff => "would_cut_off",
            NoticeKind::ProtectedOverCap => "protected_over_cap",
            NoticeKind::Restored => "restored",
            NoticeKind::Drift => "drift",
            NoticeKind::CapChanged => "cap_changed",
            NoticeKind::OverrideGranted => "override_granted",
            NoticeKind::OverrideRevoked => "override_revoked",
            NoticeKind::OverrideExpired => "override_expired",
            NoticeKind::EnforcementFailed => "enforcement_failed",
            NoticeKind::EnforcementIncomplete => "enforcement_incomplete",
            NoticeKind::NotEnforceable => "not_enforceable",
            NoticeKind::Downgraded => "downgraded",
            NoticeKind::WouldDowngrade => "would_downgrade",
        }
    }

    pub fn severity(self) -> &'static str {
        match self {
            NoticeKind::Forecast
            | NoticeKind::Restored
            | NoticeKind::CapChanged
            | NoticeKind::OverrideGranted
            | NoticeKind::OverrideRevoked
            | NoticeKind::OverrideExpired => "info",
            NoticeKind::Warning
            | NoticeKind::WouldCutOff
            | NoticeKind::Downgraded
            | NoticeKind::WouldDowngrade => "warning",
            NoticeKind::CutOff
            | NoticeKind::ProtectedOverCap
            | NoticeKind::Drift
            | NoticeKind::EnforcementFailed
            | NoticeKind::EnforcementIncomplete
            | NoticeKind::NotEnforceable => "critical",
        }
    }
}

/// Everything a message says, before it is rendered for a channel. Serialisable both ways:
/// an undelivered notice waits in the ledger's outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub audience: Audience,
    pub principal: PrincipalArn,
    pub budget: String,
    pub spend: Option<Usd>,
    /// `None` while an exemption is active.
    pub cap: Option<Usd>,
    pub period: Option<String>,
    /// The principal's team, whose Slack channel (if configured) hears about it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// What happened, in one line.
    pub headline: String,
    /// What the reader can do next.
    pub next_step: String,
}

/// Slack caps a section's text at 3,000 characters.
const SLACK_SECTION_LIMIT: usize = 3000;

impl Notice {
    fn spend_line(&self) -> String {
        match (self.spend, self.cap) {
            (Some(spend), Some(cap)) => match spend.percent_of(cap) {
                Some(pct) => format!("{spend} of {cap} ({pct}%)"),
                None => format!("{spend} of {cap}"),
            },
            (Some(spend), None) => format!("{spend} (no cap: exemption active)"),
            (None, Some(cap)) => format!("cap {cap}"),
            (None, None) => "no cap: exemption active".to_owned(),
        }
    }

    /// The exact command finance would run about this notice, if there is one.
    pub fn finance_command(&self) -> Option<String> {
        let who = self.principal.as_str();
        let until = self
            .period
            .as_deref()
            .and_then(crate::period::period_end)
            .map_or("<date>".to_owned(), |end| {
                end.format("%Y-%m-%d").to_string()
            });
        match self.kind {
            NoticeKind::Warning
            | NoticeKind::Forecast
            | NoticeKind::CutOff
            | NoticeKind::WouldCutOff
            | NoticeKind::Downgraded
            | NoticeKind::WouldDowngrade
            | NoticeKind::OverrideRevoked
            | NoticeKind::OverrideExpired => Some(format!(
                "seatcap override {who} +<usd> --until {until} --reason \"<why>\""
            )),
            NoticeKind::OverrideGranted => {
                Some(format!("seatcap revoke-override {who} --reason \"<why>\""))
            }
            NoticeKind::ProtectedOverCap
            | NoticeKind::Drift
            | NoticeKind::EnforcementFailed
            | NoticeKind::EnforcementIncomplete => Some(format!("seatcap history {who}")),
            NoticeKind::NotEnforceable => Some("seatcap doctor".to_owned()),
            NoticeKind::Restored | NoticeKind::CapChanged => None,
        }
    }

    /// Where the budget is in the AWS console.
    pub fn console_link(&self) -> String {
        let name: String = self
            .budget
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        format!("https://console.aws.amazon.com/costmanagement/home#/budgets/details?name={name}")
    }

    /// Plain text for email and logs.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n\nWho:    {}\nBudget: {}\nSpend:  {}\n",
            self.headline,
            self.principal,
            self.budget,
            self.spend_line()
        );
        if let Some(period) = &self.period {
            text.push_str(&format!("Period: {period}\n"));
        }
        text.push_str(&format!("\nNext: {}\n", self.next_step));
        if let Some(command) = self.finance_command() {
            text.push_str(&format!("Finance: {command}\n"));
        }
        text.push_str(&format!("Budget in the console: {}\n", self.console_link()));
        text
    }

    pub fn subject(&self) -> String {
        // SNS subjects: at most 100 printable characters.
        let subject = format!("seatcap: {} ({})", self.headline, self.principal.name());
        truncate(&subject, 100)
    }

    /// Slack Block Kit payload, with `text` as the notification fallback.
    pub fn to_slack(&self) -> serde_json::Value {
        let mut fields = vec![
            json!({"type": "mrkdwn", "text": truncate(&format!("*Who*\n`{}`", self.principal), 2000)}),
            json!({"type": "mrkdwn", "text": truncate(&format!("*Budget*\n{}", self.budget), 2000)}),
            json!({"type": "mrkdwn", "text": format!("*Spend*\n{}", self.spend_line())}),
        ];
        if let Some(period) = &self.period {
            fields.push(json!({"type": "mrkdwn", "text": format!("*Period*\n{period}")}));
        }
        let mut next = format!("*Next:* {}", self.next_step);
        if let Some(command) = self.finance_command() {
            next.push_str(&format!("\n*Finance:* `{command}`"));
        }
        json!({
            "text": truncate(&self.headline, SLACK_SECTION_LIMIT),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": truncate(&self.headline, 150)}},
                {"type": "section", "fields": fields},
                {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&next, SLACK_SECTION_LIMIT)}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("seatcap · {} · {} · <{}|budget in the console>", self.kind.as_str(), self.kind.severity(), self.console_link())}]}
            ]
        })
    }
}

/// `text` cut to `max_chars` characters, with an ellipsis if it was longer.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars - 1).collect();
    cut.push('…');
    cut
}
