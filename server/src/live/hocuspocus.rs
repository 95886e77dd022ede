//! The Hocuspocus dialect at `GET /hocuspocus` (DESIGN §5b): one socket, many workspaces (the
//! document name is the workspace id, optionally followed by `\0<session>`), the token in each
//! document's Auth message, `Authenticated` with `read-write` or `readonly`.
//!
//! Each authenticated document is admitted exactly like a y-websocket connection
//! (`admission::admit`, same order, same reasons) and joins its workspace room as a
//! [`LivePeer`] of its own (same durability, locks, presence, re-authorization); a small forwarder
//! per document re-addresses the room's frames to the document name. Nothing of a document is
//! applied before its auth succeeded: messages that arrive earlier wait in a bounded queue.

use std::collections::HashMap;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use nox_sync_protocol::wire::hocuspocus::{
    self as hp, HpClientMessage, HpDocMessage, SCOPE_READONLY, SCOPE_READ_WRITE,
};
use nox_sync_protocol::wire::ClientMessage;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::admission::{self, Admission};
use super::session::{self, refusal_close_reason, Dialect, LivePeer, PeerOptions, SocketShared};
use super::socket_io;
use crate::access::features::Flag;
use crate::access::AccessError;
use crate::rooms::peer::CloseReason;
use crate::state::AppState;

/// Messages a document may send before its auth is decided (the provider sends SyncStep1 and its
/// awareness right after the token).
const MAX_QUEUED_BEFORE_AUTH: usize = 64;
/// Documents one socket may have open.
const MAX_DOCUMENTS: usize = 64;
/// Hocuspocus providers count unsynced changes down with SyncStatus, and take stateless
/// messages: both always on.
const OPTIONS: PeerOptions = PeerOptions {
    wants_acks: true,
    wants_locks: true,
    wants_comments: true,
    wants_chat: true,
};

pub async fn hocuspocus_socket(
    State(state): State<AppState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    socket_io::configure(upgrade, state.config.max_frame_bytes)
        // As in `ws.rs`: no wrapping `async` block, a boxed session and the socket's halves keep
        // the connection's long-lived future small.
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            let dialect = Box::new(Hocuspocus::new(state.config.peer_queue));
            session::run(Box::new(SocketShared::new(state)), dialect, sink, stream)
        })
}

/// A document of the socket that passed auth and joined its room.
struct JoinedDoc {
    peer: LivePeer,
    forwarder: JoinHandle<()>,
}

impl JoinedDoc {
    async fn leave(self) {
        self.peer.leave().await;
        self.forwarder.abort();
    }
}

enum DocState {
    /// Waiting for (or refused at) auth; holds what arrived meanwhile.
    Pending(Vec<HpDocMessage>),
    Joined(Box<JoinedDoc>),
}

struct Hocuspocus {
    docs: HashMap<String, DocState>,
    /// Every frame to the client goes through here (forwarders and the session alike).
    writer: mpsc::Sender<Bytes>,
    writer_rx: Option<mpsc::Receiver<Bytes>>,
}

impl Dialect for Hocuspocus {
    const TEXT_REFUSAL: CloseReason = CloseReason::new(1003, "binary Hocuspocus frames only");

    async fn start(&mut self, _: &SocketShared) -> Result<mpsc::Receiver<Bytes>, CloseReason> {
        self.writer_rx.take().ok_or(CloseReason::INTERNAL)
    }

    async fn on_frame(&mut self, shared: &SocketShared, frame: &[u8]) -> Result<(), CloseReason> {
        let message = hp::decode_frame(frame).map_err(|err| {
            shared.state.metrics.malformed_messages.inc();
            tracing::info!(error = %err, "malformed Hocuspocus frame; closing the connection");
            CloseReason::new(1007, "malformed Hocuspocus message")
        })?;
        match message {
            HpClientMessage::Ping => self.send(hp::encode_pong()).await,
            HpClientMessage::Pong => Ok(()),
            HpClientMessage::Doc { name, msg } => self.on_doc_message(shared, name, msg).await,
        }
    }

    /// A revoked credential closes the socket; a document that is no longer readable is closed
    /// alone, with a PermissionDenied.
    async fn reauthorize(&mut self, shared: &SocketShared) -> Result<(), CloseReason> {
        let names: Vec<String> = self.docs.keys().cloned().collect();
        for name in names {
            let Some(DocState::Joined(doc)) = self.docs.get_mut(&name) else {
                continue;
            };
            match doc.peer.reauthorize(shared).await {
                Ok(()) => {}
                Err(reason) if reason == CloseReason::ACCESS_REVOKED => {
                    if let Some(DocState::Joined(doc)) = self.docs.remove(&name) {
                        doc.leave().await;
                    }
                    self.send(hp::encode_permission_denied(&name, &reason.reason))
                        .await?;
                }
                Err(reason) => return Err(reason),
            }
        }
        Ok(())
    }

    async fn finish(&mut self) {
        for (_, doc) in self.docs.drain() {
            if let DocState::Joined(doc) = doc {
                doc.leave().await;
            }
        }
    }
}

impl Hocuspocus {
    fn new(queue: usize) -> Self {
        let (writer, writer_rx) = mpsc::channel(queue);
        Self {
            docs: HashMap::new(),
            writer,
            writer_rx: Some(writer_rx),
        }
    }

