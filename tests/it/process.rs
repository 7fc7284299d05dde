//! `webdial serve` as a child process, for the tests that need a real
//! process: signals, `kill -9`, the log lines it writes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a test waits for the gateway to start or to log a line.
const BOUND: Duration = Duration::from_secs(30);

/// A running `webdial --config CONFIG serve`; SIGKILLed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://ADDR`, from its "listening" line.
    pub url: String,
    /// Its stderr lines after the "listening" line.
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the gateway and waits (at most [`BOUND`]) for its address;
    /// an `ERROR` line before it fails the test with that line.
    pub fn start(config: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webdial"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start webdial serve");
        let stderr = child.stderr.take().expect("stderr");
        let (started, start) = std::sync::mpsc::channel();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut told = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if told {
                    if tx.send(line).is_err() {
                        break;
                    }
                } else if let Some(rest) = line.split("webdial listening on http://").nth(1) {
                    let _ = started.send(Ok(rest.split_whitespace().next().unwrap_or("").to_string()));
                    told = true;
                } else if line.contains("ERROR") {
                    let _ = started.send(Err(line));
                    told = true;
                }
            }
        });
        match start.recv_timeout(BOUND) {
            Ok(Ok(addr)) => Server { child, url: format!("http://{addr}"), lines },
            other => {
                let _ = child.kill();
                panic!("the gateway did not start: {other:?}");
            }
        }
    }

    /// The first line from now on containing `text` (failing after [`BOUND`]).
    pub async fn line(&mut self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.contains(text) => return line,
                Ok(Some(_)) => {}
                _ => panic!("no log line with {text:?}"),
            }
        }
    }

    /// Sends `sig` to the gateway.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, sig) }, 0);
    }

    /// `kill -9`: no shutdown, no drain, no checkpoint.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill"); // SIGKILL on Unix
        let status = self.child.wait().expect("wait");
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "{status:?}");
    }
}
