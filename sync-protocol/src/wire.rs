//! The binary messages Nox Sync exchanges with stock JS clients, decoded defensively.
//!
//! Two framings share the y-protocols payloads:
//! - the y-websocket dialect (this module): a frame is one or more `varUint type + payload`
//!   messages, the document being implied by the URL;
//! - the Hocuspocus dialect ([`hocuspocus`]): every frame starts with `varString(documentName)`
//!   because many documents share one socket.
//!
//! Everything arriving here is untrusted. Decoders never panic (the yrs calls they make run under
//! `catch_unwind`), never allocate more than the frame could describe, refuse trailing bytes and
//! validate update / awareness payloads here, at the edge, so that a room only ever sees input
//! that is known to decode.

mod lib0;

pub mod fuzz_checks;
pub mod hocuspocus;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::AwarenessUpdate;
use yrs::updates::decoder::{Decode, Decoder, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{ClientID, StateVector, Update};

use self::lib0::{write_var_bytes, write_var_string, write_var_uint, Lib0Reader};

/// y-protocols sync message (`SyncStep1` / `SyncStep2` / `Update` follow as a sub-type).
pub const MSG_SYNC: u8 = 0;
/// y-protocols awareness update.
pub const MSG_AWARENESS: u8 = 1;
/// y-protocols auth message (Hocuspocus reuses the number with its own sub-types).
pub const MSG_AUTH: u8 = 2;
/// Ask the peer to send its full awareness state.
pub const MSG_QUERY_AWARENESS: u8 = 3;
/// An application message carried as one varString (Nox lock messages).
pub const MSG_STATELESS: u8 = 5;
/// Nox extension of the y-websocket dialect: durable-commit acknowledgement (see [`encode_ack`]).
pub const MSG_ACK: u8 = 6;
/// Hocuspocus only: close one document of a multiplexed socket.
pub const MSG_CLOSE: u8 = 7;
/// Hocuspocus only: "your update was applied" (feeds the provider's `unsyncedChanges`).
pub const MSG_SYNC_STATUS: u8 = 8;
/// Hocuspocus only: bare one-byte keep-alive frame.
pub const MSG_PING: u8 = 9;
/// Hocuspocus only: bare one-byte keep-alive answer.
pub const MSG_PONG: u8 = 10;

/// Sub-types of [`MSG_SYNC`].
const SYNC_STEP1: u64 = 0;
const SYNC_STEP2: u64 = 1;
const SYNC_UPDATE: u64 = 2;

/// y-protocols auth sub-type "permission denied" (followed by a reason string).
const AUTH_PERMISSION_DENIED: u64 = 0;
/// yrs' `PERMISSION_GRANTED`; y-protocols itself defines no such message, yrs peers send it.
const AUTH_PERMISSION_GRANTED: u64 = 1;

/// yjs client ids are 53-bit (JS safe integers); yrs debug-asserts on larger ones and masks them
/// in release, so they are refused here to behave the same in every build.
const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// Minimum encoded size of one state-vector entry (client + clock), used to bound a declared count.
const MIN_STATE_VECTOR_ENTRY: usize = 2;
/// Minimum encoded size of one awareness entry (client + clock + string length).
const MIN_AWARENESS_ENTRY: usize = 3;
/// Minimum encoded size of one per-client section of a v1 update (block count + client + clock).
const MIN_UPDATE_CLIENT: usize = 3;

/// One decoded message from a client of either dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// The client's state vector: answer with the updates it misses.
    SyncStep1(StateVector),
    /// Raw v1 update bytes answering our SyncStep1. Validated to decode, but kept raw so the
    /// room decides how to apply (and can store the exact bytes).
    SyncStep2(Vec<u8>),
    /// Raw v1 update bytes of a live edit, validated like [`ClientMessage::SyncStep2`].
    Update(Vec<u8>),
    /// Awareness states (client id → clock + JSON, JSON `"null"` = removed). JSON is validated.
    Awareness(AwarenessUpdate),
    /// The client asks for everybody's awareness.
    AwarenessQuery,
    /// y-protocols auth: `Some(reason)` = permission denied, `None` = granted (yrs peers).
    Auth(Option<String>),
    /// Application payload (lock messages etc.).
    Stateless(String),
    /// A message type we do not handle. Ignored rather than refused so that newer clients keep
    /// working; the rest of its frame is skipped because its payload length is unknowable.
    Unknown(u8),
}

