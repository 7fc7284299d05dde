//! Spawning a gateway with given profiles in front of a stand-in PBX.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use webdial::standin::{Received, StandIn};

pub struct App {
    pub url: String,
    pub pbx: StandIn,
    pub client: reqwest::Client,
    /// The gateway being served (to reload it, read its metrics, wait for its reloads).
    pub gw: std::sync::Arc<webdial::call::Gateway>,
    /// Kept so the profiles outlive the gateway.
    _dir: tempfile::TempDir,
}

/// The repository's shipped presets, so tests exercise what users get.
pub fn presets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/presets")
}

/// Writes a config dir: `profiles/NAME.yaml` for each (name, yaml) with
/// `PBXHOST` replaced by the stand-in's host:port and a URL-leading `PBX` by its URL, plus the shipped presets.
pub fn write_config(pbx_url: &str, profiles: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let pdir = dir.path().join("profiles");
    std::fs::create_dir_all(pdir.join("presets")).expect("mkdir");
    for entry in std::fs::read_dir(presets_dir()).expect("presets") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), pdir.join("presets").join(entry.file_name())).expect("copy preset");
    }
    let host = pbx_url.trim_start_matches("http://");
    for (name, yaml) in profiles {
        // `PBX` only where a URL starts (after a quote or an IQX `{METHOD}`),
        // so a path such as `/PBX/seri_endpoint.php` stays as written.
        let text = yaml
            .replace("PBXHOST", host)
            .replace("\"PBX/", &format!("\"{pbx_url}/"))
            .replace("}PBX/", &format!("}}{pbx_url}/"));
        std::fs::write(pdir.join(format!("{name}.yaml")), text).expect("write profile");
    }
    std::fs::write(dir.path().join("webdial.yaml"), "listen: 127.0.0.1:0\nprofiles: profiles\n").expect("write config");
    dir
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Starts a stand-in PBX and a gateway serving `profiles`.
pub async fn spawn(profiles: &[(&str, &str)]) -> App {
    spawn_with_env(profiles, &[]).await
}

/// As [`spawn`], with `${NAME}` in profiles read from `env` instead of the process environment.
pub async fn spawn_with_env(profiles: &[(&str, &str)], env: &[(&str, &str)]) -> App {
    spawn_with(profiles, env, |_| {}).await
}

/// As [`spawn`], with settings (keys, duplicate window) changed by `settings`.
pub async fn spawn_with(
    profiles: &[(&str, &str)],
    env: &[(&str, &str)],
    settings: impl FnOnce(&mut webdial::settings::Settings),
) -> App {
    spawn_configured(profiles, env, "", settings).await
}

/// As [`spawn_with`], with `extra` (YAML lines) added to `webdial.yaml`.
pub async fn spawn_configured(
    profiles: &[(&str, &str)],
    env: &[(&str, &str)],
    extra: &str,
    settings: impl FnOnce(&mut webdial::settings::Settings),
) -> App {
    let pbx = StandIn::bind("127.0.0.1:0").await.expect("stand-in");
    let dir = write_config(&pbx.url(), profiles);
    if !extra.is_empty() {
        let file = dir.path().join("webdial.yaml");
        let text = std::fs::read_to_string(&file).expect("read config");
        std::fs::write(&file, format!("{text}{extra}")).expect("write config");
    }
    let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    let loaded = webdial::app::load(&dir.path().join("webdial.yaml"), true, &lookup);
    assert!(loaded.diagnostics.is_empty(), "profiles must load: {:?}", loaded.diagnostics);
    let mut s = loaded.settings.expect("settings");
    settings(&mut s);
    let gw = webdial::app::build(s, loaded.profiles).expect("gateway");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(webdial::app::serve(gw.clone(), listener, std::future::pending(), Duration::from_secs(1)));
    App { url, pbx, client: reqwest::Client::new(), gw, _dir: dir }
}

/// A VOIspeed branch on the stand-in.
pub const VOISPEED: &str = "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: demo-token}\n";
/// A Click2Call branch on the stand-in.
pub const CLICK2CALL: &str = "extends: presets/click2call.yaml\nvars: {scheme: http, host: PBXHOST, user: demo, pass: demo-pass, org: demo-org}\n";

impl App {
    pub async fn post(&self, body: Value) -> (u16, Value) {
        let resp = self.client.post(format!("{}/v1/dial", self.url)).json(&body).send().await.expect("post");
        read(resp).await
    }

