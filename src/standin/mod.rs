//! A stand-in PBX for demos and tests: it speaks the dial APIs of the
//! systems webdial supports, as their public documents describe them, and
//! records every request it receives.
//!
//! - VOIspeed SERI: `GET /PBX/seri_endpoint.php?service=S&token=T&…` for the
//!   user services (`call_request`, `call_action`, `set_user_mode`) and the
//!   extended ones (`call_request_ext`, `call_transfer_ext`,
//!   `call_divert_ext`, `call_recording_ext`, `call_terminate`,
//!   `get_current_calls`), each with its parameters checked; answers
//!   `<result><outcome>0</outcome><request_id>…</request_id></result>`, or
//!   `<outcome>1</outcome><error>reason</error>` (wrong token, missing
//!   parameter, unknown service, or an extension or call id starting with 9:
//!   "connection not found").
//! - voiptech Click2Call: `GET|POST /API/dialup.php` with `user`, `pass`, `org`,
//!   `dial1`, `dial2` (and a future call's `Date`, `Maxretry`, `Retrytime`,
//!   `ident`); answers only with `Response=yes`, in `RFormat`
//!   text|html|xml|json, both legs' ids with `showUID=yes`. `dial1` starting
//!   with 9 fails with "No answer".
//! - IQX-style: `GET|POST /ivr/PbxAPI.aspx?func=make_call` with `from`/`to` in
//!   the query or the form; `OK` or HTTP 400.
//! - 3CX v20 Call Control: `POST /connect/token` issues bearer tokens with
//!   `expires_in`; `POST /callcontrol/{dn}/makecall` and
//!   `…/participants/{id}/{drop|divert|transferto…}` want a live one (else
//!   401) and answer `{finalstatus, reason, reasontext, result}`.
//! - Asterisk AMI over HTTP: `/rawman` (or `/asterisk/rawman`) with
//!   `action=login` setting `mansession_id`, then `originate`/`hangup` on
//!   that session; plain-text `Response:` lines (see `ami`).
//! - Yeastar P-Series: `POST /openapi/v1.0/get_token`, then
//!   `/openapi/v1.0/call/{dial|hangup|transfer}?access_token=…`; JSON
//!   `errcode` in a 200 (see `yeastar`).
//! - Grandstream UCM: `POST /api` with `{"request": {"action": …}}`:
//!   challenge, login, then actions carrying the cookie (see `grandstream_ucm`).
//! - Desk phones, one stand-in per phone (see `snom`, …): their HTTP
//!   command URLs, with Basic or digest admin credentials.
//! - Yeastar S-Series legacy API: `POST /api/v2.0.0/login` (md5 password)
//!   → `token`, then `call/dial`, `call/hangup`… with `?token=`; `status`
//!   Success/Failed and `errno` in a 200 (see `yeastar_s`).
//! - Vodia PBX click-to-dial: `GET /remote_call.htm?user=EXT@DOMAIN&dest=N`
//!   with `auth=USER:PASS` or HTTP Basic; an HTML page (see `vodia`).
//! - baresip's httpd module: `GET /?COMMAND` or `/raw/?COMMAND` (`/dial URI`,
//!   `/hangup`, …), the command's output as the page (see `baresip`).
//! - Asterisk ARI: `POST /ari/channels` (originate), `DELETE
//!   /ari/channels/{id}`, `…/{id}/{dtmf|redirect|hold}`, Basic auth; JSON
//!   Channel or `{"message": …}` with Asterisk's statuses (see `asterisk_ari`).
//! - FreeSWITCH mod_xml_rpc: `GET /api/{originate|uuid_kill|uuid_transfer|
//!   uuid_send_dtmf|uuid_hold}?ARGS`, Basic auth; text `+OK …` / `-ERR …`,
//!   always a 200 (see `freeswitch`).
//! - Wazo Platform: `POST /api/auth/0.1/token` (Basic) for a token, then
//!   `/api/calld/1.0/calls[/{id}[/dtmf|/hold/…]]` with `X-Auth-Token`; pushes
//!   webhookd's call events after a call (see `wazo`).
//! - Kazoo: `PUT /v2/user_auth` (md5 credentials) for a token, then
//!   `/v2/accounts/{id}/{users|devices}/{id}/quickcall/{number}` and
//!   `…/channels/{call_id}` with `X-Auth-Token`; pushes the channel webhooks
//!   after a quickcall (see `kazoo`).
//! - Cloud voice APIs, each with its own paths: Twilio (`twilio`: the Calls
//!   resource, signed status callbacks POSTed to the URL the dial gave);
//!   Telnyx Call Control (`telnyx`: `/v2/calls`, Ed25519-signed webhooks);
//!   Plivo (`plivo`: `/v1/Account/{id}/Call/`, V2-signed ring and hangup
//!   callbacks); RingCentral RingOut (`ringcentral`: JWT-grant login, then
//!   `ring-out` on the bearer token); sipgate io (`sipgate`:
//!   `/v2/sessions/calls` and call manipulation under `/v2/calls/{id}`);
//!   Vonage (`vonage`: `/v1/calls` on a per-request RS256 JWT, checked).
//!
//! - Events: told where ([`StandIn::notify_to`]), it notifies an accepted
//!   VOIspeed `call_request`'s user events (outgoing_call, call_answered,
//!   call_disconnect_out; cmd_failed for a number starting with 8) as the
//!   PBX's integration module would, so a demo dial lives its whole life.
//!   `POST /_standin/ring?ext=E&from=N` plays an incoming call to E: its
//!   incoming_call (8) user event, for the screen-pop page.
//!
//! What it records is what arrived on the wire (method, path, raw query,
//! content type, raw body), so tests assert on exactly what a PBX would see.
//! Tests can replace the answer ([`Behaviour`]) to play a hanging, failing or
//! redirecting PBX. It is not a PBX: nothing rings.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

