//! Decoded version documents, kept for a short while (issue 14).
//!
//! A version is stored as a Yjs update; reading it means decoding it into a document, which for
//! the 10k-block + 10k-relation canvas (a 5 MB state) takes ~60 ms, and dropping that document
//! ~35 ms more. A restore usually follows a look at the same version (its diff or its canvas), and
//! a restore's "undo" restores the version just written, so the last few decoded documents are
//! kept — few, because one weighs ~14× its state in memory (~70 MB for that canvas), and briefly.
//!
//! Versions are immutable (written once; only deleted), so an entry is never stale; callers still
//! check that the version exists before using an entry. Documents leave on a blocking thread, so
//! no request and no async worker pays for freeing them.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use uuid::Uuid;
use yrs::Doc;

/// Documents kept at most.
const CAPACITY: usize = 2;
/// States larger than this are not kept (their documents would weigh ~14× as much).
const MAX_STATE_BYTES: usize = 8 * 1024 * 1024;
/// How long an unused document is kept: long enough to read a diff and decide to restore.
const TTL: Duration = Duration::from_secs(120);

/// The cache: the most recently used entry last.
#[derive(Default)]
pub struct VersionDocs {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    workspace_id: Uuid,
    version_id: Uuid,
    doc: Arc<Doc>,
    last_used: Instant,
}

impl VersionDocs {
    /// The decoded document of the version, if kept.
    pub fn get(&self, workspace_id: Uuid, version_id: Uuid) -> Option<Arc<Doc>> {
        let mut entries = self.lock();
        let at = entries
            .iter()
            .position(|e| e.workspace_id == workspace_id && e.version_id == version_id)?;
        let mut entry = entries.remove(at);
        entry.last_used = Instant::now();
        let doc = entry.doc.clone();
        entries.push(entry);
        Some(doc)
    }

    /// Keeps `doc`, the version's document decoded from `state_len` bytes (not kept when large),
    /// and lets the least recently used go.
    pub fn insert(
        self: &Arc<Self>,
        workspace_id: Uuid,
        version_id: Uuid,
        doc: Arc<Doc>,
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
                doc,
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

/// Frees documents on a blocking thread (a 10k+10k canvas takes ~35 ms to drop).
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

    #[test]
    fn keeps_the_most_recently_used_documents_of_their_workspace() {
        let cache = Arc::new(VersionDocs::default());
        let (ws, other_ws) = (Uuid::new_v4(), Uuid::new_v4());
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        cache.insert(ws, ids[0], Arc::new(Doc::new()), 10);
        cache.insert(ws, ids[1], Arc::new(Doc::new()), 10);
        assert!(cache.get(ws, ids[0]).is_some(), "0 is now the most recent");
        assert!(
            cache.get(other_ws, ids[0]).is_none(),
            "another workspace's key misses"
        );
        cache.insert(ws, ids[2], Arc::new(Doc::new()), 10);
        assert!(cache.get(ws, ids[1]).is_none(), "the least recent left");
        assert!(cache.get(ws, ids[0]).is_some());
        assert!(cache.get(ws, ids[2]).is_some());

        let big = Uuid::new_v4();
        cache.insert(ws, big, Arc::new(Doc::new()), MAX_STATE_BYTES + 1);
        assert!(cache.get(ws, big).is_none(), "large states are not kept");
    }

    #[test]
    fn unused_documents_expire() {
        let cache = Arc::new(VersionDocs::default());
        let (ws, id) = (Uuid::new_v4(), Uuid::new_v4());
        cache.insert(ws, id, Arc::new(Doc::new()), 10);
        cache.lock()[0].last_used = Instant::now() - TTL;
        cache.expire();
        assert!(cache.get(ws, id).is_none());
    }
}
