//! The local AWS: one moto server per test process, one AWS account per test.
//!
//! Tests never reset the server: each [`Account`] is a fresh random account id, reached with
//! credentials from a real STS AssumeRole into that account, so concurrent tests cannot see
//! each other's users, tables or topics.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use seatcap::principal::PrincipalArn;

use crate::proxy::ProtectedRoles;
use crate::template::LedgerTable;

pub const REGION: &str = "us-east-1";

/// The plain shared role the tests put people on (one of the account's own, that many
/// people assume), declared session-named in [`Account::env`].
pub const PLAIN_SHARED_ROLE: &str = "ClaudeCodeBedrockUsers";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

pub struct MotoServer {
    /// The emulator itself: the tests' own clients (playing the account's administrators
    /// and IAM Identity Center) call it here.
    pub endpoint: String,
    /// The emulator behind [`ProtectedRoles`]: what seatcap's functions are pointed at, so
    /// that IAM refuses them what AWS would.
    pub front: ProtectedRoles,
    // Held open for the life of the process: the server exits when this pipe closes.
    _child: Child,
}

static MOTO: OnceLock<MotoServer> = OnceLock::new();

/// The process-wide moto server, started on first use on a free loopback port.
pub fn moto() -> &'static MotoServer {
    MOTO.get_or_init(|| {
        MotoServer::start().unwrap_or_else(|e| panic!("cannot start the moto server: {e}"))
    })
}

