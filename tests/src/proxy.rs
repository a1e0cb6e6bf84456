//! A TCP proxy in front of the emulator that counts the HTTP requests passing through it:
//! the benchmark's count of AWS calls, taken outside the binary under test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct CountingProxy {
    pub url: String,
    requests: Arc<AtomicUsize>,
    write_units: Arc<AtomicUsize>,
}

/// What one occurrence in a request costs in DynamoDB write units, for items of at most
/// 1 KB (metering's claims and counters are): a single write 1, an item of a transaction 2.
const WRITES: [(&str, usize); 7] = [
    ("x-amz-target: dynamodb_20120810.putitem", 1),
    ("x-amz-target: dynamodb_20120810.updateitem", 1),
    ("x-amz-target: dynamodb_20120810.deleteitem", 1),
    ("{\"put\":{", 2),
    ("{\"update\":{", 2),
    ("{\"delete\":{", 2),
    ("{\"conditioncheck\":{", 2),
];
const HOST: &str = "\r\nhost:";

impl CountingProxy {
    /// Forwards 127.0.0.1:<free port> to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let requests = Arc::new(AtomicUsize::new(0));
        let write_units = Arc::new(AtomicUsize::new(0));
        let counters = (requests.clone(), write_units.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, counters) = (upstream.clone(), counters.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, counters).await;
                    }
                });
            }
        });
        CountingProxy {
            url,
            requests,
            write_units,
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// DynamoDB write units the requests so far consumed, counted from their bodies.
    pub fn write_units(&self) -> usize {
        self.write_units.load(Ordering::SeqCst)
    }
}

/// Copies both ways; counts each request by its `Host:` header (one per HTTP/1.1 request;
/// the SDK's JSON and query bodies never contain a raw CRLF), and DynamoDB's writes.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    (counter, write_units): (Arc<AtomicUsize>, Arc<AtomicUsize>),
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Keep the previous chunk's last bytes, one fewer than the longest needle, so a
            // needle split across reads counts once and one left whole is not counted again.
            tail.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&tail).to_ascii_lowercase();
            counter.fetch_add(text.matches(HOST).count(), Ordering::SeqCst);
            let units: usize = WRITES
                .iter()
                .map(|(needle, units)| text.matches(needle).count() * units)
                .sum();
            write_units.fetch_add(units, Ordering::SeqCst);
            let longest = WRITES.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            let keep = tail.len().min(longest.max(HOST.len()) - 1);
            tail.drain(..tail.len() - keep);
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// An HTTP proxy in front of the emulator that answers the first `times` attempts of each
/// distinct request matching `needle` itself, with IAM's `Throttling: Rate exceeded` (400),
/// and forwards everything else. A retry carries the same body, so every matching call is
/// throttled exactly `times` times before it goes through: deterministic, whatever the
/// order of concurrent calls. One request per connection (`Connection: close` both ways).
pub struct ThrottlingProxy {
    pub url: String,
    throttled: Arc<AtomicUsize>,
}

impl ThrottlingProxy {
    pub async fn start(upstream: String, needle: &'static str, times: usize) -> ThrottlingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let throttled = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
            Vec<u8>,
            usize,
        >::new()));
        let counter = throttled.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (upstream, counter, seen) = (upstream.clone(), counter.clone(), seen.clone());
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut client).await else {
                        return;
                    };
                    let throttle = String::from_utf8_lossy(&body).contains(needle) && {
                        let mut seen = seen.lock().expect("no panics while held");
                        let attempts = seen.entry(body.clone()).or_default();
                        *attempts += 1;
                        *attempts <= times
                    };
                    let response = if throttle {
                        counter.fetch_add(1, Ordering::SeqCst);
                        throttling_response()
                    } else {
                        match forward(&upstream, &head, &body).await {
                            Some(response) => response,
                            None => return,
                        }
                    };
                    let _ = client.write_all(&response).await;
                    let _ = client.shutdown().await;
                });
            }
        });
        ThrottlingProxy { url, throttled }
    }

    /// How many requests were answered with a throttling error.
    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::SeqCst)
    }
}

/// One request: its head (with `Connection: close`) and its body, by `Content-Length`.
async fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = client.read(&mut buffer).await.ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut buffer).await.ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&buffer[..n]);
    }
    Some((with_connection_close(&head), body))
}

/// A message head with any `Connection` header replaced by `Connection: close`.
fn with_connection_close(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|line| {
            !line
                .split_once(':')
                .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    lines.push("Connection: close");
    lines.join("\r\n")
}

async fn forward(upstream: &str, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await.ok()?;
    server.write_all(head.as_bytes()).await.ok()?;
    server.write_all(b"\r\n\r\n").await.ok()?;
    server.write_all(body).await.ok()?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await.ok()?;
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = with_connection_close(&String::from_utf8_lossy(&response[..head_end]));
    let mut rewritten = head.into_bytes();
    rewritten.extend_from_slice(&response[head_end..]);
    Some(rewritten)
}

/// IAM's answer under load (query protocol, as ../shared/fixtures describes it).
fn throttling_response() -> Vec<u8> {
    let body = "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
        <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>\
        <RequestId>5f1c4e4b-throttle</RequestId></ErrorResponse>";
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An HTTP proxy that kills a process right after the emulator has answered a request:
/// the crash between an IAM call and the ledger that only a real process death shows. The
/// first request whose body contains `needle` is forwarded, its answer read, then the
/// process whose pid is in `victim` is killed (SIGKILL) and the answer never delivered.
/// Everything else, before and after, is forwarded as is.
pub struct KillingProxy {
    pub url: String,
    fired: Arc<std::sync::atomic::AtomicBool>,
}

impl KillingProxy {
    pub async fn start(
        upstream: String,
        needle: String,
        victim: Arc<std::sync::Mutex<Option<u32>>>,
    ) -> KillingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = fired.clone();
        let needle = Arc::new(needle);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (upstream, flag, victim, needle) = (
                    upstream.clone(),
                    flag.clone(),
                    victim.clone(),
                    needle.clone(),
                );
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut client).await else {
                        return;
                    };
                    let Some(response) = forward(&upstream, &head, &body).await else {
                        return;
                    };
                    let matches = String::from_utf8_lossy(&body).contains(needle.as_str());
                    if matches && !flag.swap(true, Ordering::SeqCst) {
                        let pid = *victim.lock().expect("no panics while held");
                        if let Some(pid) = pid {
                            let _ = std::process::Command::new("kill")
                                .args(["-9", &pid.to_string()])
                                .status();
                        }
                        return;
                    }
                    let _ = client.write_all(&response).await;
                    let _ = client.shutdown().await;
                });
            }
        });
        KillingProxy { url, fired }
    }

    /// Whether the process was killed.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