mod ami;
mod asterisk_ari;
mod baresip;
mod cisco;
mod click2call;
mod desk;
mod fanvil;
mod freeswitch;
mod grandstream_gxp;
mod grandstream_ucm;
mod iqx;
mod kazoo;
mod plivo;
mod poly;
mod ringcentral;
mod sipgate;
mod snom;
mod systems;
mod telnyx;
mod threecx;
mod tls;
mod tokens;
mod twilio;
mod vodia;
mod voispeed;
mod vonage;
mod wazo;
mod yealink;
mod yeastar;
mod yeastar_s;

pub use ami::{PASSWORD as AMI_PASSWORD, Sessions as AmiSessions, USER as AMI_USER};
pub use asterisk_ari::{PASSWORD as ARI_PASSWORD, USER as ARI_USER};
pub use cisco::{PASSWORD as CISCO_PASSWORD, USER as CISCO_USER};
pub use fanvil::{PASSWORD as FANVIL_PASSWORD, USER as FANVIL_USER};
pub use freeswitch::{PASSWORD as FREESWITCH_PASSWORD, USER as FREESWITCH_USER};
pub use grandstream_gxp::PASSWORD as GXP_PASSWORD;
pub use grandstream_ucm::{PASSWORD as UCM_PASSWORD, USER as UCM_USER, UcmCookies};
pub use kazoo::{
    ACCOUNT_ID as KAZOO_ACCOUNT_ID, ACCOUNT_NAME as KAZOO_ACCOUNT_NAME, PASSWORD as KAZOO_PASSWORD, USER as KAZOO_USER,
};
pub use plivo::{AUTH_ID as PLIVO_AUTH_ID, AUTH_TOKEN as PLIVO_AUTH_TOKEN, signature_v2 as plivo_signature_v2};
pub use poly::{PASSWORD as POLY_PASSWORD, USER as POLY_USER};
pub use ringcentral::{
    CLIENT_ID as RINGCENTRAL_CLIENT_ID, CLIENT_SECRET as RINGCENTRAL_SECRET, USER_JWT as RINGCENTRAL_JWT,
};
pub use sipgate::{TOKEN as SIPGATE_TOKEN, TOKEN_ID as SIPGATE_TOKEN_ID};
pub use snom::{PASSWORD as SNOM_PASSWORD, USER as SNOM_USER};
pub use systems::{SYSTEMS, System, find as find_system};
pub use telnyx::{
    API_KEY as TELNYX_API_KEY, CONNECTION_ID as TELNYX_CONNECTION_ID, public_key as telnyx_public_key,
    sign as telnyx_sign,
};
pub use threecx::{CLIENT_ID as THREECX_CLIENT_ID, CLIENT_SECRET as THREECX_SECRET, Tokens};
pub use tokens::{Logins, Tokens as SystemTokens};
pub use twilio::{ACCOUNT_SID as TWILIO_ACCOUNT_SID, AUTH_TOKEN as TWILIO_AUTH_TOKEN, signature as twilio_signature};
pub use vodia::{
    ADMIN as VODIA_ADMIN, ADMIN_PASSWORD as VODIA_ADMIN_PASSWORD, DOMAIN as VODIA_DOMAIN,
    WEB_PASSWORD as VODIA_WEB_PASSWORD,
};
pub use vonage::{APPLICATION_ID as VONAGE_APPLICATION_ID, PRIVATE_KEY as VONAGE_PRIVATE_KEY};
pub use wazo::{PASSWORD as WAZO_PASSWORD, USER as WAZO_USER};
pub use yealink::{PASSWORD as YEALINK_PASSWORD, RemoteControl as YealinkRemoteControl, USER as YEALINK_USER};
pub use yeastar::{CLIENT_ID as YEASTAR_CLIENT_ID, CLIENT_SECRET as YEASTAR_SECRET, YeastarTokens};
pub use yeastar_s::{PASSWORD as YEASTAR_S_PASSWORD, USER as YEASTAR_S_USER};

