//! One simulated editor: a real `yrs` canvas document synced over a real WebSocket with the
//! y-websocket protocol (like `tests/src/ws.rs`), plus latency bookkeeping.
//!
//! Latency: a writer "moves" a block by setting its `visual` map to
//! `{x, y, t: send time (ns since bench start), seq, w: writer id}`. Every receiver observes the
//! blocks map deeply; when a remote transaction changes a `visual.t` it records
//! `receive time − t` (receive time = when the frame came off the socket, before decoding) and
//! remembers `(w, seq)` so lost updates can be counted exactly.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use nox_sync_protocol::canvas;
use nox_sync_protocol::wire::{self, ClientMessage};
use serde_json::{json, Map as JsonMap, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::types::{EntryChange, Event};
use yrs::updates::decoder::Decode;
use yrs::{Any, DeepObservable, Doc, Out, ReadTxn, Transact, TransactionMut, Update};

use crate::stats::Samples;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Nanoseconds since the bench started: the one clock of send and receive stamps.
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// What the deep observer records (shared with the yrs callback).
#[derive(Default)]
struct Received {
    /// Only updates arriving while measuring count (not the initial sync).
    measuring: bool,
    latencies: Samples,
    /// Distinct (writer, seq) seen, per writer.
    seen: HashMap<u64, HashSet<u64>>,
}

pub struct Client {
    socket: Option<Socket>,
    pub doc: Doc,
    /// Writer id written into `visual.w` (our own moves are not measured).
    pub writer_id: u64,
    local_updates: Arc<Mutex<Vec<Vec<u8>>>>,
    received: Arc<Mutex<Received>>,
    recv_at: Arc<AtomicU64>,
    /// Apply the server's SyncStep2? (The join storm only times its arrival.)
    apply_sync: bool,
    pub synced_at: Option<Instant>,
    /// When the frame holding the SyncStep2 came off the socket (before it was applied).
    pub sync_received_at: Option<Instant>,
    pub sync_bytes: usize,
    pub acks: u64,
    pub updates_sent: u64,
    pub moves_sent: u64,
    pub frames_received: u64,
    /// Why the connection ended, when it did (code + reason, or the transport error).
    pub closed: Option<String>,
    rng: rand::rngs::StdRng,
}

/// How a client behaves during the measured phase.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Move one of `blocks` every `interval` (None: only read).
    pub interval: Option<Duration>,
    /// First move at this instant (lets writers be spread out in phase).
    pub first_at: Instant,
    /// Blocks this client moves: round-robin (`random = false`) or at random.
    pub blocks: Arc<Vec<String>>,
    pub random: bool,
    /// End of the writing phase.
    pub until: Instant,
    /// Ends the phase early when it turns true (scenarios that stop clients from outside).
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Plan {
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }
}

impl Client {
    /// Connects and sends our SyncStep1; does not wait for the answer (see [`Client::wait_synced`]).
    pub async fn connect(url: &str, writer_id: u64, apply_sync: bool) -> Result<Self> {
        // A small read buffer: 10,000 clients × tungstenite's default 128 KiB (zero-filled on
        // first read) would be 1.3 GB in the load generator alone.
        let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .with_context(|| format!("websocket connect {}", redact(url)))?;
        let doc = canvas::new_canvas_doc();
        let local_updates: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        {
            let sink = local_updates.clone();
            doc.observe_update_v1("bench-local", move |txn, event| {
                if is_local(txn) {
                    lock(&sink).push(event.update.clone());
                }
            })
            .map_err(|e| anyhow!("observe updates: {e}"))?;
        }
        let received: Arc<Mutex<Received>> = Arc::default();
        let recv_at = Arc::new(AtomicU64::new(0));
        {
            let (received, recv_at) = (received.clone(), recv_at.clone());
            let blocks = doc.get_or_insert_map(canvas::BLOCKS);
            blocks.observe_deep("bench-latency", move |txn, events| {
                if is_local(txn) {
                    return;
                }
                let mut received = lock(&received);
                if !received.measuring {
                    return;
                }
                let at = recv_at.load(Ordering::Relaxed);
                for event in events.iter() {
                    let Event::Map(event) = event else { continue };
                    let keys = event.keys(txn);
                    let (Some(t), Some(seq), Some(w)) = (
                        changed_number(keys.get("t")),
                        changed_number(keys.get("seq")),
                        changed_number(keys.get("w")),
                    ) else {
                        continue;
                    };
                    received.latencies.push(at.saturating_sub(t));
                    received.seen.entry(w).or_default().insert(seq);
                }
            });
        }
        let mut client = Client {
            socket: Some(socket),
            doc,
            writer_id,
            local_updates,
            received,
            recv_at,
            apply_sync,
            synced_at: None,
            sync_received_at: None,
            sync_bytes: 0,
            acks: 0,
            updates_sent: 0,
            moves_sent: 0,
            frames_received: 0,
            closed: None,
            rng: rand::SeedableRng::seed_from_u64(writer_id),
        };
        let sv = client.doc.transact().state_vector();
        client.send(wire::encode_sync_step1(&sv)).await?;
        Ok(client)
    }

