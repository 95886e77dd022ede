//! Everything Nox Sync keeps in PostgreSQL. The only crate that speaks SQL.
//!
//! - [`db`]: the pool handle; [`migrate`]: schema migrations (from `migrations/`).
//! - [`embedded`]: the private PostgreSQL cluster used when `DATABASE_URL` is unset.
//! - [`update_log`] and [`compaction`]: the durability contract of DESIGN §3.
//! - [`cluster`]: node heartbeats, workspace leases and the fencing of a room's writes.
//! - [`iam`]: identity and tenancy rows.
//! - [`warehouse`]: an organization's reusable assets (templates, invader definitions, folders).
//! - [`versions`]: the version history of workspaces (`core_snapshots`).
//! - [`testing`]: one fresh database per test, cloned from a migrated template.

pub mod cluster;
pub mod collab;
pub mod compaction;
pub mod db;
pub mod embedded;
pub mod error;
pub mod iam;
pub mod locks;
pub mod migrate;
pub mod projection_store;
pub mod testing;
pub mod update_log;
pub mod versions;
pub mod warehouse;
