//! A Hocuspocus-dialect test client: one socket, several documents, each with its own `yrs` doc,
//! speaking the frames `@hocuspocus/provider` sends (token first, then SyncStep1 without waiting).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use nox_sync_protocol::canvas;
use nox_sync_protocol::wire::{self, hocuspocus as hp, ClientMessage};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, Transact, TransactionMut, Update};

use crate::ws::TIMEOUT;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What one document of the socket has seen.
pub struct HpDoc {
    pub doc: Doc,
    outgoing: Arc<Mutex<Vec<Vec<u8>>>>,
    pub scope: Option<String>,
    pub denied: Option<String>,
    pub synced: bool,
    /// SyncStatus frames received (the server sends them after each durable commit).
    pub sync_statuses: u64,
    pub updates_sent: u64,
    pub stateless: Vec<Value>,
}

impl HpDoc {
    pub fn block_count(&self) -> usize {
        canvas::read_canvas(&self.doc.transact()).blocks.len()
    }

    pub fn canvas_json(&self) -> Value {
        serde_json::to_value(canvas::read_canvas(&self.doc.transact())).unwrap_or(Value::Null)
    }
}

pub struct HpClient {
    socket: Socket,
    pub docs: HashMap<String, HpDoc>,
    pub closed: Option<u16>,
}

impl HpClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/hocuspocus"))
            .await
            .expect("connect /hocuspocus");
        Self {
            socket,
            docs: HashMap::new(),
            closed: None,
        }
    }

    /// Opens a document like the provider: the token, then SyncStep1 right away.
    pub async fn open(&mut self, name: &str, token: &str) {
        let doc = canvas::new_canvas_doc();
        let outgoing: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let sink = outgoing.clone();
        doc.observe_update_v1("hp-test", move |txn, event| {
            if txn
                .origin()
                .map(|o| o.as_ref() == b"local")
                .unwrap_or(false)
            {
                sink.lock().expect("lock").push(event.update.clone());
            }
        })
        .expect("observe");
        let sv = doc.transact().state_vector();
        self.docs.insert(
            name.to_string(),
            HpDoc {
                doc,
                outgoing,
                scope: None,
                denied: None,
                synced: false,
                sync_statuses: 0,
                updates_sent: 0,
                stateless: Vec::new(),
            },
        );
        self.send(hp::encode_auth_token(name, token)).await;
        self.send(hp::encode_sync_step1(name, &sv)).await;
    }

    /// A local edit of one document, sent as an Update.
    pub async fn edit(&mut self, name: &str, f: impl FnOnce(&mut TransactionMut)) {
        let updates = {
            let doc = self.docs.get_mut(name).expect("open document");
            {
                let mut txn = doc.doc.transact_mut_with("local");
                f(&mut txn);
            }
            std::mem::take(&mut *doc.outgoing.lock().expect("lock"))
        };
        for update in updates {
            self.send(hp::encode_update(name, &update)).await;
            if let Some(doc) = self.docs.get_mut(name) {
                doc.updates_sent += 1;
            }
        }
    }

    pub async fn put_block(&mut self, name: &str, id: &str, fields: Value) {
        let fields = fields.as_object().cloned().expect("object");
        self.edit(name, |txn| {
            canvas::put_block(txn, id, &fields).expect("put")
        })
        .await;
    }

    pub async fn send_stateless(&mut self, name: &str, json: &Value) {
        self.send(hp::encode_stateless(name, &json.to_string()))
            .await;
    }

    pub async fn send(&mut self, frame: Vec<u8>) {
        self.socket
            .send(Message::Binary(frame.into()))
            .await
            .expect("send");
    }

    pub fn doc(&self, name: &str) -> &HpDoc {
        self.docs.get(name).expect("open document")
    }

    /// Processes frames until `done` holds; panics after the test timeout.
    pub async fn pump_until(&mut self, done: impl Fn(&HpClient) -> bool) {
        let finished = tokio::time::timeout(TIMEOUT, async {
            while !done(self) {
                if !self.pump_one().await {
                    break;
                }
            }
        })
        .await;
        assert!(finished.is_ok(), "timed out (closed: {:?})", self.closed);
        assert!(done(self), "connection ended first: {:?}", self.closed);
    }

    pub async fn pump_for(&mut self, period: std::time::Duration) {
        let _ = tokio::time::timeout(period, async { while self.pump_one().await {} }).await;
    }

    async fn pump_one(&mut self) -> bool {
        match self.socket.next().await {
            Some(Ok(Message::Binary(frame))) => {
                self.on_frame(&frame).await;
                true
            }
            Some(Ok(Message::Close(frame))) => {
                self.closed = Some(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
                false
            }
            Some(Ok(_)) => true,
            _ => {
                self.closed.get_or_insert(1006);
                false
            }
        }
    }

    async fn on_frame(&mut self, frame: &[u8]) {
        if frame == hp::encode_ping().as_slice() {
            self.send(hp::encode_pong()).await;
            return;
        }
        let mut reader = Reader(frame);
        let name = reader.string();
        let rest = reader.0;
        let Some(doc) = self.docs.get_mut(&name) else {
            return;
        };
        let mut inner = Reader(rest);
        match inner.var_uint() {
            2 => match inner.var_uint() {
                1 => doc.denied = Some(inner.string()),
                2 => doc.scope = Some(inner.string()),
                _ => {}
            },
            8 if inner.var_uint() == 1 => doc.sync_statuses += 1,
            0 | 1 | 5 => {
                let reply = handle_y_message(doc, rest);
                if let Some(reply) = reply {
                    self.send(hp::encode_sync_step2(&name, &reply)).await;
                }
            }
            _ => {}
        }
    }
}

/// Applies a sync/awareness/stateless payload; returns a SyncStep2 to send for a SyncStep1.
fn handle_y_message(doc: &mut HpDoc, payload: &[u8]) -> Option<Vec<u8>> {
    let mut reply = None;
    for message in wire::decode_frame(payload).expect("server payload decodes") {
        match message {
            ClientMessage::SyncStep1(sv) => {
                reply = Some(doc.doc.transact().encode_diff_v1(&sv));
            }
            ClientMessage::SyncStep2(update) | ClientMessage::Update(update) => {
                let is_step2 = matches!(payload.get(1), Some(1));
                doc.doc
                    .transact_mut_with("remote")
                    .apply_update(Update::decode_v1(&update).expect("update"))
                    .expect("apply");
                if is_step2 {
                    doc.synced = true;
                }
            }
            ClientMessage::Stateless(json) => doc
                .stateless
                .push(serde_json::from_str(&json).unwrap_or(Value::String(json))),
            _ => {}
        }
    }
    reply
}

/// Just enough lib0 to read server frames.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn var_uint(&mut self) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some((&byte, rest)) = self.0.split_first() else {
                break;
            };
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }

    fn string(&mut self) -> String {
        let len = self.var_uint() as usize;
        let (text, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        String::from_utf8_lossy(text).into_owned()
    }
}
