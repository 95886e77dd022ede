//! HTTP requests served by a [`WorkspaceRoom`] (DESIGN §4, last point): reads of the live document,
//! server-originated edits, presence and locks. Edits are Yjs transactions in the room, so live
//! editors see them at once and they are logged, compacted and projected like any client update.
//! Every answer waits for the batch to be durable.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nox_sync_protocol::canvas::{self, CanvasError, CanvasState};
use nox_sync_protocol::locks::{LockView, ReleaseReason, ResourceType};
use serde::Serialize;
use serde_json::{Map as JsonMap, Value};
use tokio::sync::oneshot;
use uuid::Uuid;
use yrs::{Doc, Transact};

use super::lock_table::view;
use super::peer::ConnId;
use super::room::{origin_of_conn, WorkspaceRoom};
use super::room_locks::LockRelease;
use super::room_versions::{RestoreOutcome, VersionState};

/// Transactions made by the server itself carry this origin: it is no peer's id, so every peer
/// receives them.
pub(super) const SERVER_ORIGIN: ConnId = 0;

/// A change to the canvas requested over HTTP.
#[derive(Debug, Clone)]
pub enum CanvasEdit {
    /// Create (`create`) or patch a block with these fields.
    PutBlock {
        id: String,
        fields: JsonMap<String, Value>,
        create: bool,
    },
    PutRelation {
        id: String,
        fields: JsonMap<String, Value>,
        create: bool,
    },
    RemoveBlock {
        id: String,
    },
    RemoveRelation {
        id: String,
    },
}

impl CanvasEdit {
    fn target(&self) -> (ResourceType, &str) {
        match self {
            CanvasEdit::PutBlock { id, .. } | CanvasEdit::RemoveBlock { id } => {
                (ResourceType::Block, id)
            }
            CanvasEdit::PutRelation { id, .. } | CanvasEdit::RemoveRelation { id } => {
                (ResourceType::Relation, id)
            }
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EditError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Exists,
    #[error("locked by another user")]
    Locked(Box<LockView>),
    #[error("{0}")]
    Invalid(String),
    #[error("storage unavailable")]
    Unavailable,
}

/// Who is connected, from the server's own knowledge of each socket.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceEntry {
    pub user_id: Uuid,
    pub user_name: Option<String>,
    pub connections: usize,
    pub since: DateTime<Utc>,
}

type Reply<T> = oneshot::Sender<T>;

pub enum HttpRequest {
    Canvas {
        reply: Reply<CanvasState>,
    },
    Edit {
        user_id: Uuid,
        edit: CanvasEdit,
        reply: Reply<Result<CanvasState, EditError>>,
    },
    Presence {
        reply: Reply<Vec<PresenceEntry>>,
    },
    Locks {
        reply: Reply<Vec<LockView>>,
    },
    /// Break a lock by id (an override by `by`). `None` when there is no such live lock.
    BreakLock {
        lock_id: Uuid,
        by: Uuid,
        reply: Reply<Option<LockView>>,
    },
    /// The document's full state for a version (`room_versions.rs`), once durable.
    TakeVersion {
        reply: Reply<VersionState>,
    },
    /// Brings the canvas back to `target` as a forward change by `user_id`.
    Restore {
        user_id: Uuid,
        target: Arc<Doc>,
        reply: Reply<Result<RestoreOutcome, EditError>>,
    },
}

impl HttpRequest {
    /// Answers a request that reached a room which is stopping: the caller retries or fails.
    pub fn refuse(self) {
        match self {
            HttpRequest::Edit { reply, .. } => {
                let _ = reply.send(Err(EditError::Unavailable));
            }
            HttpRequest::Restore { reply, .. } => {
                let _ = reply.send(Err(EditError::Unavailable));
            }
            // Dropping the other replies tells the caller the room is gone.
            HttpRequest::Canvas { .. }
            | HttpRequest::Presence { .. }
            | HttpRequest::Locks { .. }
            | HttpRequest::BreakLock { .. }
            | HttpRequest::TakeVersion { .. } => {}
        }
    }
}

/// An answer held back until the batch it belongs to is durable (`true`) or has failed.
pub struct PendingHttpReply(Box<dyn FnOnce(bool) + Send + Sync>);

impl PendingHttpReply {
    fn new<T: Send + Sync + 'static>(reply: Reply<T>, value: T, on_failure: Option<T>) -> Self {
        Self(Box::new(move |durable| {
            let answer = if durable { Some(value) } else { on_failure };
            if let Some(answer) = answer {
                let _ = reply.send(answer);
            }
        }))
    }
}

