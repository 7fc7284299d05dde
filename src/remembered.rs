//! What the once-per-click stores keep of a first answer, for its repeats:
//! compact, so that remembering a dial costs a few hundred bytes whatever
//! the PBX answered.
//!
//! A repeat (`"duplicate": true`) gets the first answer's `id`, `status`,
//! `call_id`, `message` and `pbx` (`http_status`, `format`, `elapsed_ms`,
//! `body`), with two bounds: `pbx.body` is kept only when it is at most
//! [`MAX_KEPT`] bytes as JSON (a larger one is `null` for repeats), and a
//! `message` longer than that is cut there, ending in `…`. `branch` and
//! `action` are the repeat's own, which are the first's (they are part of
//! what makes it a repeat).

use std::borrow::Cow;

use crate::guard::once::Weigh;
use crate::outcome::{ActionResult, PbxInfo, Status};
use crate::pbx::answer::Format;

/// Longest `pbx.body` (as JSON) and `message` a repeat gets, in bytes.
pub const MAX_KEPT: usize = 4096;

/// A first answer as remembered for its repeats. Its texts share one
/// allocation (a store holds tens of thousands of these, and each block
/// costs allocator overhead and fragments the heap).
#[derive(Debug, Clone, PartialEq)]
pub struct Remembered {
    /// `id`, then `call_id`, `message` and the body's JSON, each present or not.
    text: Box<str>,
    /// Where each part ends in `text`; `None`: absent.
    ends: [Option<u32>; 4],
    status: Status,
    pbx: Option<Pbx>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Pbx {
    http_status: Option<u16>,
    format: Option<Format>,
    elapsed_ms: u64,
}

const ID: usize = 0;
const CALL_ID: usize = 1;
const MESSAGE: usize = 2;
const BODY: usize = 3;

impl Remembered {
    pub fn of(result: &ActionResult) -> Self {
        let body =
            result.pbx.as_ref().and_then(|p| serde_json::to_string(&p.body).ok()).filter(|b| b.len() <= MAX_KEPT);
        let message = result.message.as_deref().map(cut);
        let parts = [Some(result.id.as_str()), result.call_id.as_deref(), message.as_deref(), body.as_deref()];
        let mut text = String::with_capacity(parts.iter().flatten().map(|p| p.len()).sum());
        let mut ends = [None; 4];
        for (end, part) in ends.iter_mut().zip(parts) {
            if let Some(p) = part {
                text.push_str(p);
                // Parts are bounded (ids, a cut message, a kept body), far below 4 GiB.
                *end = u32::try_from(text.len()).ok();
            }
        }
        Remembered {
            text: text.into_boxed_str(),
            ends,
            status: result.status,
            pbx: result.pbx.as_ref().map(|p| Pbx {
                http_status: p.http_status,
                format: p.format,
                elapsed_ms: p.elapsed_ms,
            }),
        }
    }

    fn part(&self, i: usize) -> Option<&str> {
        let end = self.ends[i]? as usize;
        let start = self.ends[..i].iter().rev().flatten().next().map_or(0, |&e| e as usize);
        self.text.get(start..end)
    }

    /// The answer a repeat gets.
    pub fn answer(&self, branch: Option<&str>, action: &str) -> ActionResult {
        let mut r = ActionResult::new(self.part(ID).unwrap_or_default(), self.status, branch, action);
        r.call_id = self.part(CALL_ID).map(str::to_string);
        r.message = self.part(MESSAGE).map(str::to_string);
        r.pbx = self.pbx.map(|p| PbxInfo {
            http_status: p.http_status,
            format: p.format,
            elapsed_ms: p.elapsed_ms,
            body: self.part(BODY).and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default(),
        });
        r.duplicate = true;
        r
    }
}

/// `message` cut to [`MAX_KEPT`] bytes at a character boundary, ending in `…`.
fn cut(message: &str) -> Cow<'_, str> {
    if message.len() <= MAX_KEPT {
        return Cow::Borrowed(message);
    }
    let mut end = MAX_KEPT - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &message[..end]))
}

impl Weigh for Remembered {
    /// The one text block, with the allocator's overhead for it.
    fn weight(&self) -> usize {
        self.text.len() + 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(body: serde_json::Value) -> ActionResult {
        let mut r = ActionResult::new("01ID", Status::Accepted, Some("m"), "dial");
        r.call_id = Some("15652770917203".into());
        r.pbx = Some(PbxInfo { http_status: Some(200), format: Some(Format::Xml), elapsed_ms: 3, body });
        r
    }

    #[test]
    fn a_repeat_gets_the_first_answer_marked_duplicate() {
        let first = accepted(serde_json::json!({"outcome": "0", "request_id": "15652770917203"}));
        let mut again = Remembered::of(&first).answer(Some("m"), "dial");
        assert!(again.duplicate);
        again.duplicate = false;
        assert_eq!(again, first);

        let mut refused = ActionResult::new("01ID", Status::Rejected, Some("m"), "dial");
        refused.message = Some("busy".into());
        let mut again = Remembered::of(&refused).answer(Some("m"), "dial");
        again.duplicate = false;
        assert_eq!(again, refused, "absent parts stay absent");
    }

    #[test]
    fn a_200_kb_answer_is_remembered_in_a_few_kilobytes() {
        let big = serde_json::json!({"raw": "x".repeat(200 * 1024)});
        let mut first = accepted(big);
        first.message = Some("é".repeat(100 * 1024));
        let kept = Remembered::of(&first);
        assert!(kept.weight() < MAX_KEPT + 64, "{}", kept.weight());
        let again = kept.answer(Some("m"), "dial");
        assert_eq!(again.pbx.as_ref().map(|p| &p.body), Some(&serde_json::Value::Null), "over the bound: null");
        assert_eq!(again.pbx.as_ref().and_then(|p| p.http_status), Some(200));
        let message = again.message.unwrap_or_default();
        assert!(message.len() <= MAX_KEPT && message.ends_with('…'), "{}", message.len());
        assert_eq!(again.call_id, first.call_id);
        assert_eq!(again.id, first.id);
    }
}
