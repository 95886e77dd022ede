//! Versions in the room (issue 14): taking the document's durable full state, restoring a version
//! as a forward change, and automatic versions after a workspace changed and went quiet.
//!
//! The room owns the document, so both the state of a version and the restore transaction are
//! made here. A state taken while answering an HTTP request is handed out only once the batch it
//! was taken in is durable (like every HTTP answer), so a version never holds an update storage
//! does not. Automatic versions are taken on the tick, between batches, when the document holds
//! nothing but durable updates.

use std::time::{Duration, Instant};

use chrono::Utc;
use nox_persistence::db::Database;
use nox_persistence::error::PersistenceError;
use nox_persistence::versions::{self, DeltaBase, NewVersion, VersionKind, VersionMeta};
use nox_sync_protocol::canvas::{BLOCKS, RELATIONS};
use nox_sync_protocol::restore::{Compared, RestoreSummary, SearchLimits, VersionSource};
use nox_sync_protocol::version_delta;
use tokio::task::JoinHandle;
use uuid::Uuid;
use yrs::updates::encoder::Encode;
use yrs::{Map, ReadTxn, StateVector, Transact};

use super::room::{origin_of_conn, WorkspaceRoom};
use super::room_http::SERVER_ORIGIN;

/// The state of the document, as a version stores it.
#[derive(Debug, Clone)]
pub struct VersionState {
    /// Yjs v1 update holding the whole document, or the changes since `base_version_id`.
    pub state: Vec<u8>,
    /// The state vector of the whole document.
    pub state_vector: Vec<u8>,
    pub blocks: i32,
    pub relations: i32,
    /// The room's change counter when this was taken: a restore given it knows whether the
    /// document is still exactly this state.
    pub document_version: u64,
    /// The full version `state` holds the changes since; `None`: the whole document.
    pub base_version_id: Option<Uuid>,
}

impl VersionState {
    /// The row to store for this state.
    pub fn to_new_version<'a>(
        &'a self,
        workspace_id: Uuid,
        kind: VersionKind,
        name: &'a str,
        description: Option<&'a str>,
        created_by: Option<Uuid>,
    ) -> NewVersion<'a> {
        NewVersion {
            workspace_id,
            kind,
            name,
            description,
            created_by,
            state: &self.state,
            state_vector: &self.state_vector,
            block_count: self.blocks,
            relation_count: self.relations,
            base_version_id: self.base_version_id,
        }
    }
}

impl VersionState {
    /// This full state, stored as the changes since `base` when that is worth it (else as it is).
    fn stored_against(mut self, base: &DeltaBase) -> Self {
        let changes =
            version_delta::changes_since_state(&self.state, &self.state_vector, base.as_base());
        if let Some(changes) = changes {
            self.state = changes;
            self.base_version_id = Some(base.id);
        }
        self
    }
}

/// What a restore did: the state just before it (to store as the "before restore" version) and
/// how many entities it touched.
#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    /// The state just before the restore; `None` when it is the prepared one (the document did
    /// not change since it was taken).
    pub before: Option<VersionState>,
    pub summary: RestoreSummary,
    /// Whether only the entities touched since the version were compared.
    pub compared: Compared,
}

/// When the next automatic version is due.
#[derive(Default)]
pub(super) struct AutoVersions {
    /// The room's document version last looked at.
    seen: u64,
    /// The first change not yet in a version, and the latest one.
    first_change: Option<Instant>,
    last_change: Option<Instant>,
    /// The automatic version being stored.
    storing: Option<JoinHandle<()>>,
}

impl AutoVersions {
    /// Notes whether the document changed since the last look.
    fn observe(&mut self, document_version: u64, now: Instant) {
        if document_version != self.seen {
            self.seen = document_version;
            self.first_change.get_or_insert(now);
            self.last_change = Some(now);
        }
    }

    /// Due when the workspace changed and then stayed quiet for `after`, or has kept changing for
    /// `after` since its first unversioned change (so a busy workspace gets versions too).
    fn due(&self, after: Duration, now: Instant) -> bool {
        match (self.first_change, self.last_change) {
            (Some(first), Some(last)) => {
                now.duration_since(last) >= after || now.duration_since(first) >= after
            }
            _ => false,
        }
    }

