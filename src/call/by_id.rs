//! Dials by gateway id, the gateway's side: remembering each dial that was
//! sent, reading one back for a caller, and turning "this action on that
//! dial" into an ordinary action request, so it goes through every check
//! `/v1/actions/ACTION` does (key scope and rate, number rules for a
//! target, once per click, limits) and nothing here decides on its own.

use std::time::SystemTime;

use super::Gateway;
use super::input::{ActionInput, MAX_ID};
use crate::calls::{Call, CallState};
use crate::guard::keys::{self, Caller, Credential};
use crate::number::DialString;
use crate::outcome::{ActionResult, Refusal, Status};
use crate::state::Snapshot;

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
        let call =
            self.runtime.calls.find(id).ok_or_else(|| Refusal::UnknownCall(id.chars().take(MAX_ID).collect()))?;
        if let Caller::Key(key) = caller {
            keys::may_use(key, &call.branch)?;
        }
        Ok(call)
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
        let needs_call_id = snapshot
            .profiles
            .get(&call.branch)
            .and_then(|p| p.action(input.action()))
            .is_some_and(|a| a.uses.contains("call_id"));
        input.call_id = call.call_id.filter(|c| !c.is_empty());
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

    /// Remembers `result` when it is the answer to a dial that was sent (not
    /// a refusal, a dry run, a URI for the caller's softphone or a repeat of
    /// an earlier dial, which is remembered already).
    pub(super) fn remember(
        &self,
        result: &ActionResult,
        input: &ActionInput,
        caller: &str,
        dialled: Option<&str>,
        created: SystemTime,
    ) {
        if result.action != "dial" || result.pbx.is_none() || result.duplicate {
            return;
        }
        let Some(branch) = result.branch.clone() else { return };
        let extension = input.extension.as_deref().unwrap_or("");
        let extension = DialString::parse(extension).map(|e| e.to_string()).unwrap_or_else(|_| extension.to_string());
        self.runtime.calls.remember(Call {
            id: result.id.clone(),
            branch,
            action: result.action.clone(),
            extension,
            number: input.number.clone().unwrap_or_default(),
            dialled: dialled.map(str::to_string),
            call_id: result.call_id.clone(),
            key: caller.to_string(),
            created,
            state: if result.status == Status::Accepted { CallState::Requested } else { CallState::Failed },
            status: result.status,
        });
    }
}
