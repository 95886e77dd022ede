//! The Hocuspocus dialect (`@hocuspocus/provider`): one socket multiplexes many documents.
//!
//! Every frame is `varString(documentName) + varUint type + payload`, one message per frame.
//! Exceptions: Ping `[9]` and Pong `[10]` are bare one-byte frames without a name. They cannot be
//! confused with a named frame, whose first byte 9 or 10 would announce a name of that many bytes.
//!
//! With session awareness the name is `doc + "\0" + sessionId`: names are kept raw so replies can
//! echo them byte for byte; splitting them is the caller's business.

use yrs::sync::AwarenessUpdate;
use yrs::updates::encoder::Encode;
use yrs::StateVector;

use super::lib0::{write_var_string, write_var_uint, Lib0Reader};
use super::{
    guarded, read_awareness, read_message_type, read_stateless, read_sync, write_awareness,
    write_sync, write_sync_step1, ClientMessage, ProtocolError, MSG_AUTH, MSG_AWARENESS, MSG_CLOSE,
    MSG_PING, MSG_PONG, MSG_QUERY_AWARENESS, MSG_STATELESS, MSG_SYNC, MSG_SYNC_STATUS, SYNC_STEP2,
    SYNC_UPDATE,
};

/// Hocuspocus auth sub-type: the provider sends its token (client → server).
const AUTH_TOKEN: u64 = 0;
/// Hocuspocus auth sub-type: refused, with a reason (server → client).
const AUTH_PERMISSION_DENIED: u64 = 1;
/// Hocuspocus auth sub-type: accepted, with a scope (server → client).
const AUTH_AUTHENTICATED: u64 = 2;

/// Scope for [`encode_authenticated`]: the client may edit.
pub const SCOPE_READ_WRITE: &str = "read-write";
/// Scope for [`encode_authenticated`]: the provider will not send updates.
pub const SCOPE_READONLY: &str = "readonly";

/// One decoded Hocuspocus frame from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HpClientMessage {
    /// Bare `[9]` keep-alive: answer with [`encode_pong`].
    Ping,
    /// Bare `[10]`: answer to our ping.
    Pong,
    /// A message addressed to one document of the socket; `name` is kept raw.
    Doc { name: String, msg: HpDocMessage },
}

/// The message part of a named Hocuspocus frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HpDocMessage {
    /// Always [`ClientMessage::SyncStep1`], [`ClientMessage::SyncStep2`] or
    /// [`ClientMessage::Update`], validated like the y-websocket dialect.
    Sync(ClientMessage),
    Awareness(AwarenessUpdate),
    QueryAwareness,
    /// The provider's token. Anything after it (v4 appends its version string) is ignored, as the
    /// reference server does.
    Auth {
        token: String,
    },
    Stateless(String),
    /// The provider detaches this document (an optional reason is ignored).
    Close,
    /// Server-to-client in practice; accepted and ignored if a client sends it.
    SyncStatus,
    /// A type we do not handle (4 and 6 are internal to the reference server): ignored.
    Unknown(u8),
}

/// Decodes one WebSocket binary frame of the Hocuspocus dialect. Never panics.
pub fn decode_frame(frame: &[u8]) -> Result<HpClientMessage, ProtocolError> {
    guarded(|| match frame {
        [] => Err(ProtocolError::Empty),
        [MSG_PING] => Ok(HpClientMessage::Ping),
        [MSG_PONG] => Ok(HpClientMessage::Pong),
        named => decode_doc_frame(named),
    })
}

fn decode_doc_frame(frame: &[u8]) -> Result<HpClientMessage, ProtocolError> {
    let mut reader = Lib0Reader::new(frame);
    let name = reader.read_var_string("document name")?.to_owned();
    let msg = read_doc_message(&mut reader)?;
    Ok(HpClientMessage::Doc { name, msg })
}

fn read_doc_message(reader: &mut Lib0Reader<'_>) -> Result<HpDocMessage, ProtocolError> {
    let msg = match read_message_type(reader)? {
        MSG_SYNC => HpDocMessage::Sync(read_sync(reader)?),
        MSG_AWARENESS => HpDocMessage::Awareness(read_awareness(reader)?),
        MSG_QUERY_AWARENESS => HpDocMessage::QueryAwareness,
        MSG_STATELESS => HpDocMessage::Stateless(read_stateless(reader)?),
        // These carry optional trailing data we deliberately do not interpret.
        MSG_AUTH => return read_auth(reader),
        MSG_CLOSE => return Ok(HpDocMessage::Close),
        MSG_SYNC_STATUS => return Ok(HpDocMessage::SyncStatus),
        other => return Ok(HpDocMessage::Unknown(other)),
    };
    // One message per frame: anything after it is corruption.
    reader.expect_end("message")?;
    Ok(msg)
}

