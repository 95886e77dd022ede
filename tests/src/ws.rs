//! A y-websocket protocol client for black-box tests: a real `yrs` document synced over a real
//! WebSocket, speaking the wire format byte for byte like the stock JS client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nox_sync_protocol::canvas;
use nox_sync_protocol::wire::{self, ClientMessage};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, Transact, TransactionMut, Update};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What ended a connection, as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

/// One simulated editor: a document, its awareness, and (while connected) a socket.
pub struct WsClient {
    pub addr: SocketAddr,
    pub workspace_id: Uuid,
    pub token: String,
    pub doc: Doc,
    pub awareness: Awareness,
    socket: Option<Socket>,
    /// Local updates made while offline are not sent; the server's SyncStep1 pulls them on reconnect.
    local_updates: Arc<Mutex<Vec<Vec<u8>>>>,
    pub synced: bool,
    pub acks: u64,
    /// Update-bearing frames (Update, SyncStep2) sent since the last connect: what acks count.
    pub updates_sent: u64,
    pub permission_denied: Vec<String>,
    pub closed: Option<Closed>,
    /// Awareness states seen, by client id (None = removed).
    pub peers_awareness: HashMap<u64, Option<String>>,
    pub frames_received: usize,
    /// Stateless messages received (lock events are JSON).
    pub stateless: Vec<Value>,
}

impl WsClient {
    /// A client with an empty canvas document (not yet connected).
    pub fn new(addr: SocketAddr, workspace_id: Uuid, token: &str) -> Self {
        let doc = canvas::new_canvas_doc();
        let local_updates: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let sink = local_updates.clone();
        doc.observe_update_v1("test-client", move |txn, event| {
            // Only edits made by this client (origin "local") are sent; remote ones were received.
            if txn
                .origin()
                .map(|o| o.as_ref() == b"local")
                .unwrap_or(false)
            {
                sink.lock().expect("lock").push(event.update.clone());
            }
        })
        .expect("observe");
        Self {
            addr,
            workspace_id,
            token: token.to_string(),
            awareness: Awareness::new(doc.clone()),
            doc,
            socket: None,
            local_updates,
            synced: false,
            acks: 0,
            updates_sent: 0,
            permission_denied: Vec::new(),
            closed: None,
            peers_awareness: HashMap::new(),
            frames_received: 0,
            stateless: Vec::new(),
        }
    }

    pub fn url(&self, query: &str) -> String {
        format!(
            "ws://{}/ws/workspaces/{}?token={}{}",
            self.addr, self.workspace_id, self.token, query
        )
    }

    /// Connects and completes the initial sync (our SyncStep1 answered by the server's SyncStep2).
    pub async fn connect(&mut self) {
        self.connect_with("").await;
        self.sync().await;
    }

    /// Connects (extra query string, e.g. `&acks=1`) without waiting for sync.
    pub async fn connect_with(&mut self, query: &str) {
        let (socket, _) = tokio_tungstenite::connect_async(self.url(query))
            .await
            .expect("websocket connect");
        self.socket = Some(socket);
        self.synced = false;
        self.closed = None;
        self.acks = 0;
        self.updates_sent = 0;
        self.local_updates.lock().expect("lock").clear();
        let sv = self.doc.transact().state_vector();
        self.send_raw(wire::encode_sync_step1(&sv)).await;
    }

    /// Waits until every update sent is durably acknowledged (needs a connection with `&acks=1`).
    pub async fn settle(&mut self) {
        self.pump_until(|c| c.acks >= c.updates_sent).await;
    }

    pub async fn sync(&mut self) {
        self.pump_until(|c| c.synced).await;
    }

    pub fn is_connected(&self) -> bool {
        self.socket.is_some()
    }

