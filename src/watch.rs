//! Reloads the profiles when a file under the profiles folder changes
//! (sub-folders too: presets are `extends`-ed from there).
//!
//! File events come in bursts: an editor's atomic save writes a temporary
//! file and renames it over the profile, `git checkout` rewrites many files
//! at once. They are coalesced: a reload starts once the folder has been
//! quiet for [`QUIET`] (or [`AT_MOST`] after the first event, so a folder
//! that never stops changing is still reloaded), and events during a reload
//! lead to one more reload after it. The reload itself reads the whole
//! folder, so which file changed does not matter, only that one did.
//!
//! Only events that can change what loads count: writes, creations,
//! removals and renames of `*.yaml`/`*.yml` files and of folders. Reading
//! files (the reload's own reads included) and editors' swap and backup
//! files do not.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

use crate::call::{Gateway, Trigger};

/// How long the folder must be quiet before a reload.
pub const QUIET: Duration = Duration::from_millis(250);
/// The longest a reload waits for quiet after the first event.
pub const AT_MOST: Duration = Duration::from_secs(2);

/// Watching one gateway's profiles folder; stops when dropped (or when the
/// gateway is gone).
#[derive(Debug)]
pub struct Watch {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `gateway`'s profiles folder, in the current Tokio
/// runtime; `None` when the settings say not to (`watch_profiles: false`).
pub fn start(gateway: &Arc<Gateway>) -> Result<Option<Watch>, String> {
    let settings = &gateway.snapshot().settings;
    if !settings.watch_profiles {
        return Ok(None);
    }
    let dir = settings.profiles.clone();
    let changed = Arc::new(Notify::new());
    let wake = changed.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        // An error (the kernel's queue overflowed, say) may hide a change.
        if event.as_ref().map_or(true, counts) {
            wake.notify_one();
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    watcher.watch(&dir, RecursiveMode::Recursive).map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    let task = tokio::spawn(reload_on_change(Arc::downgrade(gateway), changed, watcher));
    Ok(Some(Watch { task }))
}

/// Waits for changes and reloads, coalescing bursts. Holds the watcher so
/// it lives exactly as long as this task, and the gateway only weakly.
async fn reload_on_change(gateway: Weak<Gateway>, changed: Arc<Notify>, _watcher: notify::RecommendedWatcher) {
    loop {
        settled(&changed).await;
        let Some(gw) = gateway.upgrade() else { return };
        gw.reload(Trigger::Files).await;
    }
}

/// Returns once a burst of changes is over: [`QUIET`] after the last one,
/// at most [`AT_MOST`] after the first.
async fn settled(changed: &Notify) {
    changed.notified().await;
    let deadline = tokio::time::Instant::now() + AT_MOST;
    loop {
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(QUIET) => return,
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

/// Whether an event can change what loads.
fn counts(event: &Event) -> bool {
    let kind_counts = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        _ => true,
    };
    let folder = matches!(event.kind, EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder));
    kind_counts && (folder || event.paths.is_empty() || event.paths.iter().any(|p| relevant(p)))
}

/// A profile or preset file, or a folder (a renamed or replaced presets
/// folder, a mounted configuration's `..data` link).
fn relevant(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) || name.starts_with("..") || path.is_dir()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_reload_after_it_and_a_storm_is_cut_off() {
        let changed = Arc::new(Notify::new());
        let start = tokio::time::Instant::now();
        let burst = changed.clone();
        tokio::spawn(async move {
            for _ in 0..5 {
                burst.notify_one();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        settled(&changed).await;
        // The last of five changes 100 ms apart came at 400 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(400) + QUIET);

        let start = tokio::time::Instant::now();
        let storm = changed.clone();
        let storming = tokio::spawn(async move {
            loop {
                storm.notify_one();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        settled(&changed).await;
        assert_eq!(start.elapsed(), AT_MOST, "a folder that never stops changing is still reloaded");
        storming.abort();
    }

    #[test]
    fn writes_to_profiles_count_and_reads_and_swap_files_do_not() {
        let write = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(counts(&event(write, "/p/milan.yaml")));
        assert!(counts(&event(EventKind::Create(CreateKind::File), "/p/presets/x.yml")));
        assert!(counts(&event(EventKind::Modify(ModifyKind::Name(notify::event::RenameMode::To)), "/p/milan.yaml")));
        assert!(counts(&event(EventKind::Remove(RemoveKind::File), "/p/milan.yaml")));
        assert!(counts(&event(EventKind::Create(CreateKind::Other), "/p/..data")));
        assert!(!counts(&event(read, "/p/milan.yaml")), "the reload's own reads");
        assert!(!counts(&event(EventKind::Access(AccessKind::Open(AccessMode::Any)), "/p/milan.yaml")));
        assert!(!counts(&event(write, "/p/.milan.yaml.swp")), "an editor's swap file");
        assert!(!counts(&event(EventKind::Create(CreateKind::File), "/p/milan.yaml~")), "a backup");
    }
}
