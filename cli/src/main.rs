//! `seatcap`: finance's commands from a terminal. Each command is one invoke of the admin
//! function (the function validates, changes and audits); this program only builds the
//! request and prints the answer, as a table or, with `--json`, as is.
//!
//! Exit codes: 0 done, 2 refused by seatcap (nothing changed), 1 could not ask (AWS error,
//! function error).

use std::process::ExitCode;

use aws_sdk_lambda::primitives::Blob;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

mod render;

#[derive(Parser)]
#[command(
    name = "seatcap",
    version,
    about = "Per-seat Bedrock spending caps: finance's commands"
)]
struct Cli {
    /// The admin Lambda function (name or ARN).
    #[arg(
        long,
        env = "SEATCAP_ADMIN_FUNCTION",
        default_value = "seatcap-admin",
        global = true
    )]
    function: String,
    /// Who is making the change, for the audit. Default: your AWS identity (STS).
    #[arg(long, env = "SEATCAP_ACTOR", global = true)]
    actor: Option<String>,
    /// Print the admin function's JSON answer as is (for scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Why {
    /// Why: goes into the audit trail.
    #[arg(long)]
    reason: String,
}

#[derive(Subcommand)]
enum Command {
    /// Set a monthly cap in USD (creates or updates the principal's AWS Budget).
    SetCap {
        principal: String,
        /// e.g. 250 or 250.00 (seatcap itself judges the amount, so a typo gets its message)
        #[arg(allow_negative_numbers = true)]
        amount: String,
        /// The AWS Budget whose alerts belong to this principal. Default: seatcap-<name>.
        #[arg(long)]
        budget: Option<String>,
        /// The team whose Slack channel hears about this principal (kept if not given).
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        why: Why,
    },
    /// Take an existing AWS Budget (made in the console) under management.
    AdoptBudget {
        principal: String,
        budget: String,
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        why: Why,
    },
    /// Grant a temporary extra amount (`+100`) or a full exemption (`exempt`).
    Override {
        principal: String,
        /// `+100`, `100.50` or `exempt`
        #[arg(allow_negative_numbers = true)]
        amount: String,
        /// Last day (UTC) of the override, e.g. 2026-12-31, or a full RFC 3339 time.
        #[arg(long)]
        until: String,
        #[command(flatten)]
        why: Why,
    },
    /// End a principal's overrides (or one, with --id).
    RevokeOverride {
        principal: String,
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        why: Why,
    },
    /// Give back the Bedrock access seatcap took.
    Restore {
        principal: String,
        #[command(flatten)]
        why: Why,
    },
    /// Cut access now; stays until `restore`, across budget periods.
    Block {
        principal: String,
        #[command(flatten)]
        why: Why,
    },
    /// Break-glass: never cut off by the cap.
    Protect {
        principal: String,
        #[command(flatten)]
        why: Why,
    },
    Unprotect {
        principal: String,
        #[command(flatten)]
        why: Why,
    },
    /// Where a principal stands.
    Status { principal: String },
    /// Every principal (blocked first), or only blocked or only active ones.
    List {
        #[arg(long, conflicts_with = "active")]
        blocked: bool,
        #[arg(long)]
        active: bool,
    },
    /// A principal's audit trail, newest first.
    History {
        principal: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Retry the notifications waiting in the outbox now.
    FlushNotifications,
    /// Subscribe an email address to a person's own messages, or to finance's or security's.
    SubscribeEmail {
        email: String,
        /// Whose messages: a user name or principal ARN.
        #[arg(
            long,
            required_unless_present = "audience",
            conflicts_with = "audience"
        )]
        principal: Option<String>,
        /// `finance` (warnings and worse, everyone) or `security` (drift).
        #[arg(long)]
        audience: Option<String>,
        #[command(flatten)]
        why: Why,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let sdk = aws_config::load_from_env().await;
    let session = Session {
        lambda: aws_sdk_lambda::Client::new(&sdk),
        sts: aws_sdk_sts::Client::new(&sdk),
        cli: &cli,
    };
    match session.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(code, message)) => {
            eprintln!("refused ({code}): {message}\nnothing was changed.");
            ExitCode::from(2)
        }
        Err(Failure::Error(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    /// seatcap said no: `{"ok": false, "error": {...}}`.
    Refused(String, String),
    Error(String),
}

struct Session<'a> {
    lambda: aws_sdk_lambda::Client,
    sts: aws_sdk_sts::Client,
    cli: &'a Cli,
}

