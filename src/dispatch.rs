//! Sends a rendered request to a PBX: the only code that talks to one.
//!
//! One shared HTTP client (rustls) keeps connections alive between dials.
//! Redirects are never followed (the answer is read as it is) and nothing is
//! ever retried: a dial that may have reached the PBX must not ring twice.
//! The whole exchange, body included, is bounded by the profile's timeout,
//! and the body by [`MAX_ANSWER`].

use std::time::{Duration, Instant};

use crate::iqx::Method;
use crate::render::Request;
use crate::response::Answer;

/// Largest PBX answer read; a longer one is a bad response.
pub const MAX_ANSWER: usize = 1024 * 1024;

/// Why no answer could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No connection: refused, DNS, TLS. The PBX never saw the request.
    #[error("could not connect to the PBX: {0}")]
    Unreachable(String),
    /// No complete answer within the timeout.
    #[error("the PBX did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke after the request was sent.
    #[error("the PBX closed the connection without a complete answer: {0}")]
    Broken(String),
    #[error("the PBX's answer is larger than {} bytes", MAX_ANSWER)]
    TooLarge,
}

/// The shared client.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    client: reqwest::Client,
}

/// Settings shared by every client the gateway builds.
fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .user_agent(concat!("webdial/", env!("CARGO_PKG_VERSION")))
}

impl Dispatcher {
    pub fn new() -> Result<Self, String> {
        let client = builder()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Dispatcher { client })
    }

    /// Sends `req` once and reads the answer. Returns the answer and the time it took.
    pub async fn send(
        &self,
        req: &Request,
        timeout: Duration,
    ) -> (Result<Answer, SendError>, Duration) {
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, self.exchange(req)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout(timeout)),
        };
        (result, started.elapsed())
    }

    async fn exchange(&self, req: &Request) -> Result<Answer, SendError> {
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
        };
        let mut builder = self.client.request(method, req.url.clone());
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let mut resp = builder.send().await.map_err(classify)?;
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let location = header(reqwest::header::LOCATION);
        let http_status = resp.status().as_u16();
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
            return Err(SendError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| SendError::Broken(chain(&e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(SendError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            http_status,
            content_type,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

fn classify(e: reqwest::Error) -> SendError {
    if e.is_connect() {
        SendError::Unreachable(chain(&e.without_url()))
    } else {
        SendError::Broken(chain(&e.without_url()))
    }
}

/// An error and its causes on one line ("error sending request: connection refused").
/// URLs are left out: they may carry a token.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
