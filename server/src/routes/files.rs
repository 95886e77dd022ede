//! Files of a project: upload (`multipart/form-data`, streamed to the [`FileStore`] while it is
//! hashed), list, metadata, download, delete, and attachments to blocks, comments and chat
//! messages.
//!
//! `POST/GET /projects/{project_id}/files`, `GET/DELETE /projects/{project_id}/files/{file_id}`,
//! `GET /projects/{project_id}/files/{file_id}/content`,
//! `POST/GET /projects/{project_id}/files/{file_id}/attachments`,
//! `DELETE /projects/{project_id}/files/{file_id}/attachments/{attachment_id}`.
//!
//! Reading needs `workspace:read` in the project's organization, uploading and attaching
//! `workspace:write` (refused in an archived project), deleting a file its uploader or
//! `project:manage`. The content type is sniffed from the bytes, the client's is ignored; the
//! client's file name is kept only as a display name (last path component, no control
//! characters). Sizes are limited by the plan (`max_file_bytes`, `max_storage_bytes`) and by
//! `NOX_MAX_UPLOAD_BYTES`.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use nox_persistence::collab::files::{
    self, AttachedFile, Attachment, NewAttachment, NewFile, StoredFile,
};
use nox_persistence::iam::billing;
use nox_persistence::iam::projects::Project;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::access::{self, AccessError, AuthUser};
use crate::auth::Permission;
use crate::error::{conflict_on_unique, ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{Json, Path, Query};
use crate::file_store::{clean_file_name, sniff_content_type};
use crate::http_caller::ClientInfo;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

/// Bytes kept from the start of an upload to sniff its content type.
const SNIFF_BYTES: usize = 512;
pub const ATTACHMENT_TARGETS: [&str; 3] = ["BLOCK", "COMMENT", "CHAT_MESSAGE"];

#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub uploader_id: Uuid,
    /// The client's file name, cleaned (display only).
    pub file_name: String,
    /// Sniffed from the content.
    pub mime_type: String,
    pub file_size: i64,
    /// Hex SHA-256 of the content (also the download's `ETag`).
    pub checksum_sha256: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<StoredFile> for FileView {
    fn from(f: StoredFile) -> Self {
        FileView {
            id: f.id,
            project_id: f.project_id,
            uploader_id: f.uploader_id,
            file_name: f.file_name,
            mime_type: f.mime_type,
            file_size: f.file_size,
            checksum_sha256: f.checksum_sha256,
            created_at: f.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: Uuid,
    pub file_id: Uuid,
    /// `BLOCK`, `COMMENT` or `CHAT_MESSAGE`.
    pub target_type: String,
    pub target_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub created_by_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<Attachment> for AttachmentView {
    fn from(a: Attachment) -> Self {
        AttachmentView {
            id: a.id,
            file_id: a.file_id,
            target_type: a.target_type,
            target_id: a.target_id,
            workspace_id: a.workspace_id,
            created_by_id: a.created_by_id,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    /// `BLOCK`, `COMMENT` or `CHAT_MESSAGE`.
    pub target_type: String,
    pub target_id: Uuid,
    /// The block's workspace (required for `BLOCK`; a workspace of this project).
    pub workspace_id: Option<Uuid>,
}

/// A file attached to a target.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachedFileView {
    pub attachment_id: Uuid,
    pub attached_at: DateTime<Utc>,
    pub file_id: Uuid,
    pub file_name: String,
    pub mime_type: String,
    pub file_size: i64,
    pub checksum_sha256: Option<String>,
}

impl From<AttachedFile> for AttachedFileView {
    fn from(a: AttachedFile) -> Self {
        AttachedFileView {
            attachment_id: a.attachment_id,
            attached_at: a.attached_at,
            file_id: a.file_id,
            file_name: a.file_name,
            mime_type: a.mime_type,
            file_size: a.file_size,
            checksum_sha256: a.checksum_sha256,
        }
    }
}

/// `?target_type=&target_id=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttachedToParams {
    /// `BLOCK`, `COMMENT` or `CHAT_MESSAGE`.
    pub target_type: String,
    pub target_id: Uuid,
}

/// `multipart/form-data` with one part named `file` (documentation only).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}

/// The project and the caller's permissions there, when they include `needed`.
async fn project_with(
    state: &AppState,
    user: AuthUser,
    project_id: Uuid,
    needed: Permission,
) -> ApiResult<(Project, Vec<String>)> {
    let (project, permissions) = access::project(&state.db, user, project_id).await?;
    access::require(&permissions, needed)?;
    if needed == Permission::WorkspaceWrite && project.status == "ARCHIVED" {
        return Err(AccessError::ProjectArchived.into());
    }
    Ok((project, permissions))
}

/// An upload being written to the staging directory; removed on drop unless taken by the store.
struct StagedUpload {
    path: PathBuf,
    size: u64,
    sha256_hex: String,
    head: Vec<u8>,
    file_name: String,
}

impl Drop for StagedUpload {
    fn drop(&mut self) {
        // The store renames the file away on success; then there is nothing left to remove.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn file_too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        format!("the file is larger than the {limit} bytes allowed"),
    )
}

fn bad_multipart(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_multipart", message)
}

/// Streams one field to a staging file, hashing it and stopping at `limit` bytes.
async fn stage(state: &AppState, mut field: Field<'_>, limit: u64) -> ApiResult<StagedUpload> {
    let path = state
        .files
        .staging_dir()
        .join(format!("{}.part", Uuid::new_v4()));
    let mut staged = StagedUpload {
        path,
        size: 0,
        sha256_hex: String::new(),
        head: Vec::new(),
        file_name: clean_file_name(field.file_name().unwrap_or_default()),
    };
    let mut out = tokio::fs::File::create(&staged.path)
        .await
        .map_err(ApiError::internal)?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| bad_multipart(e.body_text()))?
    {
        staged.size += chunk.len() as u64;
        if staged.size > limit {
            return Err(file_too_large(limit));
        }
        if staged.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - staged.head.len()).min(chunk.len());
            staged.head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    out.flush().await.map_err(ApiError::internal)?;
    out.sync_all().await.map_err(ApiError::internal)?;
    staged.sha256_hex = hex::encode(hasher.finalize());
    Ok(staged)
}

/// The upload limit: the plan's `max_file_bytes`, never above `NOX_MAX_UPLOAD_BYTES`.
async fn upload_limit(state: &AppState, org_id: Uuid) -> ApiResult<u64> {
    let server = state.config.max_upload_bytes as u64;
    let plan = billing::max_file_bytes(state.db.pool(), org_id).await?;
    Ok(plan.map_or(server, |p| server.min(p.max(0) as u64)))
}

/// Uploads a file (`workspace:write`): one `multipart/form-data` part named `file`.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/files", tag = "files",
    params(("project_id" = Uuid, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = FileView),
        (status = 400, description = "`invalid_multipart`", body = ErrorBody),
        (status = 402, description = "`quota_exceeded`: the plan's storage is full",
            body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, description = "`file_too_large`", body = ErrorBody),
        (status = 422, description = "no part named `file`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(project_id): Path<Uuid>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<FileView>)> {
    let (project, _) = project_with(&state, user, project_id, Permission::WorkspaceWrite).await?;
    let mut multipart = multipart.map_err(|e| bad_multipart(e.body_text()))?;
    let limit = upload_limit(&state, project.org_id).await?;
    let mut staged = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad_multipart(e.body_text()))?
    {
        if field.name() == Some("file") && staged.is_none() {
            staged = Some(stage(&state, field, limit).await?);
        }
    }
    let staged = staged.ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "file",
            "a multipart part named `file` is required",
        )])
    })?;
    let key = state
        .files
        .put(&staged.path, &staged.sha256_hex)
        .await
        .map_err(ApiError::internal)?;
    let new = NewFile {
        org_id: project.org_id,
        project_id,
        file_name: &staged.file_name,
        mime_type: sniff_content_type(&staged.head),
        file_size: i64::try_from(staged.size).map_err(ApiError::internal)?,
        checksum_sha256: &staged.sha256_hex,
        storage_path: &key,
    };
    let file = files::create(state.db.pool(), new, &client.actor(&user)).await?;
    tracing::info!(file_id = %file.id, %project_id, size = file.file_size, "file uploaded");
    Ok((StatusCode::CREATED, Json(file.into())))
}

