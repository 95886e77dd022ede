//! `sync-protocol/src/wire.rs` `decode_frame` (y-websocket dialect): never panics; what decodes
//! re-encodes to the same messages. The checks live in `nox_sync_protocol::wire::fuzz_checks`,
//! where the corpus replay tests run them too.
#![no_main]

libfuzzer_sys::fuzz_target!(|frame: &[u8]| {
    nox_sync_protocol::wire::fuzz_checks::check_ws_frame(frame);
});
