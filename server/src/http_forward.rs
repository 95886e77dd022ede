//! HTTP requests of a workspace served by the node that owns it (DESIGN §7).
//!
//! Everything under `/api/v1/workspaces/{id}` may need the workspace's room (canvas reads and
//! edits, presence, locks, versions, comments pushed live), and the room lives on one node. A
//! node that receives such a request while another live node owns the workspace forwards it
//! there whole (method, path, headers, streamed body) and streams the answer back. A node that
//! owns it, or when nobody does, serves it itself (loading the room takes the lease).
//!
//! Forwarded requests carry the cluster's relay key ([`RELAYED_HEADER`]) and the caller's IP;
//! [`accept_relayed`] believes both only with the right key, so an outside client can neither
//! pose as a node nor pick the IP its audit rows show.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use nox_sync_protocol::canvas::CanvasState;
use uuid::Uuid;

use crate::cluster::RELAYED_HEADER;
use crate::error::ApiError;
use crate::extract::Path;
use crate::rooms::{HttpRequest, JoinError};
use crate::state::AppState;

/// The caller's IP on a forwarded request (trusted only with the relay key).
const CLIENT_IP_HEADER: &str = "x-nox-client-ip";
/// Forwarded requests that take longer fail (the caller may retry).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers of one hop only (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Keeps the relay headers only when they carry this cluster's key; a trusted forwarded request
/// gets its caller's IP back as its connection address.
pub async fn accept_relayed(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.headers().contains_key(RELAYED_HEADER) {
        if state.cluster.is_relayed(request.headers()) {
            if let Some(ip) = header_ip(request.headers()) {
                request
                    .extensions_mut()
                    .insert(ConnectInfo(SocketAddr::new(ip, 0)));
            }
        } else {
            request.headers_mut().remove(RELAYED_HEADER);
        }
    }
    request.headers_mut().remove(CLIENT_IP_HEADER);
    next.run(request).await
}

fn header_ip(headers: &HeaderMap) -> Option<IpAddr> {
    headers.get(CLIENT_IP_HEADER)?.to_str().ok()?.parse().ok()
}

/// Forwards a workspace's request to the other node that owns the workspace, if one does.
pub async fn forward_to_owner(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(workspace_id) = workspace_of(request.uri().path()) else {
        return next.run(request).await;
    };
    if request.headers().contains_key(RELAYED_HEADER) || state.rooms.is_loaded(workspace_id) {
        return next.run(request).await;
    }
    let owner = match state.cluster.remote_owner(workspace_id).await {
        Ok(Some(owner)) => owner,
        Ok(None) => return next.run(request).await,
        Err(err) => {
            // Serving here is safe: loading the room asks for the lease again.
            tracing::warn!(%workspace_id, error = %err, "could not look up the workspace's owner");
            return next.run(request).await;
        }
    };
    state.metrics.forwarded_requests.inc();
    match forward(&state, &owner.addr, request).await {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(%workspace_id, owner = %owner.addr, error = %err,
                "could not forward a request to the workspace's owner");
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "workspace_unavailable",
                "the node serving this workspace did not answer; retry shortly",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// The live canvas of a workspace, for routes that are not under `/api/v1/workspaces/{id}` (so
/// were not forwarded) but read it: from this node's room, or from the owner's
/// ([`internal_canvas`]) when another node owns the workspace.
pub async fn read_canvas(state: &AppState, workspace_id: Uuid) -> Result<CanvasState, ApiError> {
    let owner = match local_canvas(state, workspace_id).await {
        Ok(canvas) => return Ok(canvas),
        Err(JoinError::OwnedElsewhere(owner)) => owner,
        Err(err) => return Err(room_unavailable(err)),
    };
    let url = format!(
        "http://{}/internal/v1/workspaces/{workspace_id}/canvas",
        owner.addr
    );
    let answer = client()
        .get(url)
        .header(RELAYED_HEADER, state.cluster.relay_key())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    match answer {
        Ok(answer) => answer.json::<CanvasState>().await.map_err(|err| {
            tracing::warn!(%workspace_id, error = %err, "the owner's canvas did not decode");
            ApiError::service_unavailable("the workspace is not available right now; retry")
        }),
        Err(err) => {
            tracing::warn!(%workspace_id, owner = %owner.addr, error = %err,
                "could not read the canvas from the workspace's owner");
            Err(ApiError::service_unavailable(
                "the workspace is not available right now; retry",
            ))
        }
    }
}

/// A room that cannot be reached answers 503 (the caller may retry).
pub fn room_unavailable(err: JoinError) -> ApiError {
    tracing::warn!(error = %err, "workspace room unavailable");
    ApiError::service_unavailable("the workspace is not available right now; retry")
}

/// `GET /internal/v1/workspaces/{id}/canvas`: this node's room's canvas, for another node of the
/// cluster (relay key required; anyone else gets the JSON 404 of an unknown route).
pub async fn internal_canvas(
    State(state): State<AppState>,
    Path(workspace_id): Path<Uuid>,
    headers: HeaderMap,
) -> Result<Json<CanvasState>, ApiError> {
    if !headers.contains_key(RELAYED_HEADER) {
        return Err(ApiError::not_found("route"));
    }
    local_canvas(&state, workspace_id)
        .await
        .map(Json)
        .map_err(room_unavailable)
}

/// The canvas of this node's room of the workspace (loading it here when nobody owns it).
async fn local_canvas(state: &AppState, workspace_id: Uuid) -> Result<CanvasState, JoinError> {
    state
        .rooms
        .request(workspace_id, |reply| HttpRequest::Canvas { reply })
        .await
}

/// `/api/v1/workspaces/{id}` and everything below it.
fn workspace_of(path: &str) -> Option<Uuid> {
    let rest = path.strip_prefix("/api/v1/workspaces/")?;
    let id = rest.split('/').next()?;
    Uuid::parse_str(id).ok()
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

async fn forward(
    state: &AppState,
    addr: &str,
    request: Request,
) -> Result<Response, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut headers = end_to_end(&parts.headers);
    if let Ok(key) = HeaderValue::from_str(state.cluster.relay_key()) {
        headers.insert(HeaderName::from_static(RELAYED_HEADER), key);
    }
    let caller_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    if let Some(ip) = caller_ip.and_then(|ip| HeaderValue::from_str(&ip).ok()) {
        headers.insert(HeaderName::from_static(CLIENT_IP_HEADER), ip);
    }
    let answer = client()
        .request(parts.method, format!("http://{addr}{path}"))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await?;
    let mut response = Response::builder().status(answer.status());
    if let Some(out) = response.headers_mut() {
        *out = end_to_end(answer.headers());
    }
    Ok(response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response()))
}

fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_workspace_paths_are_forwarded() {
        let id = Uuid::new_v4();
        assert_eq!(
            workspace_of(&format!("/api/v1/workspaces/{id}/blocks")),
            Some(id)
        );
        assert_eq!(workspace_of(&format!("/api/v1/workspaces/{id}")), Some(id));
        assert_eq!(workspace_of("/api/v1/workspaces/not-an-id/blocks"), None);
        assert_eq!(workspace_of(&format!("/api/v1/projects/{id}")), None);
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("keep-alive"));
        headers.insert("authorization", HeaderValue::from_static("Bearer x"));
        headers.insert("host", HeaderValue::from_static("a:1"));
        let kept = end_to_end(&headers);
        assert_eq!(kept.len(), 1);
        assert!(kept.contains_key("authorization"));
    }
}
