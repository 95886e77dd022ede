//! [`ClientInfo`]: where a request came from, for sessions and audit rows.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;

/// The caller's IP, user agent and a coarse device type.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
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
}