    /// Everything up to `document_version` is in a version now.
    fn taken(&mut self, document_version: u64) {
        self.seen = document_version;
        self.first_change = None;
        self.last_change = None;
    }

    fn has_unversioned_changes(&self, document_version: u64) -> bool {
        self.first_change.is_some() || document_version != self.seen
    }
}

impl WorkspaceRoom {
    /// The document's state and counts (durable only between batches, or once the batch this is
    /// taken in has committed): the changes since `base` when that is worth it, else the full
    /// state.
    pub(super) fn version_state(&self, base: Option<&DeltaBase>) -> VersionState {
        let txn = self.awareness.doc().transact();
        let count = |root: &str| {
            txn.get_map(root)
                .map_or(0, |map| i32::try_from(map.len(&txn)).unwrap_or(i32::MAX))
        };
        let changes = base.and_then(|base| {
            let since = version_delta::changes_since(&txn, base.as_base())?;
            Some((since, base.id))
        });
        let (state, base_version_id) = match changes {
            Some((changes, base_id)) => (changes, Some(base_id)),
            None => (txn.encode_state_as_update_v1(&StateVector::default()), None),
        };
        VersionState {
            state,
            state_vector: txn.state_vector().encode_v1(),
            blocks: count(BLOCKS),
            relations: count(RELATIONS),
            document_version: self.version,
            base_version_id,
        }
    }

    /// State for a version requested over HTTP: the automatic one is no longer needed for it.
    pub(super) fn take_version(&mut self, base: Option<&DeltaBase>) -> VersionState {
        self.auto_versions.taken(self.version);
        self.version_state(base)
    }

    /// Makes the canvas equal to that of `version` (the version's document) in one
    /// server-originated transaction (logged, broadcast and projected like any edit). The state it
    /// replaces is taken again first, unless the document has not changed since the caller took
    /// its state at `prepared` (the caller's state is then exactly the one replaced; a state
    /// taken again is stored against the same `base`).
    pub(super) fn restore_to(
        &mut self,
        user_id: Uuid,
        version: &VersionSource,
        prepared: u64,
        base: Option<&DeltaBase>,
    ) -> RestoreOutcome {
        let before = (prepared != self.version).then(|| self.take_version(base));
        let started = Instant::now();
        let writes_done;
        let (summary, compared) = {
            let mut txn = self
                .awareness
                .doc()
                .transact_mut_with(origin_of_conn(SERVER_ORIGIN));
            // A whole-canvas restore deletes ~150k structs: collecting them is a third of its
            // commit, and nothing needs it before the restore is answered.
            txn.defer_gc();
            let restored = version.restore_into(&mut txn, SearchLimits::default());
            writes_done = started.elapsed();
            self.deferred_gc.push(txn.delete_set().clone());
            restored
        };
        let committed = started.elapsed();
        self.acting_user = Some(user_id);
        self.collect_emitted();
        self.acting_user = None;
        if compared == Compared::AllAfterMismatch {
            tracing::warn!(
                workspace_id = %self.workspace_id,
                "restore: the touched entities missed a change; every entity was compared"
            );
        }
        tracing::debug!(
            workspace_id = %self.workspace_id,
            ?compared,
            from_stored_update = matches!(version, VersionSource::Stored(_)),
            retaken = before.is_some(),
            written_ms = writes_done.as_millis(),
            committed_ms = committed.as_millis(),
            total_ms = started.elapsed().as_millis(),
            "restore applied in the room"
        );
        RestoreOutcome {
            before,
            summary,
            compared,
        }
    }

    /// Garbage-collects what this batch's restores deleted (their transactions deferred it), once
    /// the batch is durable, answered and delivered.
    pub(super) fn collect_deferred_garbage(&mut self) {
        if self.deferred_gc.is_empty() {
            return;
        }
        let started = Instant::now();
        let mut txn = self
            .awareness
            .doc()
            .transact_mut_with(origin_of_conn(SERVER_ORIGIN));
        for deleted in self.deferred_gc.drain(..) {
            txn.collect_deferred_gc(deleted);
        }
        drop(txn);
        // A full state encoded meanwhile (a joiner's SyncStep2) carries the deleted content:
        // the next joiner gets the smaller one.
        self.forget_full_state();
        tracing::debug!(
            workspace_id = %self.workspace_id,
            gc_ms = started.elapsed().as_millis(),
            "deleted content collected"
        );
    }