impl MotoServer {
    pub fn start() -> Result<MotoServer, String> {
        let root = workspace_root();
        let install = Command::new(root.join("scripts/install-tools"))
            .status()
            .map_err(|e| format!("scripts/install-tools: {e}"))?;
        if !install.success() {
            return Err("scripts/install-tools failed".into());
        }
        let tools = std::env::var("SEATCAP_TOOLS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join(".tools"));
        // A port found free can be taken by another test's server before moto binds it:
        // then moto exits at once, and another port is tried.
        let mut said = String::new();
        for _ in 0..3 {
            match MotoServer::start_on(&root, &tools, free_port())? {
                Ok(server) => return Ok(server),
                Err(line) => said = line,
            }
        }
        Err(format!("moto did not start (said {said:?})"))
    }

    fn start_on(
        root: &std::path::Path,
        tools: &std::path::Path,
        port: u16,
    ) -> Result<Result<MotoServer, String>, String> {
        let mut child = Command::new(tools.join("venv/bin/python"))
            .arg(root.join("scripts/moto_server.py"))
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawning moto: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading moto's banner: {e}"))?;
        if !line.starts_with("moto ready") {
            return Ok(Err(line));
        }
        Ok(Ok(MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            front: ProtectedRoles::start(format!("127.0.0.1:{port}")),
            _child: child,
        }))
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

const TRUST_ANYONE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;

/// A fresh AWS account on the emulator, with the ledger table, the notification topic and
/// two managed policies: one seatcap manages (Bedrock) and one it must never touch.
pub struct Account {
    pub id: String,
    /// Where seatcap reaches the account: the moto server it lives on, behind IAM's
    /// refusals of writes to protected roles ([`ProtectedRoles`]).
    pub endpoint: String,
    pub protected_roles: ProtectedRoles,
    pub sdk: SdkConfig,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub table: String,
    pub notify_topic_arn: String,
    pub bedrock_policy_arn: String,
    pub other_policy_arn: String,
    pub iam: aws_sdk_iam::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Account {
    pub async fn new() -> Account {
        Account::on(moto()).await
    }

    /// A fresh account on a server of the test's own (one whose settings it changes).
    pub async fn on(moto: &MotoServer) -> Account {
        let id = (100_000_000_000 + rand_u64() % 899_999_999_999).to_string();
        let bootstrap = sdk_config(&moto.endpoint, "bootstrap", "bootstrap", None).await;
        let creds = aws_sdk_sts::Client::new(&bootstrap)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{id}:role/seatcap-test"))
            .role_session_name("seatcap-test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("STS AssumeRole on moto: {}", DisplayErrorContext(&e)))
            .credentials
            .expect("AssumeRole returns credentials");
        let sdk = sdk_config(
            &moto.endpoint,
            &creds.access_key_id,
            &creds.secret_access_key,
            Some(&creds.session_token),
        )
        .await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);

        let table = "seatcap-ledger".to_owned();
        create_ledger_table(&dynamodb, &table, &LedgerTable::from_template()).await;
        let notify_topic_arn = aws_sdk_sns::Client::new(&sdk)
            .create_topic()
            .name("seatcap-notifications")
            .send()
            .await
            .expect("create the notification topic")
            .topic_arn
            .expect("a topic ARN");
        let bedrock_policy_arn = create_policy(&iam, "bedrock-invoke", "bedrock:InvokeModel").await;
        let other_policy_arn = create_policy(&iam, "s3-read", "s3:GetObject").await;

        Account {
            id,
            endpoint: moto.front.url.clone(),
            protected_roles: moto.front.clone(),
            sdk,
            access_key_id: creds.access_key_id,
            secret_access_key: creds.secret_access_key,
            session_token: creds.session_token,
            table,
            notify_topic_arn,
            bedrock_policy_arn,
            other_policy_arn,
            iam,
            dynamodb,
        }
    }

    /// A role IAM Identity Center made for permission set `set` in this account: at its path
    /// and named as it names them (with a fresh id, so no two tests share one), and the
    /// account's Identity Center shards as the template creates them. `references`: the
    /// shards (from 0) the permission set references, which Identity Center attaches to the
    /// role when it provisions the set; the test plays Identity Center, so it attaches them
    /// directly, past the refusals seatcap meets ([`ProtectedRoles`]).
    pub async fn identity_center_role(&self, set: &str, references: &[usize]) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let role = format!("AWSReservedSSO_{set}_{}", &id[..16]);
        self.identity_center_role_named(&role, references).await;
        role
    }

    /// [`Self::identity_center_role`] under a name of the test's choosing.
    pub async fn identity_center_role_named(&self, role: &str, references: &[usize]) {
        self.iam
            .create_role()
            .role_name(role)
            .path(format!("/aws-reserved/sso.amazonaws.com/{REGION}/"))
            .assume_role_policy_document(TRUST_ANYONE)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateRole {role}: {}", DisplayErrorContext(&e)));
        self.create_sso_shards(seatcap::deny::DEFAULT_SHARDS_PER_ROLE)
            .await;
        self.reference_sso_shards(role, references).await;
    }

    /// The account's Identity Center shards as the template's stack creates them (once).
    pub async fn create_sso_shards(&self, shards: usize) {
        for (name, path, document) in crate::template::sso_shards(shards) {
            let made = self
                .iam
                .create_policy()
                .policy_name(&name)
                .path(&path)
                .policy_document(document.to_string())
                .send()
                .await;
            if let Err(e) = made {
                let e = e.into_service_error();
                assert!(
                    e.is_entity_already_exists_exception(),
                    "CreatePolicy {name}: {e}"
                );
            }
        }
    }

    /// What Identity Center does once a permission set references `shards` and is
    /// provisioned: attaches them to its role.
    pub async fn reference_sso_shards(&self, role: &str, shards: &[usize]) {
        for n in shards {
            self.iam
                .attach_role_policy()
                .role_name(role)
                .policy_arn(seatcap::identity_center::shard_policy_arn(
                    "aws", &self.id, *n,
                ))
                .send()
                .await
                .unwrap_or_else(|e| panic!("AttachRolePolicy {role}: {}", DisplayErrorContext(&e)));
        }
    }

    /// A person signed in through IAM Identity Center on `role`: the ARN their sessions
    /// carry (the session name is the user name).
    pub fn sso_person(&self, role: &str, user: &str) -> PrincipalArn {
        format!("arn:aws:sts::{}:assumed-role/{role}/{user}", self.id)
            .parse()
            .expect("a valid Identity Center person")
    }

    /// The default document of seatcap's policy `arn` and how many versions it has.
    pub async fn policy_document(&self, arn: &str) -> (serde_json::Value, usize) {
        let policy = self
            .iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetPolicy {arn}: {}", DisplayErrorContext(&e)));
        let version = policy
            .policy
            .and_then(|p| p.default_version_id)
            .expect("a default version");
        let document = self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .unwrap()
            .policy_version
            .and_then(|v| v.document)
            .expect("a document");
        let versions = self
            .iam
            .list_policy_versions()
            .policy_arn(arn)
            .send()
            .await
            .unwrap()
            .versions
            .unwrap_or_default()
            .len();
        (
            seatcap::access::decode_document(&document).expect("a policy document"),
            versions,
        )
    }

    /// Everyone the account's Identity Center shards deny (`aws:userid` patterns).
    pub async fn sso_denied(&self) -> std::collections::BTreeSet<String> {
        let mut denied = std::collections::BTreeSet::new();
        for n in 0..seatcap::deny::DEFAULT_SHARDS_PER_ROLE {
            let arn = seatcap::identity_center::shard_policy_arn("aws", &self.id, n);
            let (document, _) = self.policy_document(&arn).await;
            denied.extend(seatcap::deny::denied_user_ids(&document));
        }
        denied.remove(seatcap::identity_center::NOBODY);
        denied
    }

    /// A role's unique id.
    pub async fn role_id(&self, role: &str) -> String {
        self.iam
            .get_role()
            .role_name(role)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetRole {role}: {}", DisplayErrorContext(&e)))
            .role
            .expect("a role")
            .role_id
    }

    /// Switches on IAM authorization on this account's moto server (a server of the test's
    /// own: it applies to every account on it). The test's own role may do anything first.
    pub async fn authorization_on(&self) {
        self.iam
            .create_role()
            .role_name("seatcap-test")
            .assume_role_policy_document(TRUST_ANYONE)
            .send()
            .await
            .unwrap();
        self.iam
            .put_role_policy()
            .role_name("seatcap-test")
            .policy_name("everything")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
        let reset = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            // The number of requests still let through unchecked; sent as text/plain, since
            // moto reads a form-encoded body as empty.
            .header("content-type", "text/plain")
            .body("0")
            .send()
            .await
            .unwrap();
        assert!(reset.status().is_success());
    }

    /// Credentials of a new role in this account holding exactly `policy` (a JSON document),
    /// as (access key id, secret, session token).
    pub async fn role_holding(&self, name: &str, policy: &str) -> (String, String, String) {
        self.iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(TRUST_ANYONE)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateRole {name}: {}", DisplayErrorContext(&e)));
        self.iam
            .put_role_policy()
            .role_name(name)
            .policy_name("template")
            .policy_document(policy)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRolePolicy {name}: {}", DisplayErrorContext(&e)));
        let creds = aws_sdk_sts::Client::new(&self.sdk)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{}:role/{name}", self.id))
            .role_session_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("AssumeRole {name}: {}", DisplayErrorContext(&e)))
            .credentials
            .expect("AssumeRole returns credentials");
        (
            creds.access_key_id,
            creds.secret_access_key,
            creds.session_token,
        )
    }

    /// A person signing in to this account as `session` on a new role `role` (made here,
    /// holding no policy): the credentials and the ARN AWS names them by.
    pub async fn signer(&self, role: &str, session: &str) -> crate::Signer {
        let made = self
            .iam
            .create_role()
            .role_name(role)
            .assume_role_policy_document(TRUST_ANYONE)
            .send()
            .await;
        if let Err(e) = made {
            // Two people on one role: the second finds it made.
            let e = e.into_service_error();
            assert!(
                e.is_entity_already_exists_exception(),
                "CreateRole {role}: {e}"
            );
        }
        let assumed = aws_sdk_sts::Client::new(&self.sdk)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{}:role/{role}", self.id))
            .role_session_name(session)
            .send()
            .await
            .unwrap_or_else(|e| panic!("AssumeRole {role}: {}", DisplayErrorContext(&e)));
        let creds = assumed.credentials.expect("AssumeRole returns credentials");
        crate::Signer {
            access_key_id: creds.access_key_id,
            secret_access_key: creds.secret_access_key,
            session_token: Some(creds.session_token),
            arn: assumed.assumed_role_user.expect("an assumed-role user").arn,
        }
    }

    /// The environment a seatcap function gets in this account (AWS access and SEATCAP_*).
    pub fn env(&self) -> HashMap<String, String> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", &self.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_access_key),
            ("AWS_SESSION_TOKEN", &self.session_token),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("SEATCAP_TABLE", &self.table),
            ("SEATCAP_MANAGED_POLICY_ARNS", &self.bedrock_policy_arn),
            ("SEATCAP_NOTIFY_TOPIC_ARN", &self.notify_topic_arn),
            ("SEATCAP_SNS_CERT_PEM", crate::SNS_TEST_CERT_PEM),
            // The tests' plain shared role, declared as one whose trust policy pins each
            // session's name to its person (the deployer's declaration, README: Principals).
            ("SEATCAP_SESSION_NAMED_ROLES", PLAIN_SHARED_ROLE),
            ("SEATCAP_INVOCATION_LOG_GROUP", "bedrock-invocations"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// An in-process seatcap app in this account, with `overrides` on top of [`Self::env`].
    pub fn app(&self, overrides: &[(&str, &str)], clock: seatcap::app::Clock) -> seatcap::App {
        self.app_through(&self.endpoint, overrides, clock)
    }

    /// [`Self::app`] whose AWS calls go to `endpoint` (a proxy in front of moto).
    pub fn app_through(
        &self,
        endpoint: &str,
        overrides: &[(&str, &str)],
        clock: seatcap::app::Clock,
    ) -> seatcap::App {
        let mut env = self.env();
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let config = seatcap::config::Config::from_lookup(|k| env.get(k).cloned())
            .expect("test configuration is valid");
        let sdk = self.sdk.to_builder().endpoint_url(endpoint).build();
        seatcap::App::new(config, &sdk, clock)
    }

    /// Creates (or replaces) a monthly cost budget whose `CalculatedSpend` moto reports as
    /// `spend_usd`; `tag_value` adds seatcap's cost-tag filter.
    #[allow(deprecated)] // CostFilters: the form seatcap writes and reads a tag filter in.
    pub async fn put_budget(
        &self,
        name: &str,
        limit_usd: &str,
        spend_usd: &str,
        tag_value: Option<&str>,
    ) {
        use aws_sdk_budgets::types::{Budget, BudgetType, CalculatedSpend, Spend, TimeUnit};
        let client = aws_sdk_budgets::Client::new(&self.sdk);
        let usd = |amount: &str| Spend::builder().amount(amount).unit("USD").build().unwrap();
        let _ = client
            .delete_budget()
            .account_id(&self.id)
            .budget_name(name)
            .send()
            .await;
        let mut budget = Budget::builder()
            .budget_name(name)
            .budget_type(BudgetType::Cost)
            .time_unit(TimeUnit::Monthly)
            .budget_limit(usd(limit_usd))
            .calculated_spend(
                CalculatedSpend::builder()
                    .actual_spend(usd(spend_usd))
                    .build(),
            );
        if let Some(value) = tag_value {
            budget = budget.cost_filters(
                "TagKeyValue",
                vec![format!("user:seatcap-principal${value}")],
            );
        }
        client
            .create_budget()
            .account_id(&self.id)
            .budget(budget.build().unwrap())
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateBudget on moto: {}", DisplayErrorContext(&e)));
    }

    pub fn principal(&self, kind: &str, name: &str) -> PrincipalArn {
        format!("arn:aws:iam::{}:{kind}/{name}", self.id)
            .parse()
            .expect("a valid test principal")
    }

    /// Creates an IAM user, role or group (`kind`) with `policies` attached.
    pub async fn create_principal(
        &self,
        kind: &str,
        name: &str,
        policies: &[&str],
    ) -> PrincipalArn {
        match kind {
            "user" => drop(self.iam.create_user().user_name(name).send().await.expect("create user")),
            "group" => drop(self.iam.create_group().group_name(name).send().await.expect("create group")),
            "role" => drop(
                self.iam
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(
                        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
                    )
                    .send()
                    .await
                    .expect("create role"),
            ),
            other => panic!("unknown principal kind {other}"),
        }
        let principal = self.principal(kind, name);
        seatcap::iam::Iam::new(self.iam.clone())
            .attach_all(
                &principal,
                &policies.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            )
            .await
            .expect("attach policies");
        principal
    }

    /// A bucket of this account's own (bucket names are one namespace per server) holding
    /// `files` (key, body), as Bedrock's S3 delivery leaves them. Its name.
    pub async fn log_bucket(&self, files: &[(&str, Vec<u8>)]) -> String {
        let bucket = format!("bedrock-logs-{}", self.id);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build(),
        );
        if let Err(e) = s3.create_bucket().bucket(&bucket).send().await {
            let owned = e
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you());
            assert!(owned, "CreateBucket: {}", DisplayErrorContext(&e));
        }
        for (key, body) in files {
            s3.put_object()
                .bucket(&bucket)
                .key(*key)
                .body(body.clone().into())
                .send()
                .await
                .unwrap_or_else(|e| panic!("PutObject {key}: {}", DisplayErrorContext(&e)));
        }
        bucket
    }

