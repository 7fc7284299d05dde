//! Sends a rendered request to a PBX: the only code that talks to one.
//!
//! One shared HTTP client (rustls) keeps connections alive between dials;
//! branches with their own TLS settings (`verify: false`, `ca:`, `pin:`)
//! get one client per distinct setting, built on the first dial that needs
//! it and kept (clients are runtime state: profiles loaded later, by a
//! reload, get theirs the same way). Redirects are never
//! followed (the answer is read as it is) and nothing is ever retried: a
//! dial that may have reached the PBX must not ring twice. The one second
//! request is HTTP digest's: a `401` challenge means the PBX refused the
//! first one unread, and the answer to the challenge is sent once.
//! The whole exchange, body included, is bounded by the profile's timeout,
//! and the body by [`MAX_ANSWER`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::pbx::answer::Answer;
use crate::pbx::tls::Tls;
use crate::syntax::iqx::Method;
use crate::template::Request;

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

/// The shared clients, one per TLS setting, built when first needed.
///
/// A setting whose client cannot be built makes that dial `unreachable`
/// with the reason; it never falls back to another client, which would
/// check the PBX's certificate differently than its profile says. Clones
/// share the pool.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    clients: Arc<Mutex<HashMap<Tls, reqwest::Client>>>,
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

/// A client that checks certificates as `tls` says.
fn build_client(tls: &Tls) -> Result<reqwest::Client, String> {
    let b = match (tls, tls.client_config()) {
        (_, Some(config)) => builder().tls_backend_preconfigured(config?),
        (Tls::NoVerify, None) => builder().tls_danger_accept_invalid_certs(true),
        (_, None) => builder(),
    };
    b.build().map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))
}

impl Dispatcher {
    /// The pool, with the default client (the system's roots) built now, so
    /// a machine whose TLS setup is broken fails at start-up.
    pub fn new() -> Result<Self, String> {
        let client = build_client(&Tls::Verify)?;
        Ok(Dispatcher { clients: Arc::new(Mutex::new(HashMap::from([(Tls::Verify, client)]))) })
    }

    /// The client for `tls`, built on first use. Two dials racing to build
    /// the same one may both build it; one is kept (a client is only a handle).
    pub fn client(&self, tls: &Tls) -> Result<reqwest::Client, String> {
        // The lock is never held across a panic-prone call, so a poisoned map is still whole.
        if let Some(c) = self.clients.lock().unwrap_or_else(PoisonError::into_inner).get(tls) {
            return Ok(c.clone());
        }
        let built = build_client(tls)?;
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(clients.entry(tls.clone()).or_insert(built).clone())
    }

    /// How many clients the pool holds (one per TLS setting dialled so far).
    pub fn client_count(&self) -> usize {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Sends `req` once and reads the answer. Returns the answer and the time it took.
    pub async fn send(&self, req: &Request, timeout: Duration, tls: &Tls) -> (Result<Answer, SendError>, Duration) {
        let started = Instant::now();
        let client = match self.client(tls) {
            Ok(c) => c,
            Err(e) => return (Err(SendError::Unreachable(e)), started.elapsed()),
        };
        let result = match tokio::time::timeout(timeout, exchange(&client, req)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout(timeout)),
        };
        (result, started.elapsed())
    }
}

fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Delete => reqwest::Method::DELETE,
    }
}

fn build(client: &reqwest::Client, req: &Request, authorization: Option<String>) -> reqwest::RequestBuilder {
    let mut builder = client.request(method(req.method), req.url.clone());
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    if let Some(a) = authorization {
        builder = builder.header(reqwest::header::AUTHORIZATION, a);
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    builder
}

async fn exchange(client: &reqwest::Client, req: &Request) -> Result<Answer, SendError> {
    let mut resp = build(client, req, None).send().await.map_err(classify)?;
    if let Some((user, password)) = &req.digest {
        if let Some(authorization) = digest_answer(&resp, req, user, password) {
            // The PBX refused the first request unread; answer its challenge once.
            resp = build(client, req, Some(authorization)).send().await.map_err(classify)?;
        }
    }
    read(resp).await
}

/// The `Authorization` answering a digest challenge, if `resp` is one.
fn digest_answer(resp: &reqwest::Response, req: &Request, user: &str, password: &str) -> Option<String> {
    if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
        return None;
    }
    let challenge = resp
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.trim_start().to_ascii_lowercase().starts_with("digest"))?;
    let mut prompt = digest_auth::parse(challenge).ok()?;
    let uri = match req.url.query() {
        Some(q) => format!("{}?{q}", req.url.path()),
        None => req.url.path().to_string(),
    };
    let body = req.body.as_deref().map(str::as_bytes);
    let context = digest_auth::AuthContext::new_with_method(
        user,
        password,
        uri,
        body,
        digest_auth::HttpMethod::from(req.method.as_str()),
    );
    prompt.respond(&context).ok().map(|h| h.to_header_string())
}

async fn read(mut resp: reqwest::Response) -> Result<Answer, SendError> {
    {
        let header = |name: reqwest::header::HeaderName| {
            resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let location = header(reqwest::header::LOCATION);
        let http_status = resp.status().as_u16();
        // Names are lower-case already (the http crate keeps them so).
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect();
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
            return Err(SendError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| SendError::Broken(chain(&e.without_url())))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(SendError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { http_status, content_type, location, headers, body: String::from_utf8_lossy(&body).into_owned() })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pbx::tls::Fingerprint;

    #[test]
    fn a_tls_setting_never_seen_before_gets_its_own_client() {
        let d = Dispatcher::new().unwrap();
        assert_eq!(d.client_count(), 1, "the default client is built up front");
        let pinned = Tls::Pin(Fingerprint([7; 32]));
        d.client(&pinned).unwrap();
        d.client(&Tls::NoVerify).unwrap();
        assert_eq!(d.client_count(), 3, "each new setting is built, not served by the default client");
        d.client(&pinned).unwrap();
        d.clone().client(&Tls::Pin(Fingerprint([7; 32]))).unwrap();
        assert_eq!(d.client_count(), 3, "an equal setting reuses its client, also through a clone");
    }

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_with_the_reason_not_the_default_client() {
        // Tls::ca checks the file at load; a value made around it reaches the pool unchecked.
        let broken = Tls::Ca { path: "gone.pem".into(), pem: b"no certificate here".to_vec() };
        let d = Dispatcher::new().unwrap();
        let why = d.client(&broken).unwrap_err();
        assert!(why.contains("gone.pem") && why.contains("no PEM certificate"), "{why}");
        assert_eq!(d.client_count(), 1, "nothing was put in its place");
    }
}
