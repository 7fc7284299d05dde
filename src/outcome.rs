//! The one answer shape every request gets, and the one place where each
//! kind of failure is mapped to its `status` and HTTP code.

use http::StatusCode;
use serde::Serialize;
use serde_json::Value as Json;

use crate::guard::keys::KeyError;
use crate::guard::limits::Full;
use crate::pbx::answer::{Answer, BadResponse, Format};
use crate::pbx::client::SendError;
use crate::pbx::rules::Reading;
use crate::secrets;
use crate::template::ShownRequest;

/// Every status a result can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Accepted,
    OpenUri,
    DryRun,
    Rejected,
    BadResponse,
    Unreachable,
    Timeout,
    InvalidRequest,
    Unauthorized,
    Forbidden,
    UnknownBranch,
    UnknownAction,
    RateLimited,
    Conflict,
    UnknownCall,
}

impl Status {
    pub fn ok(self) -> bool {
        matches!(self, Status::Accepted | Status::OpenUri | Status::DryRun)
    }

    pub fn http(self) -> StatusCode {
        match self {
            Status::Accepted | Status::OpenUri | Status::DryRun => StatusCode::OK,
            Status::Rejected | Status::BadResponse | Status::Unreachable => StatusCode::BAD_GATEWAY,
            Status::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Status::InvalidRequest => StatusCode::BAD_REQUEST,
            Status::Unauthorized => StatusCode::UNAUTHORIZED,
            Status::Forbidden => StatusCode::FORBIDDEN,
            Status::UnknownBranch | Status::UnknownAction | Status::UnknownCall => StatusCode::NOT_FOUND,
            Status::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Status::Conflict => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::OpenUri => "open_uri",
            Status::DryRun => "dry_run",
            Status::Rejected => "rejected",
            Status::BadResponse => "bad_response",
            Status::Unreachable => "unreachable",
            Status::Timeout => "timeout",
            Status::InvalidRequest => "invalid_request",
            Status::Unauthorized => "unauthorized",
            Status::Forbidden => "forbidden",
            Status::UnknownBranch => "unknown_branch",
            Status::UnknownAction => "unknown_action",
            Status::RateLimited => "rate_limited",
            Status::Conflict => "conflict",
            Status::UnknownCall => "unknown_call",
        }
    }

    /// The status named `name` (as [`Status::as_str`] writes it), for
    /// statuses read back from the dial log.
    pub fn parse(name: &str) -> Option<Status> {
        const ALL: [Status; 15] = [
            Status::Accepted,
            Status::OpenUri,
            Status::DryRun,
            Status::Rejected,
            Status::BadResponse,
            Status::Unreachable,
            Status::Timeout,
            Status::InvalidRequest,
            Status::Unauthorized,
            Status::Forbidden,
            Status::UnknownBranch,
            Status::UnknownAction,
            Status::RateLimited,
            Status::Conflict,
            Status::UnknownCall,
        ];
        ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Why a request was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: missing or malformed input.
    #[error("{0}")]
    InvalidRequest(String),
    /// 401: no API key, or a wrong one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the key or the number rules do not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no profile for this branch.
    #[error("no branch {0}")]
    UnknownBranch(String),
    /// 404: the branch's profile has no such action.
    #[error("branch {branch:?} has no action {action:?} (it has: {known})")]
    UnknownAction { branch: String, action: String, known: String },
    /// 404: the dial log has no entry with this id (never made, or older
    /// than the retention).
    #[error("no call {0:?}: the dial log has no entry with this id")]
    UnknownCall(String),
    /// 404: no such endpoint.
    #[error(
        "no such endpoint: {method} {path} (the API is /v1/dial, /v1/actions/ACTION, /v1/calls, /v1/calls/ID, /v1/calls/ID/ACTION, /v1/events, /v1/events/BRANCH and /healthz)"
    )]
    NoSuchPath { method: String, path: String },
    /// 405 in spirit, 400 in the one shape: a method the endpoint does not take.
    #[error("{method} is not allowed on {path}: use GET or POST")]
    WrongMethod { method: String, path: String },
    /// 429: over a rate or in-flight limit.
    #[error("{0}")]
    RateLimited(String),
    /// 422: an `Idempotency-Key` reused for a different request.
    #[error("{0}")]
    Conflict(String),
    /// 502 `bad_response`, as for any failure inside the gateway: what the
    /// request needed could not be read (the dial log failed).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Refusal {
    pub fn status(&self) -> Status {
        match self {
            Refusal::InvalidRequest(_) | Refusal::WrongMethod { .. } => Status::InvalidRequest,
            Refusal::Unauthorized(_) => Status::Unauthorized,
            Refusal::Forbidden(_) => Status::Forbidden,
            Refusal::UnknownBranch(_) => Status::UnknownBranch,
            Refusal::UnknownAction { .. } | Refusal::NoSuchPath { .. } => Status::UnknownAction,
            Refusal::RateLimited(_) => Status::RateLimited,
            Refusal::Conflict(_) => Status::Conflict,
            Refusal::UnknownCall(_) => Status::UnknownCall,
            Refusal::Internal(_) => Status::BadResponse,
        }
    }
}

