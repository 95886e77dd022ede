//! The warehouse as a feature (docs/design.md §17), the parts that are not HTTP plumbing:
//! - [`schema`]: invader `config_schema`s compiled and checked with the `jsonschema` crate, and
//!   the screening of projected invader usages against them;
//! - [`references`]: what a block may reference from the warehouse (tenancy + schemas);
//! - [`structure`]: a template's `structure_data`, made from a selection and turned into the
//!   blocks and relations of one insertion.
//!
//! The routes are `routes/warehouse*.rs`; the SQL is `nox_persistence::warehouse`; the room side
//! of an insertion is `rooms/room_insert.rs`.

pub mod references;
pub mod schema;
pub mod structure;
