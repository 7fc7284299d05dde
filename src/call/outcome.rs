//! The one answer shape every dial gets, and the one place where each kind
//! of failure is mapped to the spec's `status` and HTTP code.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value as Json;

use crate::pbx::answer::{BadResponse, Format};
use crate::pbx::client::SendError;
use crate::secrets;
use crate::template::ShownRequest;

/// The spec's statuses (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
            Status::UnknownBranch | Status::UnknownAction => StatusCode::NOT_FOUND,
            Status::RateLimited => StatusCode::TOO_MANY_REQUESTS,
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
        }
    }
}

/// Why a dial was refused before anything was sent.
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
    #[error("branch {branch:?} has no action {action:?}")]
    UnknownAction { branch: String, action: String },
    /// 429: over a rate or in-flight limit.
    #[error("{0}")]
    RateLimited(String),
}

impl Refusal {
    pub fn status(&self) -> Status {
        match self {
            Refusal::InvalidRequest(_) => Status::InvalidRequest,
            Refusal::Unauthorized(_) => Status::Unauthorized,
            Refusal::Forbidden(_) => Status::Forbidden,
            Refusal::UnknownBranch(_) => Status::UnknownBranch,
            Refusal::UnknownAction { .. } => Status::UnknownAction,
            Refusal::RateLimited(_) => Status::RateLimited,
        }
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

impl BadResponse {
    pub fn status(&self) -> Status {
        Status::BadResponse
    }
}

/// What the PBX did, when it was asked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PbxInfo {
    pub http_status: Option<u16>,
    pub format: Option<Format>,
    pub elapsed_ms: u64,
    pub body: Json,
}

/// The answer to one dial (SPEC §3).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DialResult {
    pub ok: bool,
    pub status: Status,
    pub branch: Option<String>,
    pub action: String,
    pub call_id: Option<String>,
    pub message: Option<String>,
    pub uri: Option<String>,
    pub id: String,
    pub pbx: Option<PbxInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<ShownRequest>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl DialResult {
    pub fn new(id: &str, status: Status, branch: Option<&str>, action: &str) -> Self {
        DialResult {
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
        let mut r = DialResult::new(id, refusal.status(), branch, action);
        r.message = Some(refusal.to_string());
        r
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
    fn statuses_map_to_the_spec_table() {
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
        ];
        for (status, ok, code) in table {
            assert_eq!((status.ok(), status.http().as_u16()), (ok, code), "{status:?}");
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
        }
    }
}