/// Why a frame was refused. Every variant means "drop the frame"; none is a server bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A zero-length frame carries no message at all.
    #[error("empty frame")]
    Empty,
    /// The frame ended inside `what` (also: a length prefix larger than the rest of the frame).
    #[error("frame ends inside {what}")]
    Truncated { what: &'static str },
    /// A varUint with more than 64 significant bits.
    #[error("{what} does not fit in 64 bits")]
    VarUintOverflow { what: &'static str },
    /// A varString that is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    /// Bytes left after a payload with an exact length: corruption or a smuggling attempt.
    #[error("{count} unexpected byte(s) after {what}")]
    TrailingBytes { what: &'static str, count: usize },
    /// Structurally invalid content (bad sub-type, out-of-range id, invalid JSON, …).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A SyncStep2 / Update payload that yrs cannot decode as a v1 update.
    #[error("invalid v1 update: {0}")]
    InvalidUpdate(String),
    /// yrs panicked while decoding (debug assertions on hostile input); caught, never propagated.
    #[error("decoder panicked on malformed input")]
    Panicked,
}

/// Decodes one WebSocket binary frame of the y-websocket dialect.
///
/// JS clients send one message per frame, but y-protocols allows several in a row, so all of them
/// are returned. Decoding stops after an [`ClientMessage::Unknown`] message (its length is
/// unknown). Never panics.
pub fn decode_frame(frame: &[u8]) -> Result<Vec<ClientMessage>, ProtocolError> {
    guarded(|| decode_messages(frame))
}

/// Runs a decoder under `catch_unwind`: yrs has debug assertions reachable from wire input, and a
/// malformed frame must cost one refused frame, never a crashed connection task.
fn guarded<T>(decode: impl FnOnce() -> Result<T, ProtocolError>) -> Result<T, ProtocolError> {
    catch_unwind(AssertUnwindSafe(decode)).unwrap_or(Err(ProtocolError::Panicked))
}

fn decode_messages(frame: &[u8]) -> Result<Vec<ClientMessage>, ProtocolError> {
    if frame.is_empty() {
        return Err(ProtocolError::Empty);
    }
    let mut reader = Lib0Reader::new(frame);
    let mut messages = Vec::new();
    while !reader.is_empty() {
        let message = read_message(&mut reader)?;
        let unknown = matches!(message, ClientMessage::Unknown(_));
        messages.push(message);
        if unknown {
            break;
        }
    }
    Ok(messages)
}

fn read_message(reader: &mut Lib0Reader<'_>) -> Result<ClientMessage, ProtocolError> {
    match read_message_type(reader)? {
        MSG_SYNC => read_sync(reader),
        MSG_AWARENESS => read_awareness(reader).map(ClientMessage::Awareness),
        MSG_AUTH => read_auth(reader),
        MSG_QUERY_AWARENESS => Ok(ClientMessage::AwarenessQuery),
        MSG_STATELESS => read_stateless(reader).map(ClientMessage::Stateless),
        other => Ok(ClientMessage::Unknown(other)),
    }
}

/// Reads the varUint message type. Types beyond `u8` exist in no dialect: refused, not ignored.
fn read_message_type(reader: &mut Lib0Reader<'_>) -> Result<u8, ProtocolError> {
    let tag = reader.read_var_uint("message type")?;
    u8::try_from(tag).map_err(|_| ProtocolError::Malformed(format!("message type {tag}")))
}

/// Reads a sync message body (after [`MSG_SYNC`]); shared by both dialects.
fn read_sync(reader: &mut Lib0Reader<'_>) -> Result<ClientMessage, ProtocolError> {
    match reader.read_var_uint("sync message type")? {
        SYNC_STEP1 => {
            let bytes = reader.read_var_bytes("state vector")?;
            decode_state_vector(bytes).map(ClientMessage::SyncStep1)
        }
        SYNC_STEP2 => {
            let bytes = reader.read_var_bytes("sync step 2 update")?;
            validate_update(bytes).map(|()| ClientMessage::SyncStep2(bytes.to_vec()))
        }
        SYNC_UPDATE => {
            let bytes = reader.read_var_bytes("update")?;
            validate_update(bytes).map(|()| ClientMessage::Update(bytes.to_vec()))
        }
        other => Err(ProtocolError::Malformed(format!(
            "sync message type {other}"
        ))),
    }
}

/// Reads an awareness message body (after [`MSG_AWARENESS`]); shared by both dialects.
fn read_awareness(reader: &mut Lib0Reader<'_>) -> Result<AwarenessUpdate, ProtocolError> {
    let bytes = reader.read_var_bytes("awareness update")?;
    decode_awareness(bytes)
}

/// Reads a stateless message body (after [`MSG_STATELESS`]); shared by both dialects.
fn read_stateless(reader: &mut Lib0Reader<'_>) -> Result<String, ProtocolError> {
    Ok(reader.read_var_string("stateless payload")?.to_owned())
}

fn read_auth(reader: &mut Lib0Reader<'_>) -> Result<ClientMessage, ProtocolError> {
    match reader.read_var_uint("auth message type")? {
        AUTH_PERMISSION_DENIED => {
            let reason = reader.read_var_string("permission denied reason")?;
            Ok(ClientMessage::Auth(Some(reason.to_owned())))
        }
        AUTH_PERMISSION_GRANTED => Ok(ClientMessage::Auth(None)),
        other => Err(ProtocolError::Malformed(format!(
            "auth message type {other}"
        ))),
    }
}

/// Decodes a v1 state vector ourselves (rather than `StateVector::decode_v1`) to bound the declared
/// entry count by the bytes present, refuse out-of-range ids and refuse trailing bytes.
fn decode_state_vector(bytes: &[u8]) -> Result<StateVector, ProtocolError> {
    let mut reader = Lib0Reader::new(bytes);
    let count = read_bounded_count(&mut reader, "state vector", MIN_STATE_VECTOR_ENTRY)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let client = read_client_id(&mut reader, "state vector client id")?;
        let clock = read_clock(&mut reader, "state vector clock")?;
        entries.push((client, clock));
    }
    reader.expect_end("state vector")?;
    Ok(entries.into_iter().collect())
}

/// Decodes an awareness update ourselves for the same reasons as [`decode_state_vector`], and
/// checks each state is JSON: JS peers `JSON.parse` every state we relay and would throw on junk.
fn decode_awareness(bytes: &[u8]) -> Result<AwarenessUpdate, ProtocolError> {
    let mut reader = Lib0Reader::new(bytes);
    let count = read_bounded_count(&mut reader, "awareness update", MIN_AWARENESS_ENTRY)?;
    let mut clients = HashMap::with_capacity(count);
    for _ in 0..count {
        let client = read_client_id(&mut reader, "awareness client id")?;
        let clock = read_clock(&mut reader, "awareness clock")?;
        let json = reader.read_var_string("awareness state")?;
        serde_json::from_str::<serde::de::IgnoredAny>(json)
            .map_err(|e| ProtocolError::Malformed(format!("awareness state is not JSON: {e}")))?;
        let json: Arc<str> = Arc::from(json);
        clients.insert(client, AwarenessUpdateEntry { clock, json });
    }
    reader.expect_end("awareness update")?;
    Ok(AwarenessUpdate { clients })
}

/// Checks that `bytes` is exactly one v1 update yrs can decode.
///
/// Garbage is refused at the edge, not in the room. The declared client count is bounded first
/// because yrs reserves capacity for it before reading anything.
fn validate_update(bytes: &[u8]) -> Result<(), ProtocolError> {
    let mut header = Lib0Reader::new(bytes);
    read_bounded_count(&mut header, "update", MIN_UPDATE_CLIENT)
        .map_err(|e| ProtocolError::InvalidUpdate(e.to_string()))?;
    let mut decoder = DecoderV1::from(bytes);
    Update::decode(&mut decoder).map_err(|e| ProtocolError::InvalidUpdate(e.to_string()))?;
    let rest = decoder
        .read_to_end()
        .map_err(|e| ProtocolError::InvalidUpdate(e.to_string()))?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(ProtocolError::TrailingBytes {
            what: "update",
            count: rest.len(),
        })
    }
}

