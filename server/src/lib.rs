//! The Nox Sync server: HTTP API, WebSocket sessions, workspace rooms and auth.
//!
//! Start at [`startup::Application`]; `ARCHITECTURE.md` at the repository root has the map.

pub mod access;
pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod error;
pub mod extract;
pub mod file_store;
pub mod http_caller;
pub mod http_forward;
pub mod live;
pub mod mailer;
pub mod metrics;
pub mod node;
pub mod openapi;
pub mod pagination;
pub mod rate_limit;
pub mod recent_versions;
pub mod rooms;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod validate;
pub mod warehouse;
pub mod web;