    pub async fn disconnect(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            let _ = socket.close(None).await;
        }
    }

    /// Makes a local edit and sends it (when connected).
    pub async fn edit(&mut self, f: impl FnOnce(&mut TransactionMut)) {
        {
            let mut txn = self.doc.transact_mut_with("local");
            f(&mut txn);
        }
        let updates = std::mem::take(&mut *self.local_updates.lock().expect("lock"));
        if self.socket.is_some() {
            for update in updates {
                self.send_raw(wire::encode_update(&update)).await;
                self.updates_sent += 1;
            }
        }
    }

    /// Puts a block (fields as JSON) through the canvas model, like an editor would.
    pub async fn put_block(&mut self, id: &str, fields: Value) {
        let fields = fields.as_object().cloned().expect("block fields object");
        self.edit(|txn| canvas::put_block(txn, id, &fields).expect("put block"))
            .await;
    }

    pub async fn put_relation(&mut self, id: &str, fields: Value) {
        let fields = fields.as_object().cloned().expect("relation fields object");
        self.edit(|txn| canvas::put_relation(txn, id, &fields).expect("put relation"))
            .await;
    }

    pub async fn remove_block(&mut self, id: &str) {
        self.edit(|txn| {
            canvas::remove_block(txn, id);
        })
        .await;
    }

    /// Sets this client's awareness state and sends it.
    pub async fn set_awareness(&mut self, state: Value) {
        self.awareness.set_local_state_raw(state.to_string());
        let update = self
            .awareness
            .update_with_clients([self.awareness.client_id()])
            .expect("awareness update");
        self.send_raw(wire::encode_awareness(&update)).await;
    }

    pub fn client_id(&self) -> u64 {
        self.awareness.client_id().get()
    }

    /// The canvas as JSON (blocks + relations), for convergence checks.
    pub fn canvas_json(&self) -> Value {
        let txn = self.doc.transact();
        serde_json::to_value(canvas::read_canvas(&txn)).expect("canvas json")
    }

    pub fn block_count(&self) -> usize {
        canvas::read_canvas(&self.doc.transact()).blocks.len()
    }

    pub async fn send_raw(&mut self, frame: Vec<u8>) {
        let socket = self.socket.as_mut().expect("connected");
        socket
            .send(Message::Binary(frame.into()))
            .await
            .expect("send frame");
    }

    /// Sends a stateless message (type 5) carrying `json`.
    pub async fn send_stateless(&mut self, json: Value) {
        self.send_raw(wire::encode_stateless(&json.to_string()))
            .await;
    }

    /// The stateless messages received so far whose `type` is `kind`.
    pub fn events(&self, kind: &str) -> Vec<&Value> {
        self.stateless
            .iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    pub async fn send_message(&mut self, message: Message) {
        let socket = self.socket.as_mut().expect("connected");
        let _ = socket.send(message).await;
    }

    /// Processes incoming frames until `done` holds; panics after [`TIMEOUT`].
    pub async fn pump_until(&mut self, done: impl Fn(&WsClient) -> bool) {
        let finished = tokio::time::timeout(TIMEOUT, async {
            while !done(self) {
                if !self.pump_one().await {
                    break;
                }
            }
        })
        .await;
        assert!(
            finished.is_ok(),
            "timed out waiting (closed: {:?})",
            self.closed
        );
        assert!(done(self), "connection ended first: {:?}", self.closed);
    }

    /// Processes frames for `period` (to check that something does NOT arrive).
    pub async fn pump_for(&mut self, period: Duration) {
        let _ = tokio::time::timeout(period, async { while self.pump_one().await {} }).await;
    }

    /// Waits for the server to close the connection and returns how.
    pub async fn wait_closed(&mut self) -> Closed {
        self.pump_until(|c| c.closed.is_some()).await;
        self.closed.clone().expect("closed")
    }

    /// Reads and handles one frame. False when the connection is over.
    async fn pump_one(&mut self) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        match socket.next().await {
            Some(Ok(Message::Binary(frame))) => {
                self.frames_received += 1;
                self.on_frame(&frame).await;
                true
            }
            Some(Ok(Message::Close(frame))) => {
                self.closed = Some(close_of(frame));
                self.socket = None;
                false
            }
            Some(Ok(_)) => true,
            Some(Err(_)) | None => {
                self.closed.get_or_insert(Closed {
                    code: 1006,
                    reason: "connection lost".into(),
                });
                self.socket = None;
                false
            }
        }
    }

    async fn on_frame(&mut self, frame: &[u8]) {
        if let Some(count) = wire::decode_ack(frame) {
            self.acks += count;
            return;
        }
        let messages = wire::decode_frame(frame).expect("server frames decode");
        for message in messages {
            match message {
                ClientMessage::SyncStep1(sv) => {
                    let diff = self.doc.transact().encode_diff_v1(&sv);
                    self.send_raw(wire::encode_sync_step2(&diff)).await;
                    // The server acknowledges every update-bearing message, SyncStep2 included.
                    self.updates_sent += 1;
                }
                ClientMessage::SyncStep2(update) => {
                    self.apply_remote(&update);
                    self.synced = true;
                }
                ClientMessage::Update(update) => self.apply_remote(&update),
                ClientMessage::Awareness(update) => self.on_awareness(update),
                ClientMessage::Stateless(payload) => {
                    self.stateless
                        .push(serde_json::from_str(&payload).unwrap_or(Value::String(payload)));
                }
                ClientMessage::Auth(reason) => {
                    self.permission_denied.push(reason.unwrap_or_default())
                }
                _ => {}
            }
        }
    }

    fn apply_remote(&mut self, update: &[u8]) {
        let update = Update::decode_v1(update).expect("server update decodes");
        self.doc
            .transact_mut_with("remote")
            .apply_update(update)
            .expect("apply server update");
    }

    fn on_awareness(&mut self, update: AwarenessUpdate) {
        for (id, entry) in &update.clients {
            let state = (entry.json.as_ref() != "null").then(|| entry.json.to_string());
            self.peers_awareness.insert(id.get(), state);
        }
    }
}

fn close_of(frame: Option<CloseFrame>) -> Closed {
    match frame {
        Some(frame) => Closed {
            code: u16::from(frame.code),
            reason: frame.reason.to_string(),
        },
        None => Closed {
            code: u16::from(CloseCode::Status),
            reason: String::new(),
        },
    }
}

/// The HTTP status a WebSocket upgrade attempt was refused with (None when it succeeded).
pub async fn upgrade_status(url: &str) -> Option<u16> {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Some(response.status().as_u16())
        }
        Err(other) => panic!("unexpected connect error: {other}"),
    }
}
