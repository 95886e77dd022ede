//! Tests of the y-websocket dialect, and fixtures shared with the Hocuspocus tests.

use super::*;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::{Doc, ReadTxn, Text, Transact};

/// A small document's state vector and full v1 update.
pub(crate) fn sample_update() -> (StateVector, Vec<u8>) {
    let doc = Doc::with_client_id(7);
    let text = doc.get_or_insert_text("t");
    text.push(&mut doc.transact_mut(), "hello");
    let txn = doc.transact();
    (
        txn.state_vector(),
        txn.encode_state_as_update_v1(&StateVector::default()),
    )
}

/// An awareness update as yrs produces it for a client with a local state.
pub(crate) fn sample_awareness() -> AwarenessUpdate {
    let mut awareness = Awareness::new(Doc::with_client_id(9));
    awareness.set_local_state_raw(r##"{"user":{"name":"Ada","color":"#30bced"}}"##);
    awareness.update().expect("awareness encodes")
}

/// Deterministic xorshift64 PRNG: fuzzing without new dependencies, reproducible failures.
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.max(1);
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

fn decoded(frame: &[u8]) -> Vec<ClientMessage> {
    decode_frame(frame).expect("frame decodes")
}

/// One valid frame of every client message type.
fn sample_frames() -> Vec<(Vec<u8>, ClientMessage)> {
    let (sv, update) = sample_update();
    let awareness = sample_awareness();
    vec![
        (encode_sync_step1(&sv), ClientMessage::SyncStep1(sv)),
        (
            encode_sync_step2(&update),
            ClientMessage::SyncStep2(update.clone()),
        ),
        (encode_update(&update), ClientMessage::Update(update)),
        (
            encode_awareness(&awareness),
            ClientMessage::Awareness(awareness),
        ),
        (encode_query_awareness(), ClientMessage::AwarenessQuery),
        (
            encode_permission_denied("nope"),
            ClientMessage::Auth(Some("nope".into())),
        ),
        (
            encode_stateless(r#"{"type":"lock"}"#),
            ClientMessage::Stateless(r#"{"type":"lock"}"#.into()),
        ),
    ]
}

#[test]
fn every_message_type_round_trips() {
    for (frame, message) in sample_frames() {
        assert_eq!(decoded(&frame), [message]);
    }
}

#[test]
fn relayed_messages_encode_back_to_the_same_frame() {
    for (frame, message) in sample_frames() {
        match encode_client_message(&message) {
            Some(again) => {
                assert_eq!(again, frame, "{message:?}");
                assert_eq!(decoded(&again), [message]);
            }
            None => assert!(matches!(message, ClientMessage::Auth(_)), "{message:?}"),
        }
    }
    assert_eq!(encode_client_message(&ClientMessage::Unknown(9)), None);
}

#[test]
fn frames_from_yrs_encoders_decode() {
    let (sv, update) = sample_update();
    let awareness = sample_awareness();
    let cases = [
        (
            Message::Sync(SyncMessage::SyncStep1(sv.clone())),
            ClientMessage::SyncStep1(sv),
        ),
        (
            Message::Sync(SyncMessage::SyncStep2(update.clone())),
            ClientMessage::SyncStep2(update.clone()),
        ),
        (
            Message::Sync(SyncMessage::Update(update.clone())),
            ClientMessage::Update(update),
        ),
        (
            Message::Awareness(awareness.clone()),
            ClientMessage::Awareness(awareness),
        ),
        (Message::AwarenessQuery, ClientMessage::AwarenessQuery),
        (
            Message::Auth(Some("why".into())),
            ClientMessage::Auth(Some("why".into())),
        ),
        (Message::Auth(None), ClientMessage::Auth(None)),
    ];
    for (yrs_message, expected) in cases {
        assert_eq!(decoded(&yrs_message.encode_v1()), [expected]);
    }
}

#[test]
fn our_frames_decode_with_yrs() {
    let (sv, update) = sample_update();
    let awareness = sample_awareness();
    let cases = [
        (
            encode_sync_step1(&sv),
            Message::Sync(SyncMessage::SyncStep1(sv)),
        ),
        (
            encode_sync_step2(&update),
            Message::Sync(SyncMessage::SyncStep2(update.clone())),
        ),
        (
            encode_update(&update),
            Message::Sync(SyncMessage::Update(update)),
        ),
        (encode_awareness(&awareness), Message::Awareness(awareness)),
        (encode_query_awareness(), Message::AwarenessQuery),
        (
            encode_permission_denied("no"),
            Message::Auth(Some("no".into())),
        ),
    ];
    for (frame, expected) in cases {
        assert_eq!(Message::decode_v1(&frame).expect("yrs decodes"), expected);
    }
}

#[test]
fn encoders_write_the_documented_bytes() {
    assert_eq!(encode_query_awareness(), [3]);
    assert_eq!(encode_permission_denied("no"), [2, 0, 2, b'n', b'o']);
    assert_eq!(encode_stateless("hi"), [5, 2, b'h', b'i']);
    assert_eq!(encode_ack(1), [6, 1]);
    assert_eq!(encode_ack(300), [6, 0xac, 0x02]);
    assert_eq!(encode_sync_step1(&StateVector::default()), [0, 0, 1, 0]);
    assert_eq!(encode_update(&[0, 0]), [0, 2, 2, 0, 0]);
    let awareness = sample_awareness();
    assert_eq!(
        encode_awareness(&awareness),
        encode_awareness_bytes(&awareness.encode_v1())
    );
}

#[test]
fn several_messages_in_one_frame_all_decode() {
    let (frames, messages): (Vec<_>, Vec<_>) = sample_frames().into_iter().unzip();
    assert_eq!(decoded(&frames.concat()), messages);
}

#[test]
fn unknown_types_are_ignored_and_end_the_frame() {
    assert_eq!(decoded(&[42, 1, 2, 3]), [ClientMessage::Unknown(42)]);
    assert_eq!(
        decoded(&[3, 42, 0xff]),
        [ClientMessage::AwarenessQuery, ClientMessage::Unknown(42)]
    );
    // Our own ack is not a client message.
    assert_eq!(decoded(&encode_ack(5)), [ClientMessage::Unknown(MSG_ACK)]);
    // A varUint type no dialect defines is refused.
    assert!(matches!(
        decode_frame(&[0xac, 0x02]),
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn empty_frame_is_an_error() {
    assert_eq!(decode_frame(&[]), Err(ProtocolError::Empty));
}

#[test]
fn every_truncation_is_an_error() {
    for (frame, _) in sample_frames() {
        for len in 0..frame.len() {
            let result = decode_frame(&frame[..len]);
            assert!(result.is_err(), "prefix {len} of {frame:?} gave {result:?}");
            assert_ne!(result, Err(ProtocolError::Panicked));
        }
    }
}

#[test]
fn trailing_garbage_is_an_error() {
    // yrs' MessageReader stops silently on an incomplete trailing message; we refuse the frame.
    let mut frame = encode_query_awareness();
    frame.extend_from_slice(&[0, 2]);
    assert!(matches!(
        decode_frame(&frame),
        Err(ProtocolError::Truncated { .. })
    ));
    let mut frame = encode_stateless("x");
    frame.push(0xff);
    assert!(decode_frame(&frame).is_err());
}

#[test]
fn bogus_lengths_are_refused_without_allocating() {
    // Awareness payload of 2^32 - 1 bytes announced in a 6-byte frame.
    assert!(matches!(
        decode_frame(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(ProtocolError::Truncated { .. })
    ));
    // An update of u64::MAX bytes.
    let mut frame = vec![0, 2];
    frame.extend_from_slice(&[0xff; 9]);
    frame.push(0x01);
    assert!(matches!(
        decode_frame(&frame),
        Err(ProtocolError::Truncated { .. })
    ));
    // A length with more than 64 bits.
    let mut frame = vec![5];
    frame.extend_from_slice(&[0xff; 10]);
    frame.push(0x01);
    assert!(matches!(
        decode_frame(&frame),
        Err(ProtocolError::VarUintOverflow { .. })
    ));
}

#[test]
fn bogus_counts_are_refused_without_allocating() {
    let huge_count = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let cases = [
        (encode_sync_step1_bytes(&huge_count), "state vector"),
        (encode_awareness_bytes(&huge_count), "awareness"),
    ];
    for (frame, what) in cases {
        assert!(
            matches!(decode_frame(&frame), Err(ProtocolError::Malformed(_))),
            "{what}"
        );
    }
    assert!(matches!(
        decode_frame(&encode_update(&huge_count)),
        Err(ProtocolError::InvalidUpdate(_))
    ));
}

/// A SyncStep1 frame around arbitrary state-vector bytes.
fn encode_sync_step1_bytes(sv: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    write_sync(&mut buf, SYNC_STEP1, sv);
    buf
}

#[test]
fn garbage_updates_are_refused() {
    for garbage in [&[3, 0xff, 0xff, 0xff][..], &[1, 1, 5, 0, 0xff], &[], &[0]] {
        assert!(
            matches!(
                decode_frame(&encode_update(garbage)),
                Err(ProtocolError::InvalidUpdate(_))
            ),
            "{garbage:?}"
        );
        assert!(decode_frame(&encode_sync_step2(garbage)).is_err());
    }
    let (_, mut update) = sample_update();
    update.push(0);
    assert!(matches!(
        decode_frame(&encode_update(&update)),
        Err(ProtocolError::TrailingBytes { .. })
    ));
    // The smallest valid update (no structs, empty delete set) is accepted.
    assert_eq!(
        decoded(&encode_sync_step2(&[0, 0])),
        [ClientMessage::SyncStep2(vec![0, 0])]
    );
}

#[test]
fn awareness_content_is_validated() {
    let entry = |client: u64, json: &str| {
        let mut buf = vec![1];
        write_var_uint(&mut buf, client);
        write_var_uint(&mut buf, 3);
        write_var_string(&mut buf, json);
        buf
    };
    let removal = decoded(&encode_awareness_bytes(&entry(5, "null")));
    let ClientMessage::Awareness(update) = &removal[0] else {
        panic!("expected awareness, got {removal:?}");
    };
    assert_eq!(&*update.clients[&ClientID::new(5)].json, "null");
    assert!(matches!(
        decode_frame(&encode_awareness_bytes(&entry(5, "{not json"))),
        Err(ProtocolError::Malformed(_))
    ));
    assert!(matches!(
        decode_frame(&encode_awareness_bytes(&entry(1 << 53, "{}"))),
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn out_of_range_ids_and_bad_text_are_refused() {
    let mut sv = vec![1];
    write_var_uint(&mut sv, 1 << 60);
    write_var_uint(&mut sv, 1);
    assert!(matches!(
        decode_frame(&encode_sync_step1_bytes(&sv)),
        Err(ProtocolError::Malformed(_))
    ));
    assert!(matches!(
        decode_frame(&[5, 2, 0xff, 0xfe]),
        Err(ProtocolError::InvalidUtf8 { .. })
    ));
    assert!(matches!(
        decode_frame(&[0, 9, 0]),
        Err(ProtocolError::Malformed(_))
    ));
    assert!(matches!(
        decode_frame(&[2, 7]),
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn random_bytes_never_panic() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        // Bias the first byte towards real message types so payload decoders get exercised.
        let frame: Vec<u8> = (0..len)
            .map(|i| {
                if i == 0 {
                    (next() % 8) as u8
                } else {
                    next() as u8
                }
            })
            .collect();
        assert_ne!(
            decode_frame(&frame),
            Err(ProtocolError::Panicked),
            "{frame:?}"
        );
    }
}

#[test]
fn mutated_valid_frames_never_panic() {
    let frames: Vec<Vec<u8>> = sample_frames().into_iter().map(|(f, _)| f).collect();
    let mut next = xorshift(42);
    for round in 0..20_000 {
        let mut frame = frames[round % frames.len()].clone();
        for _ in 0..=(next() % 3) {
            let at = (next() as usize) % frame.len();
            frame[at] = next() as u8;
        }
        assert_ne!(
            decode_frame(&frame),
            Err(ProtocolError::Panicked),
            "{frame:?}"
        );
    }
}

#[test]
fn decoder_panics_are_caught() {
    assert_eq!(
        guarded::<()>(|| panic!("hostile input")),
        Err(ProtocolError::Panicked)
    );
    // A 60-bit client id inside an update trips a yrs debug assertion (release builds mask it).
    let mut update = vec![1, 1];
    write_var_uint(&mut update, 1 << 60);
    update.extend_from_slice(&[0, 0, 1, 0]); // clock 0, one GC block of length 1, empty delete set
    let result = decode_frame(&encode_update(&update));
    if cfg!(debug_assertions) {
        assert_eq!(result, Err(ProtocolError::Panicked));
    }
}
