//! The Hocuspocus dialect at `GET /hocuspocus` (DESIGN §5b): one socket, many workspaces (the
//! document name is the workspace id, optionally followed by `\0<session>`), the token in each
//! document's Auth message, `Authenticated` with `read-write` or `readonly`.
//!
//! Each authenticated document joins its workspace room as a peer of its own, exactly like a
//! y-websocket connection (same durability, locks, presence); a small forwarder per document
//! re-addresses the room's frames to the document name. Nothing of a document is applied before its
//! auth succeeded: messages that arrive earlier wait in a bounded queue.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use nox_persistence::iam::users;
use nox_sync_protocol::wire::hocuspocus::{
    self as hp, HpClientMessage, HpDocMessage, SCOPE_READONLY, SCOPE_READ_WRITE,
};
use nox_sync_protocol::wire::ClientMessage;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::auth::{AuthUser, Permission};
use crate::live_access::{self, LiveConn, Registration, Rights, PERIODIC_RECHECK};
use crate::rooms::peer::{CloseReason, PeerControl, PeerInfo};
use crate::rooms::{RoomCommand, RoomHandle};
use crate::routes::require_workspace_for;
use crate::socket_io::{self, WsSink, WsStream};
use crate::state::AppState;

/// Messages a document may send before its auth is decided (the provider sends SyncStep1 and its
/// awareness right after the token).
const MAX_QUEUED_BEFORE_AUTH: usize = 64;
/// Documents one socket may have open.
const MAX_DOCUMENTS: usize = 64;
const PING_EVERY: Duration = Duration::from_secs(30);

pub async fn hocuspocus_socket(
    State(state): State<AppState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    socket_io::configure(upgrade, state.config.max_frame_bytes)
        // As in `ws.rs`: no wrapping `async` block, a boxed session and the socket's halves keep
        // the connection's long-lived future small.
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            HpSession::new(state).run(sink, stream)
        })
}

/// A document of the socket that passed auth and joined its room.
struct JoinedDoc {
    workspace_id: Uuid,
    auth: AuthUser,
    info: PeerInfo,
    room: RoomHandle,
    forwarder: JoinHandle<()>,
    _registration: Registration,
}

enum DocState {
    /// Waiting for (or refused at) auth; holds what arrived meanwhile.
    Pending(Vec<HpDocMessage>),
    Joined(Box<JoinedDoc>),
}

struct HpSession {
    state: AppState,
    docs: HashMap<String, DocState>,
    /// Every frame to the client goes through here (forwarders and the session alike).
    writer: mpsc::Sender<Bytes>,
    writer_rx: Option<mpsc::Receiver<Bytes>>,
    /// One close reason for the whole socket (a room closing a slow document closes the socket).
    control: Arc<PeerControl>,
    recheck: Arc<Notify>,
}

impl HpSession {
    fn new(state: AppState) -> Box<Self> {
        let (writer, writer_rx) = mpsc::channel(state.config.peer_queue);
        Box::new(Self {
            state,
            docs: HashMap::new(),
            writer,
            writer_rx: Some(writer_rx),
            control: Arc::new(PeerControl::default()),
            recheck: Arc::new(Notify::new()),
        })
    }

    async fn run(mut self: Box<Self>, sink: WsSink, stream: WsStream) {
        self.state.metrics.connections.inc();
        let reason = self.pump(sink, stream).await;
        for (_, doc) in self.docs.drain() {
            if let DocState::Joined(doc) = doc {
                leave(&doc).await;
            }
        }
        self.state.metrics.connections.dec();
        self.state
            .metrics
            .ws_closed
            .with_label_values(&[&reason.code.to_string()])
            .inc();
    }