/// Credentials the stand-in accepts.
pub const SERI_TOKEN: &str = "demo-token";
pub const C2C_USER: &str = "demo";
pub const C2C_PASS: &str = "demo-pass";
pub const C2C_ORG: &str = "demo-org";

/// How many requests are kept (the oldest are dropped).
pub const KEEP: usize = 10_000;

/// One request as received.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The raw query string, as sent (`None` when the URL had no `?`).
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    /// The `Cookie` header, as sent.
    pub cookie: Option<String>,
    /// The `User-Agent` header, as sent.
    pub user_agent: Option<String>,
    /// The raw body.
    pub body: String,
    /// The caller's address: the same one for requests over one kept-alive connection.
    pub peer: SocketAddr,
    /// Every header as sent, names in lower case, in order (for the systems
    /// that take a token in their own header, such as `X-Auth-Token`).
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// Query and form parameters, decoded, in order (query first).
    pub fn params(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
        if self.content_type.as_deref().is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
            out.extend(form_urlencoded::parse(self.body.as_bytes()).into_owned());
        }
        out
    }

    /// The first parameter named `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The first header named `name` (lower case), as sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the stand-in answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer like the real system would.
    #[default]
    Faithful,
    /// Never answer (until the client gives up).
    Hang,
    /// Answer faithfully, after this long.
    Delay(Duration),
    /// Answer this status, content type and body.
    Fixed { status: u16, content_type: String, body: String },
    /// Redirect elsewhere.
    Redirect(String),
    /// Answer `bytes` bytes of text.
    Huge(usize),
    /// Want HTTP digest, as desk phones do: challenge ([`DIGEST_REALM`],
    /// [`DIGEST_NONCE`], qop auth) any request without a correct answer for
    /// `user`/`password` with `401`; answer a correct one faithfully.
    Digest { user: String, password: String },
}

/// The realm and nonce of [`Behaviour::Digest`]'s challenge.
pub const DIGEST_REALM: &str = "standin";
pub const DIGEST_NONCE: &str = "5tand1n-n0nce";

#[derive(Debug, Default)]
struct Shared {
    /// False for benchmarks: answer without recording.
    record: bool,
    /// The one system this stand-in speaks (`None`: all of them).
    only: Option<&'static System>,
    /// Tokens issued by the systems that want a login, by system name.
    logins: Logins,
    received: Mutex<VecDeque<Received>>,
    /// Woken on every recorded request, so tests wait for an arrival instead of sleeping.
    arrived: tokio::sync::Notify,
    behaviour: Mutex<Behaviour>,
    next_id: AtomicU64,
    /// The tokens the 3CX stand-in issued.
    threecx: Tokens,
    /// The AMI stand-in's manager sessions.
    ami: AmiSessions,
    /// The Yeastar P-Series stand-in's tokens.
    yeastar: YeastarTokens,
    /// The Grandstream UCM stand-in's challenges and cookies.
    ucm: UcmCookies,
    /// The Yealink phone's remote-control allowlist.
    yealink: YealinkRemoteControl,
    /// Where to send the PBX's call events, if anywhere.
    notify: Mutex<Option<Notify>>,
}

impl Shared {
    /// A fresh id for a call or request, unique within this stand-in.
    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `events` in order, in the background, if the stand-in has
    /// somewhere to send them (or the event names its own address).
    fn push(&self, events: Vec<Push>) {
        notify(self, events);
    }
}

