//! The y-websocket dialect endpoint, `GET /ws/workspaces/{workspace_id}` (DESIGN §5b).
//!
//! Everything that can refuse a client happens **before** the upgrade, as a plain HTTP answer
//! (401 bad token, 404 unknown or foreign workspace, 403 no read permission, 402 connection quota;
//! the order is `admission::admit`'s): nothing a refused client sends ever reaches a room. After
//! the upgrade the session core (`session::run`) drives the socket; this dialect decodes each
//! frame (defensively, on the connection's task, so a room only ever sees well-formed messages).

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use nox_sync_protocol::wire;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

use super::admission::{self, Admission};
use super::session::{self, Dialect, LivePeer, PeerOptions, SocketShared};
use super::socket_io;
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::http_caller::bearer_token;
use crate::rooms::peer::CloseReason;
use crate::state::AppState;

/// Browsers cannot set headers on a WebSocket: the token may come as a subprotocol
/// (`Sec-WebSocket-Protocol: bearer, <token>`), and the server then answers with `bearer`.
const BEARER_PROTOCOL: &str = "bearer";

#[derive(Debug, Deserialize)]
pub struct WsParams {
    token: Option<String>,
    /// `acks=1`: send the durable acknowledgement message (type 6) after each commit.
    #[serde(default)]
    acks: Option<String>,
    /// `locks=1`: receive edit-lock events (stateless type 5 frames) from the start.
    #[serde(default)]
    locks: Option<String>,
    /// `comments=1`: receive comment events (`comment.created`, ...) as stateless frames.
    #[serde(default)]
    comments: Option<String>,
    /// `chat=1`: receive chat messages of the workspace's project as stateless frames.
    #[serde(default)]
    chat: Option<String>,
}

fn flag(value: Option<&str>) -> bool {
    matches!(value, Some("1" | "true"))
}

/// Admits the caller, then upgrades. Every refusal is a plain HTTP answer before the upgrade.
pub async fn workspace_socket(
    State(state): State<AppState>,
    Path(workspace_id): Path<Uuid>,
    Query(params): Query<WsParams>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // `?token=`, else `Authorization: Bearer` (clients that can set headers, and relays).
    let given = params.token.as_deref().filter(|t| !t.is_empty());
    let (token, via_protocol) = match given.or_else(|| bearer_token(&headers)) {
        Some(token) => (token.to_string(), false),
        None => (
            token_from_protocols(&headers).ok_or_else(|| {
                ApiError::unauthorized("missing token (query ?token= or subprotocol)")
            })?,
            true,
        ),
    };
    let relayed = state.cluster.is_relayed(&headers);
    let admission = admission::admit(&state, &token, workspace_id, None, relayed).await?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::bad_request("websocket_required", "this endpoint only speaks WebSocket")
    })?;
    let upgrade = if via_protocol {
        upgrade.protocols([BEARER_PROTOCOL])
    } else {
        upgrade
    };
    let options = PeerOptions {
        wants_acks: flag(params.acks.as_deref()),
        wants_locks: flag(params.locks.as_deref()),
        wants_comments: flag(params.comments.as_deref()),
        wants_chat: flag(params.chat.as_deref()),
    };
    let limit = state.config.max_frame_bytes;
    // No `async` block around the session: its captures would stay in the connection's task
    // beside the session's own copy of them for as long as the socket lives.
    Ok(
        socket_io::configure(upgrade, limit).on_upgrade(move |socket| {
            // Every log line of the connection carries who and where.
            let span = tracing::info_span!(
                "ws",
                workspace_id = %admission.workspace_id,
                user_id = %admission.caller.user_id
            );
            let dialect = Box::new(YWebsocket {
                admission: Some(admission),
                options,
                peer: None,
            });
            let (sink, stream) = socket.split();
            session::run(Box::new(SocketShared::new(state)), dialect, sink, stream).instrument(span)
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

/// The y-websocket dialect: one socket, one workspace; frames are y-protocols messages as the room
/// speaks them, so the room's frames go to the socket unchanged.
struct YWebsocket {
    /// Taken when the socket starts and joins the room.
    admission: Option<Admission>,
    options: PeerOptions,
    peer: Option<LivePeer>,
}

impl Dialect for YWebsocket {
    const TEXT_REFUSAL: CloseReason = CloseReason::new(1003, "binary y-protocols frames only");

    async fn start(&mut self, shared: &SocketShared) -> Result<mpsc::Receiver<Bytes>, CloseReason> {
        let admission = self.admission.take().ok_or(CloseReason::INTERNAL)?;
        let (outbound, from_room) = mpsc::channel(shared.state.config.peer_queue);
        self.peer = Some(LivePeer::join(shared, admission, self.options, outbound).await?);
        Ok(from_room)
    }

    async fn on_frame(&mut self, shared: &SocketShared, frame: &[u8]) -> Result<(), CloseReason> {
        let peer = self.peer.as_ref().ok_or(CloseReason::INTERNAL)?;
        let messages = wire::decode_frame(frame).map_err(|err| {
            shared.state.metrics.malformed_messages.inc();
            tracing::info!(
                workspace_id = %peer.workspace_id,
                error = %err,
                "malformed frame; closing the connection"
            );
            CloseReason::new(1007, "malformed y-protocols message")
        })?;
        peer.send(messages).await
    }

    async fn reauthorize(&mut self, shared: &SocketShared) -> Result<(), CloseReason> {
        match self.peer.as_mut() {
            Some(peer) => peer.reauthorize(shared).await,
            None => Ok(()),
        }
    }

    async fn finish(&mut self) {
        if let Some(peer) = self.peer.take() {
            peer.leave().await;
        }
    }
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
