//! Read versions, kept for a short while (issue 14).
//!
//! A version is stored as a Yjs update. Reading it means parsing that update
//! (`restore::StoredVersion`, ~20 ms for the 10k-block + 10k-relation canvas, a 5 MB state) or, for
//! states that reader leaves to yrs, decoding it into a document (~60 ms, and ~35 ms more to drop
//! it). A restore usually follows a look at the same version (its diff or its canvas), so the last
//! few read versions are kept — few, because a parsed version weighs about twice its state and a
//! decoded document ~14× (~70 MB for that canvas), and briefly.
//!
//! Versions are immutable (written once; only deleted), so an entry is never stale; callers still
//! check that the version exists before using an entry. Entries leave on a blocking thread, so no
//! request and no async worker pays for freeing them.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use nox_sync_protocol::restore::VersionSource;
use uuid::Uuid;

/// Versions kept at most.
const CAPACITY: usize = 2;
/// States larger than this are not kept.
const MAX_STATE_BYTES: usize = 8 * 1024 * 1024;
/// How long an unused version is kept: long enough to read a diff and decide to restore.
const TTL: Duration = Duration::from_secs(120);

/// The cache: the most recently used entry last.
#[derive(Default)]
pub struct RecentVersions {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    workspace_id: Uuid,
    version_id: Uuid,
    version: VersionSource,
    last_used: Instant,
}

impl RecentVersions {
    /// The read version, if kept.
    pub fn get(&self, workspace_id: Uuid, version_id: Uuid) -> Option<VersionSource> {
        let mut entries = self.lock();
        let at = entries
            .iter()
            .position(|e| e.workspace_id == workspace_id && e.version_id == version_id)?;
        let mut entry = entries.remove(at);
        entry.last_used = Instant::now();
        let version = entry.version.clone();
        entries.push(entry);
        Some(version)
    }

    /// Keeps `version`, read from `state_len` bytes (not kept when large), and lets the least
    /// recently used go.
    pub fn insert(
        self: &Arc<Self>,
        workspace_id: Uuid,
        version_id: Uuid,
        version: VersionSource,
        state_len: usize,
    ) {
        if state_len > MAX_STATE_BYTES {
            return;
        }
        let evicted: Vec<Entry> = {
            let mut entries = self.lock();
            entries.retain(|e| !(e.workspace_id == workspace_id && e.version_id == version_id));
            entries.push(Entry {
                workspace_id,
                version_id,
                version,
                last_used: Instant::now(),
            });
            let excess = entries.len().saturating_sub(CAPACITY);
            entries.drain(..excess).collect()
        };
        drop_off_the_request_path(evicted);
        self.expire_later();
    }

    /// Drops the entries unused for [`TTL`].
    fn expire(&self) {
        let expired: Vec<Entry> = {
            let mut entries = self.lock();
            let (expired, kept) = std::mem::take(&mut *entries)
                .into_iter()
                .partition(|e| e.last_used.elapsed() >= TTL);
            *entries = kept;
            expired
        };
        drop_off_the_request_path(expired);
    }

    fn expire_later(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            tokio::time::sleep(TTL).await;
            if let Some(cache) = cache.upgrade() {
                cache.expire();
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic while holding the lock leaves a valid Vec: keep using it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Frees versions on a blocking thread (a decoded 10k+10k canvas takes ~35 ms to drop).
pub fn drop_off_the_request_path<T: Send + 'static>(value: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(move || drop(value));
        }
        Err(_) => drop(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> VersionSource {
        VersionSource::Document(Arc::new(yrs::Doc::new()))
    }

    #[test]
    fn keeps_the_most_recently_used_versions_of_their_workspace() {
        let cache = Arc::new(RecentVersions::default());
        let (ws, other_ws) = (Uuid::new_v4(), Uuid::new_v4());
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        cache.insert(ws, ids[0], doc(), 10);
        cache.insert(ws, ids[1], doc(), 10);
        assert!(cache.get(ws, ids[0]).is_some(), "0 is now the most recent");
        assert!(
            cache.get(other_ws, ids[0]).is_none(),
            "another workspace's key misses"
        );
        cache.insert(ws, ids[2], doc(), 10);
        assert!(cache.get(ws, ids[1]).is_none(), "the least recent left");
        assert!(cache.get(ws, ids[0]).is_some());
        assert!(cache.get(ws, ids[2]).is_some());

        let big = Uuid::new_v4();
        cache.insert(ws, big, doc(), MAX_STATE_BYTES + 1);
        assert!(cache.get(ws, big).is_none(), "large states are not kept");
    }

    #[test]
    fn unused_versions_expire() {
        let cache = Arc::new(RecentVersions::default());
        let (ws, id) = (Uuid::new_v4(), Uuid::new_v4());
        cache.insert(ws, id, doc(), 10);
        cache.lock()[0].last_used = Instant::now() - TTL;
        cache.expire();
        assert!(cache.get(ws, id).is_none());
    }
}