impl WorkspaceRoom {
    pub(super) fn on_http(&mut self, request: HttpRequest) {
        match request {
            HttpRequest::Canvas { reply } => {
                let canvas = self.read_canvas();
                self.http_replies
                    .push(PendingHttpReply::new(reply, canvas, None));
            }
            HttpRequest::Edit {
                user_id,
                edit,
                reply,
            } => {
                let result = self.apply_edit(user_id, edit);
                let failure = Some(Err(EditError::Unavailable));
                self.http_replies
                    .push(PendingHttpReply::new(reply, result, failure));
            }
            HttpRequest::Presence { reply } => {
                let presence = self.presence();
                let _ = reply.send(presence);
            }
            HttpRequest::Locks { reply } => {
                let now = Utc::now();
                let locks = self
                    .locks
                    .live(now)
                    .iter()
                    .map(|(kind, lock)| view(*kind, lock, self.user_name(lock.locked_by)))
                    .collect();
                let _ = reply.send(locks);
            }
            HttpRequest::BreakLock { lock_id, by, reply } => {
                let found = self.locks.find_by_id(lock_id).map(|(k, l)| (k, l.clone()));
                let answer = found.map(|(kind, lock)| {
                    let shown = view(kind, &lock, self.user_name(lock.locked_by));
                    self.lock_releases.push(LockRelease {
                        kind,
                        lock,
                        reason: ReleaseReason::Broken,
                        by: Some(by),
                    });
                    shown
                });
                self.http_replies
                    .push(PendingHttpReply::new(reply, answer, None));
            }
            HttpRequest::TakeVersion { reply } => {
                let state = self.take_version();
                self.http_replies
                    .push(PendingHttpReply::new(reply, state, None));
            }
            HttpRequest::Restore {
                user_id,
                target,
                reply,
            } => {
                let outcome = Ok(self.restore_to(user_id, &target));
                let failure = Some(Err(EditError::Unavailable));
                self.http_replies
                    .push(PendingHttpReply::new(reply, outcome, failure));
            }
        }
    }

    /// Sends every held-back answer: the batch is durable (`true`) or failed.
    pub(super) fn answer_http(&mut self, durable: bool) {
        for PendingHttpReply(answer) in std::mem::take(&mut self.http_replies) {
            answer(durable);
        }
    }

    fn read_canvas(&self) -> CanvasState {
        canvas::read_canvas(&self.awareness.doc().transact())
    }

    fn apply_edit(&mut self, user_id: Uuid, edit: CanvasEdit) -> Result<CanvasState, EditError> {
        self.check_edit(user_id, &edit)?;
        let applied = {
            let mut txn = self
                .awareness
                .doc()
                .transact_mut_with(origin_of_conn(SERVER_ORIGIN));
            match &edit {
                CanvasEdit::PutBlock { id, fields, .. } => canvas::put_block(&mut txn, id, fields),
                CanvasEdit::PutRelation { id, fields, .. } => {
                    canvas::put_relation(&mut txn, id, fields)
                }
                CanvasEdit::RemoveBlock { id } => {
                    canvas::remove_block(&mut txn, id);
                    Ok(())
                }
                CanvasEdit::RemoveRelation { id } => {
                    canvas::remove_relation(&mut txn, id);
                    Ok(())
                }
            }
        };
        applied.map_err(|e: CanvasError| EditError::Invalid(e.to_string()))?;
        self.acting_user = Some(user_id);
        self.collect_emitted();
        self.acting_user = None;
        Ok(self.read_canvas())
    }

    /// Existence, lock and reference checks that need the live document.
    fn check_edit(&self, user_id: Uuid, edit: &CanvasEdit) -> Result<(), EditError> {
        let (kind, id) = edit.target();
        let exists = Uuid::parse_str(id)
            .map(|uuid| self.resource_exists(kind, uuid))
            .unwrap_or(false);
        match edit {
            CanvasEdit::PutBlock { create: true, .. }
            | CanvasEdit::PutRelation { create: true, .. }
                if exists =>
            {
                return Err(EditError::Exists)
            }
            CanvasEdit::PutBlock { create: false, .. }
            | CanvasEdit::PutRelation { create: false, .. }
            | CanvasEdit::RemoveBlock { .. }
            | CanvasEdit::RemoveRelation { .. }
                if !exists =>
            {
                return Err(EditError::NotFound)
            }
            _ => {}
        }
        if let Ok(uuid) = Uuid::parse_str(id) {
            if let Some(lock) = self.locks.holder(kind, uuid, Utc::now()) {
                if lock.locked_by != user_id {
                    let shown = view(kind, lock, self.user_name(lock.locked_by));
                    return Err(EditError::Locked(Box::new(shown)));
                }
            }
        }
        if let CanvasEdit::PutBlock { id, fields, .. } = edit {
            if let Some(parent) = fields.get("parent_block_id").and_then(|p| p.as_str()) {
                let valid = parent != id
                    && Uuid::parse_str(parent)
                        .is_ok_and(|p| self.resource_exists(ResourceType::Block, p));
                if !valid {
                    return Err(EditError::Invalid(
                        "parent_block_id must be another block of this workspace".into(),
                    ));
                }
            }
        }
        if let CanvasEdit::PutRelation { fields, .. } = edit {
            for end in ["source_block_id", "target_block_id"] {
                let Some(value) = fields.get(end) else {
                    continue;
                };
                let known = value
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .is_some_and(|b| self.resource_exists(ResourceType::Block, b));
                if !known {
                    return Err(EditError::Invalid(format!(
                        "{end} must be the id of a block of this workspace"
                    )));
                }
            }
        }
        Ok(())
    }

    fn presence(&self) -> Vec<PresenceEntry> {
        let mut by_user: std::collections::BTreeMap<Uuid, PresenceEntry> = Default::default();
        for peer in self.peers.values() {
            let entry = by_user
                .entry(peer.info.user_id)
                .or_insert_with(|| PresenceEntry {
                    user_id: peer.info.user_id,
                    user_name: peer.info.user_name.clone(),
                    connections: 0,
                    since: peer.joined_at,
                });
            entry.connections += 1;
            entry.since = entry.since.min(peer.joined_at);
        }
        by_user.into_values().collect()
    }
}