    pub async fn get(&self, query: &str) -> (u16, Value) {
        let resp = self.client.get(format!("{}/v1/dial?{query}", self.url)).send().await.expect("get");
        read(resp).await
    }

    /// The folder holding `webdial.yaml` and `profiles/`.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub fn received(&self) -> Vec<Received> {
        self.pbx.received()
    }

    /// The single request the PBX received (fails if it got none or several).
    pub fn only_request(&self) -> Received {
        let got = self.received();
        assert_eq!(got.len(), 1, "the PBX must receive exactly one request: {got:#?}");
        got.into_iter().next().expect("one request")
    }
}

pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = resp.text().await.expect("body");
    assert!(ct.starts_with("application/json"), "every answer is JSON, got {ct}: {text}");
    (status, serde_json::from_str(&text).expect("JSON body"))
}

/// A server-sent event stream read by a test, one event at a time.
pub struct Events {
    resp: reqwest::Response,
    buf: String,
}

/// One server-sent event: its `event:` name, `id:` and the JSON in `data:`.
#[derive(Debug, Clone)]
pub struct Sent {
    pub name: String,
    pub id: String,
    pub data: Value,
}

impl From<reqwest::Response> for Events {
    /// Reads any server-sent event stream (`/v1/events`, `/v1/pop`).
    fn from(resp: reqwest::Response) -> Self {
        Events { resp, buf: String::new() }
    }
}

impl Events {
    /// The next event, or `None` if none comes within `within` or the stream ends.
    pub async fn next(&mut self, within: Duration) -> Option<Sent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(Sent { name, id, data: serde_json::from_str(&data).expect("event JSON") });
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

impl App {
    /// Opens `GET /v1/events?QUERY`, with `Last-Event-ID` when given; panics unless it is a stream.
    pub async fn events(&self, query: &str, last_id: Option<&str>) -> Events {
        let mut req = self.client.get(format!("{}/v1/events?{query}", self.url));
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.expect("events");
        assert_eq!(resp.status().as_u16(), 200, "the event stream opens");
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Events { resp, buf: String::new() }
    }

    /// A PBX's notification: `GET /v1/events/PATH` (PATH holds the branch, any path after it and the query).
    pub async fn notify_get(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(format!("{}/v1/events/{path}", self.url)).send().await.expect("notify");
        read(resp).await
    }

    /// A PBX's notification: `POST /v1/events/PATH` with this content type, body and headers.
    pub async fn notify_post(&self, path: &str, ct: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self.client.post(format!("{}/v1/events/{path}", self.url)).header("content-type", ct);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.body(body.to_string()).send().await.expect("notify");
        read(resp).await
    }
}

// ---- What the preset and login tests share ---------------------------------

/// A dial for branch `x`, the branch the preset and login tests serve.
pub fn dial(ext: &str, number: &str) -> Value {
    serde_json::json!({"branch": "x", "extension": ext, "number": number})
}

/// `POST /v1/actions/ACTION` with `body`.
pub async fn action(app: &App, action: &str, body: Value) -> (u16, Value) {
    read(app.client.post(format!("{}/v1/actions/{action}", app.url)).json(&body).send().await.expect("action")).await
}

/// The query parameters the PBX received, decoded, in order (no form fields).
pub fn query(r: &Received) -> Vec<(String, String)> {
    form_urlencoded::parse(r.query.as_deref().unwrap_or("").as_bytes()).into_owned().collect()
}

/// The first query parameter named `name` (no form fields).
pub fn param(r: &Received, name: &str) -> Option<String> {
    query(r).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Owned pairs, to compare with [`query`].
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `Basic base64(user:password)`, as a system wanting Basic auth checks it.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// Loads each `(name, yaml)` as `NAME.yaml` in a folder of its own: how
/// many loaded, and every problem as `FILE:LINE:COL: message`.
pub fn load_each(files: &[(&str, String)]) -> (usize, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(format!("{name}.yaml")), text).expect("write profile");
    }
    let no_env = |_: &str| None;
    let (loaded, diags) = webdial::profile::Loader::new(&no_env).load_dir(dir.path());
    (loaded.len(), diags.iter().map(|d| d.to_string()).collect())
}

/// The problem reported for `FILE.yaml` among `shown` (failing if none).
pub fn problem_in(shown: &[String], file: &str) -> String {
    shown.iter().find(|d| d.contains(&format!("/{file}.yaml:"))).cloned().unwrap_or_else(|| panic!("{shown:#?}"))
}
