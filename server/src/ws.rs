//! The y-websocket dialect endpoint, `GET /ws/workspaces/{workspace_id}` (DESIGN §5b).
//!
//! Everything that can refuse a client happens **before** the upgrade, as a plain HTTP answer
//! (401 bad token, 404 unknown or foreign workspace, 403 no read permission): nothing a refused
//! client sends ever reaches a room. After the upgrade one [`Session`] task per socket pumps
//! frames between the socket and the room, decoding (defensively) on its own task so a room only
//! ever sees well-formed messages.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use nox_persistence::iam::users;
use tokio::sync::Notify;

use crate::live_access::{self, LiveConn, Registration, PERIODIC_RECHECK};
use nox_sync_protocol::wire;
use serde::Deserialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth::{AuthUser, Permission};
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::rooms::peer::{CloseReason, PeerControl, PeerInfo};
use crate::rooms::{JoinError, RoomCommand, RoomHandle};
use crate::routes::require_workspace_for;
use crate::socket_io::{self, WsSink, WsStream};
use crate::state::AppState;

/// Browsers cannot set headers on a WebSocket: the token may come as a subprotocol
/// (`Sec-WebSocket-Protocol: bearer, <token>`), and the server then answers with `bearer`.
const BEARER_PROTOCOL: &str = "bearer";
const PING_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
pub struct WsParams {
    token: Option<String>,
    /// `acks=1`: send the durable acknowledgement message (type 6) after each commit.
    #[serde(default)]
    acks: Option<String>,
    /// `locks=1`: receive edit-lock events (stateless type 5 frames) from the start.
    #[serde(default)]
    locks: Option<String>,
}

fn flag(value: Option<&str>) -> bool {
    matches!(value, Some("1" | "true"))
}

/// Authenticates and authorizes, then upgrades.
pub async fn workspace_socket(
    State(state): State<AppState>,
    Path(workspace_id): Path<Uuid>,
    Query(params): Query<WsParams>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let (token, via_protocol) = match params.token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => (token.to_string(), false),
        None => (
            token_from_protocols(&headers).ok_or_else(|| {
                ApiError::unauthorized("missing token (query ?token= or subprotocol)")
            })?,
            true,
        ),
    };
    let user = AuthUser::from_token(&state, &token).await?;
    let (access, permissions) = require_workspace_for(&state, user, workspace_id).await?;
    live_access::check_connection_quota(&state, access.org_id).await?;
    if !Permission::WorkspaceRead.granted_by(&permissions) {
        return Err(ApiError::forbidden(
            "this workspace needs the 'workspace:read' permission",
        ));
    }
    let upgrade = upgrade.map_err(|_| {
        ApiError::bad_request("websocket_required", "this endpoint only speaks WebSocket")
    })?;
    let user_name = users::find_live(state.db.pool(), user.user_id)
        .await?
        .and_then(|u| u.full_name.or(Some(u.email)));
    let info = PeerInfo {
        conn: state.next_conn.fetch_add(1, Ordering::Relaxed),
        user_id: user.user_id,
        user_name,
        can_write: Permission::WorkspaceWrite.granted_by(&permissions),
        can_override_locks: Permission::LocksOverride.granted_by(&permissions),
        wants_acks: flag(params.acks.as_deref()),
        wants_locks: flag(params.locks.as_deref()),
    };
    let upgrade = if via_protocol {
        upgrade.protocols([BEARER_PROTOCOL])
    } else {
        upgrade
    };
    let limit = state.config.max_frame_bytes;
    // No `async` block around the session: its captures would stay in the connection's task
    // beside the session's own copy of them for as long as the socket lives.
    Ok(
        socket_io::configure(upgrade, limit).on_upgrade(move |socket| {
            let session = Session::new(state, workspace_id, access.org_id, user, info);
            let (sink, stream) = socket.split();
            session.run(sink, stream)
        }),
    )
}

fn token_from_protocols(headers: &HeaderMap) -> Option<String> {
    let offered = headers.get("sec-websocket-protocol")?.to_str().ok()?;
    let mut items = offered.split(',').map(str::trim);
    items.any(|p| p == BEARER_PROTOCOL).then_some(())?;
    offered
        .split(',')
        .map(str::trim)
        .find(|p| *p != BEARER_PROTOCOL && !p.is_empty())
        .map(str::to_string)
}

/// One WebSocket connection joined to one workspace room.
struct Session {
    state: AppState,
    workspace_id: Uuid,
    org_id: Uuid,
    /// The credential it connected with: re-checked whenever rights may have changed.
    auth: AuthUser,
    info: PeerInfo,
    control: Arc<PeerControl>,
    recheck: Arc<Notify>,
}

impl Session {
    fn new(
        state: AppState,
        workspace_id: Uuid,
        org_id: Uuid,
        auth: AuthUser,
        info: PeerInfo,
    ) -> Box<Self> {
        Box::new(Self {
            state,
            workspace_id,
            org_id,
            auth,
            info,
            control: Arc::new(PeerControl::default()),
            recheck: Arc::new(Notify::new()),
        })
    }

    fn register(&self) -> Registration {
        self.state.live.register(
            self.info.conn,
            LiveConn {
                user_id: self.auth.user_id,
                api_key_id: self.auth.api_key.map(|k| k.key_id),
                org_id: self.org_id,
                workspace_id: self.workspace_id,
                recheck: self.recheck.clone(),
            },
        )
    }

    async fn reauthorize(&mut self, room: &RoomHandle) -> Result<(), CloseReason> {
        // Boxed: the checks are SQL futures a long-lived session should not carry inline.
        Box::pin(live_access::reauthorize(
            &self.state,
            self.auth,
            self.workspace_id,
            &mut self.info,
            room,
        ))
        .await
    }

