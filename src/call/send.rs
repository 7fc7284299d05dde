//! Sending a rendered action: once. For a branch with login steps, with its
//! session. A warm session is known before the request is rendered, so the
//! request is rendered once, with it, like any other. Without one, the
//! request is first rendered with the session masked (so a request that
//! cannot be built is refused before anything, a login included, is sent),
//! then the branch logs in (one login per branch at a time), and the
//! request is rendered again with the real `session` and sent. When the
//! answer matches `renew_on`, the PBX refused the session before acting on
//! the action, so the session is dropped, one new login runs, and the
//! action is sent once more: never a third time, and never after a timeout,
//! a broken connection or any answer `renew_on` does not match, after which
//! the PBX may have acted.

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

/// What a branch that logs in renders with before the once-per-click claim.
pub(super) struct Before {
    /// The context to render with (`None`: the checked one, no login steps).
    pub(super) context: Option<Context>,
    /// The warm session it holds, which the rendered request is sent with.
    pub(super) session: Option<Arc<Session>>,
}

impl Gateway {
    /// How `checked` is rendered first: with the branch's warm session, or
    /// with every session value as `***` (what dry runs and `render` show:
    /// they never log in).
    pub(super) fn before_render(&self, checked: &Checked, dry_run: bool) -> Before {
        let Some(login) = checked.profile.login.as_ref() else { return Before { context: None, session: None } };
        let warm = match dry_run {
            true => None,
            false => self.runtime.sessions.warm(&checked.profile.branch, login.identity),
        };
        let context = match &warm {
            Some(s) => checked.context.with_session(s.values.clone()),
            None => {
                let masked = login.names.iter().map(|n| (n.clone(), secrets::MASK.to_string())).collect();
                checked.context.with_session(Arc::new(masked))
            }
        };
        Before { context: Some(context), session: warm }
    }

    /// Sends `act`, rendered as `request` (with `warm`, the session it was
    /// rendered with, if any); the result, and whether the action itself
    /// was sent (a failed login sends none: the next click may try again).
    pub(super) async fn send(
        &self,
        id: &str,
        snapshot: &Snapshot,
        checked: &Checked,
        act: &Action,
        request: Request,
        warm: Option<Arc<Session>>,
    ) -> (ActionResult, bool) {
        let Some(login) = &checked.profile.login else {
            return (self.send_once(id, snapshot, checked, act, &request).await.0, true);
        };
        let (branch, action) = (checked.profile.branch.as_str(), checked.action.as_str());
        let failed = |why: LoginError| (ActionResult::login_failed(id, branch, action, &why), false);
        let (session, request) = match warm {
            Some(session) => (session, request),
            None => {
                let session = match self.session(snapshot, checked, login, None).await {
                    Ok((s, _)) => s,
                    Err(why) => return failed(why),
                };
                match render(snapshot, checked, act, &session) {
                    Ok(r) => (session, r),
                    Err(refused) => return (ActionResult::refused(id, &refused, Some(branch), action), false),
                }
            }
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
