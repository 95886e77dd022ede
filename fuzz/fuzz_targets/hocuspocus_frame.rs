//! `sync-protocol/src/wire/hocuspocus.rs` `decode_frame`: never panics; what decodes re-encodes
//! to the same message. The checks live in `nox_sync_protocol::wire::fuzz_checks`.
#![no_main]

libfuzzer_sys::fuzz_target!(|frame: &[u8]| {
    nox_sync_protocol::wire::fuzz_checks::check_hocuspocus_frame(frame);
});
