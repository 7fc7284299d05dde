//! The pages in a real browser: headless Chromium driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`) with
//! fantoccini, against the real gateway and the stand-in PBX.
//!
//! Each test opens its own [`Browser`]: a chromedriver on a free loopback
//! port, one Chromium session with a fresh profile, killed (the whole
//! process group) when the test ends, passed or not. Browser tests take
//! turns ([`TURN`]): one Chromium at a time on a small machine, and no test
//! times out because another's browser was starting. Every wait is bounded
//! ([`WAIT`]) and says what it waited for.
//!
//! Without chromedriver the tests fail, saying how to install it, unless
//! `WEBDIAL_SKIP_BROWSER=1` is set. With `WEBDIAL_SCREENSHOTS=DIR` the
//! admin and call tests write `DIR/admin.png` and `DIR/call.png` (the
//! README's screenshots: `WEBDIAL_SCREENSHOTS=docs/screenshots cargo test
//! --test it browser::`).

mod admin;
mod call;
mod keys;
mod pop;
mod script;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long any one thing in a browser test may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// One browser test at a time (see the module's doc).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const INSTALL: &str = "the browser tests need Chromium and chromedriver: `apt-get install chromium chromium-driver` \
     (or set CHROMEDRIVER and CHROME to their paths); WEBDIAL_SKIP_BROWSER=1 skips these tests";