    pub fn is_synced(&self) -> bool {
        self.synced_at.is_some()
    }

    pub fn is_open(&self) -> bool {
        self.socket.is_some()
    }

    /// Reads until the server's SyncStep2 has arrived (and been applied, unless in raw mode).
    pub async fn wait_synced(&mut self, timeout: Duration) -> Result<()> {
        self.pump_until(timeout, |c| c.is_synced()).await
    }

    /// Reads until every update-bearing message we sent is durably acknowledged (`&acks=1`).
    pub async fn wait_acked(&mut self, timeout: Duration) -> Result<()> {
        self.pump_until(timeout, |c| c.acks >= c.updates_sent).await
    }

    /// Reads frames until `done` holds; errors on timeout or a closed connection.
    pub async fn pump_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&Client) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.read_one()).await {
                Ok(true) => {}
                Ok(false) => bail!("connection ended: {:?}", self.closed),
                Err(_) => bail!("timed out after {timeout:?}"),
            }
        }
        Ok(())
    }

    /// Reads frames for `period` (or until the connection ends).
    pub async fn pump_for(&mut self, period: Duration) {
        let _ = tokio::time::timeout(period, async { while self.read_one().await {} }).await;
    }

    /// Reads until nothing has arrived for `quiet`, at most `max`.
    pub async fn drain(&mut self, quiet: Duration, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let wait = quiet.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            if wait.is_zero() {
                return;
            }
            match tokio::time::timeout(wait, self.read_one()).await {
                Ok(true) => {}
                Ok(false) | Err(_) => return,
            }
        }
    }

    /// Starts or stops recording latencies and seen sequence numbers.
    pub fn set_measuring(&self, on: bool) {
        lock(&self.received).measuring = on;
    }

    /// The measured phase: read continuously and, per the plan, move blocks on a timer.
    pub async fn run(&mut self, plan: &Plan) -> Result<()> {
        let mut stop = plan.stop.clone();
        self.set_measuring(true);
        let until = tokio::time::Instant::from_std(plan.until);
        let mut ticker = plan.interval.map(|every| {
            let mut t =
                tokio::time::interval_at(tokio::time::Instant::from_std(plan.first_at), every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        let mut next_block = 0usize;
        loop {
            tokio::select! {
                biased;
                open = self.read_one() => {
                    if !open {
                        bail!("connection ended: {:?}", self.closed);
                    }
                }
                _ = async { ticker.as_mut().expect("ticker").tick().await }, if ticker.is_some() => {
                    if plan.blocks.is_empty() {
                        continue;
                    }
                    let index = if plan.random {
                        rand::Rng::gen_range(&mut self.rng, 0..plan.blocks.len())
                    } else {
                        next_block = (next_block + 1) % plan.blocks.len();
                        next_block
                    };
                    self.move_block(&plan.blocks[index]).await?;
                }
                _ = tokio::time::sleep_until(until) => return Ok(()),
                _ = stopped(stop.as_mut()) => return Ok(()),
            }
        }
    }

    /// Moves a block, stamping the send time, sequence number and writer id into `visual`.
    pub async fn move_block(&mut self, id: &str) -> Result<()> {
        let seq = self.moves_sent;
        self.moves_sent += 1;
        let x = (seq % 1000) as f64 * 1.5;
        let fields = json!({"visual": {
            "x": x, "y": x / 2.0, "t": now_ns(), "seq": seq, "w": self.writer_id,
        }});
        self.put_block(id, &fields).await
    }

    /// Creates or patches a block through the canvas model, like an editor would.
    pub async fn put_block(&mut self, id: &str, fields: &Value) -> Result<()> {
        let fields = as_object(fields)?;
        self.edit(|txn| canvas::put_block(txn, id, fields).map_err(|e| anyhow!("{e}")))
            .await
    }

    /// Makes several edits in one transaction (one update on the wire).
    pub async fn edit(&mut self, f: impl FnOnce(&mut TransactionMut) -> Result<()>) -> Result<()> {
        {
            let mut txn = self.doc.transact_mut_with("local");
            f(&mut txn)?;
        }
        let updates = std::mem::take(&mut *lock(&self.local_updates));
        for update in updates {
            self.send(wire::encode_update(&update)).await?;
            self.updates_sent += 1;
        }
        Ok(())
    }

    async fn send(&mut self, frame: Vec<u8>) -> Result<()> {
        let socket = self.socket.as_mut().context("not connected")?;
        socket
            .send(Message::Binary(frame.into()))
            .await
            .context("send frame")
    }

    /// Reads and handles one frame; false when the connection is over.
    async fn read_one(&mut self) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        match socket.next().await {
            Some(Ok(Message::Binary(frame))) => {
                self.recv_at.store(now_ns(), Ordering::Relaxed);
                self.frames_received += 1;
                if let Err(e) = self.on_frame(&frame).await {
                    self.closed = Some(format!("client error: {e:#}"));
                    self.socket = None;
                    return false;
                }
                true
            }
            Some(Ok(Message::Close(frame))) => {
                self.closed = Some(match frame {
                    Some(f) => format!("{} {}", u16::from(f.code), f.reason),
                    None => "closed without code".into(),
                });
                self.socket = None;
                false
            }
            Some(Ok(_)) => true,
            Some(Err(e)) => {
                self.closed = Some(format!("transport: {e}"));
                self.socket = None;
                false
            }
            None => {
                self.closed = Some("connection lost".into());
                self.socket = None;
                false
            }
        }
    }

    async fn on_frame(&mut self, frame: &[u8]) -> Result<()> {
        let received = Instant::now();
        if let Some(count) = wire::decode_ack(frame) {
            self.acks += count;
            return Ok(());
        }
        // Raw mode: time the SyncStep2's arrival without decoding its (large) payload.
        if !self.apply_sync && frame.starts_with(&[wire::MSG_SYNC, 1]) {
            self.sync_bytes += frame.len();
            self.sync_received_at.get_or_insert(received);
            self.synced_at.get_or_insert(received);
            return Ok(());
        }
        let messages = wire::decode_frame(frame).map_err(|e| anyhow!("server frame: {e}"))?;
        for message in messages {
            match message {
                ClientMessage::SyncStep1(sv) => {
                    let diff = self.doc.transact().encode_diff_v1(&sv);
                    self.send(wire::encode_sync_step2(&diff)).await?;
                    // The server acknowledges every update-bearing message, SyncStep2 included.
                    self.updates_sent += 1;
                }
                ClientMessage::SyncStep2(update) => {
                    self.sync_received_at.get_or_insert(received);
                    self.sync_bytes += update.len();
                    self.apply_remote(&update)?;
                    self.synced_at.get_or_insert_with(Instant::now);
                }
                ClientMessage::Update(update) => self.apply_remote(&update)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_remote(&mut self, update: &[u8]) -> Result<()> {
        let update = Update::decode_v1(update).map_err(|e| anyhow!("decode update: {e}"))?;
        self.doc
            .transact_mut_with("remote")
            .apply_update(update)
            .map_err(|e| anyhow!("apply update: {e}"))
    }

    /// A handle on this client's latency record, usable while the client runs in its own task.
    pub fn latency_handle(&self) -> LatencyHandle {
        LatencyHandle(self.received.clone())
    }

    /// Latencies recorded so far (taken: the client keeps none afterwards).
    pub fn take_latencies(&self) -> Samples {
        std::mem::take(&mut lock(&self.received).latencies)
    }

    /// How many distinct moves of `writer` this client received.
    pub fn seen_from(&self, writer: u64) -> usize {
        lock(&self.received)
            .seen
            .get(&writer)
            .map_or(0, HashSet::len)
    }

    /// The `name` of block `id` in our document (`None`: no such block or no string name).
    pub fn block_name(&self, id: &str) -> Option<String> {
        let txn = self.doc.transact();
        let blocks = txn.get_map(canvas::BLOCKS)?;
        match yrs::Map::get(&blocks, &txn, id)? {
            yrs::Out::YMap(block) => match yrs::Map::get(&block, &txn, "name")? {
                yrs::Out::Any(yrs::Any::String(name)) => Some(name.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The canvas as canonical JSON, for convergence checks.
    pub fn canvas_json(&self) -> String {
        let txn = self.doc.transact();
        serde_json::to_string(&canvas::read_canvas(&txn)).unwrap_or_default()
    }

    /// Bytes of our document's full state (Yjs v1 update).
    pub fn state_len(&self) -> usize {
        self.doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
            .len()
    }

    /// (blocks, relations) in our document.
    pub fn counts(&self) -> (usize, usize) {
        let txn = self.doc.transact();
        let len = |name: &str| {
            txn.get_map(name)
                .map_or(0, |m| yrs::Map::len(&m, &txn) as usize)
        };
        (len(canvas::BLOCKS), len(canvas::RELATIONS))
    }

    pub async fn close(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
        }
    }
}

/// Shared access to a running client's latency samples.
#[derive(Clone)]
pub struct LatencyHandle(Arc<Mutex<Received>>);

impl LatencyHandle {
    /// The samples recorded since the last take.
    pub fn take(&self) -> Samples {
        std::mem::take(&mut lock(&self.0).latencies)
    }
}

/// Resolves when the stop flag turns true; never without a flag.
async fn stopped(stop: Option<&mut tokio::sync::watch::Receiver<bool>>) {
    let Some(stop) = stop else {
        return std::future::pending().await;
    };
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn is_local(txn: &TransactionMut) -> bool {
    txn.origin().is_some_and(|o| o.as_ref() == b"local")
}

fn changed_number(change: Option<&EntryChange>) -> Option<u64> {
    let value = match change? {
        EntryChange::Inserted(v) | EntryChange::Updated(_, v) => v,
        EntryChange::Removed(_) => return None,
    };
    match value {
        Out::Any(Any::Number(n)) => match n {
            yrs::any::Number::Int(i) => u64::try_from(*i).ok(),
            yrs::any::Number::Float(f) => Some(*f as u64),
        },
        _ => None,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn as_object(value: &Value) -> Result<&JsonMap<String, Value>> {
    value.as_object().context("fields must be a JSON object")
}

fn redact(url: &str) -> String {
    url.split("?token=").next().unwrap_or(url).to_string()
}

/// `n` fresh block ids (UUIDs, as the projection expects).
pub fn block_ids(n: usize) -> Vec<String> {
    (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect()
}

/// The fields of a plain block `i` (small, realistic).
pub fn block_fields(i: usize) -> Value {
    json!({
        "type": "service",
        "name": format!("Block {i}"),
        "config": {"replicas": 1 + i % 3, "image": "nginx:1.27"},
        "visual": {"x": (i % 100) as f64 * 40.0, "y": (i / 100) as f64 * 40.0},
    })
}
