//! `seatcap`: finance's commands from a terminal. Each command is one invoke of the admin
//! function (the function validates, changes and audits); this program only builds the
//! request and prints the answer, as a table or, with `--json`, as is.
//!
//! Exit codes: 0 done, 2 refused by seatcap (nothing changed), 1 could not ask (AWS error,
//! function error).

use std::process::ExitCode;

use aws_sdk_lambda::primitives::Blob;
use clap::{Args, Parser, Subcommand};
use seatcap::finance_price::SetPrice;
use seatcap::request::{
    AdoptBudget, ApproveOverride, GrantOverride, HistoryRequest, ListRequest, Mutation, NoFields,
    PrincipalOnly, Request, RevokeOverride, SetCap, SubscribeEmail, UsageRequest,
};
use seatcap::state::Status;
use seatcap::usage::UsageBy;
use serde_json::{Value, json};

mod render;
mod url;

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
    /// The admin's Function URL. Default: the one Lambda reports for --function; requests
    /// to it are signed with your AWS credentials, and AWS tells seatcap who you are.
    #[arg(long, env = "SEATCAP_ADMIN_URL", global = true)]
    url: Option<String>,
    /// Invoke the function directly instead of through its URL (older deployments): the
    /// audit then records the actor as claimed, not verified.
    #[arg(long, global = true)]
    direct: bool,
    /// Who is making the change, for a direct invoke's audit (through the URL, the audit
    /// names the identity AWS verified instead). Default: your AWS identity (STS).
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
    /// Approve an override request another finance principal made (two-person rule).
    ApproveOverride {
        principal: String,
        /// The request's id, as `status` or `list --pending` show it.
        request_id: String,
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
        /// Only principals with override requests waiting for approval.
        #[arg(long)]
        pending: bool,
    },
    /// A principal's audit trail, newest first.
    History {
        principal: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// A month's metered spend (estimated from the invocation logs), by person, model or
    /// team, as a table with bars.
    Usage {
        /// A month, `YYYY-MM`, or a day, `YYYY-MM-DD`; this month when absent.
        #[arg(long)]
        period: Option<String>,
        #[arg(long, default_value = "person", value_parser = ["person", "model", "team"])]
        by: String,
    },
    /// Retry the notifications waiting in the outbox now.
    FlushNotifications,
    /// Check what the deployment needs (each IAM Identity Center role seatcap has people on
    /// carries seatcap's shards) and print the fix for what is missing.
    Doctor,
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
    /// Prices for models seatcap does not know yet.
    #[command(subcommand)]
    Prices(PricesCommand),
}

