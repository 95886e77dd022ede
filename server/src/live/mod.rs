//! Live connections: editors on WebSockets, in either wire dialect.
//!
//! - [`admission`]: the one order in which a connection is admitted to a workspace (credential,
//!   workspace, read permission, connection quota), whatever the dialect.
//! - [`session`]: the session core both dialects run on — joining a room as a [`session::LivePeer`],
//!   re-authorization while open, pings, backpressure, close reasons, and the socket loop
//!   ([`session::run`]) that drives a [`session::Dialect`].
//! - [`ws`] (`/ws/workspaces/{id}`, y-websocket) and [`hocuspocus`] (`/hocuspocus`): the dialects.
//!   They only translate frames between the socket and the room.
//! - [`socket_io`]: buffer sizes and batched writes.

pub mod admission;
pub mod hocuspocus;
pub mod relay;
pub mod session;
pub mod socket_io;
pub mod ws;
