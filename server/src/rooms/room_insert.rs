//! Inserting many blocks and relations at once (a template insertion, docs/design.md §17): one
//! server-originated Yjs transaction in the room, so editors see the whole insertion appear at
//! once and it is logged, broadcast and projected like any update. The blocks-per-workspace
//! quota is checked here, against the live document, so racing insertions cannot overshoot it.

use nox_sync_protocol::canvas::{self, BLOCKS};
use nox_sync_protocol::locks::ResourceType;
use serde_json::{Map as JsonMap, Value};
use tokio::sync::oneshot;
use uuid::Uuid;
use yrs::{Map, ReadTxn, Transact};

use super::room::{origin_of_conn, WorkspaceRoom};
use super::room_http::{PendingHttpReply, SERVER_ORIGIN};

/// New blocks and relations to write in one transaction (ids chosen by the caller, all new).
#[derive(Debug)]
pub struct CanvasInsert {
    pub user_id: Uuid,
    pub blocks: Vec<(String, JsonMap<String, Value>)>,
    pub relations: Vec<(String, JsonMap<String, Value>)>,
    /// The plan's blocks-per-workspace limit; `None` is unlimited.
    pub max_blocks: Option<i64>,
    pub reply: oneshot::Sender<Result<(), InsertError>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    #[error("the plan allows at most {0} blocks per workspace")]
    Quota(i64),
    #[error("an entity with id {0} exists")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("storage unavailable")]
    Unavailable,
}

impl CanvasInsert {
    /// Answers an insertion that reached a stopping room.
    pub(super) fn refuse(self) {
        let _ = self.reply.send(Err(InsertError::Unavailable));
    }
}

impl WorkspaceRoom {
    /// Applies the insertion; the answer waits until the batch is durable.
    pub(super) fn on_insert(&mut self, insert: CanvasInsert) {
        let CanvasInsert {
            user_id,
            blocks,
            relations,
            max_blocks,
            reply,
        } = insert;
        let result = self.apply_insert(user_id, &blocks, &relations, max_blocks);
        let failure = Some(Err(InsertError::Unavailable));
        self.http_replies
            .push(PendingHttpReply::new(reply, result, failure));
    }

    fn apply_insert(
        &mut self,
        user_id: Uuid,
        blocks: &[(String, JsonMap<String, Value>)],
        relations: &[(String, JsonMap<String, Value>)],
        max_blocks: Option<i64>,
    ) -> Result<(), InsertError> {
        self.check_insert(blocks, relations, max_blocks)?;
        let written = {
            let mut txn = self
                .awareness
                .doc()
                .transact_mut_with(origin_of_conn(SERVER_ORIGIN));
            let blocks_written = blocks
                .iter()
                .try_for_each(|(id, fields)| canvas::put_block(&mut txn, id, fields));
            blocks_written.and_then(|()| {
                relations
                    .iter()
                    .try_for_each(|(id, fields)| canvas::put_relation(&mut txn, id, fields))
            })
        };
        // The fields are built by the server from checked templates, so a refusal here is a bug;
        // whatever was written is still logged below, so the document and the log agree.
        self.acting_user = Some(user_id);
        self.collect_emitted();
        self.acting_user = None;
        written.map_err(|e| InsertError::Invalid(e.to_string()))
    }

    fn check_insert(
        &self,
        blocks: &[(String, JsonMap<String, Value>)],
        relations: &[(String, JsonMap<String, Value>)],
        max_blocks: Option<i64>,
    ) -> Result<(), InsertError> {
        if let Some(limit) = max_blocks {
            let txn = self.awareness.doc().transact();
            let current = txn.get_map(BLOCKS).map_or(0, |m| m.len(&txn)) as i64;
            if current + blocks.len() as i64 > limit {
                return Err(InsertError::Quota(limit));
            }
        }
        let taken = blocks
            .iter()
            .map(|(id, _)| (ResourceType::Block, id))
            .chain(relations.iter().map(|(id, _)| (ResourceType::Relation, id)))
            .find(|(kind, id)| {
                Uuid::parse_str(id).is_ok_and(|uuid| self.resource_exists(*kind, uuid))
            });
        match taken {
            Some((_, id)) => Err(InsertError::Exists(id.clone())),
            None => Ok(()),
        }
    }
}
