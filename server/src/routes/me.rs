//! `GET /me`: the caller's own profile.

use axum::extract::State;
use nox_persistence::iam::users::{self, User};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;

pub async fn get_me(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<User>> {
    users::find_live(state.db.pool(), user.user_id)
        .await?
        .map(Json)
        // The account was deleted after the token was issued.
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))
}
