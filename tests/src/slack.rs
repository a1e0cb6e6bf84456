//! A local Slack incoming-webhook receiver: records what it is sent and answers as scripted
//! (200 `ok` by default; 500, 429 or 400 `invalid_payload` when a test asks for them).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

#[derive(Clone, Default)]
struct Inner {
    received: Arc<Mutex<Vec<Value>>>,
    answer: Arc<Mutex<(u16, String, Option<u64>)>>,
}

pub struct SlackReceiver {
    pub url: String,
    inner: Inner,
}

impl SlackReceiver {
    pub async fn start() -> SlackReceiver {
        let inner = Inner {
            answer: Arc::new(Mutex::new((200, "ok".into(), None))),
            ..Inner::default()
        };
        let app = Router::new()
            .route("/services/T000/B000/SECRET", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Slack receiver");
        let url = format!(
            "http://{}/services/T000/B000/SECRET",
            listener.local_addr().expect("local addr")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        SlackReceiver { url, inner }
    }

    /// From now on, answer every message with `status` and `body`.
    pub fn answer_with(&self, status: u16, body: &str) {
        *self.inner.answer.lock().expect("lock") = (status, body.to_owned(), None);
    }

    /// From now on, answer every message with 429 `rate_limited` and `Retry-After: seconds`.
    pub fn rate_limit(&self, seconds: u64) {
        *self.inner.answer.lock().expect("lock") = (429, "rate_limited".into(), Some(seconds));
    }

    pub fn received(&self) -> Vec<Value> {
        self.inner.received.lock().expect("lock").clone()
    }
}

async fn receive(State(inner): State<Inner>, body: String) -> Response {
    let payload = serde_json::from_str(&body).unwrap_or(Value::String(body));
    inner.received.lock().expect("lock").push(payload);
    let (status, body, retry_after) = inner.answer.lock().expect("lock").clone();
    let mut response =
        (StatusCode::from_u16(status).expect("a valid status"), body).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
