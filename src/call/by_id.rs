//! Dials by gateway id, the gateway's side: recording each dial and action
//! that was sent in the dial log (before its answer goes out), reading
//! entries back and listing them for a caller within its key's scope, and
//! turning "this action on that dial" into an ordinary action request, so
//! it goes through every check `/v1/actions/ACTION` does (key scope and
//! rate, number rules for a target, once per click, limits) and nothing
//! here decides on its own.

use std::time::{Duration, SystemTime};

use super::Gateway;
use super::input::{ActionInput, MAX_ID};
use crate::calls::{self, Call, CallState, EventRecord, Query};
use crate::guard::keys::{self, Caller, Credential};
use crate::outcome::{ActionResult, Refusal, Status};
use crate::state::Snapshot;

/// The longest an answer waits for its record to be committed. Past it
/// (a stalled disk) the answer goes out anyway, and the log says so: the
/// PBX has acted, and a caller left hanging would only click again.
pub const RECORD_WAIT: Duration = Duration::from_secs(5);

impl Gateway {
    /// The dial with gateway id `id`, as `credential` may see it. The key is
    /// checked first, so a request without a valid one learns nothing about
    /// which ids exist; a key that may not use the dial's branch may not
    /// see it either. Reading a dial does not spend the key's rate: rates
    /// bound what a key can make the PBX do.
    pub fn call(&self, credential: &Credential, id: &str) -> Result<Call, Refusal> {
        self.find_call(&self.snapshot(), credential, id)
    }

    fn find_call(&self, snapshot: &Snapshot, credential: &Credential, id: &str) -> Result<Call, Refusal> {
        let caller = keys::authenticate(&snapshot.settings.keys, credential)?;
        let call = self
            .runtime
            .calls
            .find(id)
            .map_err(|e| Refusal::Internal(e.to_string()))?
            .ok_or_else(|| Refusal::UnknownCall(id.chars().take(MAX_ID).collect()))?;
        if let Caller::Key(key) = caller {
            keys::may_use(key, &call.branch)?;
        }
        Ok(call)
    }

    /// The events recorded for the dial `id` (which the caller may see:
    /// read it with [`Gateway::call`] first).
    pub fn call_events(&self, id: &str) -> Result<Vec<EventRecord>, Refusal> {
        self.runtime.calls.events(id).map_err(|e| Refusal::Internal(e.to_string()))
    }

    /// The log's entries matching `query`, within what `credential` may see:
    /// a key scoped to some branches sees only those (naming another one is
    /// `403`, as for a dial). Like reading one call, listing does not spend
    /// the key's rate. Reads the database: run it off the async threads.
    pub fn list_calls(&self, credential: &Credential, mut query: Query) -> Result<Vec<Call>, Refusal> {
        let snapshot = self.snapshot();
        if let Caller::Key(key) = keys::authenticate(&snapshot.settings.keys, credential)? {
            if let Some(branch) = &query.branch {
                keys::may_use(key, branch)?;
            }
            query.scope = key.branches.clone();
        }
        self.runtime.calls.list(&query).map_err(|e| Refusal::Internal(e.to_string()))
    }

    /// `input` (an action, with what the caller added: a target number,
    /// digits, options) completed from the remembered dial `id`: its
    /// branch, its extension and the PBX's call id. A dial the PBX gave no
    /// call id is refused here, naming why, for an action that needs one.
    pub(super) fn on_call(
        &self,
        snapshot: &Snapshot,
        credential: &Credential,
        id: &str,
        mut input: ActionInput,
    ) -> Result<ActionInput, Refusal> {
        let call = self.find_call(snapshot, credential, id)?;
        if call.action != "dial" {
            return Err(Refusal::InvalidRequest(format!(
                "{id:?} is the id of a {}, not of a dial: act on the dial{}",
                call.action,
                call.dial_id.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
            )));
        }
        let needs_call_id = snapshot
            .profiles
            .get(&call.branch)
            .and_then(|p| p.action(input.action()))
            .is_some_and(|a| a.uses.contains("call_id"));
        // The call's own id, once its events named it: the dial's answer
        // may hold only the id of the request (VOIspeed's request_id).
        input.call_id = self.runtime.index.pbx_call_id(id).or(call.call_id).filter(|c| !c.is_empty());
        if input.call_id.is_none() && needs_call_id {
            return Err(Refusal::InvalidRequest(format!(
                "call {id:?}: the PBX gave no call id for this dial, and `{}` needs one",
                input.action()
            )));
        }
        input.branch = Some(call.branch);
        input.extension = Some(call.extension);
        Ok(input)
    }

    /// Records `result` in the dial log when it is the answer to a request
    /// that was sent to a PBX (not a refusal, a dry run, a URI for the
    /// caller's softphone or a repeat of an earlier request, which is
    /// recorded already), and waits until the record is committed, so an
    /// answer that goes out is never lost with the process. `dial` is the
    /// dial an action by gateway id applied to.
    pub(super) async fn remember(
        &self,
        result: &ActionResult,
        input: &ActionInput,
        caller: &str,
        dialled: Option<&str>,
        created: SystemTime,
        dial: Option<&str>,
    ) {
        if result.pbx.is_none() || result.duplicate {
            return;
        }
        let Some(branch) = result.branch.clone() else { return };
        let extension = calls::extension_key(input.extension.as_deref().unwrap_or(""));
        let is_dial = result.action == "dial";
        let call = Call {
            id: result.id.clone(),
            branch,
            action: result.action.clone(),
            extension,
            number: input.number.clone().unwrap_or_default(),
            dialled: dialled.map(str::to_string),
            // A dial's own call id is the PBX's answer; an action's is the call it acted on.
            call_id: if is_dial { result.call_id.clone() } else { input.call_id.clone().or(result.call_id.clone()) },
            dial_id: dial.map(str::to_string),
            key: caller.to_string(),
            created,
            state: if result.status == Status::Accepted { CallState::Requested } else { CallState::Failed },
            status: result.status,
            message: result.message.clone(),
        };
        if is_dial && call.state == CallState::Requested {
            // So that its events find it at once.
            self.runtime.index.remember(&call, input.external_id.as_deref());
        }
        let receipt = self.runtime.calls.remember(call);
        if let Err(e) = receipt.wait_for(RECORD_WAIT).await {
            tracing::error!(id = %result.id, "{} {} answered without being recorded: {e}", result.action, result.id);
        }
    }
}