fn read_auth(reader: &mut Lib0Reader<'_>) -> Result<HpDocMessage, ProtocolError> {
    match reader.read_var_uint("auth message type")? {
        AUTH_TOKEN => {
            let token = reader.read_var_string("auth token")?;
            Ok(HpDocMessage::Auth {
                token: token.to_owned(),
            })
        }
        other => Err(ProtocolError::Malformed(format!(
            "auth message type {other} is not sent by clients"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoders: `varString(name) + varUint type + payload`, one message per frame.

/// Starts a named frame; `name` must be the raw name the client used (session suffix included).
fn doc_frame(name: &str, capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(name.len() + capacity + 8);
    write_var_string(&mut buf, name);
    buf
}

/// `[name, 0, 0, varUint8Array(sv)]`.
pub fn encode_sync_step1(name: &str, sv: &StateVector) -> Vec<u8> {
    let mut buf = doc_frame(name, 0);
    write_sync_step1(&mut buf, sv);
    buf
}

/// `[name, 0, 1, varUint8Array(update)]`: the provider is "synced" after it.
pub fn encode_sync_step2(name: &str, update: &[u8]) -> Vec<u8> {
    let mut buf = doc_frame(name, update.len());
    write_sync(&mut buf, SYNC_STEP2, update);
    buf
}

/// `[name, 0, 2, varUint8Array(update)]`.
pub fn encode_update(name: &str, update: &[u8]) -> Vec<u8> {
    let mut buf = doc_frame(name, update.len());
    write_sync(&mut buf, SYNC_UPDATE, update);
    buf
}

/// `[name, 1, varUint8Array(awareness)]`.
pub fn encode_awareness(name: &str, update: &AwarenessUpdate) -> Vec<u8> {
    encode_awareness_bytes(name, &update.encode_v1())
}

/// Like [`encode_awareness`] from an already-encoded awareness update (encode once per room).
pub fn encode_awareness_bytes(name: &str, encoded: &[u8]) -> Vec<u8> {
    let mut buf = doc_frame(name, encoded.len());
    write_awareness(&mut buf, encoded);
    buf
}

/// `[name, 3]`.
pub fn encode_query_awareness(name: &str) -> Vec<u8> {
    with_type(name, MSG_QUERY_AWARENESS)
}

/// `[name, 2, 0, varString(token)]`: what the provider sends; for test and bench clients.
pub fn encode_auth_token(name: &str, token: &str) -> Vec<u8> {
    with_auth(name, AUTH_TOKEN, token)
}

/// `[name, 2, 2, varString(scope)]`: the provider flushes its queued messages after it.
/// `scope` is [`SCOPE_READ_WRITE`] or [`SCOPE_READONLY`].
pub fn encode_authenticated(name: &str, scope: &str) -> Vec<u8> {
    with_auth(name, AUTH_AUTHENTICATED, scope)
}

/// `[name, 2, 1, varString(reason)]`.
pub fn encode_permission_denied(name: &str, reason: &str) -> Vec<u8> {
    with_auth(name, AUTH_PERMISSION_DENIED, reason)
}

/// `[name, 5, varString(payload)]`.
pub fn encode_stateless(name: &str, payload: &str) -> Vec<u8> {
    let mut buf = with_type(name, MSG_STATELESS);
    write_var_string(&mut buf, payload);
    buf
}

/// `[name, 8, varUint(applied)]`: decrements the provider's `unsyncedChanges` when `applied`.
///
/// The provider reads it with lib0 `readVarInt` (signed); 0 and 1 encode to the same single byte
/// in both encodings.
pub fn encode_sync_status(name: &str, applied: bool) -> Vec<u8> {
    let mut buf = with_type(name, MSG_SYNC_STATUS);
    write_var_uint(&mut buf, u64::from(applied));
    buf
}

/// `[name, 7, varString(reason)]`: the provider treats it as a clean close (code 1000) of that
/// document. The client-to-server Close has no reason.
pub fn encode_close(name: &str, reason: &str) -> Vec<u8> {
    let mut buf = with_type(name, MSG_CLOSE);
    write_var_string(&mut buf, reason);
    buf
}

/// Re-addresses a frame a room produced for the y-websocket dialect to document `name`.
///
/// Sync (0), awareness (1) and stateless (5) payloads are the same in both dialects: only the name
/// goes in front. Permission denied is auth subtype 0 in y-protocols and 1 here. A durable ack
/// `[6, count]` becomes `count` SyncStatus frames (one per update the provider counted as unsynced).
/// Anything else has no Hocuspocus form and is dropped.
pub fn translate_room_frame(name: &str, frame: &[u8]) -> Vec<Vec<u8>> {
    match frame {
        [MSG_SYNC | MSG_AWARENESS | MSG_STATELESS, ..] => {
            let mut buf = doc_frame(name, frame.len());
            buf.extend_from_slice(frame);
            vec![buf]
        }
        [MSG_AUTH, 0, reason @ ..] => {
            let mut buf = with_type(name, MSG_AUTH);
            write_var_uint(&mut buf, AUTH_PERMISSION_DENIED);
            buf.extend_from_slice(reason);
            vec![buf]
        }
        _ => match super::decode_ack(frame) {
            Some(count) => (0..count.min(10_000))
                .map(|_| encode_sync_status(name, true))
                .collect(),
            None => Vec::new(),
        },
    }
}

/// Bare `[9]`.
pub fn encode_ping() -> Vec<u8> {
    vec![MSG_PING]
}

/// Bare `[10]`.
pub fn encode_pong() -> Vec<u8> {
    vec![MSG_PONG]
}

fn with_type(name: &str, message_type: u8) -> Vec<u8> {
    let mut buf = doc_frame(name, 0);
    write_var_uint(&mut buf, u64::from(message_type));
    buf
}

fn with_auth(name: &str, auth_type: u64, text: &str) -> Vec<u8> {
    let mut buf = with_type(name, MSG_AUTH);
    write_var_uint(&mut buf, auth_type);
    write_var_string(&mut buf, text);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{sample_awareness, sample_update, xorshift};

    fn doc(name: &str, msg: HpDocMessage) -> HpClientMessage {
        HpClientMessage::Doc {
            name: name.to_owned(),
            msg,
        }
    }

    fn decoded(frame: &[u8]) -> HpClientMessage {
        decode_frame(frame).expect("frame decodes")
    }

    #[test]
    fn sync_messages_round_trip() {
        let (sv, update) = sample_update();
        assert_eq!(
            decoded(&encode_sync_step1("d", &sv)),
            doc("d", HpDocMessage::Sync(ClientMessage::SyncStep1(sv)))
        );
        assert_eq!(
            decoded(&encode_sync_step2("d", &update)),
            doc(
                "d",
                HpDocMessage::Sync(ClientMessage::SyncStep2(update.clone()))
            )
        );
        assert_eq!(
            decoded(&encode_update("d", &update)),
            doc("d", HpDocMessage::Sync(ClientMessage::Update(update)))
        );
    }

    #[test]
    fn other_client_messages_round_trip() {
        let awareness = sample_awareness();
        assert_eq!(
            decoded(&encode_awareness("d", &awareness)),
            doc("d", HpDocMessage::Awareness(awareness))
        );
        assert_eq!(
            decoded(&encode_query_awareness("d")),
            doc("d", HpDocMessage::QueryAwareness)
        );
        assert_eq!(
            decoded(&encode_stateless("d", "{\"lock\":1}")),
            doc("d", HpDocMessage::Stateless("{\"lock\":1}".into()))
        );
        assert_eq!(
            decoded(&encode_sync_status("d", true)),
            doc("d", HpDocMessage::SyncStatus)
        );
    }

    #[test]
    fn ping_and_pong_are_bare_bytes() {
        assert_eq!(encode_ping(), [9]);
        assert_eq!(encode_pong(), [10]);
        assert_eq!(decoded(&[9]), HpClientMessage::Ping);
        assert_eq!(decoded(&[10]), HpClientMessage::Pong);
        // A 9-byte name also starts with the byte 9: it must still decode as a named frame.
        assert_eq!(
            decoded(&encode_query_awareness("document1")),
            doc("document1", HpDocMessage::QueryAwareness)
        );
    }

    #[test]
    fn auth_token_is_decoded_and_a_trailing_version_ignored() {
        let frame = encode_auth_token("canvas:1", "jwt.token");
        assert_eq!(
            frame[..10],
            [8, b'c', b'a', b'n', b'v', b'a', b's', b':', b'1', 2]
        );
        let expected = doc(
            "canvas:1",
            HpDocMessage::Auth {
                token: "jwt.token".into(),
            },
        );
        assert_eq!(decoded(&frame), expected);
        let mut with_version = frame;
        write_var_string(&mut with_version, "4.8.0");
        assert_eq!(decoded(&with_version), expected);
    }

    #[test]
    fn server_auth_subtypes_from_a_client_are_refused() {
        assert!(matches!(
            decode_frame(&encode_authenticated("d", SCOPE_READ_WRITE)),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn server_messages_have_the_documented_bytes() {
        assert_eq!(
            encode_authenticated("d", SCOPE_READONLY),
            [&[1, b'd', 2, 2, 8][..], b"readonly"].concat()
        );
        assert_eq!(
            encode_permission_denied("d", "no"),
            [1, b'd', 2, 1, 2, b'n', b'o']
        );
        assert_eq!(encode_sync_status("d", true), [1, b'd', 8, 1]);
        assert_eq!(encode_sync_status("d", false), [1, b'd', 8, 0]);
        assert_eq!(encode_close("d", "bye"), [1, b'd', 7, 3, b'b', b'y', b'e']);
    }

    #[test]
    fn close_is_accepted_with_or_without_reason() {
        assert_eq!(decoded(&[1, b'd', 7]), doc("d", HpDocMessage::Close));
        assert_eq!(
            decoded(&encode_close("d", "bye")),
            doc("d", HpDocMessage::Close)
        );
    }

    #[test]
    fn session_names_are_kept_raw() {
        let name = "canvas:42\0session-7";
        let frame = encode_query_awareness(name);
        assert_eq!(decoded(&frame), doc(name, HpDocMessage::QueryAwareness));
    }

    #[test]
    fn unknown_types_are_ignored() {
        assert_eq!(
            decoded(&[1, b'd', 4, 0xde, 0xad]),
            doc("d", HpDocMessage::Unknown(4))
        );
    }

    #[test]
    fn bad_frames_are_errors() {
        assert_eq!(decode_frame(&[]), Err(ProtocolError::Empty));
        // Missing type after the name.
        assert!(decode_frame(&[1, b'd']).is_err());
        // One message per frame: trailing bytes refused.
        let mut frame = encode_query_awareness("d");
        frame.push(0);
        assert!(matches!(
            decode_frame(&frame),
            Err(ProtocolError::TrailingBytes { .. })
        ));
        // A name length far beyond the frame.
        assert!(matches!(
            decode_frame(&[0xff, 0xff, 0xff, 0xff, 0x0f, b'd']),
            Err(ProtocolError::Truncated { .. })
        ));
        // Garbage update.
        assert!(matches!(
            decode_frame(&encode_update("d", &[3, 0xff, 0xff, 0xff])),
            Err(ProtocolError::InvalidUpdate(_))
        ));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let (sv, update) = sample_update();
        let frames = [
            encode_sync_step1("doc", &sv),
            encode_update("doc", &update),
            encode_awareness("doc", &sample_awareness()),
            encode_auth_token("doc", "token"),
            encode_stateless("doc", "hi"),
        ];
        for frame in &frames {
            for len in 0..frame.len() {
                let result = decode_frame(&frame[..len]);
                assert!(result.is_err(), "prefix {len} of {frame:?} gave {result:?}");
                assert_ne!(result, Err(ProtocolError::Panicked));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut next = xorshift(0x5eed_1234_abcd_ef01);
        for _ in 0..20_000 {
            let len = (next() % 48) as usize;
            let frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            assert_ne!(decode_frame(&frame), Err(ProtocolError::Panicked));
        }
    }
}

#[cfg(test)]
mod translate_tests {
    use super::*;
    use crate::wire;

    #[test]
    fn room_frames_are_readdressed_to_the_document() {
        let name = "doc\0session";
        let update = wire::encode_update(&[1, 2, 3]);
        assert_eq!(
            translate_room_frame(name, &update),
            vec![[doc_frame(name, 0), update.clone()].concat()]
        );
        let stateless = wire::encode_stateless("{\"type\":\"lock.list\"}");
        assert_eq!(
            translate_room_frame(name, &stateless),
            vec![encode_stateless(name, "{\"type\":\"lock.list\"}")]
        );
        assert_eq!(
            translate_room_frame(name, &wire::encode_permission_denied("read-only")),
            vec![encode_permission_denied(name, "read-only")]
        );
        assert_eq!(
            translate_room_frame(name, &wire::encode_ack(3)),
            vec![encode_sync_status(name, true); 3]
        );
        assert!(translate_room_frame(name, &[42]).is_empty());
    }
}