    pub async fn attached(&self, principal: &PrincipalArn) -> Vec<String> {
        let mut arns = seatcap::iam::Iam::new(self.iam.clone())
            .attached_policies(principal)
            .await
            .expect("list attached");
        arns.sort();
        arns
    }

    /// What was published to this account's notification topic: (subject, message,
    /// attributes as name → value), oldest first, read from moto's `/moto-api/data.json`.
    pub async fn sent_notifications(&self) -> Vec<(String, String, HashMap<String, String>)> {
        let url = format!("{}/moto-api/data.json", self.endpoint);
        let data: serde_json::Value = reqwest::get(url)
            .await
            .expect("moto data")
            .json()
            .await
            .expect("moto data is JSON");
        let topics = data["sns"]["Topic"].as_array().cloned().unwrap_or_default();
        let topic = topics
            .iter()
            .find(|t| t["arn"] == self.notify_topic_arn.as_str());
        let sent = topic
            .and_then(|t| t["sent_notifications"].as_array().cloned())
            .unwrap_or_default();
        sent.iter()
            .map(|n| {
                let attributes = n[3]
                    .as_object()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v["Value"].as_str().unwrap_or_default().to_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    n[2].as_str().unwrap_or_default().to_owned(),
                    n[1].as_str().unwrap_or_default().to_owned(),
                    attributes,
                )
            })
            .collect()
    }

    pub fn ledger(&self) -> seatcap::ledger::Ledger {
        seatcap::ledger::Ledger::new(self.dynamodb.clone(), &self.table, 400)
    }

    /// Asserts the cut of `principal` is complete: blocked, no intent left, exactly the
    /// managed Bedrock policy recorded as taken.
    pub async fn assert_cut(&self, principal: &PrincipalArn) {
        let state = self
            .ledger()
            .load(principal)
            .await
            .expect("read the state")
            .expect("in the ledger");
        assert_eq!(
            (state.status, state.pending.is_none()),
            (seatcap::state::Status::Blocked, true),
            "{state:?}"
        );
        assert_eq!(
            state.detached_policy_arns,
            vec![self.bedrock_policy_arn.clone()]
        );
    }

    /// The audit filed under `principal`, newest first (a test's whole history).
    pub async fn history(&self, principal: &PrincipalArn) -> Vec<seatcap::audit::AuditEvent> {
        self.ledger()
            .history(&seatcap::ledger::Subject::Principal(principal.clone()), 100)
            .await
            .expect("read the audit")
    }
}

