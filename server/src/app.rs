//! The axum [`Router`] with its middleware: request ids, tracing, body limits, JSON errors.

use axum::body::to_bytes;
use axum::http::{header, HeaderName, Request, StatusCode};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How much of a non-JSON error body is kept as the JSON error's message.
const MAX_PLAIN_MESSAGE: usize = 1024;

pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    crate::routes::router()
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(max_body))
        // Outside the body limit, so its 413 is rewritten too.
        .layer(map_response(json_errors))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let request_id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Gives every error the `{"error":{"code","message"}}` shape, also those that axum and tower
/// answer themselves before a handler runs (405 with an empty body, the body limit's plain-text
/// 413, a WebSocket upgrade's plain-text 400, ...). Headers such as `Allow` are kept.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let plain = to_bytes(body, MAX_PLAIN_MESSAGE)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|text| !text.is_empty());
    let mut replaced = error_for_status(status, plain).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// The stable code and a message for an error status answered without an [`ApiError`].
fn error_for_status(status: StatusCode, plain: Option<String>) -> ApiError {
    let (code, default_message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "the request body is larger than the server accepts",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed on this path; see the Allow header",
        ),
        StatusCode::NOT_FOUND => ("not_found", "route not found"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type")
        }
        StatusCode::UNAUTHORIZED => ("unauthorized", "authentication required"),
        StatusCode::FORBIDDEN => ("forbidden", "forbidden"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::UPGRADE_REQUIRED => ("upgrade_required", "a protocol upgrade is required"),
        StatusCode::SERVICE_UNAVAILABLE => ("service_unavailable", "service unavailable"),
        s if s.is_server_error() => ("internal_error", "internal server error"),
        _ => ("bad_request", "the request is invalid"),
    };
    // Server errors never show their cause; client errors keep the framework's explanation.
    let message = match plain {
        Some(text) if status.is_client_error() => text,
        _ => default_message.to_string(),
    };
    ApiError::new(status, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    async fn json_of(response: Response) -> serde_json::Value {
        let bytes = to_bytes(response.into_body(), 1 << 16).await.expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn an_empty_405_becomes_json_and_keeps_allow() {
        let mut plain = Response::new(Body::empty());
        *plain.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        plain
            .headers_mut()
            .insert(header::ALLOW, "GET,HEAD".parse().expect("header"));
        let response = json_errors(plain).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers().get(header::ALLOW).map(|v| v.as_bytes()),
            Some(&b"GET,HEAD"[..])
        );
        assert!(is_json(&response));
        assert_eq!(
            json_of(response).await["error"]["code"],
            "method_not_allowed"
        );
    }

    #[tokio::test]
    async fn a_plain_500_hides_its_text() {
        let plain = (StatusCode::INTERNAL_SERVER_ERROR, "secret detail").into_response();
        let body = json_of(json_errors(plain).await).await;
        assert_eq!(body["error"]["code"], "internal_error");
        assert!(!body.to_string().contains("secret"));
    }

    #[tokio::test]
    async fn successes_and_json_errors_pass_untouched() {
        let ok = (StatusCode::OK, "hello").into_response();
        assert!(!is_json(&json_errors(ok).await));
        let api = ApiError::not_found("workspace").into_response();
        let body = json_of(json_errors(api).await).await;
        assert_eq!(body["error"]["message"], "workspace not found");
    }
}
