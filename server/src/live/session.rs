//! The session core both wire dialects run on.
//!
//! A [`LivePeer`] is one admitted caller joined to one workspace room: registered in the live
//! registry (so rights changes reach it), holding the room handle, re-authorized on demand. The
//! socket loop [`run`] owns what every connection needs whatever its dialect — the outbound queue
//! written in batches, the size limit, pings, re-authorization on events and every
//! [`PERIODIC_RECHECK`], close frames with a code and a reason, metrics — and hands each binary frame
//! to its [`Dialect`], which only translates frames.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use nox_sync_protocol::wire::ClientMessage;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

use super::admission::Admission;
use super::relay::{Relay, RelayError, RelayTarget};
use super::socket_io::{self, WsSink, WsStream};
use crate::access::{rights, AccessError, LiveConn, Registration, Rights, PERIODIC_RECHECK};
use crate::rooms::peer::{CloseReason, PeerControl, PeerInfo};
use crate::rooms::{JoinError, RoomCommand, RoomHandle};
use crate::state::AppState;

/// How often the server pings an idle socket (keeps proxies from closing it, detects dead peers).
const PING_EVERY: Duration = Duration::from_secs(30);

/// What a dialect asks of the room for its peers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerOptions {
    /// Durable acknowledgements after each commit.
    pub wants_acks: bool,
    /// Edit-lock events from the start.
    pub wants_locks: bool,
    /// Comment events of the workspace.
    pub wants_comments: bool,
    /// Chat messages of the workspace's project.
    pub wants_chat: bool,
}

/// What one socket's dialects share: the state, the socket's close switch, its re-check signal.
pub struct SocketShared {
    pub state: AppState,
    /// One close reason for the whole socket (a room closing a slow peer closes the socket).
    pub control: Arc<PeerControl>,
    /// Woken by the live registry when this socket's rights may have changed.
    pub recheck: Arc<Notify>,
}

impl SocketShared {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            control: Arc::new(PeerControl::default()),
            recheck: Arc::new(Notify::new()),
        }
    }
}

/// One admitted caller joined to its workspace room.
pub struct LivePeer {
    pub workspace_id: Uuid,
    caller: crate::access::AuthUser,
    info: PeerInfo,
    room: RoomLink,
    _registration: Registration,
}

/// Where a peer's room is: in this process, or on the node that owns the workspace.
enum RoomLink {
    Local(RoomHandle),
    Relayed(Relay),
}

/// How long a connection whose owner node does not answer keeps trying — until the owner's
/// lease expires and this node can take the workspace over — before it is closed to retry.
const RELAY_GRACE: Duration = Duration::from_secs(2);
/// Pause between attempts to reach an owner that did not answer.
const RELAY_RETRY: Duration = Duration::from_millis(250);

impl LivePeer {
    /// Registers the connection (so rights changes reach it) and joins the workspace's room; the
    /// room's frames for it arrive on `outbound`.
    pub async fn join(
        shared: &SocketShared,
        admission: Admission,
        options: PeerOptions,
        outbound: mpsc::Sender<Bytes>,
    ) -> Result<LivePeer, CloseReason> {
        let state = &shared.state;
        let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
        let registration = state.live.register(
            conn,
            LiveConn {
                user_id: admission.caller.user_id,
                api_key_id: admission.caller.api_key.map(|k| k.key_id),
                org_id: admission.org_id,
                workspace_id: admission.workspace_id,
                recheck: shared.recheck.clone(),
                relayed: admission.relayed,
            },
        );
        let info = PeerInfo {
            conn,
            user_id: admission.caller.user_id,
            user_name: admission.user_name.clone(),
            can_write: admission.rights.can_write,
            can_override_locks: admission.rights.can_override_locks,
            wants_acks: options.wants_acks,
            wants_locks: options.wants_locks,
            wants_comments: options.wants_comments,
            wants_chat: options.wants_chat,
        };
        let room = link(shared, &admission, options, &info, outbound).await?;
        Ok(LivePeer {
            workspace_id: admission.workspace_id,
            caller: admission.caller,
            info,
            room,
            _registration: registration,
        })
    }

