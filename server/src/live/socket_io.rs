//! What both WebSocket dialects share about moving bytes: socket buffer sizes and batched writes.
//!
//! Both were found by profiling the fanout benchmark (`bench/README.md`, bottleneck 1):
//! - tungstenite zero-fills its whole read buffer before every read, including the reads that find
//!   nothing; with the 128 KiB default that `memset` was 46 % of server CPU and ~128 KiB of touched
//!   memory per idle connection. Larger frames still work: the buffer grows as a frame needs.
//! - a `send` per frame is one `write` syscall per frame; writing every frame already queued for a
//!   connection and flushing once makes a burst one syscall.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::SinkExt;
use tokio::sync::mpsc;

/// The halves of an upgraded socket: sessions take these rather than the socket (see `ws.rs`).
pub type WsSink = SplitSink<WebSocket, Message>;
pub type WsStream = SplitStream<WebSocket>;

/// Bytes read from the socket per read call.
const READ_BUFFER_BYTES: usize = 2 * 1024;
/// Frames written before one flush, at most (bounds how long one connection holds its task).
const MAX_FRAMES_PER_FLUSH: usize = 64;

/// The upgrade with our buffer sizes and a frame limit of `max_frame_bytes`.
///
/// The codec allows one byte over the limit so an oversized frame is read and refused with 1009 by
/// the session rather than failing inside the codec with no close frame.
pub fn configure(upgrade: WebSocketUpgrade, max_frame_bytes: usize) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(max_frame_bytes.saturating_add(1))
        .max_frame_size(max_frame_bytes.saturating_add(1))
}

/// Writes `first` and every frame already waiting in `queue` (up to a bound), then flushes once.
pub async fn write_queued(
    sink: &mut WsSink,
    first: Bytes,
    queue: &mut mpsc::Receiver<Bytes>,
) -> Result<(), axum::Error> {
    sink.feed(Message::Binary(first)).await?;
    for _ in 1..MAX_FRAMES_PER_FLUSH {
        match queue.try_recv() {
            Ok(frame) => sink.feed(Message::Binary(frame)).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}