async fn sdk_config(endpoint: &str, key: &str, secret: &str, token: Option<&str>) -> SdkConfig {
    let credentials = aws_sdk_sts::config::Credentials::new(
        key,
        secret,
        token.map(str::to_owned),
        None,
        "seatcap-tests",
    );
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(credentials)
        .load()
        .await
}

/// A managed policy allowing `action` on everything; returns its ARN.
pub async fn create_policy(iam: &aws_sdk_iam::Client, name: &str, action: &str) -> String {
    let document = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
    );
    iam.create_policy()
        .policy_name(name)
        .policy_document(document)
        .send()
        .await
        .expect("create policy")
        .policy
        .and_then(|p| p.arn)
        .expect("a policy ARN")
}

/// Creates the ledger table exactly as `template.yaml` defines it.
pub async fn create_ledger_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    table: &LedgerTable,
) {
    let key = |k: &(String, String)| {
        KeySchemaElement::builder()
            .attribute_name(&k.0)
            .key_type(KeyType::from(k.1.as_str()))
            .build()
            .expect("key schema")
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::from(
            table.billing_mode.as_str(),
        ))
        .set_key_schema(Some(table.key_schema.iter().map(key).collect()));
    for (attribute, kind) in &table.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .expect("attribute definition"),
        );
    }
    for index in &table.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(index.key_schema.iter().map(key).collect()))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection.as_str()))
                        .build(),
                )
                .build()
                .expect("index"),
        );
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("create the ledger table: {}", DisplayErrorContext(&e)));
}

fn rand_u64() -> u64 {
    u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .expect("8 bytes"),
    )
}