/// One call event a system pushes, as its integration would.
#[derive(Debug, Clone)]
enum Push {
    /// A GET to the notification URL with these parameters added to its query.
    Query(String),
    /// A POST of `body` to `to` (a URL the dial request gave, as cloud APIs
    /// take a status-callback URL), or to the notification URL when `None`.
    Post { to: Option<String>, content_type: &'static str, body: String, headers: Vec<(String, String)> },
}

/// Where the stand-in sends call events, and how it spaces them.
#[derive(Debug, Clone)]
struct Notify {
    url: String,
    /// Before the first event (the PBX acts on a request after answering
    /// it) and between events.
    pace: Duration,
    client: reqwest::Client,
}

/// A running stand-in.
#[derive(Debug, Clone)]
pub struct StandIn {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// `http`, or `https` for [`StandIn::bind_tls`].
    scheme: &'static str,
}

fn new_shared(record: bool, only: Option<&'static System>) -> Arc<Shared> {
    Arc::new(Shared { record, only, next_id: AtomicU64::new(15652770917203), ..Default::default() })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

impl StandIn {
    /// Starts on `listener`, in the background of the current runtime, recording what it receives.
    pub fn start(listener: tokio::net::TcpListener) -> std::io::Result<StandIn> {
        StandIn::start_with(listener, true)
    }

    /// As [`StandIn::start`]; `record: false` answers without keeping anything (for load tests).
    pub fn start_with(listener: tokio::net::TcpListener, record: bool) -> std::io::Result<StandIn> {
        StandIn::start_system(listener, record, None)
    }

    /// As [`StandIn::start_with`], speaking only `system` when given: the
    /// other systems' paths answer 404, as a real PBX of that kind would.
    pub fn start_system(
        listener: tokio::net::TcpListener,
        record: bool,
        system: Option<&'static System>,
    ) -> std::io::Result<StandIn> {
        let addr = listener.local_addr()?;
        let shared = new_shared(record, system);
        let app = router(shared.clone());
        tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("stand-in PBX stopped: {e}");
            }
        });
        Ok(StandIn { addr, shared, scheme: "http" })
    }

    /// Binds `addr` (port 0 for any) and starts.
    pub async fn bind(addr: &str) -> std::io::Result<StandIn> {
        let addr: SocketAddr = addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        StandIn::start(crate::net::bind(addr)?)
    }

    /// `http://ADDR` (`https://ADDR` for [`StandIn::bind_tls`]).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Everything received so far, oldest first.
    /// Waits until at least `n` requests have arrived, at most `within`;
    /// true if they did.
    pub async fn wait_for_requests(&self, n: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.shared.arrived.notified();
            if self.received().len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.received().len() >= n;
            }
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }

    /// The 3CX stand-in's tokens: expire them, change their lifetime, list them.
    pub fn threecx(&self) -> &Tokens {
        &self.shared.threecx
    }

    /// The AMI stand-in's sessions: kill them, list them.
    pub fn ami(&self) -> &AmiSessions {
        &self.shared.ami
    }

    /// The Yeastar P-Series stand-in's tokens: expire them, list them.
    pub fn yeastar(&self) -> &YeastarTokens {
        &self.shared.yeastar
    }

    /// The Grandstream UCM stand-in's cookies: expire them, list them.
    pub fn ucm(&self) -> &UcmCookies {
        &self.shared.ucm
    }

    /// The Yealink phone's `features.action_uri_limit_ip`.
    pub fn yealink(&self) -> &YealinkRemoteControl {
        &self.shared.yealink
    }

    /// The tokens `system` issued (for the systems that keep theirs in
    /// [`Logins`]): expire them, list them.
    pub fn logins(&self, system: &'static str) -> Arc<SystemTokens> {
        self.shared.logins.of(system)
    }

    /// Sends the PBX's call events to `url` from now on: after each
    /// accepted VOIspeed `call_request`, its user events as GETs to `url`
    /// (the event's parameters added to its query), `pace` apart, the
    /// first `pace` after the answer. A URL that cannot be reached loses
    /// the events (and says so in the log), as with a real PBX.
    pub fn notify_to(&self, url: &str, pace: Duration) {
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("the stand-in cannot send events: {e}");
                return;
            }
        };
        if let Ok(mut n) = self.shared.notify.lock() {
            *n = Some(Notify { url: url.to_string(), pace, client });
        }
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        if let Ok(mut cur) = self.shared.behaviour.lock() {
            *cur = b;
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
    let got = Received {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        content_type: header(header::CONTENT_TYPE),
        authorization: header(header::AUTHORIZATION),
        cookie: header(header::COOKIE),
        user_agent: header(header::USER_AGENT),
        body: String::from_utf8_lossy(&body).into_owned(),
        peer,
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
    };
    if got.path == "/_standin/received" {
        return axum::Json(shared.received.lock().map(|r| r.iter().cloned().collect::<Vec<_>>()).unwrap_or_default())
            .into_response();
    }
    if got.path == "/_standin/ring" {
        return ring(&shared, &got);
    }
    if shared.record
        && let Ok(mut r) = shared.received.lock()
    {
        if r.len() >= KEEP {
            r.pop_front();
        }
        r.push_back(got.clone());
        shared.arrived.notify_waiters();
    }
    let behaviour = shared.behaviour.lock().map(|b| b.clone()).unwrap_or_default();
    match behaviour {
        Behaviour::Faithful => faithful(&shared, &got),
        Behaviour::Delay(d) => {
            tokio::time::sleep(d).await;
            faithful(&shared, &got)
        }
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Behaviour::Fixed { status, content_type, body } => {
            (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), [(header::CONTENT_TYPE, content_type)], body)
                .into_response()
        }
        Behaviour::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)], "").into_response(),
        Behaviour::Huge(n) => ([(header::CONTENT_TYPE, "text/plain")], "x".repeat(n)).into_response(),
        Behaviour::Digest { user, password } if digest_answered(&got, &user, &password) => faithful(&shared, &got),
        Behaviour::Digest { .. } => {
            let challenge = format!(r#"Digest realm="{DIGEST_REALM}", nonce="{DIGEST_NONCE}", qop="auth""#);
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], "").into_response()
        }
    }
}

