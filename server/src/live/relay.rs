//! Relaying a live connection to the node that owns its workspace (DESIGN §7).
//!
//! A connection that reaches a node which does not own its workspace is served anyway: the node
//! opens a y-websocket connection to the owner, with the caller's own credential and options, and
//! pipes frames both ways. The owner admits it like any client (so re-authorization, quotas,
//! locks and presence all happen in the one room) and closes it like any client: its close code
//! and reason reach the caller unchanged. A refusal (4401 / 4403) first makes the caller's session
//! re-check its rights here, so a Hocuspocus socket loses only that document; the relay is dead
//! from then on and the next message closes the caller with the owner's reason. If the owner goes
//! away, the caller is closed with 1012 and reconnects — by then this node (or another) has taken
//! the lease over.
//!
//! Costs: one extra hop (a local TCP connection and one decode/encode on the relaying node) for
//! callers that do not land on the owner; in exchange there is exactly one room per workspace in
//! the cluster, so nothing about durability, ordering, locks or presence changes.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use nox_persistence::cluster::NodeInfo;
use nox_sync_protocol::wire::{self, ClientMessage};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

use super::session::PeerOptions;
use crate::cluster::RELAYED_HEADER;
use crate::metrics::Metrics;
use crate::rooms::peer::{CloseReason, PeerControl};

/// Frames waiting to go to the owner before the caller's reads wait.
const TO_OWNER_QUEUE: usize = 256;

/// Why no relay could be opened.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The owner answered and refused the caller: close it with this reason.
    #[error("the owner refused the connection: {}", .0.reason)]
    Refused(CloseReason),
    /// The owner did not answer (it may be dying): retry, or take the lease over.
    #[error("the owner is unreachable: {0}")]
    Unreachable(String),
}

/// Who is relayed where, and how.
pub struct RelayTarget<'a> {
    pub owner: &'a NodeInfo,
    pub workspace_id: Uuid,
    pub credential: &'a str,
    pub options: PeerOptions,
    pub max_frame_bytes: usize,
    /// The cluster's relay key: the owner serves the connection itself, never relays it again.
    pub relay_key: &'a str,
}

/// An open relay to the owner; dropping it closes the owner-side connection.
pub struct Relay {
    to_owner: mpsc::Sender<Vec<u8>>,
    /// Set when the owner refused the caller: why the relay is dead.
    refused: Arc<OnceLock<CloseReason>>,
}

/// What the pipe tells the caller's session.
struct CallerSide {
    outbound: mpsc::Sender<Bytes>,
    control: Arc<PeerControl>,
    recheck: Arc<Notify>,
    refused: Arc<OnceLock<CloseReason>>,
}

impl Relay {
    /// Connects to the owner. Frames the owner sends go to `outbound`; when the owner closes,
    /// `control` closes the caller with the same code and reason (a refusal wakes `recheck`
    /// first).
    pub async fn connect(
        target: RelayTarget<'_>,
        outbound: mpsc::Sender<Bytes>,
        control: Arc<PeerControl>,
        recheck: Arc<Notify>,
        metrics: Metrics,
    ) -> Result<Relay, RelayError> {
        let url = format!(
            "ws://{}/ws/workspaces/{}?{}",
            target.owner.addr,
            target.workspace_id,
            query(target.options)
        );
        let mut request = url
            .into_client_request()
            .map_err(|err| RelayError::Unreachable(err.to_string()))?;
        let headers = request.headers_mut();
        let bearer = format!("Bearer {}", target.credential);
        match (bearer.parse(), target.relay_key.parse()) {
            (Ok(bearer), Ok(node)) => {
                headers.insert("authorization", bearer);
                headers.insert(RELAYED_HEADER, node);
            }
            _ => return Err(RelayError::Refused(CloseReason::CREDENTIAL_REVOKED)),
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(target.max_frame_bytes))
            .max_frame_size(Some(target.max_frame_bytes));
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .map_err(connect_error)?;
        let (to_owner, from_caller) = mpsc::channel(TO_OWNER_QUEUE);
        let refused = Arc::new(OnceLock::new());
        let caller = CallerSide {
            outbound,
            control,
            recheck,
            refused: refused.clone(),
        };
        metrics.relayed_connections.inc();
        tokio::spawn(async move {
            pipe(socket, from_caller, &caller).await;
            metrics.relayed_connections.dec();
        });
        Ok(Relay { to_owner, refused })
    }