/// Reads an element count and refuses counts the remaining bytes cannot possibly hold, so a
/// bogus count never turns into a large allocation.
fn read_bounded_count(
    reader: &mut Lib0Reader<'_>,
    what: &'static str,
    min_entry_size: usize,
) -> Result<usize, ProtocolError> {
    let declared = reader.read_var_uint(what)?;
    let room = reader.rest().len() / min_entry_size;
    usize::try_from(declared)
        .ok()
        .filter(|count| *count <= room)
        .ok_or_else(|| {
            ProtocolError::Malformed(format!(
                "{what} declares {declared} entries but only {} bytes follow",
                reader.rest().len()
            ))
        })
}

fn read_client_id(
    reader: &mut Lib0Reader<'_>,
    what: &'static str,
) -> Result<ClientID, ProtocolError> {
    let id = reader.read_var_uint(what)?;
    if id > MAX_CLIENT_ID {
        return Err(ProtocolError::Malformed(format!(
            "{what} {id} exceeds 53 bits"
        )));
    }
    Ok(ClientID::new(id))
}

fn read_clock(reader: &mut Lib0Reader<'_>, what: &'static str) -> Result<u32, ProtocolError> {
    let clock = reader.read_var_uint(what)?;
    u32::try_from(clock).map_err(|_| ProtocolError::Malformed(format!("{what} {clock} too large")))
}