    async fn on_doc_message(
        &mut self,
        shared: &SocketShared,
        name: String,
        msg: HpDocMessage,
    ) -> Result<(), CloseReason> {
        if let HpDocMessage::Auth { token } = msg {
            return self.authenticate(shared, name, &token).await;
        }
        if !self.docs.contains_key(&name) && self.docs.len() >= MAX_DOCUMENTS {
            return Err(too_many_documents());
        }
        match self
            .docs
            .entry(name.clone())
            .or_insert_with(|| DocState::Pending(Vec::new()))
        {
            DocState::Pending(queued) => {
                if queued.len() >= MAX_QUEUED_BEFORE_AUTH {
                    return Err(CloseReason::new(
                        1008,
                        "too many messages before authentication",
                    ));
                }
                queued.push(msg);
                Ok(())
            }
            DocState::Joined(_) if matches!(msg, HpDocMessage::Close) => {
                if let Some(DocState::Joined(doc)) = self.docs.remove(&name) {
                    doc.leave().await;
                }
                Ok(())
            }
            DocState::Joined(doc) => forward(&doc.peer, msg).await,
        }
    }

    /// Decides a document's auth; on success joins its room, answers `Authenticated`, then replays
    /// what the document sent while waiting.
    async fn authenticate(
        &mut self,
        shared: &SocketShared,
        name: String,
        token: &str,
    ) -> Result<(), CloseReason> {
        if matches!(self.docs.get(&name), Some(DocState::Joined(_))) {
            return Ok(()); // a repeated auth of an open document changes nothing
        }
        let queued = match self.docs.remove(&name) {
            Some(DocState::Pending(queued)) => queued,
            _ => Vec::new(),
        };
        if self.docs.len() >= MAX_DOCUMENTS {
            return Err(too_many_documents());
        }
        let admitted = match admit(shared, &name, token).await {
            Ok(admitted) => admitted,
            // Storage could not decide: close so the provider reconnects, rather than deny for good.
            Err(err @ AccessError::Storage(_)) => {
                tracing::warn!(error = %err, "could not authorize a Hocuspocus document");
                return Err(refusal_close_reason(&err));
            }
            Err(refused) => {
                // Stay Pending with nothing queued: nothing of a refused document is applied.
                self.docs
                    .insert(name.clone(), DocState::Pending(Vec::new()));
                return self
                    .send(hp::encode_permission_denied(&name, &refused.to_string()))
                    .await;
            }
        };
        let doc = self.join(shared, &name, admitted).await?;
        for msg in queued {
            forward(&doc.peer, msg).await?;
        }
        self.docs.insert(name, DocState::Joined(Box::new(doc)));
        Ok(())
    }

    async fn join(
        &mut self,
        shared: &SocketShared,
        name: &str,
        admission: Admission,
    ) -> Result<JoinedDoc, CloseReason> {
        let scope = if admission.rights.can_write {
            SCOPE_READ_WRITE
        } else {
            SCOPE_READONLY
        };
        // Authenticated goes out before anything the room sends for this document.
        self.send(hp::encode_authenticated(name, scope)).await?;
        let (outbound, from_room) = mpsc::channel(shared.state.config.peer_queue);
        let peer = LivePeer::join(shared, admission, OPTIONS, outbound).await?;
        let forwarder = tokio::spawn(forward_room_frames(
            name.to_string(),
            from_room,
            self.writer.clone(),
        ));
        Ok(JoinedDoc { peer, forwarder })
    }

    async fn send(&self, frame: Vec<u8>) -> Result<(), CloseReason> {
        self.writer
            .send(Bytes::from(frame))
            .await
            .map_err(|_| CloseReason::INTERNAL)
    }
}

fn too_many_documents() -> CloseReason {
    CloseReason::new(1008, "too many documents on one connection")
}

/// Admits the caller to the document `name` (a workspace id, optionally `\0<session>`).
async fn admit(shared: &SocketShared, name: &str, token: &str) -> Result<Admission, AccessError> {
    let workspace_id = name
        .split('\0')
        .next()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or(AccessError::NotFound("document"))?;
    admission::admit(
        &shared.state,
        token,
        workspace_id,
        Some(Flag::Hocuspocus),
        false,
    )
    .await
}

/// Hands one document message to its room, in the y-websocket form rooms speak.
async fn forward(peer: &LivePeer, msg: HpDocMessage) -> Result<(), CloseReason> {
    let message = match msg {
        HpDocMessage::Sync(message) => message,
        HpDocMessage::Awareness(update) => ClientMessage::Awareness(update),
        HpDocMessage::QueryAwareness => ClientMessage::AwarenessQuery,
        HpDocMessage::Stateless(payload) => ClientMessage::Stateless(payload),
        HpDocMessage::Auth { .. }
        | HpDocMessage::Close
        | HpDocMessage::SyncStatus
        | HpDocMessage::Unknown(_) => return Ok(()),
    };
    peer.send(vec![message]).await
}

/// Re-addresses a room's frames to the document and queues them for the socket. When the socket
/// is slow this waits, the room's queue for the document fills, and the room closes it (1013).
async fn forward_room_frames(
    name: String,
    mut from_room: mpsc::Receiver<Bytes>,
    writer: mpsc::Sender<Bytes>,
) {
    while let Some(frame) = from_room.recv().await {
        for out in hp::translate_room_frame(&name, &frame) {
            if writer.send(Bytes::from(out)).await.is_err() {
                return;
            }
        }
    }
}
