//! Administering the gateway: who may, and what the admin page shows of
//! the branches (also those whose file did not load).

use serde::Serialize;

use super::Gateway;
use crate::guard::keys::{self, Caller, Credential};
use crate::outcome::Refusal;

/// One branch as the admin page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BranchState {
    /// The branch: its profile's file name without `.yaml`.
    pub branch: String,
    /// The profile's `name:`, if it has one.
    pub name: Option<String>,
    /// `loaded`, or `failed` when its file's last load failed.
    pub state: &'static str,
    /// Served (dials work): loaded, or failed but kept at its last good version.
    pub served: bool,
    /// The last load's first problem, as `FILE:LINE:COL: message`.
    pub error: Option<String>,
    /// The actions its profile has (of the version served).
    pub actions: Vec<String>,
}

impl Gateway {
    /// The branches `credential` may administer (`None`: all): 401 without
    /// a valid key (when keys are configured), 403 for a key without
    /// `admin: true`. An admin key with `branches:` administers those only.
    pub fn administer(&self, credential: &Credential) -> Result<Option<Vec<String>>, Refusal> {
        let snapshot = self.snapshot();
        let caller = keys::authenticate(&snapshot.settings.keys, credential)?;
        keys::may_administer(&caller)?;
        Ok(match caller {
            Caller::Key(k) => k.branches.clone(),
            Caller::Local | Caller::Anonymous => None,
        })
    }

    /// Every branch `credential` may administer, by name, with its load
    /// state: served ones, and those whose file exists but did not load.
    pub fn branches(&self, credential: &Credential) -> Result<Vec<BranchState>, Refusal> {
        let scope = self.administer(credential)?;
        let snapshot = self.snapshot();
        let profiles = &snapshot.profiles;
        let mut list: Vec<BranchState> = profiles
            .iter()
            .map(|p| BranchState {
                branch: p.branch.clone(),
                name: p.name.clone(),
                state: if profiles.broken(&p.branch).is_some() { "failed" } else { "loaded" },
                served: true,
                error: profiles.broken(&p.branch).map(str::to_string),
                actions: p.action_names().map(str::to_string).collect(),
            })
            .collect();
        for (branch, why) in profiles.broken_all().filter(|(b, _)| profiles.get(b).is_none()) {
            list.push(BranchState {
                branch: branch.to_string(),
                name: None,
                state: "failed",
                served: false,
                error: Some(why.to_string()),
                actions: Vec::new(),
            });
        }
        list.retain(|b| scope.as_ref().is_none_or(|s| s.contains(&b.branch)));
        list.sort_by(|a, b| a.branch.cmp(&b.branch));
        Ok(list)
    }
}