impl Session<'_> {
    async fn run(&self) -> Result<(), Failure> {
        match &self.cli.command {
            Command::SetCap {
                principal,
                amount,
                budget,
                team,
                why,
            } => {
                let principal = self.principal(principal).await?;
                let budget = budget
                    .clone()
                    .unwrap_or_else(|| format!("seatcap-{}", short_name(&principal)));
                let mut request = json!({"action": "set_cap", "principal": principal, "budget": budget,
                    "cap_usd": amount.trim_start_matches('$')});
                if let Some(team) = team {
                    request["team"] = json!(team);
                }
                self.change(request, why).await
            }
            Command::AdoptBudget {
                principal,
                budget,
                team,
                why,
            } => {
                let mut request = json!({"action": "adopt_budget", "principal": self.principal(principal).await?, "budget": budget});
                if let Some(team) = team {
                    request["team"] = json!(team);
                }
                self.change(request, why).await
            }
            Command::Override {
                principal,
                amount,
                until,
                why,
            } => {
                let mut request = json!({"action": "grant_override", "principal": self.principal(principal).await?,
                    "expires_at": expiry(until)});
                if amount.eq_ignore_ascii_case("exempt") {
                    request["exempt"] = json!(true);
                } else {
                    request["extra_usd"] =
                        json!(amount.trim_start_matches('+').trim_start_matches('$'));
                }
                self.change(request, why).await
            }
            Command::RevokeOverride { principal, id, why } => {
                let mut request = json!({"action": "revoke_override", "principal": self.principal(principal).await?});
                if let Some(id) = id {
                    request["override_id"] = json!(id);
                }
                self.change(request, why).await
            }
            Command::Restore { principal, why } => self.simple("restore", principal, why).await,
            Command::Block { principal, why } => self.simple("block", principal, why).await,
            Command::Protect { principal, why } => self.simple("protect", principal, why).await,
            Command::Unprotect { principal, why } => self.simple("unprotect", principal, why).await,
            Command::Status { principal } => {
                let answer = self
                    .invoke(
                        json!({"action": "status", "principal": self.principal(principal).await?}),
                    )
                    .await?;
                self.print(&answer, render::state)
            }
            Command::List { blocked, active } => {
                let mut request = json!({"action": "list", "limit": 500});
                if *blocked {
                    request["status"] = json!("blocked");
                } else if *active {
                    request["status"] = json!("active");
                }
                let mut principals = Vec::new();
                loop {
                    let page = self.invoke(request.clone()).await?;
                    principals.extend(page["principals"].as_array().cloned().unwrap_or_default());
                    match page.get("next_token") {
                        Some(token) => request["next_token"] = token.clone(),
                        None => break,
                    }
                }
                self.print(
                    &json!({"ok": true, "principals": principals}),
                    render::principals,
                )
            }
            Command::History { principal, limit } => {
                let request = json!({"action": "history", "principal": self.principal(principal).await?, "limit": limit});
                let answer = self.invoke(request).await?;
                self.print(&answer, render::events)
            }
            Command::SubscribeEmail {
                email,
                principal,
                audience,
                why,
            } => {
                let mut request = json!({"action": "subscribe_email", "email": email});
                if let Some(principal) = principal {
                    request["principal"] = json!(self.principal(principal).await?);
                }
                if let Some(audience) = audience {
                    request["audience"] = json!(audience);
                }
                request["actor"] = json!(self.actor().await?);
                request["reason"] = json!(why.reason);
                let answer = self.invoke(request).await?;
                self.print(&answer, render::subscription)
            }
            Command::FlushNotifications => {
                let answer = self
                    .invoke(json!({"action": "flush_notifications"}))
                    .await?;
                self.print(&answer, render::flush)
            }
        }
    }

    async fn simple(&self, action: &str, principal: &str, why: &Why) -> Result<(), Failure> {
        let request = json!({"action": action, "principal": self.principal(principal).await?});
        self.change(request, why).await
    }

    /// A mutating request: adds actor and reason, invokes, prints the new state.
    async fn change(&self, mut request: Value, why: &Why) -> Result<(), Failure> {
        request["actor"] = json!(self.actor().await?);
        request["reason"] = json!(why.reason);
        let answer = self.invoke(request).await?;
        self.print(&answer, render::state)
    }

    fn print(&self, answer: &Value, human: fn(&Value) -> String) -> Result<(), Failure> {
        if self.cli.json {
            println!(
                "{}",
                serde_json::to_string_pretty(answer).unwrap_or_default()
            );
        } else {
            print!("{}", human(answer));
        }
        Ok(())
    }

    async fn invoke(&self, request: Value) -> Result<Value, Failure> {
        let out = self
            .lambda
            .invoke()
            .function_name(&self.cli.function)
            .payload(Blob::new(request.to_string()))
            .send()
            .await
            .map_err(|e| {
                Failure::Error(format!(
                    "could not invoke {}: {}",
                    self.cli.function,
                    aws_sdk_lambda::error::DisplayErrorContext(&e)
                ))
            })?;
        let payload: Value = out
            .payload
            .map(|p| serde_json::from_slice(p.as_ref()).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        if let Some(kind) = out.function_error {
            let message = payload["errorMessage"]
                .as_str()
                .map_or_else(|| payload.to_string(), str::to_owned);
            return Err(Failure::Error(format!(
                "the admin function failed ({kind}): {message}"
            )));
        }
        if payload["ok"] == true {
            return Ok(payload);
        }
        let code = payload["error"]["code"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        let message = payload["error"]["message"]
            .as_str()
            .map_or_else(|| payload.to_string(), str::to_owned);
        if self.cli.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&payload).unwrap_or_default()
            );
        }
        Err(Failure::Refused(code, message))
    }

    /// `alice` → the IAM user `alice` in the caller's account; a full ARN is taken as is.
    async fn principal(&self, given: &str) -> Result<String, Failure> {
        if given.starts_with("arn:") {
            return Ok(given.to_owned());
        }
        let account = self.identity().await?.0;
        let arn = format!("arn:aws:iam::{account}:user/{given}");
        arn.parse::<seatcap::principal::PrincipalArn>()
            .map(|p| p.to_string())
            .map_err(|e| {
                Failure::Error(format!(
                    "`{given}` is not a user name or principal ARN: {e}"
                ))
            })
    }

    async fn actor(&self) -> Result<String, Failure> {
        match &self.cli.actor {
            Some(actor) => Ok(actor.clone()),
            None => Ok(self.identity().await?.1),
        }
    }

    /// (account id, caller ARN) from STS.
    async fn identity(&self) -> Result<(String, String), Failure> {
        let me = self.sts.get_caller_identity().send().await.map_err(|e| {
            Failure::Error(format!(
                "cannot tell who you are (STS): {}; pass a full principal ARN and --actor",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            ))
        })?;
        Ok((me.account.unwrap_or_default(), me.arn.unwrap_or_default()))
    }
}

fn short_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `2026-12-31` means through the end of that day, UTC.
fn expiry(until: &str) -> String {
    if until.len() == 10 && until.as_bytes()[4] == b'-' {
        format!("{until}T23:59:59Z")
    } else {
        until.to_owned()
    }
}
