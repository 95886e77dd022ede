//! The warehouse (docs/design.md §17): its building blocks, no HTTP and no SQL:
//! - [`schema`]: invader `config_schema`s compiled and checked with the `jsonschema` crate, and
//!   the screening of projected invader usages against them;
//! - [`structure`]: a template's `structure_data`, made from a selection and turned into the
//!   blocks and relations of one insertion.
//!
//! The room's compactor uses [`schema`]. The routes are `routes/warehouse*.rs` (what a block may reference is
//! `routes/warehouse_references.rs`); the SQL is `nox_persistence::warehouse`; the room side of an
//! insertion is `rooms/room_insert.rs`.

pub mod schema;
pub mod structure;