/// Whether `got` carries the right digest answer to our challenge, for this
/// request's method and URI, computed as the phone would with the password.
pub(super) fn digest_answered(got: &Received, user: &str, password: &str) -> bool {
    let Some(answer) = got.authorization.as_deref().and_then(|a| digest_auth::AuthorizationHeader::parse(a).ok())
    else {
        return false;
    };
    let uri = match &got.query {
        Some(q) => format!("{}?{q}", got.path),
        None => got.path.clone(),
    };
    if answer.username != user || answer.realm != DIGEST_REALM || answer.nonce != DIGEST_NONCE || answer.uri != uri {
        return false;
    }
    let context = digest_auth::AuthContext::new_with_method(
        user,
        password,
        uri.as_str(),
        Some(got.body.as_bytes()),
        digest_auth::HttpMethod::from(got.method.as_str()),
    );
    let mut expected = answer.clone();
    expected.digest(&context);
    expected.response == answer.response
}

fn faithful(shared: &Shared, got: &Received) -> Response {
    let among = match shared.only {
        Some(one) => std::slice::from_ref(one),
        None => SYSTEMS,
    };
    match systems::serving(among, &got.path) {
        Some(system) => (system.answer)(shared, got),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// `/_standin/ring`: an incoming call's event to where events go (not
/// recorded: it is the stand-in being told what to play, not a request to a PBX).
fn ring(shared: &Shared, got: &Received) -> Response {
    let call_id = shared.id();
    let event = match voispeed::ring(got, call_id) {
        Ok(e) => e,
        Err(m) => {
            return (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"ok": false, "message": m})))
                .into_response();
        }
    };
    if shared.notify.lock().ok().and_then(|n| n.clone()).is_none() {
        let m = "the stand-in has nowhere to send events (serve --demo sets it)";
        return (StatusCode::CONFLICT, axum::Json(serde_json::json!({"ok": false, "message": m}))).into_response();
    }
    notify(shared, vec![Push::Query(event)]);
    axum::Json(serde_json::json!({"ok": true, "call_id": call_id.to_string()})).into_response()
}

/// Sends `events` in order, `pace` apart, in the background: a GET for
/// [`Push::Query`], a POST for [`Push::Post`]. Nowhere to send (no
/// notification URL and none in the event) drops them, as a PBX with no
/// integration configured would.
fn notify(shared: &Shared, events: Vec<Push>) {
    if events.is_empty() {
        return;
    }
    let Some(to) = shared.notify.lock().ok().and_then(|n| n.clone()).or_else(|| {
        let named = events.iter().any(|e| matches!(e, Push::Post { to: Some(_), .. }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().ok()?;
        named.then(|| Notify { url: String::new(), pace: Duration::from_millis(200), client })
    }) else {
        return;
    };
    tokio::spawn(async move {
        for event in events {
            tokio::time::sleep(to.pace).await;
            let request = match event {
                Push::Query(query) if !to.url.is_empty() => {
                    let sep = if to.url.contains('?') { '&' } else { '?' };
                    to.client.get(format!("{}{sep}{query}", to.url))
                }
                Push::Query(_) => continue,
                Push::Post { to: url, content_type, body, headers } => {
                    let Some(url) = url.or_else(|| (!to.url.is_empty()).then(|| to.url.clone())) else { continue };
                    let mut r = to.client.post(url).header(header::CONTENT_TYPE, content_type).body(body);
                    for (k, v) in headers {
                        r = r.header(k, v);
                    }
                    r
                }
            };
            match request.send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!("the stand-in's event was answered {}", r.status()),
                Err(e) => tracing::warn!("the stand-in's event was not delivered: {e}"),
            }
        }
    });
}
