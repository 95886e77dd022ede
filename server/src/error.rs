//! [`ApiError`]: the one error type of the HTTP layer.
//!
//! Every failure a client can see becomes `{"error": {"code": "...", "message": "...", "details": ...}}`
//! with a stable, machine-readable `code`. Internal failures are logged with their cause and shown to
//! the client only as `internal_error`, so no SQL or stack detail leaks out.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nox_persistence::error::PersistenceError;
use nox_persistence::iam::orgs::IamError;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::access::AccessError;
use crate::auth::password::PasswordError;

/// One field that failed validation.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable identifier clients can branch on (`not_found`, `validation_failed`, ...).
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
    /// Seconds, for 429 responses.
    pub retry_after: Option<u64>,
    /// Structured context some errors carry (e.g. `last_owner` lists the organizations).
    pub details: Option<serde_json::Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The shape of every error response, for the OpenAPI document (the body [`ApiError`] renders).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `not_found`, `forbidden`, `validation_failed`,
    /// `quota_exceeded`, `last_owner`, `rate_limited`, `invalid_text`, `invalid_id`,
    /// `body_too_large`, `method_not_allowed`, `project_archived`, `feature_disabled`, ...
    pub code: String,
    pub message: String,
    /// For `validation_failed` (and `invalid_text`, `invalid_id`): one entry per invalid field.
    pub fields: Option<Vec<FieldErrorDoc>>,
    /// Structured context of some errors, e.g. `last_owner` from `DELETE /me` lists
    /// `{"organizations": [{"id", "name", "slug"}]}`.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldErrorDoc {
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
            details: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422 with one entry per invalid field.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the request has invalid fields",
        );
        err.fields = fields;
        err
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 for a missing resource *and* for one the caller may not know exists
    /// (other organizations' data), so the two cannot be told apart.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// The same error with structured `details`.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        );
        err.retry_after = Some(retry_after_secs.max(1));
        err
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    /// 400 for text PostgreSQL cannot store (a U+0000), naming where it was.
    pub fn invalid_text(field: &str) -> Self {
        let mut err = Self::bad_request(
            "invalid_text",
            format!("`{field}` contains a NUL (U+0000) character, which text cannot hold"),
        );
        err.fields = vec![FieldError::new(field, "must not contain U+0000")];
        err
    }

    /// 400 `invalid_id`: the path parameter `key` is not a UUID, so it cannot name anything.
    pub fn invalid_id(key: &str) -> Self {
        let mut err = Self::bad_request(
            "invalid_id",
            format!("`{key}` in the path is not a valid id"),
        );
        err.fields = vec![FieldError::new(key, "must be a UUID")];
        err
    }

    /// Logs `cause` and hides it from the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal server error",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if !self.fields.is_empty() {
            body["fields"] = json!(self.fields);
        }
        if let Some(details) = self.details {
            body["details"] = details;
        }
        let mut response = (self.status, axum::Json(json!({ "error": body }))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<PersistenceError> for ApiError {
    fn from(err: PersistenceError) -> Self {
        if err.is_unavailable() {
            // The database is down or restarting: say so (503, retryable), not "internal error".
            tracing::warn!(error = %err, "database unavailable");
            return ApiError::service_unavailable("the database is unavailable; retry");
        }
        ApiError::internal(err)
    }
}

/// 402 `quota_exceeded`: the plan, not the request, is the problem; upgrading fixes it.
pub fn quota_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, "quota_exceeded", message)
}