    async fn pump(&mut self, mut sink: WsSink, mut stream: WsStream) -> CloseReason {
        let Some(mut outgoing) = self.writer_rx.take() else {
            return CloseReason::INTERNAL;
        };
        let start = tokio::time::Instant::now();
        let mut ping = tokio::time::interval_at(start + PING_EVERY, PING_EVERY);
        let mut periodic = tokio::time::interval_at(start + PERIODIC_RECHECK, PERIODIC_RECHECK);
        let (control, recheck) = (self.control.clone(), self.recheck.clone());
        let reason = loop {
            tokio::select! {
                biased;
                _ = control.closed() => {
                    break control.reason().cloned().unwrap_or(CloseReason::INTERNAL);
                }
                frame = outgoing.recv() => {
                    let Some(frame) = frame else { break CloseReason::INTERNAL };
                    if socket_io::write_queued(&mut sink, frame, &mut outgoing).await.is_err() {
                        break CloseReason::new(1006, "connection lost");
                    }
                }
                incoming = stream.next() => {
                    if let Err(reason) = self.on_incoming(incoming).await {
                        break reason;
                    }
                }
                _ = recheck.notified() => {
                    if let Err(reason) = self.reauthorize_all().await { break reason; }
                }
                _ = periodic.tick() => {
                    if let Err(reason) = self.reauthorize_all().await { break reason; }
                }
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        break CloseReason::new(1006, "connection lost");
                    }
                }
            }
        };
        if reason.code != 1006 && reason.code != 1000 {
            let close = Message::Close(Some(CloseFrame {
                code: reason.code,
                reason: reason.reason.as_ref().into(),
            }));
            let _ = sink.send(close).await;
        }
        let _ = sink.close().await;
        reason
    }

    async fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, axum::Error>>,
    ) -> Result<(), CloseReason> {
        let frame = match incoming {
            None | Some(Err(_)) => return Err(CloseReason::new(1006, "connection lost")),
            Some(Ok(Message::Binary(frame))) => frame,
            Some(Ok(Message::Close(_))) => return Err(CloseReason::new(1000, "closed by client")),
            Some(Ok(Message::Text(_))) => {
                return Err(CloseReason::new(1003, "binary Hocuspocus frames only"))
            }
            Some(Ok(_)) => return Ok(()),
        };
        if frame.len() > self.state.config.max_frame_bytes {
            return Err(CloseReason::TOO_BIG);
        }
        let message = hp::decode_frame(&frame).map_err(|err| {
            self.state.metrics.malformed_messages.inc();
            tracing::info!(error = %err, "malformed Hocuspocus frame; closing the connection");
            CloseReason::new(1007, "malformed Hocuspocus message")
        })?;
        match message {
            HpClientMessage::Ping => self.send(hp::encode_pong()).await,
            HpClientMessage::Pong => Ok(()),
            HpClientMessage::Doc { name, msg } => self.on_doc_message(name, msg).await,
        }
    }

    async fn on_doc_message(&mut self, name: String, msg: HpDocMessage) -> Result<(), CloseReason> {
        if let HpDocMessage::Auth { token } = msg {
            return self.authenticate(name, &token).await;
        }
        if !self.docs.contains_key(&name) && self.docs.len() >= MAX_DOCUMENTS {
            return Err(CloseReason::new(
                1008,
                "too many documents on one connection",
            ));
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
                    leave(&doc).await;
                }
                Ok(())
            }
            DocState::Joined(doc) => forward(doc, msg).await,
        }
    }

    /// Decides a document's auth; on success joins its room, answers `Authenticated`, then replays
    /// what the document sent while waiting.
    async fn authenticate(&mut self, name: String, token: &str) -> Result<(), CloseReason> {
        if matches!(self.docs.get(&name), Some(DocState::Joined(_))) {
            return Ok(()); // a repeated auth of an open document changes nothing
        }
        let queued = match self.docs.remove(&name) {
            Some(DocState::Pending(queued)) => queued,
            _ => Vec::new(),
        };
        if self.docs.len() >= MAX_DOCUMENTS {
            return Err(CloseReason::new(
                1008,
                "too many documents on one connection",
            ));
        }
        let admitted = match self.admit(&name, token).await {
            Ok(admitted) => admitted,
            Err(reason) => {
                // Stay Pending with nothing queued: nothing of a refused document is applied.
                self.docs
                    .insert(name.clone(), DocState::Pending(Vec::new()));
                return self
                    .send(hp::encode_permission_denied(&name, &reason))
                    .await;
            }
        };
        let doc = self.join(&name, admitted).await?;
        for msg in queued {
            forward(&doc, msg).await?;
        }
        self.docs.insert(name, DocState::Joined(Box::new(doc)));
        Ok(())
    }

    /// Who may open `name`, or the reason they may not (sent as PermissionDenied).
    async fn admit(&self, name: &str, token: &str) -> Result<Admitted, String> {
        let workspace_id = name
            .split('\0')
            .next()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| "unknown document".to_string())?;
        let auth = AuthUser::from_token(&self.state, token)
            .await
            .map_err(|e| e.message)?;
        let (access, permissions) = require_workspace_for(&self.state, auth, workspace_id)
            .await
            .map_err(|e| e.message)?;
        if !Permission::WorkspaceRead.granted_by(&permissions) {
            return Err("this workspace needs the 'workspace:read' permission".into());
        }
        live_access::check_connection_quota(&self.state, access.org_id)
            .await
            .map_err(|e| e.message)?;
        let user_name = users::find_live(self.state.db.pool(), auth.user_id)
            .await
            .ok()
            .flatten()
            .and_then(|u| u.full_name.or(Some(u.email)));
        Ok(Admitted {
            workspace_id,
            org_id: access.org_id,
            auth,
            rights: Rights::from_permissions(&permissions),
            user_name,
        })
    }

    async fn join(&mut self, name: &str, admitted: Admitted) -> Result<JoinedDoc, CloseReason> {
        let info = PeerInfo {
            conn: self.state.next_conn.fetch_add(1, Ordering::Relaxed),
            user_id: admitted.auth.user_id,
            user_name: admitted.user_name,
            can_write: admitted.rights.can_write,
            can_override_locks: admitted.rights.can_override_locks,
            // Hocuspocus providers count unsynced changes down with SyncStatus, and take
            // stateless messages: both always on.
            wants_acks: true,
            wants_locks: true,
        };
        let scope = if info.can_write {
            SCOPE_READ_WRITE
        } else {
            SCOPE_READONLY
        };
        // Authenticated goes out before anything the room sends for this document.
        self.send(hp::encode_authenticated(name, scope)).await?;
        let (outbound, from_room) = mpsc::channel(self.state.config.peer_queue);
        let room = self
            .state
            .rooms
            .join(
                admitted.workspace_id,
                info.clone(),
                outbound,
                self.control.clone(),
            )
            .await
            .map_err(|err| {
                tracing::warn!(workspace_id = %admitted.workspace_id, error = %err, "join failed");
                CloseReason::STORAGE_UNAVAILABLE
            })?;
        let registration = self.state.live.register(
            info.conn,
            LiveConn {
                user_id: admitted.auth.user_id,
                api_key_id: admitted.auth.api_key.map(|k| k.key_id),
                org_id: admitted.org_id,
                workspace_id: admitted.workspace_id,
                recheck: self.recheck.clone(),
            },
        );
        let forwarder = tokio::spawn(forward_room_frames(
            name.to_string(),
            from_room,
            self.writer.clone(),
        ));
        Ok(JoinedDoc {
            workspace_id: admitted.workspace_id,
            auth: admitted.auth,
            info,
            room,
            forwarder,
            _registration: registration,
        })
    }

    /// Rights changed somewhere: re-check every open document. A revoked credential closes the
    /// socket; a document that is no longer reachable is closed alone.
    async fn reauthorize_all(&mut self) -> Result<(), CloseReason> {
        let names: Vec<String> = self.docs.keys().cloned().collect();
        for name in names {
            let Some(DocState::Joined(doc)) = self.docs.get_mut(&name) else {
                continue;
            };
            // Boxed: SQL futures a long-lived session should not carry inline.
            let checked = Box::pin(live_access::reauthorize(
                &self.state,
                doc.auth,
                doc.workspace_id,
                &mut doc.info,
                &doc.room,
            ))
            .await;
            match checked {
                Ok(()) => {}
                Err(reason) if reason.code == 4401 => return Err(reason),
                Err(reason) => {
                    if let Some(DocState::Joined(doc)) = self.docs.remove(&name) {
                        leave(&doc).await;
                    }
                    self.send(hp::encode_permission_denied(&name, &reason.reason))
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn send(&self, frame: Vec<u8>) -> Result<(), CloseReason> {
        self.writer
            .send(Bytes::from(frame))
            .await
            .map_err(|_| CloseReason::INTERNAL)
    }
}

/// The outcome of a successful auth.
struct Admitted {
    workspace_id: Uuid,
    org_id: Uuid,
    auth: AuthUser,
    rights: Rights,
    user_name: Option<String>,
}

/// Hands one document message to its room, in the y-websocket form rooms speak.
async fn forward(doc: &JoinedDoc, msg: HpDocMessage) -> Result<(), CloseReason> {
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
    doc.room
        .send(RoomCommand::Messages {
            conn: doc.info.conn,
            messages: vec![message],
        })
        .await
        .map_err(|_| CloseReason::STORAGE_UNAVAILABLE)
}

async fn leave(doc: &JoinedDoc) {
    let _ = doc
        .room
        .send(RoomCommand::Leave {
            conn: doc.info.conn,
        })
        .await;
    doc.forwarder.abort();
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
