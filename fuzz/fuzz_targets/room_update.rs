//! The pure part of what a `WorkspaceRoom` does with client updates (the room itself needs
//! PostgreSQL): wire decode, `Update::decode_v1` + `apply_update` on a canvas doc, the canvas read
//! and `projection::project`, then full-state convergence. The input is a sequence of
//! length-prefixed v1 updates (`fuzz_checks::split_updates`).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    nox_sync_protocol::wire::fuzz_checks::check_room_updates(input);
});