impl From<KeyError> for Refusal {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Missing | KeyError::Invalid => Refusal::Unauthorized(e.to_string()),
            KeyError::OutOfScope { .. } | KeyError::NotAdmin { .. } => Refusal::Forbidden(e.to_string()),
            KeyError::OverRate { .. } => Refusal::RateLimited(e.to_string()),
        }
    }
}

impl From<Full> for Refusal {
    fn from(e: Full) -> Self {
        Refusal::RateLimited(e.to_string())
    }
}

impl SendError {
    pub fn status(&self) -> Status {
        match self {
            SendError::Unreachable(_) => Status::Unreachable,
            SendError::Timeout(_) => Status::Timeout,
            SendError::Broken(_) | SendError::TooLarge => Status::BadResponse,
        }
    }
}

/// What the PBX did, when it was asked.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PbxInfo {
    pub http_status: Option<u16>,
    pub format: Option<Format>,
    pub elapsed_ms: u64,
    pub body: Json,
}

/// The answer to one request: the one JSON shape.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ActionResult {
    /// `accepted`, `open_uri` or `dry_run`.
    ok: bool,
    pub status: Status,
    pub branch: Option<String>,
    pub action: String,
    /// The PBX's id of the call or request, when its answer has one.
    pub call_id: Option<String>,
    /// Why it failed: the PBX's own words, or the gateway's.
    pub message: Option<String>,
    /// `open_uri`: the client-side URI to open.
    pub uri: Option<String>,
    /// The gateway's own id for this request (`/v1/calls/{id}`).
    pub id: String,
    /// What the PBX answered, when it was asked.
    pub pbx: Option<PbxInfo>,
    /// `dry_run`: what would have been sent (secrets as `***`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<ShownRequest>,
    /// A repeat answered with the first request's answer.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl ActionResult {
    pub fn new(id: &str, status: Status, branch: Option<&str>, action: &str) -> Self {
        ActionResult {
            ok: status.ok(),
            status,
            branch: branch.map(str::to_string),
            action: action.to_string(),
            call_id: None,
            message: None,
            uri: None,
            id: id.to_string(),
            pbx: None,
            request: None,
            duplicate: false,
        }
    }

    pub fn refused(id: &str, refusal: &Refusal, branch: Option<&str>, action: &str) -> Self {
        ActionResult::new(id, refusal.status(), branch, action).with_message(refusal.to_string())
    }

    /// Something went wrong inside the gateway. Reported as `bad_response`
    /// (502) — the closest status a caller can act on — with words that say
    /// it was the gateway, and whether the PBX may have been reached.
    pub fn internal(id: &str, branch: Option<&str>, action: &str, message: &str) -> Self {
        ActionResult::new(id, Status::BadResponse, branch, action).with_message(format!("internal error: {message}"))
    }

    /// The branch's login steps did not get a session, so the action was
    /// not sent: `rejected`, with the login's reason after `login: `. What
    /// the PBX answered the login is left out (it may hold a token that was
    /// never saved, so never masked).
    pub fn login_failed(id: &str, branch: &str, action: &str, why: &str) -> Self {
        ActionResult::new(id, Status::Rejected, Some(branch), action).with_message(format!("login: {why}"))
    }

    /// No answer could be read from the PBX.
    pub fn from_send_error(id: &str, branch: &str, action: &str, e: &SendError, elapsed_ms: u64) -> Self {
        let mut r = ActionResult::new(id, e.status(), Some(branch), action).with_message(e.to_string());
        r.pbx = Some(PbxInfo { http_status: None, format: None, elapsed_ms, body: Json::Null });
        r
    }

    /// The PBX answered; `read` is what its answer said under the profile's rules.
    pub fn from_answer(
        id: &str,
        branch: &str,
        action: &str,
        answer: &Answer,
        read: Result<Reading, BadResponse>,
        elapsed_ms: u64,
    ) -> Self {
        let http_status = Some(answer.http_status);
        match read {
            Ok(reading) => {
                let status = if reading.ok { Status::Accepted } else { Status::Rejected };
                let mut r = ActionResult::new(id, status, Some(branch), action);
                r.call_id = reading.call_id;
                r.message = reading.message;
                r.pbx = Some(PbxInfo { http_status, format: Some(reading.format), elapsed_ms, body: reading.body });
                r
            }
            Err(bad) => {
                let mut r = ActionResult::new(id, Status::BadResponse, Some(branch), action);
                r.message = Some(bad.message);
                r.pbx = Some(PbxInfo { http_status, format: Some(bad.format), elapsed_ms, body: bad.body });
                r
            }
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn ok(&self) -> bool {
        self.ok
    }

    pub fn http_status(&self) -> StatusCode {
        self.status.http()
    }

    /// Masks every secret in what the PBX said (it may echo a token back).
    pub fn redact(mut self) -> Self {
        let mask = |s: &mut Option<String>| {
            if let Some(v) = s {
                *v = secrets::redact(v).into_owned();
            }
        };
        mask(&mut self.call_id);
        mask(&mut self.message);
        mask(&mut self.uri);
        if let Some(pbx) = &mut self.pbx {
            secrets::redact_json(&mut pbx.body);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_one_table() {
        let table = [
            (Status::Accepted, true, 200),
            (Status::OpenUri, true, 200),
            (Status::DryRun, true, 200),
            (Status::Rejected, false, 502),
            (Status::BadResponse, false, 502),
            (Status::Unreachable, false, 502),
            (Status::Timeout, false, 504),
            (Status::InvalidRequest, false, 400),
            (Status::Unauthorized, false, 401),
            (Status::Forbidden, false, 403),
            (Status::UnknownBranch, false, 404),
            (Status::UnknownAction, false, 404),
            (Status::RateLimited, false, 429),
            (Status::Conflict, false, 422),
            (Status::UnknownCall, false, 404),
        ];
        for (status, ok, code) in table {
            assert_eq!((status.ok(), status.http().as_u16()), (ok, code), "{status:?}");
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn key_refusals_map_to_401_403_429() {
        let r = |e: KeyError| Refusal::from(e).status();
        assert_eq!(r(KeyError::Missing), Status::Unauthorized);
        assert_eq!(r(KeyError::Invalid), Status::Unauthorized);
        assert_eq!(r(KeyError::OutOfScope { key: "k".into(), branch: "b".into() }), Status::Forbidden);
        assert_eq!(r(KeyError::OverRate { key: "k".into(), rate: "1/min".into() }), Status::RateLimited);
    }
}
