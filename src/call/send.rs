//! Sending a rendered action: once. For a branch with login steps, with its
//! session: found or logged in first (one login per branch at a time), the
//! request rendered again with the real `session`, then sent. When the
//! answer matches `renew_on`, the PBX refused the session before acting on
//! the action, so the session is dropped, one new login runs, and the
//! action is sent once more: never a third time, and never after a timeout,
//! a broken connection or any answer `renew_on` does not match, after which
//! the PBX may have acted.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Gateway;
use super::input::Checked;
use super::login;
use crate::guard::session::{Got, LoginError, Session};
use crate::outcome::{ActionResult, Refusal};
use crate::pbx::answer::Answer;
use crate::profile::{Action, Login};
use crate::secrets;
use crate::state::Snapshot;
use crate::template::{Context, Rendered, Request};

/// What dry runs and `render` show for every session value: they never log in.
pub(super) fn placeholder(checked: &Checked) -> Option<Context> {
    let login = checked.profile.login.as_ref()?;
    let masked: BTreeMap<String, String> = login.names.iter().map(|n| (n.clone(), secrets::MASK.to_string())).collect();
    Some(checked.context.with_session(Arc::new(masked)))
}

impl Gateway {
    /// Sends `act` (already rendered as `request` for a branch without
    /// login steps); the result, and whether the action itself was sent
    /// (a failed login sends none: the next click may try again).
    pub(super) async fn send(
        &self,
        id: &str,
        snapshot: &Snapshot,
        checked: &Checked,
        act: &Action,
        request: Request,
    ) -> (ActionResult, bool) {
        let Some(login) = &checked.profile.login else {
            return (self.send_once(id, snapshot, checked, act, &request).await.0, true);
        };
        let (branch, action) = (checked.profile.branch.as_str(), checked.action.as_str());
        let failed = |why: LoginError| (ActionResult::login_failed(id, branch, action, &why), false);
        let session = match self.session(snapshot, checked, login, None).await {
            Ok((s, _)) => s,
            Err(why) => return failed(why),
        };
        let request = match render(snapshot, checked, act, &session) {
            Ok(r) => r,
            Err(refused) => return (ActionResult::refused(id, &refused, Some(branch), action), false),
        };
        let (result, answer) = self.send_once(id, snapshot, checked, act, &request).await;
        let refused = answer.is_some_and(|a| login.renew_on.holds(snapshot.profiles.templates(), &act.response, &a));
        if !refused {
            return (result, true);
        }
        tracing::info!(
            branch,
            action,
            "the PBX refused the session before acting: one new login, then the action once more"
        );
        let session = match self.session(snapshot, checked, login, Some(&session)).await {
            Ok((s, _)) => s,
            Err(why) => return failed(why),
        };
        match render(snapshot, checked, act, &session) {
            Ok(request) => (self.send_once(id, snapshot, checked, act, &request).await.0, true),
            Err(refused) => (ActionResult::refused(id, &refused, Some(branch), action), true),
        }
    }

    /// Sends `request` once: its result, and the answer if there was one.
    async fn send_once(
        &self,
        id: &str,
        snapshot: &Snapshot,
        checked: &Checked,
        act: &Action,
        request: &Request,
    ) -> (ActionResult, Option<Answer>) {
        let (branch, action) = (checked.profile.branch.as_str(), checked.action.as_str());
        let (sent, elapsed) = self.runtime.clients.send(request, act.timeout, &checked.profile.tls).await;
        self.runtime.metrics.pbx_duration(branch, action, elapsed);
        let elapsed_ms = elapsed.as_millis() as u64;
        match sent {
            Err(e) => (ActionResult::from_send_error(id, branch, action, &e, elapsed_ms), None),
            Ok(answer) => {
                let read = act.response.read(snapshot.profiles.templates(), &answer);
                (ActionResult::from_answer(id, branch, action, &answer, read, elapsed_ms), Some(answer))
            }
        }
    }

    /// The branch's session (a new one when `stale` was refused).
    async fn session(
        &self,
        snapshot: &Snapshot,
        checked: &Checked,
        login: &Login,
        stale: Option<&Arc<Session>>,
    ) -> Result<Got, LoginError> {
        let profile = &checked.profile;
        let run = || async {
            let got = login::run(&self.runtime.clients, snapshot.profiles.templates(), profile, login).await;
            match &got {
                Ok(s) => {
                    tracing::info!(branch = %profile.branch, expires_in_s = ?s.expires.map(|e| e.saturating_duration_since(tokio::time::Instant::now()).as_secs()), "logged in")
                }
                Err(why) => tracing::warn!(branch = %profile.branch, "login failed: {why}"),
            }
            got
        };
        match stale {
            None => self.runtime.sessions.get(&profile.branch, login.identity, run).await,
            Some(stale) => self.runtime.sessions.renew(&profile.branch, login.identity, stale, run).await,
        }
    }
}

/// The action rendered with the real session.
fn render(snapshot: &Snapshot, checked: &Checked, act: &Action, session: &Session) -> Result<Request, Refusal> {
    let context = checked.context.with_session(session.values.clone());
    match act.template.render(snapshot.profiles.templates(), &context) {
        Ok(Rendered::Http(r)) => Ok(r),
        Ok(Rendered::Uri(_)) => Err(Refusal::InvalidRequest("a client-side URI needs no session".into())),
        Err(e) => Err(Refusal::InvalidRequest(format!(
            "branch {:?}: the request cannot be built with its session: {}",
            checked.profile.branch,
            secrets::redact(&e.message)
        ))),
    }
}