/// An HTTP proxy that holds the first request whose body contains `needle` until the test
/// lets it go (a writer delayed past its lease), and forwards everything else at once.
pub struct HoldingProxy {
    pub url: String,
    held: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl HoldingProxy {
    pub async fn start(upstream: String, needle: String) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let held = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Notify::new());
        let taken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (on_hold, on_release) = (held.clone(), release.clone());
        let needle = Arc::new(needle);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (upstream, on_hold, on_release, taken, needle) = (
                    upstream.clone(),
                    on_hold.clone(),
                    on_release.clone(),
                    taken.clone(),
                    needle.clone(),
                );
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut client).await else {
                        return;
                    };
                    let matches = String::from_utf8_lossy(&body).contains(needle.as_str());
                    if matches && !taken.swap(true, Ordering::SeqCst) {
                        on_hold.notify_one();
                        on_release.notified().await;
                    }
                    if let Some(response) = forward(&upstream, &head, &body).await {
                        let _ = client.write_all(&response).await;
                    }
                    let _ = client.shutdown().await;
                });
            }
        });
        HoldingProxy { url, held, release }
    }

    /// Waits until the request is being held.
    pub async fn holding(&self) {
        self.held.notified().await;
    }

    /// Lets the held request through.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

/// IAM as AWS runs it, in front of the emulator: the roles IAM Identity Center makes are
/// protected, and IAM answers every write to one (attach, detach, put or delete a role
/// policy, boundaries, trust, tags, the role itself) with HTTP 400 `UnmodifiableEntity:
/// Cannot perform the operation on the protected role '<name>' - this role is only
/// modifiable by AWS` (AWS re:Post knowledge center "identity-center-aws-reserved-sso";
/// the same answer quoted in perkbox/cloud-access-bot#11 and sassoftware/viya4-iac-aws#385).
/// moto does not protect them, so without this no test could see a write that AWS refuses.
/// Reads pass, and so does everything else. Identity Center's roles are known by their
/// names (`AWSReservedSSO_...`: it names every role it makes so, at
/// `/aws-reserved/sso.amazonaws.com/`). One request per connection.
///
/// It runs on a thread of its own, so a test that blocks its own runtime (waiting on a
/// function binary) never stalls the binary's AWS calls through it.
#[derive(Clone)]
pub struct ProtectedRoles {
    pub url: String,
    refused: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

/// The IAM actions that change a role; IAM refuses each on a protected role.
const ROLE_WRITES: [&str; 12] = [
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "UpdateAssumeRolePolicy",
    "UpdateRole",
    "UpdateRoleDescription",
    "TagRole",
    "UntagRole",
    "DeleteRole",
];

impl ProtectedRoles {
    /// In front of `upstream` (`host:port`).
    pub fn start(upstream: String) -> ProtectedRoles {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let refused = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let counts = refused.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("the proxy's runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("a tokio listener");
                while let Ok((mut client, _)) = listener.accept().await {
                    let (upstream, counts) = (upstream.clone(), counts.clone());
                    tokio::spawn(async move {
                        let Some((head, body)) = read_request(&mut client).await else {
                            return;
                        };
                        let response = match protected_role_write(&body) {
                            Some(role) => {
                                *counts
                                    .lock()
                                    .expect("no panics while held")
                                    .entry(role.clone())
                                    .or_default() += 1;
                                unmodifiable_response(&role)
                            }
                            None => match forward(&upstream, &head, &body).await {
                                Some(response) => response,
                                None => return,
                            },
                        };
                        let _ = client.write_all(&response).await;
                        let _ = client.shutdown().await;
                    });
                }
            });
        });
        ProtectedRoles { url, refused }
    }

    /// How many writes to `role` were refused.
    pub fn refused(&self, role: &str) -> usize {
        self.refused
            .lock()
            .expect("no panics while held")
            .get(role)
            .copied()
            .unwrap_or(0)
    }
}

/// The protected role an IAM query-protocol request would change, if it is one.
fn protected_role_write(body: &[u8]) -> Option<String> {
    let body = String::from_utf8_lossy(body);
    let field = |name: &str| {
        body.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| percent_decode(value))
        })
    };
    let action = field("Action")?;
    let role = field("RoleName")?;
    (ROLE_WRITES.contains(&action.as_str()) && role.starts_with("AWSReservedSSO_")).then_some(role)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// IAM's answer to a write to a protected role (query protocol).
fn unmodifiable_response(role: &str) -> Vec<u8> {
    let body = format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
        <Error><Type>Sender</Type><Code>UnmodifiableEntity</Code>\
        <Message>Cannot perform the operation on the protected role '{role}' - this role is only modifiable by AWS</Message></Error>\
        <RequestId>7a62c49f-unmodifiable</RequestId></ErrorResponse>"
    );
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