#[derive(Subcommand)]
enum PricesCommand {
    /// Give a model no price table knows its price, USD per million tokens (finance only;
    /// used by the next metering batch that calls it, in place of the highest rate).
    Set {
        /// As calls name it, e.g. `us.acme.model-x-v1:0`.
        model: String,
        /// USD per million input tokens.
        #[arg(long)]
        input: String,
        /// USD per million output tokens.
        #[arg(long)]
        output: String,
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
        sdk,
        route: tokio::sync::OnceCell::new(),
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
    sdk: aws_config::SdkConfig,
    /// How requests reach the admin, found once per run.
    route: tokio::sync::OnceCell<Route>,
    cli: &'a Cli,
}

/// How the CLI reaches the admin function.
enum Route {
    /// A SigV4-signed POST to its Function URL (the caller verified by AWS).
    Url(String),
    /// `lambda:InvokeFunction` (the actor only claimed).
    Direct,
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
                let (actor, reason) = self.who(why).await?;
                self.change(Request::SetCap(SetCap {
                    principal,
                    budget,
                    cap_usd: amount.trim_start_matches('$').to_owned(),
                    tag_value: None,
                    team: team.clone(),
                    actor,
                    reason,
                }))
                .await
            }
            Command::AdoptBudget {
                principal,
                budget,
                team,
                why,
            } => {
                let principal = self.principal(principal).await?;
                let (actor, reason) = self.who(why).await?;
                self.change(Request::AdoptBudget(AdoptBudget {
                    principal,
                    budget: budget.clone(),
                    team: team.clone(),
                    actor,
                    reason,
                }))
                .await
            }
            Command::Override {
                principal,
                amount,
                until,
                why,
            } => {
                let principal = self.principal(principal).await?;
                let (actor, reason) = self.who(why).await?;
                let exempt = amount.eq_ignore_ascii_case("exempt");
                let extra_usd = (!exempt).then(|| {
                    amount
                        .trim_start_matches('+')
                        .trim_start_matches('$')
                        .to_owned()
                });
                self.change(Request::GrantOverride(GrantOverride {
                    principal,
                    extra_usd,
                    exempt,
                    expires_at: expiry(until),
                    actor,
                    reason,
                }))
                .await
            }
            Command::ApproveOverride {
                principal,
                request_id,
                why,
            } => {
                let principal = self.principal(principal).await?;
                let (actor, reason) = self.who(why).await?;
                self.change(Request::ApproveOverride(ApproveOverride {
                    principal,
                    request_id: request_id.clone(),
                    actor,
                    reason,
                }))
                .await
            }
            Command::RevokeOverride { principal, id, why } => {
                let principal = self.principal(principal).await?;
                let (actor, reason) = self.who(why).await?;
                self.change(Request::RevokeOverride(RevokeOverride {
                    principal,
                    override_id: id.clone(),
                    actor,
                    reason,
                }))
                .await
            }
            Command::Restore { principal, why } => {
                let m = self.mutation(principal, why).await?;
                self.change(Request::Restore(m)).await
            }
            Command::Block { principal, why } => {
                let m = self.mutation(principal, why).await?;
                self.change(Request::Block(m)).await
            }
            Command::Protect { principal, why } => {
                let m = self.mutation(principal, why).await?;
                self.change(Request::Protect(m)).await
            }
            Command::Unprotect { principal, why } => {
                let m = self.mutation(principal, why).await?;
                self.change(Request::Unprotect(m)).await
            }
            Command::Status { principal } => {
                let principal = self.principal(principal).await?;
                let answer = self
                    .invoke(&Request::Status(PrincipalOnly { principal }))
                    .await?;
                self.print(&answer, render::state)
            }
            Command::List {
                blocked,
                active,
                pending,
            } => {
                let status = match (*blocked, *active) {
                    (true, _) => Some(Status::Blocked),
                    (false, true) => Some(Status::Active),
                    _ => None,
                };
                let mut request = ListRequest {
                    status,
                    pending: *pending,
                    limit: Some(500),
                    next_token: None,
                };
                let mut principals = Vec::new();
                loop {
                    let page = self.invoke(&Request::List(request.clone())).await?;
                    principals.extend(page["principals"].as_array().cloned().unwrap_or_default());
                    match page.get("next_token").and_then(Value::as_str) {
                        Some(token) => request.next_token = Some(token.to_owned()),
                        None => break,
                    }
                }
                self.print(
                    &json!({"ok": true, "principals": principals}),
                    render::principals,
                )
            }
            Command::History { principal, limit } => {
                let principal = self.principal(principal).await?;
                let request = Request::History(HistoryRequest {
                    principal,
                    limit: Some(*limit),
                    next_token: None,
                });
                let answer = self.invoke(&request).await?;
                self.print(&answer, render::events)
            }
            Command::Usage { period, by } => {
                let by = match by.as_str() {
                    "model" => UsageBy::Model,
                    "team" => UsageBy::Team,
                    _ => UsageBy::Person,
                };
                let request = Request::Usage(UsageRequest {
                    period: period.clone(),
                    by,
                });
                let answer = self.invoke(&request).await?;
                self.print(&answer, render::usage)
            }
            Command::SubscribeEmail {
                email,
                principal,
                audience,
                why,
            } => {
                let principal = match principal {
                    Some(p) => Some(self.principal(p).await?),
                    None => None,
                };
                let (actor, reason) = self.who(why).await?;
                let request = Request::SubscribeEmail(SubscribeEmail {
                    email: email.clone(),
                    principal,
                    audience: audience.clone(),
                    actor,
                    reason,
                });
                let answer = self.invoke(&request).await?;
                self.print(&answer, render::subscription)
            }
            Command::FlushNotifications => {
                let answer = self
                    .invoke(&Request::FlushNotifications(NoFields {}))
                    .await?;
                self.print(&answer, render::flush)
            }
            Command::Doctor => {
                let answer = self.invoke(&Request::Doctor(NoFields {})).await?;
                self.print(&answer, render::doctor)
            }
            Command::Prices(PricesCommand::Set {
                model,
                input,
                output,
                why,
            }) => {
                let (actor, reason) = self.who(why).await?;
                let request = Request::SetPrice(SetPrice {
                    model: model.clone(),
                    input_per_million_usd: input.clone(),
                    output_per_million_usd: output.clone(),
                    actor,
                    reason,
                });
                let answer = self.invoke(&request).await?;
                self.print(&answer, render::price_set)
            }
        }
    }

    async fn mutation(&self, principal: &str, why: &Why) -> Result<Mutation, Failure> {
        let principal = self.principal(principal).await?;
        let (actor, reason) = self.who(why).await?;
        Ok(Mutation {
            principal,
            actor,
            reason,
        })
    }

    async fn who(&self, why: &Why) -> Result<(String, String), Failure> {
        Ok((self.actor().await?, why.reason.clone()))
    }

    /// A mutating request: invokes, prints the new state.
    async fn change(&self, request: Request) -> Result<(), Failure> {
        let answer = self.invoke(&request).await?;
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

    async fn invoke(&self, request: &Request) -> Result<Value, Failure> {
        let payload = serde_json::to_vec(request)
            .map_err(|e| Failure::Error(format!("could not write the request: {e}")))?;
        let route = self.route.get_or_try_init(|| self.find_route()).await?;
        let payload = match route {
            Route::Url(url) => url::post(&self.sdk, url, payload).await?,
            Route::Direct => self.invoke_directly(payload).await?,
        };
        self.answer(payload)
    }

    /// `--direct`, `--url`, or the Function URL Lambda reports for the function (none:
    /// a deployment from before the URL, invoked directly).
    async fn find_route(&self) -> Result<Route, Failure> {
        if self.cli.direct {
            return Ok(Route::Direct);
        }
        if let Some(url) = &self.cli.url {
            return Ok(Route::Url(url.clone()));
        }
        match self
            .lambda
            .get_function_url_config()
            .function_name(&self.cli.function)
            .send()
            .await
        {
            Ok(config) => Ok(Route::Url(config.function_url)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(Route::Direct)
            }
            Err(e) => Err(Failure::Error(format!(
                "could not look up the Function URL of {}: {}; pass --url (or SEATCAP_ADMIN_URL), or --direct",
                self.cli.function,
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            ))),
        }
    }

    async fn invoke_directly(&self, payload: Vec<u8>) -> Result<Value, Failure> {
        let out = self
            .lambda
            .invoke()
            .function_name(&self.cli.function)
            .payload(Blob::new(payload))
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
        Ok(payload)
    }

    /// The admin's answer: done, or refused (printed as is with `--json`).
    fn answer(&self, payload: Value) -> Result<Value, Failure> {
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
