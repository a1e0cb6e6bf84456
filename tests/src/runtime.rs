//! A Lambda Runtime API of our own, so tests (and the demo) run the real function binaries
//! exactly as Lambda does: the binary polls `/invocation/next`, posts its response or error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::moto::workspace_root;

/// What an invocation came back with.
#[derive(Debug)]
pub enum Invocation {
    Response(Value),
    /// The function reported an error (Lambda's "function error"): SNS would retry.
    Error(Value),
}

impl Invocation {
    pub fn expect_response(self) -> Value {
        match self {
            Invocation::Response(v) => v,
            Invocation::Error(e) => panic!("expected a response, the function failed: {e}"),
        }
    }
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Invocation>>>>;

#[derive(Clone)]
struct Api {
    next: Arc<tokio::sync::Mutex<mpsc::Receiver<(String, Bytes, Duration)>>>,
    pending: Pending,
    init_error: Arc<Mutex<Option<String>>>,
    /// When the binary first asked for work: the end of its cold start.
    first_poll: Arc<OnceLock<Instant>>,
}

/// A running function binary and the Runtime API it polls.
pub struct Function {
    spawned_at: Instant,
    first_poll: Arc<OnceLock<Instant>>,
    requests: mpsc::Sender<(String, Bytes, Duration)>,
    pending: Pending,
    init_error: Arc<Mutex<Option<String>>>,
    logs: Arc<Mutex<Vec<String>>>,
    child: Child,
}

/// The path of a function binary built by `cargo build --workspace --bins --tests`.
pub fn binary(name: &str) -> PathBuf {
    binary_in("debug", name)
}

/// The path of a binary built under `profile` (`debug` or `release`).
pub fn binary_in(profile: &str, name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let path = target.join(profile).join(name);
    let flag = if profile == "release" {
        " --release"
    } else {
        ""
    };
    assert!(
        path.exists(),
        "{} is missing: build the functions first (cargo build{flag} --workspace --bins)",
        path.display()
    );
    path
}

impl Function {
    /// Starts `binary` with `env` (plus the variables the Lambda runtime itself sets).
    pub async fn start(binary: PathBuf, env: &HashMap<String, String>) -> Function {
        let (requests, receiver) = mpsc::channel(16);
        let pending: Pending = Arc::default();
        let init_error = Arc::new(Mutex::new(None));
        let first_poll = Arc::new(OnceLock::new());
        let api = Api {
            next: Arc::new(tokio::sync::Mutex::new(receiver)),
            pending: pending.clone(),
            init_error: init_error.clone(),
            first_poll: first_poll.clone(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_failed))
            .with_state(api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the runtime API");
        let address = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });

        let name = binary
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("function")
            .to_owned();
        let spawned_at = Instant::now();
        let mut child = Command::new(&binary)
            .env_clear()
            .envs(env)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let logs = Arc::new(Mutex::new(Vec::new()));
        collect_lines(child.stdout.take().expect("piped"), logs.clone());
        collect_lines(child.stderr.take().expect("piped"), logs.clone());
        Function {
            spawned_at,
            first_poll,
            requests,
            pending,
            init_error,
            logs,
            child,
        }
    }

    /// Invokes the function with `payload` (a 30 s timeout) and waits for its answer.
    pub async fn invoke(&self, payload: &Value) -> Invocation {
        self.invoke_within(payload, Duration::from_secs(30)).await
    }

    /// Invokes the function with `payload` and a Lambda timeout of `timeout` (the deadline
    /// the function sees), and waits for its answer a little longer than that.
    pub async fn invoke_within(&self, payload: &Value, timeout: Duration) -> Invocation {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id.clone(), tx);
        self.requests
            .send((id, Bytes::from(payload.to_string()), timeout))
            .await
            .expect("the runtime API is up");
        match tokio::time::timeout(timeout + Duration::from_secs(30), rx).await {
            Ok(Ok(invocation)) => invocation,
            _ => panic!(
                "no answer from the function (init error: {:?}); its log:\n{}",
                self.init_error.lock().expect("lock"),
                self.logs().join("\n")
            ),
        }
    }

    /// Invokes the function and waits for its answer, or for its process to end first (a
    /// test that kills it mid-invocation): `None` then.
    pub async fn invoke_or_die(
        &mut self,
        payload: &Value,
        timeout: Duration,
    ) -> Option<Invocation> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id.clone(), tx);
        self.requests
            .send((id, Bytes::from(payload.to_string()), timeout))
            .await
            .expect("the runtime API is up");
        tokio::select! {
            answer = rx => answer.ok(),
            _ = self.child.wait() => None,
            _ = tokio::time::sleep(timeout + Duration::from_secs(30)) => {
                panic!("neither an answer nor an exit; its log:\n{}", self.logs().join("\n"))
            }
        }
    }

    /// Process start → first poll of the Runtime API: the cold start, once it has happened.
    pub fn init_time(&self) -> Option<Duration> {
        self.first_poll
            .get()
            .map(|t| t.duration_since(self.spawned_at))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// VmHWM: the process's peak resident set so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid().expect("running")))
                .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid().expect("running")))
            .unwrap_or_default();
        // Fields after the `(comm)`; utime and stime are the 14th and 15th fields overall.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // In clock ticks of USER_HZ, 100 per second on Linux.
        Duration::from_millis((field(11) + field(12)) * 10)
    }

    /// Everything the function wrote to stdout and stderr so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("lock").clone()
    }

    /// Waits for the process to end (e.g. after a failed cold start) and returns its log.
    pub async fn wait_for_exit(mut self) -> (Option<i32>, Vec<String>, Option<String>) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .ok()
            .and_then(Result::ok);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let init_error = self.init_error.lock().expect("lock").clone();
        (status.and_then(|s| s.code()), self.logs(), init_error)
    }
}