// ---------------------------------------------------------------------------------------------
// Encoders. Each returns exactly one message: JS clients read one message per frame.

/// `[0, 0, varUint8Array(sv)]`: asks the client for what we miss (needed so offline edits upload).
pub fn encode_sync_step1(sv: &StateVector) -> Vec<u8> {
    let mut buf = Vec::new();
    write_sync_step1(&mut buf, sv);
    buf
}

/// `[0, 1, varUint8Array(update)]`: answers the client's SyncStep1; the client is "synced" after it.
pub fn encode_sync_step2(update: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(update.len() + 8);
    write_sync(&mut buf, SYNC_STEP2, update);
    buf
}

/// `[0, 2, varUint8Array(update)]`: a live edit broadcast to the room.
pub fn encode_update(update: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(update.len() + 8);
    write_sync(&mut buf, SYNC_UPDATE, update);
    buf
}

/// `[1, varUint8Array(awareness)]`.
pub fn encode_awareness(update: &AwarenessUpdate) -> Vec<u8> {
    encode_awareness_bytes(&update.encode_v1())
}

/// Like [`encode_awareness`] from an already-encoded awareness update, so one encoding can be
/// shared by every connection of a room.
pub fn encode_awareness_bytes(encoded: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(encoded.len() + 6);
    write_awareness(&mut buf, encoded);
    buf
}

/// `[3]`: asks the client for its awareness.
pub fn encode_query_awareness() -> Vec<u8> {
    vec![MSG_QUERY_AWARENESS]
}

/// `[2, 0, varString(reason)]`. Stock y-websocket only logs it: close with a 44xx code to refuse.
pub fn encode_permission_denied(reason: &str) -> Vec<u8> {
    let mut buf = vec![MSG_AUTH];
    write_var_uint(&mut buf, AUTH_PERMISSION_DENIED);
    write_var_string(&mut buf, reason);
    buf
}

/// `[5, varString(payload)]`: an application message (lock grants and releases).
pub fn encode_stateless(payload: &str) -> Vec<u8> {
    let mut buf = vec![MSG_STATELESS];
    write_var_string(&mut buf, payload);
    buf
}

/// `[6, varUint(count)]`: "the server has durably committed `count` more of your updates".
///
/// A Nox extension of the y-websocket dialect, sent only to clients that asked with `?acks=1`:
/// the stock client logs an error on unknown message types.
pub fn encode_ack(count: u64) -> Vec<u8> {
    let mut buf = vec![MSG_ACK];
    write_var_uint(&mut buf, count);
    buf
}

/// One decoded client message as a frame again, for a node that relays a client to the node
/// owning its workspace (the owner decodes and checks it once more). `None` for what is not
/// relayed: auth answers and unknown types, which the owner would ignore.
pub fn encode_client_message(message: &ClientMessage) -> Option<Vec<u8>> {
    match message {
        ClientMessage::SyncStep1(sv) => Some(encode_sync_step1(sv)),
        ClientMessage::SyncStep2(update) => {
            let mut buf = Vec::with_capacity(update.len() + 8);
            write_sync(&mut buf, SYNC_STEP2, update);
            Some(buf)
        }
        ClientMessage::Update(update) => Some(encode_update(update)),
        ClientMessage::Awareness(update) => Some(encode_awareness(update)),
        ClientMessage::AwarenessQuery => Some(encode_query_awareness()),
        ClientMessage::Stateless(payload) => Some(encode_stateless(payload)),
        ClientMessage::Auth(_) | ClientMessage::Unknown(_) => None,
    }
}

/// The count of an ack frame made by [`encode_ack`]; `None` for any other frame.
pub fn decode_ack(frame: &[u8]) -> Option<u64> {
    let (&kind, rest) = frame.split_first()?;
    if kind != MSG_ACK {
        return None;
    }
    let mut reader = Lib0Reader::new(rest);
    let count = reader.read_var_uint("ack count").ok()?;
    reader.expect_end("ack").ok()?;
    Some(count)
}

fn write_sync_step1(buf: &mut Vec<u8>, sv: &StateVector) {
    write_sync(buf, SYNC_STEP1, &sv.encode_v1());
}

fn write_sync(buf: &mut Vec<u8>, sync_type: u64, payload: &[u8]) {
    write_var_uint(buf, u64::from(MSG_SYNC));
    write_var_uint(buf, sync_type);
    write_var_bytes(buf, payload);
}

fn write_awareness(buf: &mut Vec<u8>, encoded: &[u8]) {
    write_var_uint(buf, u64::from(MSG_AWARENESS));
    write_var_bytes(buf, encoded);
}

#[cfg(test)]
mod fuzz_corpus;
#[cfg(test)]
mod tests;
