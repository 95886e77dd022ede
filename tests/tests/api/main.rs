//! Black-box tests of the HTTP API against a real server and a real PostgreSQL.
//! One test binary, so the test cluster starts once for all of them.

#![allow(clippy::unwrap_used)]

mod health;
mod identity;
mod tenancy;