fn collect_lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    stream: R,
    logs: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            logs.lock().expect("lock").push(line);
        }
    });
}

async fn next(State(api): State<Api>) -> impl IntoResponse {
    api.first_poll.get_or_init(Instant::now);
    let Some((id, body, timeout)) = api.next.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Bytes::new());
    };
    let deadline = (std::time::SystemTime::now() + timeout)
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let mut headers = HeaderMap::new();
    let header = |v: String| HeaderValue::from_str(&v).expect("a header value");
    headers.insert("lambda-runtime-aws-request-id", header(id));
    headers.insert("lambda-runtime-deadline-ms", header(deadline.to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:us-east-1:123456789012:function:local".into()),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        header("Root=1-00000000-000000000000000000000000".into()),
    );
    (StatusCode::OK, headers, body)
}

async fn response(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(
        &api,
        &id,
        Invocation::Response(serde_json::from_slice(&body).unwrap_or(Value::Null)),
    )
}

async fn error(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let error = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    finish(&api, &id, Invocation::Error(error))
}

async fn init_failed(State(api): State<Api>, body: Bytes) -> StatusCode {
    *api.init_error.lock().expect("lock") = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

fn finish(api: &Api, id: &str, invocation: Invocation) -> StatusCode {
    match api.pending.lock().expect("lock").remove(id) {
        Some(tx) => {
            let _ = tx.send(invocation);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

/// Serves the Lambda `Invoke` API on a loopback port for `functions` (by name), so the real
/// `seatcap` CLI (aws-sdk-lambda) reaches the real admin binary, and `GetFunctionUrlConfig`
/// for those of them with a Function URL in `urls`. Returns the endpoint URL.
pub async fn serve_invoke_api(
    functions: HashMap<String, Arc<Function>>,
    urls: HashMap<String, String>,
) -> String {
    let app = Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
        .route("/2021-10-31/functions/{name}/url", get(url_config))
        .with_state(Arc::new(InvokeApi { functions, urls }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the invoke API");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

struct InvokeApi {
    functions: HashMap<String, Arc<Function>>,
    urls: HashMap<String, String>,
}

/// Lambda's answer for a function, or a URL config, that does not exist.
fn not_found(what: String) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_static("ResourceNotFoundException"),
    );
    let body = serde_json::json!({"Type": "User", "Message": what});
    (StatusCode::NOT_FOUND, headers, body.to_string())
}

async fn url_config(
    State(api): State<Arc<InvokeApi>>,
    Path(name): Path<String>,
) -> impl IntoResponse {
    match api.urls.get(&name) {
        Some(url) => {
            let body = serde_json::json!({"FunctionUrl": url, "AuthType": "AWS_IAM",
                "FunctionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
                "CreationTime": "2026-12-01T00:00:00.000+0000",
                "LastModifiedTime": "2026-12-01T00:00:00.000+0000"});
            (StatusCode::OK, HeaderMap::new(), body.to_string())
        }
        None => not_found("The resource you requested does not exist.".into()),
    }
}

async fn invoke_api(
    State(api): State<Arc<InvokeApi>>,
    Path(name): Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    let Some(function) = api.functions.get(&name) else {
        return not_found(format!("Function not found: {name}"));
    };
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match function.invoke(&payload).await {
        Invocation::Response(answer) => (StatusCode::OK, headers, answer.to_string()),
        Invocation::Error(error) => {
            headers.insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            (StatusCode::OK, headers, error.to_string())
        }
    }
}