    /// On every tick: stores an automatic version when one is due (in the background; at most
    /// one at a time).
    pub(super) fn auto_version_tick(&mut self) {
        let Some(after) = self.ctx.settings.auto_version else {
            return;
        };
        let now = Instant::now();
        self.auto_versions.observe(self.version, now);
        let storing = self
            .auto_versions
            .storing
            .as_ref()
            .is_some_and(|task| !task.is_finished());
        if storing || !self.auto_versions.due(after, now) {
            return;
        }
        let job = self.auto_version_job();
        self.auto_versions.storing = Some(tokio::spawn(job));
    }

    /// Before the room stops (unloaded or shut down): nothing will change any more, so unversioned
    /// changes are stored as an automatic version now, and a version being stored is waited for.
    pub(super) async fn auto_version_before_stop(&mut self) {
        if let Some(task) = self.auto_versions.storing.take() {
            let _ = task.await;
        }
        if self.ctx.settings.auto_version.is_none()
            || !self.auto_versions.has_unversioned_changes(self.version)
        {
            return;
        }
        self.auto_version_job().await;
    }

    /// Takes the state now and returns the work of storing it (and applying retention).
    fn auto_version_job(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        // The full state: the base is known only once the job reads it, off the room.
        let state = self.take_version(None);
        let (db, workspace_id) = (self.ctx.db.clone(), self.workspace_id);
        async move {
            let name = format!(
                "Automatic version {}",
                Utc::now().format("%Y-%m-%d %H:%M UTC")
            );
            match store_auto_version(&db, workspace_id, state, &name).await {
                Ok(Some(stored)) => tracing::debug!(
                    %workspace_id,
                    version_id = %stored.id,
                    stored_against = ?stored.base_version_id,
                    bytes = stored.size_bytes,
                    "automatic version stored"
                ),
                Ok(None) => tracing::debug!(%workspace_id, "workspace gone: no automatic version"),
                Err(err) => {
                    tracing::warn!(%workspace_id, error = %err, "automatic version not stored")
                }
            }
        }
    }
}

/// Stores an automatic version of the full `state` (as the changes since the newest full version
/// when that is worth it), then applies retention. `None` when the workspace is gone.
async fn store_auto_version(
    db: &Database,
    workspace_id: Uuid,
    mut state: VersionState,
    name: &str,
) -> Result<Option<VersionMeta>, PersistenceError> {
    let (mut tx, base) = versions::begin_with_base(db.pool(), workspace_id).await?;
    if let Some(base) = base {
        // Diffing a 5 MB state takes milliseconds of CPU: off the async workers.
        state = tokio::task::spawn_blocking(move || state.stored_against(&base))
            .await
            .map_err(|err| PersistenceError::Invariant(format!("diffing a version: {err}")))?;
    }
    let version = state.to_new_version(workspace_id, VersionKind::Auto, name, None, None);
    let Some(stored) = versions::insert(&mut *tx, &version).await? else {
        return Ok(None);
    };
    tx.commit().await?;
    versions::prune_for_plan(db.pool(), workspace_id).await?;
    Ok(Some(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_due_after_quiet_or_after_long_editing() {
        let after = Duration::from_secs(300);
        let start = Instant::now();
        let mut auto = AutoVersions::default();
        auto.observe(0, start);
        assert!(!auto.due(after, start + after), "nothing changed");

        auto.observe(1, start);
        assert!(!auto.due(after, start + Duration::from_secs(10)));
        assert!(auto.due(after, start + after), "quiet for the whole period");

        // Edited every minute: due once the first unversioned change is `after` old.
        for minute in 1..5 {
            auto.observe(1 + minute, start + Duration::from_secs(60 * minute));
        }
        assert!(!auto.due(after, start + Duration::from_secs(290)));
        assert!(auto.due(after, start + Duration::from_secs(301)));

        auto.taken(5);
        assert!(!auto.has_unversioned_changes(5));
        assert!(!auto.due(after, start + Duration::from_secs(10_000)));
        assert!(auto.has_unversioned_changes(6));
    }
}
