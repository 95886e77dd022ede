//! The HTTP side of who is calling: the [`AuthUser`] extractor (the credential from
//! `Authorization: Bearer` or `X-Api-Key`, verified by [`access::authenticate`]) and
//! [`ClientInfo`], where a request came from, for sessions and audit rows.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use nox_persistence::iam::audit::Actor;

use crate::access::{self, AuthUser};
use crate::auth::api_key::is_api_key;
use crate::error::ApiError;
use crate::state::AppState;

/// The header an API key may also be sent in (instead of `Authorization: Bearer`).
pub const API_KEY_HEADER: &str = "x-api-key";

/// The credential of a request: `Authorization: Bearer <token or key>` or `X-Api-Key: <key>`.
fn credential(headers: &HeaderMap) -> Result<&str, ApiError> {
    if let Some(key) = headers.get(API_KEY_HEADER) {
        return key
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| is_api_key(k))
            .ok_or_else(|| ApiError::unauthorized("X-Api-Key must hold an API key (nox_…)"));
    }
    if !headers.contains_key(AUTHORIZATION) {
        return Err(ApiError::unauthorized(
            "missing Authorization: Bearer token",
        ));
    }
    bearer_token(headers)
        .ok_or_else(|| ApiError::unauthorized("Authorization header must be 'Bearer <token>'"))
}

/// The token (or API key) of `Authorization: Bearer <…>`, if the header holds one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = credential(&parts.headers)?;
        Ok(access::authenticate(&state.db, &state.tokens, token).await?)
    }
}

/// The caller's IP, user agent and a coarse device type.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The audit identity of a request made by `user` from here.
    pub fn actor(&self, user: &AuthUser) -> Actor<'_> {
        Actor {
            user_id: user.user_id,
            ip_address: self.ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
        }
    }

    /// `mobile`, `desktop` or `api`, from the user agent; good enough for a session list.
    pub fn device_type(&self) -> &'static str {
        match self.user_agent.as_deref() {
            Some(ua) if ua.contains("Mobile") || ua.contains("Android") => "mobile",
            Some(ua) if ua.starts_with("Mozilla/") => "desktop",
            _ => "api",
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        Ok(ClientInfo { ip, user_agent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_types() {
        let with = |ua: &str| ClientInfo {
            ip: None,
            user_agent: Some(ua.into()),
        };
        assert_eq!(with("Mozilla/5.0 (iPhone) Mobile").device_type(), "mobile");
        assert_eq!(with("Mozilla/5.0 (X11; Linux)").device_type(), "desktop");
        assert_eq!(with("curl/8.0").device_type(), "api");
        assert_eq!(ClientInfo::default().device_type(), "api");
    }

    #[test]
    fn credentials_come_from_either_header() {
        let mut headers = HeaderMap::new();
        assert!(credential(&headers).is_err());
        headers.insert(AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(credential(&headers).expect("bearer"), "abc");
        headers.insert(
            API_KEY_HEADER,
            "nox_1234abcd_secret".parse().expect("header"),
        );
        assert_eq!(credential(&headers).expect("key"), "nox_1234abcd_secret");
        headers.insert(API_KEY_HEADER, "not-a-key".parse().expect("header"));
        assert!(credential(&headers).is_err());
    }
}