/// A chromedriver we started, in its own process group with the Chromium it starts.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(path: &PathBuf) -> Driver {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(path)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL}", path.display()));
        let out = child.stdout.take().expect("chromedriver's stdout");
        let (tx, rx) = mpsc::channel();
        // Reads chromedriver's banner for its port, then drains the rest so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(port) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(port.trim_end_matches('.').trim().parse::<u16>().ok());
                }
            }
        });
        let mut driver = Driver { child, port: 0 };
        match rx.recv_timeout(WAIT) {
            Ok(Some(port)) => driver.port = port,
            other => panic!("chromedriver did not say its port within {WAIT:?} ({other:?})"),
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group: chromedriver and every Chromium process it started.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: a plain syscall on the process group we created.
            unsafe { libc::killpg(pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fut`'s value, or a failure naming `what` (its error, or that it took over [`WAIT`]).
pub async fn bounded<T, E: std::fmt::Display>(what: &str, fut: impl std::future::Future<Output = Result<T, E>>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: no answer within {WAIT:?}"),
    }
}

/// Where a program is: `$ENV`, else the first of `names` on `PATH`, else in `/usr/bin` (Debian's packages).
fn find(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    let usr_bin = names.iter().map(|n| Path::new("/usr/bin").join(n));
    names.iter().flat_map(|n| dirs.iter().map(move |d| d.join(n))).chain(usr_bin).find(|p| p.is_file())
}

/// A headless Chromium session. Fields drop in order: the session, then
/// the driver (killing what is left), the profile, and the turn.
pub struct Browser {
    pub c: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// A browser, or `None` when `WEBDIAL_SKIP_BROWSER=1` (a missing browser fails the test).
    pub async fn open() -> Option<Browser> {
        if std::env::var("WEBDIAL_SKIP_BROWSER").is_ok_and(|v| v == "1") {
            eprintln!("WEBDIAL_SKIP_BROWSER=1: browser test skipped");
            return None;
        }
        let driver_path =
            find("CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| panic!("no chromedriver: {INSTALL}"));
        let chrome = find("CHROME", &["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| panic!("no chromium: {INSTALL}"));
        let turn = TURN.lock().await;
        let driver = Driver::start(&driver_path);
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-extensions",
            // Tall enough for a whole page when screenshots are taken (a window only shrinks past the screen).
            if std::env::var_os("WEBDIAL_SCREENSHOTS").is_some() {
                "--window-size=1280,3000"
            } else {
                "--window-size=1280,900"
            },
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), json!({"binary": chrome, "args": args}));
        let mut builder = ClientBuilder::rustls().expect("TLS roots");
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{}", driver.port);
        let c = tokio::time::timeout(WAIT * 3, builder.connect(&url))
            .await
            .unwrap_or_else(|_| panic!("no Chromium session within {:?}", WAIT * 3))
            .unwrap_or_else(|e| panic!("no Chromium session: {e}; {INSTALL}"));
        Some(Browser { c, _driver: driver, _profile: profile, _turn: turn })
    }

    /// Ends the session (Chromium quits); the driver is killed on drop.
    pub async fn close(self) {
        let Browser { c, _driver, _profile, _turn } = self;
        let _ = tokio::time::timeout(WAIT, c.close()).await;
    }

    pub async fn goto(&self, url: &str) {
        bounded(&format!("load {url}"), self.c.goto(url)).await
    }

    /// Reloads the page, as a person pressing F5.
    pub async fn reload(&self) {
        bounded("reload", self.c.refresh()).await
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        bounded(&format!("the script\n{script}\n"), self.c.execute(script, args)).await
    }

    /// Polls `script` until it returns something other than `null`, `false`,
    /// `""` or `undefined`; that value. Fails after [`WAIT`], naming `what`
    /// and the page's text.
    pub async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = match tokio::time::timeout(WAIT, self.c.execute(script, vec![])).await {
                Ok(Ok(v)) => v,
                _ => Value::Null,
            };
            if !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body ? document.body.innerText : ''", vec![]).await;
                panic!("waited {WAIT:?} for {what}; the page says:\n{}", text.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first element matching `css`, waiting for it to exist.
    pub async fn text(&self, css: &str) -> String {
        let q = serde_json::to_string(css).expect("css");
        let v = self
            .until(
                &format!("{css} to exist"),
                &format!("const e = document.querySelector({q}); return e && [e.textContent];"),
            )
            .await;
        v[0].as_str().unwrap_or("").to_string()
    }

    /// Clicks the first element matching `css`, waiting for it.
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        bounded(&format!("click {css}"), el.click()).await
    }

    /// Waits until the element matching `css` is enabled (a page enables
    /// its buttons once it is ready), then clicks it.
    pub async fn click_enabled(&self, css: &str) {
        self.until_enabled(css).await;
        self.click(css).await;
    }

    /// Waits until the element matching `css` exists and is not disabled.
    pub async fn until_enabled(&self, css: &str) {
        let q = serde_json::to_string(css).unwrap_or_default();
        self.until(
            &format!("{css} enabled"),
            &format!("const e = document.querySelector({q}); return !!e && !e.disabled;"),
        )
        .await;
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        bounded(&format!("find {css}"), self.c.wait().at_most(WAIT).for_element(Locator::Css(css))).await
    }

    /// Types `text` into the input matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        bounded(&format!("clear {css}"), el.clear()).await;
        bounded(&format!("type into {css}"), el.send_keys(text)).await
    }

    /// Records every `fetch` the page makes from now on in `window.__sent`
    /// (method, URL, Idempotency-Key and Authorization headers) — what the
    /// page sent, beside what the gateway and the PBX received.
    pub async fn record_fetches(&self) {
        self.js(
            "if (window.__sent) return; window.__sent = []; const real = window.fetch;
             window.fetch = function (input, init) {
               const h = new Headers((init && init.headers) || (input && input.headers) || {});
               window.__sent.push({method: ((init && init.method) || (input && input.method) || 'GET').toUpperCase(),
                 url: String((input && input.url) || input), key: h.get('idempotency-key'), auth: h.get('authorization')});
               return real.apply(this, arguments);
             };",
            vec![],
        )
        .await;
    }

    /// The `POST …/v1/dial` requests recorded by [`Browser::record_fetches`].
    pub async fn dials_sent(&self) -> Vec<Value> {
        let v = self
            .js("return (window.__sent || []).filter(r => r.method === 'POST' && r.url.includes('/v1/dial'))", vec![])
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Writes a screenshot to `$WEBDIAL_SCREENSHOTS/NAME` when that is set.
    pub async fn screenshot_for_docs(&self, name: &str) {
        let Some(dir) = std::env::var_os("WEBDIAL_SCREENSHOTS") else { return };
        // The whole page (the window is tall in this mode), cut to the page's own height.
        let page = self.find("html").await;
        let png = bounded("a screenshot", page.screenshot()).await;
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(name), png).expect("write screenshot");
    }
}

/// A page served from its own loopback origin (`http://127.0.0.1:PORT`), as an intranet app would.
pub struct Site {
    pub origin: String,
    listener: Option<tokio::net::TcpListener>,
}

impl Site {
    /// Binds the origin first, so the gateway can be told to allow it (or not).
    pub async fn bind() -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        Site { origin, listener: Some(listener) }
    }

    /// Serves `html` at `/` from now on, under a strict Content-Security-Policy
    /// that trusts only `gateway` for scripts and connections, as a careful
    /// intranet would: the script must work without `eval` or inline code.
    pub fn serve(&mut self, html: String, gateway: &str) {
        let listener = self.listener.take().expect("served once");
        let csp = format!("default-src 'none'; script-src {gateway}; connect-src {gateway}; base-uri 'none'");
        let page = move || {
            let (html, csp) = (html.clone(), csp.clone());
            async move { ([(axum::http::header::CONTENT_SECURITY_POLICY, csp)], axum::response::Html(html)) }
        };
        let app = axum::Router::new().route("/", axum::routing::get(page));
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
}

/// A VOIspeed branch whose PBX (the stand-in) reports its calls to the gateway.
pub const MILAN: &str = "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: demo-token}\nevents: {secret: s3cret-milan}\n";

/// Makes the stand-in send each accepted dial's events (dialling, answered, ended) to branch `branch`, `pace` apart.
pub fn pbx_reports(app: &crate::helpers::App, branch: &str, pace: Duration) {
    app.pbx.notify_to(&format!("{}/v1/events/{branch}?secret=s3cret-milan", app.url), pace);
}