/// The project's live files, oldest first (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/files", tag = "files",
    params(("project_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<FileView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<FileView>>> {
    project_with(&state, user, project_id, Permission::WorkspaceRead).await?;
    let page = params.resolve()?;
    let rows = files::list(state.db.pool(), project_id, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |f| (f.created_at, f.id),
        FileView::from,
    )))
}

async fn live_file(state: &AppState, project_id: Uuid, file_id: Uuid) -> ApiResult<StoredFile> {
    files::find(state.db.pool(), project_id, file_id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))
}

/// One file's metadata (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/files/{file_id}", tag = "files",
    params(("project_id" = Uuid, Path), ("file_id" = Uuid, Path)),
    responses((status = 200, body = FileView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, file_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<FileView>> {
    project_with(&state, user, project_id, Permission::WorkspaceRead).await?;
    Ok(Json(live_file(&state, project_id, file_id).await?.into()))
}

/// The file's bytes (`workspace:read`), with the sniffed content type, `Content-Disposition:
/// attachment` (the client's name, cleaned) and `X-Content-Type-Options: nosniff`.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/files/{file_id}/content",
    tag = "files", params(("project_id" = Uuid, Path), ("file_id" = Uuid, Path)),
    responses((status = 200, description = "the content", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn download(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, file_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    project_with(&state, user, project_id, Permission::WorkspaceRead).await?;
    let file = live_file(&state, project_id, file_id).await?;
    let content = state
        .files
        .get(&file.storage_path)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            tracing::error!(%file_id, "a file's content is missing from the store");
            ApiError::not_found("file content")
        })?;
    let mut response = Body::from_stream(ReaderStream::new(content.reader)).into_response();
    let headers = response.headers_mut();
    let value = |v: &str| HeaderValue::from_str(v).map_err(ApiError::internal);
    headers.insert(header::CONTENT_TYPE, value(&file.mime_type)?);
    headers.insert(header::CONTENT_LENGTH, value(&content.len.to_string())?);
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(&content_disposition(&file.file_name))?,
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    if let Some(sum) = &file.checksum_sha256 {
        headers.insert(header::ETAG, value(&format!("\"{sum}\""))?);
    }
    Ok(response)
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>` (RFC 6266).
fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Deletes a file (its uploader, or `project:manage`); its attachments go with it.
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}/files/{file_id}", tag = "files",
    params(("project_id" = Uuid, Path), ("file_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((project_id, file_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let (project, permissions) =
        project_with(&state, user, project_id, Permission::WorkspaceWrite).await?;
    let file = live_file(&state, project_id, file_id).await?;
    if file.uploader_id != user.user_id {
        access::require(&permissions, Permission::ProjectManage)?;
    }
    files::soft_delete(
        state.db.pool(),
        project.org_id,
        project_id,
        file_id,
        &client.actor(&user),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Attaches a file to a block, comment or chat message of the same project (`workspace:write`).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/files/{file_id}/attachments",
    tag = "files", params(("project_id" = Uuid, Path), ("file_id" = Uuid, Path)),
    request_body = AttachRequest,
    responses((status = 201, body = AttachmentView), (status = 403, body = ErrorBody),
        (status = 404, description = "the file or the target is not found in this project",
            body = ErrorBody),
        (status = 409, description = "`already_attached`", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn attach(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((project_id, file_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<AttachRequest>,
) -> ApiResult<(StatusCode, Json<AttachmentView>)> {
    let (project, _) = project_with(&state, user, project_id, Permission::WorkspaceWrite).await?;
    live_file(&state, project_id, file_id).await?;
    let workspace_id = attachment_target(&state, user, project_id, &body).await?;
    let new = NewAttachment {
        org_id: project.org_id,
        project_id,
        file_id,
        target_type: &body.target_type,
        target_id: body.target_id,
        workspace_id,
    };
    let attachment = files::attach(state.db.pool(), new, &client.actor(&user))
        .await
        .map_err(|e| {
            conflict_on_unique(e, "already_attached", "the file is already attached there")
        })?;
    Ok((StatusCode::CREATED, Json(attachment.into())))
}

/// Checks the target is the project's and live; answers its workspace.
async fn attachment_target(
    state: &AppState,
    user: AuthUser,
    project_id: Uuid,
    body: &AttachRequest,
) -> ApiResult<Option<Uuid>> {
    if !ATTACHMENT_TARGETS.contains(&body.target_type.as_str()) {
        return Err(ApiError::validation(vec![FieldError::new(
            "target_type",
            "must be one of BLOCK, COMMENT, CHAT_MESSAGE",
        )]));
    }
    if body.target_type != "BLOCK" {
        let found = files::target_in_project(
            state.db.pool(),
            project_id,
            &body.target_type,
            body.target_id,
        )
        .await?;
        return found.ok_or_else(|| ApiError::not_found("attachment target"));
    }
    let workspace_id = body.workspace_id.ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "workspace_id",
            "is required to attach to a BLOCK",
        )])
    })?;
    let grant =
        access::workspace_permission(&state.db, user, workspace_id, Permission::WorkspaceRead)
            .await?;
    if grant.access.project_id != project_id {
        return Err(ApiError::not_found("workspace"));
    }
    // Not a workspace path, so not forwarded: the owner node's canvas when it is elsewhere.
    let canvas = crate::http_forward::read_canvas(state, workspace_id).await?;
    if !canvas.blocks.contains_key(&body.target_id.to_string()) {
        return Err(ApiError::not_found("block"));
    }
    Ok(Some(workspace_id))
}

/// The file's attachments (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/files/{file_id}/attachments",
    tag = "files", params(("project_id" = Uuid, Path), ("file_id" = Uuid, Path)),
    responses((status = 200, body = Page<AttachmentView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_attachments(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, file_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<Page<AttachmentView>>> {
    project_with(&state, user, project_id, Permission::WorkspaceRead).await?;
    live_file(&state, project_id, file_id).await?;
    let rows = files::attachments_of_file(state.db.pool(), project_id, file_id).await?;
    Ok(Json(Page::whole(
        rows.into_iter().map(AttachmentView::from).collect(),
    )))
}

/// Detaches a file (`workspace:write`).
#[utoipa::path(delete,
    path = "/api/v1/projects/{project_id}/files/{file_id}/attachments/{attachment_id}",
    tag = "files", params(("project_id" = Uuid, Path), ("file_id" = Uuid, Path),
        ("attachment_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn detach(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((project_id, file_id, attachment_id)): Path<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let (project, _) = project_with(&state, user, project_id, Permission::WorkspaceWrite).await?;
    files::detach(
        state.db.pool(),
        project.org_id,
        project_id,
        file_id,
        attachment_id,
        &client.actor(&user),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project's files attached to one block, comment or chat message (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/attachments", tag = "files",
    params(("project_id" = Uuid, Path), AttachedToParams),
    responses((status = 200, body = Page<AttachedFileView>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn attached_to(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<Uuid>,
    Query(params): Query<AttachedToParams>,
) -> ApiResult<Json<Page<AttachedFileView>>> {
    project_with(&state, user, project_id, Permission::WorkspaceRead).await?;
    if !ATTACHMENT_TARGETS.contains(&params.target_type.as_str()) {
        return Err(ApiError::validation(vec![FieldError::new(
            "target_type",
            "must be one of BLOCK, COMMENT, CHAT_MESSAGE",
        )]));
    }
    let rows = files::attached_to(
        state.db.pool(),
        project_id,
        &params.target_type,
        params.target_id,
    )
    .await?;
    Ok(Json(Page::whole(
        rows.into_iter().map(AttachedFileView::from).collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_quotes_safely() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let tricky = content_disposition("a\"b é.txt");
        assert!(tricky.starts_with("attachment; filename=\"a_b _.txt\"; "));
        assert!(tricky.ends_with("filename*=UTF-8''a%22b%20%C3%A9.txt"));
    }
}