    /// The owner's refusal of the caller (4401 / 4403), once it closed the relay with one.
    pub fn refusal(&self) -> Option<CloseReason> {
        self.refused.get().cloned()
    }

    /// Sends the caller's messages on to the owner. Err: the relay is gone (the caller closes).
    pub async fn send(&self, messages: Vec<ClientMessage>) -> Result<(), CloseReason> {
        if let Some(reason) = self.refused.get() {
            return Err(reason.clone());
        }
        for message in &messages {
            if let Some(frame) = wire::encode_client_message(message) {
                self.to_owner
                    .send(frame)
                    .await
                    .map_err(|_| CloseReason::OWNER_MOVED)?;
            }
        }
        Ok(())
    }
}

/// The caller's options as the owner's query string.
fn query(options: PeerOptions) -> String {
    let flag = |on: bool| if on { "1" } else { "0" };
    format!(
        "acks={}&locks={}&comments={}&chat={}",
        flag(options.wants_acks),
        flag(options.wants_locks),
        flag(options.wants_comments),
        flag(options.wants_chat)
    )
}

/// A refusal before the upgrade is the owner's admission speaking; anything else is the network.
fn connect_error(err: WsError) -> RelayError {
    match err {
        WsError::Http(response) => match response.status().as_u16() {
            401 => RelayError::Refused(CloseReason::CREDENTIAL_REVOKED),
            402 => RelayError::Refused(CloseReason::new(4402, "connection quota exceeded")),
            403 | 404 => RelayError::Refused(CloseReason::ACCESS_REVOKED),
            status => RelayError::Unreachable(format!("owner answered HTTP {status}")),
        },
        other => RelayError::Unreachable(other.to_string()),
    }
}

/// The owner refused the caller's credential or access (4401 / 4403).
fn is_refusal(reason: &CloseReason) -> bool {
    matches!(reason.code, 4401 | 4403)
}

type OwnerSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Moves frames both ways until either side ends.
async fn pipe(socket: OwnerSocket, mut from_caller: mpsc::Receiver<Vec<u8>>, caller: &CallerSide) {
    let (outbound, control) = (&caller.outbound, &caller.control);
    let (mut to_owner, mut from_owner) = socket.split();
    loop {
        tokio::select! {
            frame = from_caller.recv() => match frame {
                Some(frame) => {
                    if to_owner.send(Message::Binary(frame.into())).await.is_err() {
                        control.close(CloseReason::OWNER_MOVED);
                        return;
                    }
                }
                // The caller left: close the owner side politely.
                None => {
                    let _ = to_owner.send(Message::Close(None)).await;
                    return;
                }
            },
            incoming = from_owner.next() => match incoming {
                Some(Ok(Message::Binary(frame))) => {
                    if outbound.send(frame).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let reason = match frame {
                        Some(frame) => CloseReason {
                            code: frame.code.into(),
                            reason: frame.reason.to_string().into(),
                        },
                        None => CloseReason::OWNER_MOVED,
                    };
                    if is_refusal(&reason) {
                        // Let the session decide at its level (one Hocuspocus document, or the
                        // socket); the relay answers its next message with this reason.
                        let _ = caller.refused.set(reason);
                        caller.recheck.notify_one();
                    } else {
                        control.close(reason);
                    }
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    control.close(CloseReason::OWNER_MOVED);
                    return;
                }
            },
            () = control.closed() => {
                let _ = to_owner.send(Message::Close(None)).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_travel_in_the_query() {
        let options = PeerOptions {
            wants_acks: true,
            wants_locks: false,
            wants_comments: true,
            wants_chat: false,
        };
        assert_eq!(query(options), "acks=1&locks=0&comments=1&chat=0");
    }
}