impl From<IamError> for ApiError {
    fn from(err: IamError) -> Self {
        match err {
            IamError::Db(e) => e.into(),
            IamError::NotFound(what) => ApiError::not_found(what),
            IamError::Quota(q) => quota_exceeded(q.to_string()),
            IamError::LastAdmin => ApiError::conflict(
                "last_owner",
                "the organization must keep at least one member holding org:admin",
            ),
            IamError::RoleInUse(n) => ApiError::conflict(
                "role_in_use",
                format!("the role is assigned to {n} member(s) or pending invitation(s)"),
            ),
            IamError::InvitationClosed(status) => match status.as_str() {
                "ACCEPTED" => {
                    ApiError::conflict("invitation_accepted", "the invitation was already accepted")
                }
                "REVOKED" => ApiError::new(
                    StatusCode::GONE,
                    "invitation_revoked",
                    "the invitation was revoked",
                ),
                _ => ApiError::new(
                    StatusCode::GONE,
                    "invitation_expired",
                    "the invitation has expired",
                ),
            },
            IamError::EmailMismatch => ApiError::new(
                StatusCode::FORBIDDEN,
                "email_mismatch",
                "the invitation was sent to a different email address",
            ),
            IamError::AlreadyMember => ApiError::conflict(
                "already_member",
                "the user is already a member of this organization",
            ),
            IamError::UsageExceedsPlan(detail) => ApiError::conflict(
                "usage_exceeds_plan",
                format!("current usage exceeds the plan's quotas: {detail}"),
            ),
        }
    }
}

/// Maps a unique violation to 409 `code`, anything else through the usual conversion.
pub fn conflict_on_unique(err: IamError, code: &'static str, message: &str) -> ApiError {
    match err.unique_violation() {
        Some(_) => ApiError::conflict(code, message),
        None => err.into(),
    }
}

impl From<AccessError> for ApiError {
    fn from(err: AccessError) -> Self {
        let message = err.to_string();
        match err {
            AccessError::Unauthenticated(_) => ApiError::unauthorized(message),
            AccessError::NotFound(what) => ApiError::not_found(what),
            AccessError::MissingPermission(_) | AccessError::NotGrantable(_) => {
                ApiError::forbidden(message)
            }
            AccessError::SessionRequired => {
                ApiError::new(StatusCode::FORBIDDEN, "session_required", message)
            }
            AccessError::ProjectArchived => ApiError::conflict("project_archived", message),
            AccessError::FeatureDisabled(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "feature_disabled", message)
            }
            AccessError::QuotaExceeded(_) => quota_exceeded(message),
            AccessError::Storage(cause) => cause.into(),
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(err: PasswordError) -> Self {
        ApiError::internal(err)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a request body with Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::bad_request("invalid_json", format!("malformed JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.body_text(),
            ),
            JsonRejection::BytesRejection(e) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                e.body_text(),
            ),
            other => ApiError::bad_request("invalid_body", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        match rejection {
            // A malformed id is the client's mistake, told apart from a missing resource (404).
            PathRejection::FailedToDeserializePathParams(e) => match e.into_kind() {
                ErrorKind::ParseErrorAtKey { key, .. }
                | ErrorKind::DeserializeError { key, .. }
                | ErrorKind::InvalidUtf8InPathParam { key } => ApiError::invalid_id(&key),
                // The route and the handler disagree on the parameters: a bug of ours.
                kind @ (ErrorKind::WrongNumberOfParameters { .. }
                | ErrorKind::UnsupportedType { .. }) => ApiError::internal(kind),
                kind => ApiError::bad_request("invalid_id", format!("invalid path: {kind}")),
            },
            // The route and the handler disagree on the parameters: a bug of ours.
            other => ApiError::internal(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body_of(err: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let response = err.into_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"), retry)
    }

    #[tokio::test]
    async fn validation_errors_list_fields() {
        let (status, body, _) = body_of(ApiError::validation(vec![FieldError::new(
            "email",
            "must be an email address",
        )]))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(body["error"]["fields"][0]["field"], "email");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let (status, body, _) = body_of(ApiError::internal("password=hunter2 in SQL")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn rate_limit_sets_retry_after() {
        let (status, _, retry) = body_of(ApiError::too_many_requests(7)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.as_deref(), Some("7"));
    }
}
