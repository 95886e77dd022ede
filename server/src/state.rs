//! [`AppState`]: what every handler can reach.

use std::sync::Arc;

use nox_persistence::db::Database;

use crate::auth::tokens::TokenKeys;
use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub config: Arc<Config>,
    pub tokens: TokenKeys,
}