    /// Hands decoded messages to the room. Err: the room stopped (its storage failed).
    pub async fn send(&self, messages: Vec<ClientMessage>) -> Result<(), CloseReason> {
        match &self.room {
            RoomLink::Local(room) => room
                .send(RoomCommand::Messages {
                    conn: self.info.conn,
                    messages,
                })
                .await
                .map_err(|_| CloseReason::STORAGE_UNAVAILABLE),
            RoomLink::Relayed(relay) => relay.send(messages).await,
        }
    }

    /// Re-runs the authorization this peer was admitted with. Err closes it: 4401 when the
    /// credential is gone, 4403 when the workspace is no longer readable. When storage cannot
    /// answer, the current rights stay: a database hiccup must not drop healthy editors.
    pub async fn reauthorize(&mut self, shared: &SocketShared) -> Result<(), CloseReason> {
        // The owner node has the last word on a relayed peer.
        if let Some(refused) = self.relay_refusal() {
            return Err(refused);
        }
        // Boxed: SQL futures a long-lived session should not carry inline.
        let checked = Box::pin(rights::recheck(
            &shared.state.db,
            self.caller,
            self.workspace_id,
        ))
        .await;
        let now = match checked {
            Ok(now) => now,
            Err(AccessError::Storage(err)) => {
                tracing::warn!(workspace_id = %self.workspace_id, error = %err,
                    "could not re-check a live connection; keeping its rights");
                return Ok(());
            }
            Err(refused) => return Err(refusal_close_reason(&refused)),
        };
        let before = Rights {
            can_write: self.info.can_write,
            can_override_locks: self.info.can_override_locks,
        };
        if now != before {
            self.info.can_write = now.can_write;
            self.info.can_override_locks = now.can_override_locks;
            // A relayed peer's rights are the owner's business: it re-checks its own connection.
            let RoomLink::Local(room) = &self.room else {
                return Ok(());
            };
            let _ = room
                .send(RoomCommand::SetAccess {
                    conn: self.info.conn,
                    can_write: now.can_write,
                    can_override_locks: now.can_override_locks,
                })
                .await;
        }
        Ok(())
    }

    fn relay_refusal(&self) -> Option<CloseReason> {
        match &self.room {
            RoomLink::Relayed(relay) => relay.refusal(),
            RoomLink::Local(_) => None,
        }
    }

    /// Leaves the room (its locks are released and its awareness removed there).
    pub async fn leave(self) {
        match self.room {
            RoomLink::Local(room) => {
                let _ = room
                    .send(RoomCommand::Leave {
                        conn: self.info.conn,
                    })
                    .await;
            }
            // Dropping the relay closes the owner-side connection, which leaves the room there.
            RoomLink::Relayed(relay) => drop(relay),
        }
    }
}

/// Joins the workspace's room here, or relays to the node that owns it. When the owner does not
/// answer, retries until its lease has expired (then this node loads the room itself).
async fn link(
    shared: &SocketShared,
    admission: &Admission,
    options: PeerOptions,
    info: &PeerInfo,
    outbound: mpsc::Sender<Bytes>,
) -> Result<RoomLink, CloseReason> {
    let state = &shared.state;
    let workspace_id = admission.workspace_id;
    let deadline = Instant::now() + state.cluster.ttl() + RELAY_GRACE;
    loop {
        let joined = state
            .rooms
            .join(
                workspace_id,
                info.clone(),
                outbound.clone(),
                shared.control.clone(),
            )
            .await;
        let owner = match joined {
            Ok(room) => return Ok(RoomLink::Local(room)),
            Err(JoinError::OwnedElsewhere(owner)) if !admission.relayed => owner,
            Err(err) => {
                tracing::warn!(%workspace_id, error = %err, "join failed");
                return Err(join_close_reason(&err));
            }
        };
        let target = RelayTarget {
            owner: &owner,
            workspace_id,
            credential: admission.credential.expose(),
            options,
            max_frame_bytes: state.config.max_frame_bytes,
            relay_key: state.cluster.relay_key(),
        };
        let relay = Relay::connect(
            target,
            outbound.clone(),
            shared.control.clone(),
            shared.recheck.clone(),
            state.metrics.clone(),
        );
        match relay.await {
            Ok(relay) => {
                tracing::debug!(%workspace_id, owner = %owner.addr, "relaying to the owner node");
                return Ok(RoomLink::Relayed(relay));
            }
            Err(RelayError::Refused(reason)) => return Err(reason),
            Err(RelayError::Unreachable(err)) if Instant::now() < deadline => {
                tracing::info!(%workspace_id, owner = %owner.addr, error = %err,
                    "owner node unreachable; retrying until its lease expires");
                tokio::time::sleep(RELAY_RETRY).await;
            }
            Err(RelayError::Unreachable(err)) => {
                tracing::warn!(%workspace_id, owner = %owner.addr, error = %err,
                    "owner node unreachable and its lease still held");
                return Err(CloseReason::OWNER_MOVED);
            }
        }
    }
}

