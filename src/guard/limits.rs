//! `max_in_flight`: how many requests one branch's PBX gets at once.
//!
//! The semaphores are runtime state, kept by branch name, so a reloaded
//! profile keeps counting the requests already in flight. A changed limit
//! gets a new semaphore; requests holding the old one finish on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-branch in-flight limits.
#[derive(Debug, Default)]
pub struct InFlight {
    by_branch: Mutex<HashMap<String, (usize, Arc<Semaphore>)>>,
}

/// The branch is at its limit and no slot freed up in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("branch {branch:?} already has its maximum of {max} requests in flight")]
pub struct Full {
    pub branch: String,
    pub max: usize,
}

impl InFlight {
    /// A slot for one request to `branch`, waiting up to `wait`; `None` when
    /// the branch has no limit. The slot is held until the permit is dropped.
    pub async fn acquire(
        &self,
        branch: &str,
        max: Option<usize>,
        wait: Duration,
    ) -> Result<Option<OwnedSemaphorePermit>, Full> {
        let Some(max) = max else { return Ok(None) };
        let semaphore = {
            let Ok(mut map) = self.by_branch.lock() else { return Ok(None) };
            let entry = map.entry(branch.to_string()).or_insert_with(|| (max, Arc::new(Semaphore::new(max))));
            if entry.0 != max {
                *entry = (max, Arc::new(Semaphore::new(max)));
            }
            entry.1.clone()
        };
        match tokio::time::timeout(wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(Full { branch: branch.to_string(), max }),
        }
    }

    /// Requests in flight to `branch` now.
    pub fn current(&self, branch: &str) -> usize {
        let Ok(map) = self.by_branch.lock() else { return 0 };
        map.get(branch).map(|(max, s)| max.saturating_sub(s.available_permits())).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_branch_waits_then_refuses_and_a_freed_slot_is_reused() {
        let limits = InFlight::default();
        let wait = Duration::from_secs(1);
        let first = limits.acquire("b", Some(1), wait).await.unwrap();
        assert_eq!(limits.current("b"), 1);
        let refused = limits.acquire("b", Some(1), wait).await.unwrap_err();
        assert_eq!(refused, Full { branch: "b".into(), max: 1 });
        assert!(limits.acquire("other", Some(1), wait).await.unwrap().is_some(), "limits are per branch");
        drop(first);
        assert!(limits.acquire("b", Some(1), wait).await.unwrap().is_some());
        assert!(limits.acquire("b", None, wait).await.unwrap().is_none());
    }
}
