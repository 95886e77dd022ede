//! The room's side of one WebSocket connection: a bounded outbound queue and a way to close it.
//!
//! The room never waits on a peer. It `try_send`s each frame; a full queue means the peer cannot keep
//! up, and it is closed with 1013 so that it resyncs on reconnect. Nothing is ever silently dropped
//! from a connection that stays open.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use yrs::block::ClientID;

/// Process-unique id of one WebSocket connection.
pub type ConnId = u64;

/// A WebSocket close code and its reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: Cow<'static, str>,
}

impl CloseReason {
    pub const fn new(code: u16, reason: &'static str) -> Self {
        Self {
            code,
            reason: Cow::Borrowed(reason),
        }
    }

    pub const SLOW_CONSUMER: CloseReason = CloseReason::new(1013, "slow consumer: resync");
    pub const STORAGE_UNAVAILABLE: CloseReason =
        CloseReason::new(1013, "storage unavailable: retry");
    pub const SERVER_RESTART: CloseReason = CloseReason::new(1012, "server restart");
    /// The workspace is now served by another node (or its owner went away): reconnect.
    pub const OWNER_MOVED: CloseReason =
        CloseReason::new(1012, "workspace moved to another node: reconnect");
    pub const INTERNAL: CloseReason = CloseReason::new(1011, "internal error");
    pub const TOO_BIG: CloseReason = CloseReason::new(1009, "message too big");
    /// The peer vanished without a close handshake; nothing can be sent to it.
    pub const CONNECTION_LOST: CloseReason = CloseReason::new(1006, "connection lost");
    /// The session or API key the connection was admitted with is no longer usable.
    pub const CREDENTIAL_REVOKED: CloseReason =
        CloseReason::new(4401, "credential revoked or expired");
    /// The caller may no longer read the workspace (removed, role lowered, workspace deleted).
    pub const ACCESS_REVOKED: CloseReason =
        CloseReason::new(4403, "access to this workspace was revoked");
}

/// Shared between a room and a session: lets either side close the connection with a reason.
#[derive(Debug, Default)]
pub struct PeerControl {
    reason: OnceLock<CloseReason>,
    token: CancellationToken,
}

impl PeerControl {
    /// Asks the session to close with `reason`; the first reason wins.
    pub fn close(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub fn reason(&self) -> Option<&CloseReason> {
        self.reason.get()
    }

    pub async fn closed(&self) {
        self.token.cancelled().await
    }
}

/// Who a connection is and what it may do, fixed when it joins.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub conn: ConnId,
    pub user_id: Uuid,
    /// The user's display name, stamped onto its awareness states and lock badges.
    pub user_name: Option<String>,
    pub can_write: bool,
    /// May break other users' edit locks (`locks:override`).
    pub can_override_locks: bool,
    /// Opted in to durable acknowledgements (`?acks=1`).
    pub wants_acks: bool,
    /// Receives lock events (`?locks=1`, or implied by sending a lock message).
    pub wants_locks: bool,
    /// Receives comment events (`?comments=1`).
    pub wants_comments: bool,
    /// Receives chat messages of the workspace's project (`?chat=1`).
    pub wants_chat: bool,
}

/// A joined connection, as the room sees it.
pub(crate) struct Peer {
    pub info: PeerInfo,
    pub outbound: mpsc::Sender<Bytes>,
    pub control: Arc<PeerControl>,
    /// Awareness client ids this connection announced; removed when it leaves.
    pub awareness_ids: HashSet<ClientID>,
    pub joined_at: chrono::DateTime<chrono::Utc>,
    /// Awareness messages in the current one-second window (rate cap).
    pub awareness_window: (std::time::Instant, u32),
}

impl Peer {
    pub fn new(info: PeerInfo, outbound: mpsc::Sender<Bytes>, control: Arc<PeerControl>) -> Self {
        Self {
            info,
            outbound,
            control,
            awareness_ids: HashSet::new(),
            joined_at: chrono::Utc::now(),
            awareness_window: (std::time::Instant::now(), 0),
        }
    }

    /// Queues one frame. False when the peer is gone or fell behind (it is then being closed).
    pub fn send(&self, frame: Bytes) -> bool {
        match self.outbound.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.control.close(CloseReason::SLOW_CONSUMER);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}