/// How a refused re-authorization closes a connection.
pub fn refusal_close_reason(err: &AccessError) -> CloseReason {
    match err {
        AccessError::Unauthenticated(_) | AccessError::SessionRequired => {
            CloseReason::CREDENTIAL_REVOKED
        }
        AccessError::Storage(_) => CloseReason::STORAGE_UNAVAILABLE,
        _ => CloseReason::ACCESS_REVOKED,
    }
}

fn join_close_reason(err: &JoinError) -> CloseReason {
    match err {
        JoinError::ShuttingDown => CloseReason::SERVER_RESTART,
        JoinError::OwnedElsewhere(_) => CloseReason::OWNER_MOVED,
        JoinError::Load(_) | JoinError::Unavailable | JoinError::Lease(_) => {
            CloseReason::STORAGE_UNAVAILABLE
        }
    }
}

/// One wire dialect: turns the socket's binary frames into room messages. Everything else about
/// the socket is [`run`]'s.
pub trait Dialect: Send + 'static {
    /// Refusal of a text frame (both dialects are binary).
    const TEXT_REFUSAL: CloseReason;

    /// Called once after the upgrade: joins what the dialect joins up front and returns the queue
    /// of frames to write to the socket.
    fn start(
        &mut self,
        shared: &SocketShared,
    ) -> impl Future<Output = Result<mpsc::Receiver<Bytes>, CloseReason>> + Send;

    /// One binary frame from the client (already checked against the size limit).
    fn on_frame(
        &mut self,
        shared: &SocketShared,
        frame: &[u8],
    ) -> impl Future<Output = Result<(), CloseReason>> + Send;

    /// Rights may have changed: re-check every joined peer. Err closes the whole socket.
    fn reauthorize(
        &mut self,
        shared: &SocketShared,
    ) -> impl Future<Output = Result<(), CloseReason>> + Send;

    /// The socket is closing: leave every room.
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
}

/// Runs one upgraded socket with `dialect` until either side ends it.
///
/// Takes the socket's halves rather than the socket, and the caller boxes the dialect: an `async
/// fn`'s arguments keep their slots in its future after they have been moved on, and this future
/// lives as long as the connection (its size is per-connection memory).
pub async fn run<D: Dialect>(
    shared: Box<SocketShared>,
    mut dialect: Box<D>,
    mut sink: WsSink,
    stream: WsStream,
) {
    let metrics = shared.state.metrics.clone();
    metrics.connections.inc();
    let reason = match dialect.start(&shared).await {
        Ok(outbound) => pump(&shared, &mut *dialect, &mut sink, stream, outbound).await,
        Err(reason) => reason,
    };
    dialect.finish().await;
    if reason.code != 1006 && reason.code != 1000 {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: reason.code,
                reason: reason.reason.as_ref().into(),
            })))
            .await;
    }
    let _ = sink.close().await;
    metrics.connections.dec();
    metrics
        .ws_closed
        .with_label_values(&[&reason.code.to_string()])
        .inc();
    tracing::debug!(code = reason.code, reason = %reason.reason, "websocket closed");
}

