//! The one structured line every request leaves (target `webdial::audit`),
//! from `serve` and from `webdial dial` alike. Never a key or a secret: only
//! the fields named here (and the log writer masks secrets anyway).

use std::time::Instant;

use crate::call::input::ActionInput;
use crate::outcome::ActionResult;

/// Logs `result` for `input`. `dialled` is the number as sent to the PBX
/// (after the branch's number rules), when the request got that far.
pub fn record(result: &ActionResult, input: &ActionInput, caller: &str, dialled: Option<&str>, started: Instant) {
    tracing::info!(
        target: "webdial::audit",
        id = %result.id,
        key = caller,
        branch = result.branch.as_deref().unwrap_or(""),
        action = %result.action,
        extension = input.extension.as_deref().unwrap_or(""),
        number = input.number.as_deref().unwrap_or(""),
        dialled = dialled.unwrap_or(""),
        call_id = input.call_id.as_deref().unwrap_or(""),
        status = result.status.as_str(),
        pbx_status = result.pbx.as_ref().and_then(|p| p.http_status).unwrap_or(0),
        elapsed_ms = started.elapsed().as_millis() as u64,
        duplicate = result.duplicate,
        dry_run = input.dry_run,
        "{}",
        result.action
    );
}
