//! Pure Nox Sync logic: no I/O, no async, no clocks.
//!
//! - [`wire`]: the y-protocols (y-websocket) and Hocuspocus framings, decoded defensively.
//! - [`canvas`]: the canvas document model (`blocks` / `relations` root maps) read from and written
//!   into a `yrs::Doc`.
//! - [`diff`]: what changed between two canvas states, field by field (version diffs).
//! - [`restore`]: the writes that bring a document back to a canvas state (version restore).
//! - [`locks`]: the JSON edit-lock messages carried in stateless frames.
//! - [`rules`]: the canvas rules, defined once: fields, column limits, ids, request bodies, and the
//!   checks over the live canvas (references, duplicates, cycles, the cascade of a delete).
//! - [`version_delta`]: versions stored as the changes since a full version.
//! - [`projection`]: how a canvas state becomes `core_blocks` / `core_relations` /
//!   `block_invader_usages` rows, with every conflict rule of the design resolved deterministically.

pub mod canvas;
pub mod diff;
pub mod locks;
pub mod projection;
pub mod restore;
pub mod rules;
pub mod snapshot;
pub mod version_delta;
pub mod wire;