    /// Boxed and handed the socket's halves rather than the socket: an `async fn`'s arguments
    /// keep their slots in its future after they have been moved on, and this future lives as
    /// long as the connection (one per connection, so its size is per-connection memory).
    async fn run(mut self: Box<Self>, sink: WsSink, stream: WsStream) {
        let _registration = self.register();
        self.state.metrics.connections.inc();
        let (outbound_tx, outbound_rx) = mpsc::channel(self.state.config.peer_queue);
        let joined = self
            .state
            .rooms
            .join(
                self.workspace_id,
                self.info.clone(),
                outbound_tx,
                self.control.clone(),
            )
            .await;
        let reason = match joined {
            Ok(room) => self.pump(sink, stream, room, outbound_rx).await,
            Err(err) => {
                tracing::warn!(workspace_id = %self.workspace_id, error = %err, "join failed");
                let reason = match err {
                    JoinError::ShuttingDown => CloseReason::SERVER_RESTART,
                    JoinError::Load(_) | JoinError::Unavailable => CloseReason::STORAGE_UNAVAILABLE,
                };
                close(sink, &reason).await;
                reason
            }
        };
        let metrics = &self.state.metrics;
        metrics.connections.dec();
        metrics
            .ws_closed
            .with_label_values(&[&reason.code.to_string()])
            .inc();
        tracing::debug!(
            workspace_id = %self.workspace_id,
            user_id = %self.info.user_id,
            conn = self.info.conn,
            code = reason.code,
            "websocket closed"
        );
    }

    /// Moves frames both ways until either side ends; returns why the connection closed.
    async fn pump(
        &mut self,
        mut sink: WsSink,
        mut stream: WsStream,
        room: RoomHandle,
        mut outbound: mpsc::Receiver<Bytes>,
    ) -> CloseReason {
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        let mut periodic = tokio::time::interval_at(
            tokio::time::Instant::now() + PERIODIC_RECHECK,
            PERIODIC_RECHECK,
        );
        let recheck = self.recheck.clone();
        let reason = loop {
            tokio::select! {
                biased;
                _ = self.control.closed() => {
                    break self.control.reason().cloned().unwrap_or(CloseReason::INTERNAL);
                }
                frame = outbound.recv() => {
                    let Some(frame) = frame else { break CloseReason::INTERNAL };
                    if socket_io::write_queued(&mut sink, frame, &mut outbound).await.is_err() {
                        break CloseReason::new(1006, "connection lost");
                    }
                }
                incoming = stream.next() => {
                    match self.on_incoming(incoming, &room).await {
                        Ok(()) => {}
                        Err(reason) => break reason,
                    }
                }
                _ = recheck.notified() => {
                    if let Err(reason) = self.reauthorize(&room).await {
                        break reason;
                    }
                }
                _ = periodic.tick() => {
                    if let Err(reason) = self.reauthorize(&room).await {
                        break reason;
                    }
                }
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        break CloseReason::new(1006, "connection lost");
                    }
                }
            }
        };
        let _ = room
            .send(RoomCommand::Leave {
                conn: self.info.conn,
            })
            .await;
        if reason.code != 1006 && reason.code != 1000 {
            let _ = sink.send(close_message(&reason)).await;
        }
        let _ = sink.close().await;
        reason
    }

    /// Handles one thing read from the socket. Err ends the session with that close reason.
    async fn on_incoming(
        &self,
        incoming: Option<Result<Message, axum::Error>>,
        room: &RoomHandle,
    ) -> Result<(), CloseReason> {
        let message = match incoming {
            None => return Err(CloseReason::new(1006, "connection lost")),
            Some(Err(err)) => return Err(self.read_error(err)),
            Some(Ok(message)) => message,
        };
        match message {
            Message::Binary(frame) => self.on_frame(&frame, room).await,
            Message::Text(_) => Err(CloseReason::new(1003, "binary y-protocols frames only")),
            Message::Close(_) => Err(CloseReason::new(1000, "closed by client")),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    async fn on_frame(&self, frame: &[u8], room: &RoomHandle) -> Result<(), CloseReason> {
        if frame.len() > self.state.config.max_frame_bytes {
            return Err(CloseReason::TOO_BIG);
        }
        let messages = wire::decode_frame(frame).map_err(|err| {
            self.state.metrics.malformed_messages.inc();
            tracing::info!(
                workspace_id = %self.workspace_id,
                user_id = %self.info.user_id,
                error = %err,
                "malformed frame; closing the connection"
            );
            CloseReason::new(1007, "malformed y-protocols message")
        })?;
        room.send(RoomCommand::Messages {
            conn: self.info.conn,
            messages,
        })
        .await
        .map_err(|_| CloseReason::STORAGE_UNAVAILABLE)
    }

    fn read_error(&self, err: axum::Error) -> CloseReason {
        let text = err.to_string();
        if text.contains("too long") || text.contains("Space limit") || text.contains("capacity") {
            CloseReason::TOO_BIG
        } else {
            CloseReason::new(1002, "protocol error")
        }
    }
}

fn close_message(reason: &CloseReason) -> Message {
    Message::Close(Some(CloseFrame {
        code: reason.code,
        reason: reason.reason.as_ref().into(),
    }))
}

async fn close(mut sink: WsSink, reason: &CloseReason) {
    let _ = sink.send(close_message(reason)).await;
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comes_from_the_bearer_subprotocol() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "sec-websocket-protocol",
            "bearer, abc.def.ghi".parse().expect("header"),
        );
        assert_eq!(
            token_from_protocols(&headers).as_deref(),
            Some("abc.def.ghi")
        );
        headers.insert(
            "sec-websocket-protocol",
            "abc.def.ghi".parse().expect("header"),
        );
        assert_eq!(token_from_protocols(&headers), None);
    }
}
