//! One compaction of one workspace, run beside its room (DESIGN §3–4): project the document state
//! the room handed over, diff it against what was last projected, and write snapshot + log trim +
//! changed rows in one transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use nox_persistence::cluster::Lease;
use nox_persistence::compaction::{self, Compaction};
use nox_persistence::db::Database;
use nox_persistence::error::PersistenceError;
use nox_persistence::projection_store;
use nox_persistence::warehouse::invaders;
use nox_sync_protocol::canvas::{self, CanvasState};
use nox_sync_protocol::projection::{self, ProjectionContext, ProjectionDiff, ProjectionDigest};
use nox_sync_protocol::snapshot;
use uuid::Uuid;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector, Transact, Update};

use crate::metrics::Metrics;
use crate::warehouse::schema;

/// What the room hands over: a consistent copy of its document at `covers_seq`.
pub struct CompactionJob {
    pub workspace_id: Uuid,
    /// The room's lease: a compaction of a stale owner is refused (DESIGN §7).
    pub lease: Lease,
    pub state: Vec<u8>,
    pub state_vector: Vec<u8>,
    pub covers_seq: i64,
    /// The digest of what the previous compaction wrote; `None` → read the rows.
    pub previous: Option<Arc<ProjectionDigest>>,
}

/// What comes back to the room.
pub struct CompactionOutcome {
    pub covers_seq: i64,
    /// The projection now in the rows (the base of the next diff), or why nothing was written.
    pub result: Result<Arc<ProjectionDigest>, CompactionError>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error(transparent)]
    Storage(#[from] PersistenceError),
    #[error("document state does not decode: {0}")]
    Decode(String),
    #[error("compaction task failed: {0}")]
    Task(String),
    /// The full state would not rebuild the live document (yrs integrated structs its own
    /// encoding cannot carry): trimming the log would lose acknowledged updates, so nothing is
    /// written and the log keeps them.
    #[error("the full state does not rebuild the live document; keeping the log")]
    Unreproducible,
}

pub async fn run(job: CompactionJob, db: Database, metrics: Metrics) -> CompactionOutcome {
    let started = Instant::now();
    let covers_seq = job.covers_seq;
    let workspace_id = job.workspace_id;
    let result = compact(job, &db, &metrics).await;
    metrics
        .compaction_seconds
        .observe(started.elapsed().as_secs_f64());
    if let Err(err) = &result {
        tracing::warn!(%workspace_id, covers_seq, error = %err, "compaction failed; the log still holds every update");
    }
    CompactionOutcome { covers_seq, result }
}

async fn compact(
    job: CompactionJob,
    db: &Database,
    metrics: &Metrics,
) -> Result<Arc<ProjectionDigest>, CompactionError> {
    let state = Arc::new(job.state);
    let (canvas, rebuilds) = read_state(state.clone(), job.state_vector.clone()).await?;
    if !rebuilds {
        metrics.compactions_refused.inc();
        return Err(CompactionError::Unreproducible);
    }
    let ids = projection::referenced_ids(&canvas);
    let context = projection_store::load_context(db.pool(), job.workspace_id, &ids).await?;
    let schemas = invader_schemas(db, job.workspace_id, &context).await?;
    let (next, next_digest) = blocking(move || {
        let mut next = projection::project(&canvas, &context);
        schema::screen_usages(&mut next, &schemas);
        let digest = next.digest();
        (next, digest)
    })
    .await?;
    let previous = match job.previous {
        Some(previous) => previous,
        None => Arc::new(
            projection_store::load_projection(db.pool(), job.workspace_id)
                .await?
                .digest(),
        ),
    };
    let diff = projection::diff_digested(&previous, &next, &next_digest);
    let written = compaction::compact(
        db.pool(),
        Compaction {
            lease: &job.lease,
            workspace_id: job.workspace_id,
            state: &state,
            state_vector: &job.state_vector,
            covers_seq: job.covers_seq,
            diff: &diff,
            conflicts: &next.conflicts,
        },
    )
    .await;
    if let Err(err) = written {
        if matches!(err, PersistenceError::Fenced { .. }) {
            return Err(CompactionError::Storage(err));
        }
        // The projection must never hold the log hostage: keep the snapshot and the log trim even
        // when a row write fails (e.g. a reference deleted between the context read and now), and
        // re-read the rows next time.
        tracing::warn!(workspace_id = %job.workspace_id, error = %err, "projection write failed; compacting without it");
        compaction::compact(
            db.pool(),
            Compaction {
                lease: &job.lease,
                workspace_id: job.workspace_id,
                state: &state,
                state_vector: &job.state_vector,
                covers_seq: job.covers_seq,
                diff: &ProjectionDiff::default(),
                conflicts: &next.conflicts,
            },
        )
        .await?;
        return Err(CompactionError::Storage(err));
    }
    record_conflicts(metrics, &previous, &next_digest);
    Ok(Arc::new(next_digest))
}

/// The `config_schema`s of the invader definitions the document uses (§4 Rule 6: a usage whose
/// config breaks its definition's schema is dropped and counted; the pure projection has no JSON
/// Schema validator, so the screening runs here, right after it).
async fn invader_schemas(
    db: &Database,
    workspace_id: Uuid,
    context: &ProjectionContext,
) -> Result<HashMap<Uuid, serde_json::Value>, PersistenceError> {
    let ids: Vec<Uuid> = context.known_invader_assets.iter().copied().collect();
    invaders::schemas_for_workspace(db.pool(), workspace_id, &ids).await
}

/// Decodes the state into a scratch document and reads the canvas from it, off the async workers;
/// also tells whether that scratch document reached the live document's clocks (`live_sv`), i.e.
/// whether the state may replace the log (`snapshot::rebuilds`).
async fn read_state(
    state: Arc<Vec<u8>>,
    live_sv: Vec<u8>,
) -> Result<(CanvasState, bool), CompactionError> {
    blocking(move || {
        let doc = canvas::new_canvas_doc();
        let mut txn = doc.transact_mut();
        let update =
            Update::decode_v1(&state).map_err(|e| CompactionError::Decode(e.to_string()))?;
        txn.apply_update(update)
            .map_err(|e| CompactionError::Decode(e.to_string()))?;
        let live =
            StateVector::decode_v1(&live_sv).map_err(|e| CompactionError::Decode(e.to_string()))?;
        let rebuilds = snapshot::same_clocks(&txn.state_vector(), &live);
        Ok((canvas::read_canvas(&txn), rebuilds))
    })
    .await?
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CompactionError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CompactionError::Task(e.to_string()))
}

/// Keeps the per-kind conflict gauge equal to the sum over loaded rooms.
fn record_conflicts(metrics: &Metrics, previous: &ProjectionDigest, next: &ProjectionDigest) {
    let (before, after) = (previous.conflict_counts(), next.conflict_counts());
    let kinds: std::collections::BTreeSet<_> = before.keys().chain(after.keys()).collect();
    for kind in kinds {
        let delta = *after.get(kind).unwrap_or(&0) as i64 - *before.get(kind).unwrap_or(&0) as i64;
        if delta != 0 {
            metrics
                .projection_conflicts
                .with_label_values(&[kind.as_str()])
                .add(delta);
        }
    }
}

/// Removes a room's conflicts from the gauge when it unloads.
pub fn forget_conflicts(metrics: &Metrics, projection: &ProjectionDigest) {
    for (kind, count) in projection.conflict_counts() {
        metrics
            .projection_conflicts
            .with_label_values(&[kind.as_str()])
            .sub(*count as i64);
    }
}