/// Moves frames both ways until either side ends; returns why the connection closed.
async fn pump<D: Dialect>(
    shared: &SocketShared,
    dialect: &mut D,
    sink: &mut WsSink,
    mut stream: WsStream,
    mut outbound: mpsc::Receiver<Bytes>,
) -> CloseReason {
    let start = tokio::time::Instant::now();
    let mut ping = tokio::time::interval_at(start + PING_EVERY, PING_EVERY);
    let mut periodic = tokio::time::interval_at(start + PERIODIC_RECHECK, PERIODIC_RECHECK);
    loop {
        let step = tokio::select! {
            biased;
            _ = shared.control.closed() => {
                Err(shared.control.reason().cloned().unwrap_or(CloseReason::INTERNAL))
            }
            frame = outbound.recv() => match frame {
                None => Err(CloseReason::INTERNAL),
                Some(frame) => socket_io::write_queued(sink, frame, &mut outbound)
                    .await
                    .map_err(|_| CloseReason::CONNECTION_LOST),
            },
            incoming = stream.next() => on_incoming(shared, dialect, incoming).await,
            _ = shared.recheck.notified() => dialect.reauthorize(shared).await,
            _ = periodic.tick() => dialect.reauthorize(shared).await,
            _ = ping.tick() => sink
                .send(Message::Ping(Bytes::new()))
                .await
                .map_err(|_| CloseReason::CONNECTION_LOST),
        };
        if let Err(reason) = step {
            return reason;
        }
    }
}

/// Handles one thing read from the socket. Err ends the session with that close reason.
async fn on_incoming<D: Dialect>(
    shared: &SocketShared,
    dialect: &mut D,
    incoming: Option<Result<Message, axum::Error>>,
) -> Result<(), CloseReason> {
    match incoming {
        None => Err(CloseReason::CONNECTION_LOST),
        Some(Err(err)) => Err(read_error(err)),
        Some(Ok(Message::Binary(frame))) => {
            if frame.len() > shared.state.config.max_frame_bytes {
                return Err(CloseReason::TOO_BIG);
            }
            dialect.on_frame(shared, &frame).await
        }
        Some(Ok(Message::Text(_))) => Err(D::TEXT_REFUSAL),
        Some(Ok(Message::Close(_))) => Err(CloseReason::new(1000, "closed by client")),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
    }
}

/// Why reading from the socket failed, as the close reason it deserves: a frame over the limit is
/// 1009, a protocol violation 1002, a dead connection 1006 (no close frame can reach it anyway).
fn read_error(err: axum::Error) -> CloseReason {
    use tungstenite::error::{CapacityError, Error as WsError};
    match err.into_inner().downcast::<WsError>() {
        Ok(ws) => match *ws {
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => CloseReason::TOO_BIG,
            WsError::Capacity(_) => CloseReason::TOO_BIG,
            WsError::Protocol(_) | WsError::Utf8(_) => CloseReason::new(1002, "protocol error"),
            _ => CloseReason::CONNECTION_LOST,
        },
        Err(_) => CloseReason::CONNECTION_LOST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};

    #[test]
    fn read_errors_are_classified_by_type_not_text() {
        let too_long = axum::Error::new(WsError::Capacity(CapacityError::MessageTooLong {
            size: 10,
            max_size: 5,
        }));
        assert_eq!(read_error(too_long).code, 1009);
        let protocol = axum::Error::new(WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake,
        ));
        assert_eq!(read_error(protocol).code, 1002);
        assert_eq!(
            read_error(axum::Error::new(WsError::ConnectionClosed)).code,
            1006
        );
        assert_eq!(read_error(axum::Error::new(std::fmt::Error)).code, 1006);
    }

    #[test]
    fn refusals_close_with_the_access_codes() {
        assert_eq!(
            refusal_close_reason(&AccessError::Unauthenticated("gone")).code,
            4401
        );
        assert_eq!(
            refusal_close_reason(&AccessError::NotFound("workspace")).code,
            4403
        );
        assert_eq!(
            refusal_close_reason(&AccessError::MissingPermission(
                crate::auth::Permission::WorkspaceRead
            ))
            .code,
            4403
        );
    }
}
