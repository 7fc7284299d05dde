//! `webdial watch`: a client of a running gateway's event stream
//! (`GET /v1/events`), printing one line per call event, for an admin
//! checking that a PBX's notifications arrive and are read as meant.
//!
//! It reconnects when the stream ends or the gateway restarts, with
//! `Last-Event-ID`, so nothing still in the gateway's replay ring is missed
//! and nothing is printed twice. A refusal (no key, a key that may not see
//! the branch) is final: retrying would not change it.

use std::io::Write;
use std::time::Duration;

use crate::events::{CallEvent, Direction};

/// What to watch, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gateway, `http://host:port`.
    pub url: String,
    pub key: Option<String>,
    pub branch: Option<String>,
    pub extension: Option<String>,
}

/// The longest wait between two attempts to reach the gateway.
pub const MAX_RETRY: Duration = Duration::from_secs(10);

/// Prints events to `out` until the stream is refused (an error) or the
/// caller stops waiting (it runs until then: wrap it in a select).
pub async fn run(options: &Options, out: &mut (dyn Write + Send)) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(b) = &options.branch {
        query.append_pair("branch", b);
    }
    if let Some(x) = &options.extension {
        query.append_pair("extension", x);
    }
    let url = format!("{}/v1/events?{}", options.url.trim_end_matches('/'), query.finish());
    let mut last: Option<String> = None;
    let mut retry = Duration::from_millis(500);
    loop {
        let mut req = client.get(&url).header("accept", "text/event-stream");
        if let Some(k) = &options.key {
            req = req.bearer_auth(k);
        }
        if let Some(id) = &last {
            req = req.header("last-event-id", id.as_str());
        }
        match req.send().await {
            Err(e) => eprintln!("webdial watch: cannot reach {}: {e}; trying again in {retry:?}", options.url),
            Ok(resp) if resp.status().is_success() => {
                retry = Duration::from_millis(500);
                read_stream(resp, &mut last, out).await;
                eprintln!("webdial watch: the stream ended; reconnecting");
            }
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
                    .unwrap_or(body);
                return Err(format!("{url}: HTTP {status}: {message}"));
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// Reads one connection's events until it ends, printing each and
/// remembering the last id.
async fn read_stream(mut resp: reqwest::Response, last: &mut Option<String>, out: &mut (dyn Write + Send)) {
    let mut buf = String::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut id, mut data) = (None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue;
            }
            if id.is_some() {
                *last = id;
            }
            let line = match serde_json::from_str::<CallEvent>(&data) {
                Ok(event) => line(&event),
                Err(_) => data,
            };
            // A closed stdout (piped into `head`) ends the watch.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return;
            }
        }
    }
}

/// One event as a line: when, branch, extension, what, which way, the
/// other party, and the ids that tie it to a call and a dial.
pub fn line(e: &CallEvent) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let way = match e.direction {
        Some(Direction::In) => "←",
        Some(Direction::Out) => "→",
        None => "·",
    };
    format!(
        "{} {} {} {} {} {} call={} dial={}",
        e.at,
        e.branch,
        dash(&e.extension),
        e.kind.as_str(),
        way,
        dash(&e.remote),
        dash(&e.call_id),
        dash(&e.dial_id)
    )
}
