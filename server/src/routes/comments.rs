//! Comments on a workspace's canvas: threads anchored to a block, a relation or the workspace,
//! replies, edit/delete by their author, resolve/reopen, @mentions of organization members.
//!
//! `GET/POST /workspaces/{workspace_id}/comments`,
//! `GET/PATCH/DELETE /workspaces/{workspace_id}/comments/{comment_id}`,
//! `POST /workspaces/{workspace_id}/comments/{comment_id}/resolve` and `/reopen`.
//!
//! Reading needs `workspace:read`, writing `workspace:write` (a Viewer reads the discussion but
//! does not take part). Every change is committed (with its audit row) before it is pushed live as
//! a stateless `comment.*` event to the workspace's open editors that opted in (`?comments=1` on
//! y-websocket, always on Hocuspocus); a workspace nobody has open gets no event and no room.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::collab::comments::{self, Comment, CommentChange, CommentFilter, NewComment};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::access::{self, AuthUser, WorkspaceGrant};
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::http_forward::room_unavailable;
use crate::mailer::Mail;
use crate::pagination::{page_request, Page};
use crate::rooms::{EventAudience, HttpRequest};
use crate::state::AppState;
use crate::validate::Validator;

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 10_000;
/// Most members one comment may mention.
pub const MAX_MENTIONS: usize = 50;
pub const TARGET_TYPES: [&str; 3] = ["BLOCK", "RELATION", "WORKSPACE"];

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommentView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub author_id: Uuid,
    /// The author's full name, else email.
    pub author_name: Option<String>,
    /// `BLOCK`, `RELATION` or `WORKSPACE`.
    pub target_type: String,
    /// The block, relation or workspace the thread is anchored to.
    pub target_id: Uuid,
    /// The thread's root, for a reply.
    pub parent_comment_id: Option<Uuid>,
    pub content: String,
    /// Organization members mentioned (each got a mail).
    pub mentions: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    /// Set on a resolved thread root.
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by_id: Option<Uuid>,
    /// The block or relation it is anchored to has been deleted; the comment stays readable.
    pub orphaned: bool,
}

impl From<Comment> for CommentView {
    fn from(c: Comment) -> Self {
        CommentView {
            id: c.id,
            workspace_id: c.workspace_id,
            author_id: c.author_id,
            author_name: c.author_name,
            target_type: c.target_type,
            target_id: c.target_id,
            parent_comment_id: c.parent_comment_id,
            content: c.content,
            mentions: c.mentions,
            created_at: c.created_at,
            edited_at: c.edited_at,
            resolved_at: c.resolved_at,
            resolved_by_id: c.resolved_by_id,
            orphaned: c.orphaned,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCommentRequest {
    pub content: String,
    /// `BLOCK`, `RELATION` or `WORKSPACE` (the default). Ignored for a reply, which joins its
    /// thread's anchor.
    pub target_type: Option<String>,
    /// The block or relation id; for `WORKSPACE` omitted (or the workspace's own id).
    pub target_id: Option<Uuid>,
    /// Reply to this comment (a reply to a reply joins the same thread).
    pub parent_comment_id: Option<Uuid>,
    /// User ids of organization members to mention; each gets a mail.
    #[serde(default)]
    pub mentions: Vec<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCommentRequest {
    pub content: String,
}

/// `?block_id=&resolved=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCommentsParams {
    /// Only comments anchored to this block.
    pub block_id: Option<Uuid>,
    /// Only resolved (`true`) or open (`false`) threads.
    pub resolved: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A stateless event pushed to open editors.
#[derive(Debug, Serialize)]
struct CommentEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    workspace_id: Uuid,
    comment: &'a CommentView,
}

/// Creates a thread or a reply (`workspace:write`); mentioned members get a mail.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/comments", tag = "comments",
    params(("workspace_id" = Uuid, Path)), request_body = CreateCommentRequest,
    responses((status = 201, body = CommentView), (status = 403, body = ErrorBody),
        (status = 404, description = "the workspace, parent or anchored block/relation is \
            not found", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(workspace_id): Path<Uuid>,
    Json(body): Json<CreateCommentRequest>,
) -> ApiResult<(StatusCode, Json<CommentView>)> {
    let grant =
        access::workspace_permission(&state.db, user, workspace_id, Permission::WorkspaceWrite)
            .await?;
    validate_create(&body)?;
    let (target_type, target_id, parent) = anchor(&state, workspace_id, &body).await?;
    let mentioned = mentioned_members(&state, grant.org_id(), &body.mentions).await?;
    let mention_ids: Vec<Uuid> = mentioned.iter().map(|(id, _)| *id).collect();
    let new = NewComment {
        org_id: grant.org_id(),
        workspace_id,
        target_type: &target_type,
        target_id,
        parent_comment_id: parent,
        content: body.content.trim(),
        mentions: &mention_ids,
    };
    let comment: CommentView = comments::create(state.db.pool(), new, &client.actor(&user))
        .await?
        .into();
    tracing::info!(comment_id = %comment.id, %workspace_id, "comment created");
    mail_mentions(&state, &user, &comment, &mentioned).await;
    push(&state, "comment.created", &comment).await;
    Ok((StatusCode::CREATED, Json(comment)))
}

fn validate_create(body: &CreateCommentRequest) -> ApiResult<()> {
    let mut v = Validator::new();
    v.text("content", &body.content, MAX_COMMENT_CHARS);
    if let Some(t) = &body.target_type {
        v.check(
            TARGET_TYPES.contains(&t.as_str()),
            "target_type",
            "must be one of BLOCK, RELATION, WORKSPACE",
        );
    }
    v.check(
        body.mentions.len() <= MAX_MENTIONS,
        "mentions",
        "must name at most 50 members",
    );
    v.finish()
}

/// Where the new comment hangs: its thread's anchor for a reply, else the anchor the body names
/// (which must exist on the live canvas). Returns `(target_type, target_id, parent)`.
async fn anchor(
    state: &AppState,
    workspace_id: Uuid,
    body: &CreateCommentRequest,
) -> ApiResult<(String, Uuid, Option<Uuid>)> {
    if let Some(parent_id) = body.parent_comment_id {
        let parent = comments::find(state.db.pool(), workspace_id, parent_id)
            .await?
            .ok_or_else(|| ApiError::not_found("parent comment"))?;
        let root = parent.parent_comment_id.unwrap_or(parent.id);
        return Ok((parent.target_type, parent.target_id, Some(root)));
    }
    let target_type = body.target_type.as_deref().unwrap_or("WORKSPACE");
    let target_id = match (target_type, body.target_id) {
        ("WORKSPACE", None) => workspace_id,
        ("WORKSPACE", Some(id)) if id == workspace_id => workspace_id,
        ("WORKSPACE", Some(_)) => {
            return Err(field_error(
                "target_id",
                "must be this workspace's id or omitted",
            ))
        }
        (_, None) => {
            return Err(field_error(
                "target_id",
                "is required for a BLOCK or RELATION",
            ))
        }
        (_, Some(id)) => {
            check_on_canvas(state, workspace_id, target_type, id).await?;
            id
        }
    };
    Ok((target_type.to_string(), target_id, None))
}

fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, message)])
}

/// 404 unless the block or relation is live on the workspace's canvas (read from its room, so a
/// block created a moment ago by an editor counts).
async fn check_on_canvas(
    state: &AppState,
    workspace_id: Uuid,
    target_type: &str,
    id: Uuid,
) -> ApiResult<()> {
    let canvas = state
        .rooms
        .request(workspace_id, |reply| HttpRequest::Canvas { reply })
        .await
        .map_err(room_unavailable)?;
    let key = id.to_string();
    let found = match target_type {
        "BLOCK" => canvas.blocks.contains_key(&key),
        _ => canvas.relations.contains_key(&key),
    };
    if found {
        Ok(())
    } else {
        Err(ApiError::not_found(&target_type.to_ascii_lowercase()))
    }
}

/// The mentioned users with their email; 422 naming `mentions` when one is no member.
async fn mentioned_members(
    state: &AppState,
    org_id: Uuid,
    mentions: &[Uuid],
) -> ApiResult<Vec<(Uuid, String)>> {
    if mentions.is_empty() {
        return Ok(Vec::new());
    }
    let members = comments::members_among(state.db.pool(), org_id, mentions).await?;
    let all_members = mentions
        .iter()
        .all(|id| members.iter().any(|(member, _)| member == id));
    if !all_members {
        return Err(field_error(
            "mentions",
            "must name members of this organization",
        ));
    }
    Ok(members)
}

/// One mail per mentioned member (not the author). A mail that cannot be queued is logged: the
/// comment is already committed and answering 500 would invite a duplicate.
async fn mail_mentions(
    state: &AppState,
    author: &AuthUser,
    comment: &CommentView,
    mentioned: &[(Uuid, String)],
) {
    let excerpt: String = comment.content.chars().take(200).collect();
    for (user_id, email) in mentioned.iter().filter(|(id, _)| *id != author.user_id) {
        let mail = Mail {
            to: email.clone(),
            kind: "mention",
            subject: "You were mentioned in a comment on Nox Sync".to_string(),
            body: format!(
                "You were mentioned in a comment on workspace {ws}:\n\n{excerpt}\n\n\
                 GET /api/v1/workspaces/{ws}/comments/{id}\n",
                ws = comment.workspace_id,
                id = comment.id,
            ),
        };
        if let Err(err) = state.mailer.send(&mail).await {
            tracing::warn!(%user_id, comment_id = %comment.id, error = err.code, "mention mail not queued");
        }
    }
}

/// Pushes a committed change to the workspace's open editors that asked for comment events.
async fn push(state: &AppState, kind: &'static str, comment: &CommentView) {
    let event = CommentEvent {
        kind,
        workspace_id: comment.workspace_id,
        comment,
    };
    let Ok(event) = serde_json::to_string(&event) else {
        return;
    };
    let reached = state
        .rooms
        .broadcast_if_loaded(comment.workspace_id, event, EventAudience::Comments)
        .await;
    tracing::debug!(comment_id = %comment.id, kind, reached, "comment event pushed");
}

/// The workspace's live comments, oldest first (`workspace:read`); filter by block and by the
/// thread being resolved.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/comments", tag = "comments",
    params(("workspace_id" = Uuid, Path), ListCommentsParams),
    responses((status = 200, body = Page<CommentView>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Query(params): Query<ListCommentsParams>,
) -> ApiResult<Json<Page<CommentView>>> {
    access::workspace_permission(&state.db, user, workspace_id, Permission::WorkspaceRead).await?;
    let page = page_request(params.limit, params.cursor.as_deref())?;
    let filter = CommentFilter {
        block_id: params.block_id,
        resolved: params.resolved,
    };
    let rows = comments::list(
        state.db.pool(),
        workspace_id,
        filter,
        page.after,
        page.fetch(),
    )
    .await?;
    Ok(Json(page.page(
        rows,
        |c| (c.created_at, c.id),
        CommentView::from,
    )))
}

/// One live comment (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/comments/{comment_id}",
    tag = "comments", params(("workspace_id" = Uuid, Path), ("comment_id" = Uuid, Path)),
    responses((status = 200, body = CommentView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, comment_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<CommentView>> {
    access::workspace_permission(&state.db, user, workspace_id, Permission::WorkspaceRead).await?;
    let comment = comments::find(state.db.pool(), workspace_id, comment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("comment"))?;
    Ok(Json(comment.into()))
}

/// The comment, when the caller may change comments of the workspace (`workspace:write`).
async fn writable(
    state: &AppState,
    user: AuthUser,
    workspace_id: Uuid,
    comment_id: Uuid,
) -> ApiResult<(WorkspaceGrant, Comment)> {
    let grant =
        access::workspace_permission(&state.db, user, workspace_id, Permission::WorkspaceWrite)
            .await?;
    let comment = comments::find(state.db.pool(), workspace_id, comment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("comment"))?;
    Ok((grant, comment))
}

fn require_author(user: &AuthUser, comment: &Comment) -> ApiResult<()> {
    if comment.author_id == user.user_id {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_author",
            "only the author may edit or delete a comment",
        ))
    }
}

/// Applies a change, then pushes its event.
async fn apply(
    state: &AppState,
    user: &AuthUser,
    client: &ClientInfo,
    grant: &WorkspaceGrant,
    comment: &Comment,
    change: CommentChange<'_>,
    kind: &'static str,
) -> ApiResult<CommentView> {
    let changed: CommentView = comments::change(
        state.db.pool(),
        grant.org_id(),
        comment.workspace_id,
        comment.id,
        change,
        &client.actor(user),
    )
    .await?
    .into();
    push(state, kind, &changed).await;
    Ok(changed)
}

/// Edits the text of one's own comment (`workspace:write`, author only).
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/comments/{comment_id}",
    tag = "comments", params(("workspace_id" = Uuid, Path), ("comment_id" = Uuid, Path)),
    request_body = UpdateCommentRequest,
    responses((status = 200, body = CommentView),
        (status = 403, description = "`not_author` or a missing permission", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((workspace_id, comment_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<UpdateCommentRequest>,
) -> ApiResult<Json<CommentView>> {
    let (grant, comment) = writable(&state, user, workspace_id, comment_id).await?;
    require_author(&user, &comment)?;
    Validator::new()
        .text("content", &body.content, MAX_COMMENT_CHARS)
        .finish()?;
    let change = CommentChange::Edit(body.content.trim());
    let view = apply(
        &state,
        &user,
        &client,
        &grant,
        &comment,
        change,
        "comment.updated",
    )
    .await?;
    Ok(Json(view))
}

/// Deletes one's own comment (`workspace:write`, author only); replies stay.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/comments/{comment_id}",
    tag = "comments", params(("workspace_id" = Uuid, Path), ("comment_id" = Uuid, Path)),
    responses((status = 204),
        (status = 403, description = "`not_author` or a missing permission", body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((workspace_id, comment_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let (grant, comment) = writable(&state, user, workspace_id, comment_id).await?;
    require_author(&user, &comment)?;
    let change = CommentChange::Delete;
    apply(
        &state,
        &user,
        &client,
        &grant,
        &comment,
        change,
        "comment.deleted",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A thread root, or 422: replies are resolved with their thread.
fn require_root(comment: &Comment) -> ApiResult<()> {
    match comment.parent_comment_id {
        None => Ok(()),
        Some(_) => Err(field_error(
            "comment_id",
            "is a reply; resolve or reopen its thread's first comment",
        )),
    }
}

/// Marks a thread resolved (`workspace:write`; idempotent).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/comments/{comment_id}/resolve",
    tag = "comments", params(("workspace_id" = Uuid, Path), ("comment_id" = Uuid, Path)),
    responses((status = 200, body = CommentView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resolve(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((workspace_id, comment_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<CommentView>> {
    let (grant, comment) = writable(&state, user, workspace_id, comment_id).await?;
    require_root(&comment)?;
    let change = CommentChange::Resolve;
    let view = apply(
        &state,
        &user,
        &client,
        &grant,
        &comment,
        change,
        "comment.resolved",
    )
    .await?;
    Ok(Json(view))
}

/// Reopens a resolved thread (`workspace:write`; idempotent).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/comments/{comment_id}/reopen",
    tag = "comments", params(("workspace_id" = Uuid, Path), ("comment_id" = Uuid, Path)),
    responses((status = 200, body = CommentView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reopen(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((workspace_id, comment_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<CommentView>> {
    let (grant, comment) = writable(&state, user, workspace_id, comment_id).await?;
    require_root(&comment)?;
    let change = CommentChange::Reopen;
    let view = apply(
        &state,
        &user,
        &client,
        &grant,
        &comment,
        change,
        "comment.reopened",
    )
    .await?;
    Ok(Json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> CreateCommentRequest {
        serde_json::from_value(json).expect("a request body")
    }

    #[test]
    fn comment_bodies_are_checked_field_by_field() {
        let ok = body(serde_json::json!({"content": "looks good"}));
        assert!(validate_create(&ok).is_ok());
        let bad = body(serde_json::json!({"content": "  ", "target_type": "PAGE"}));
        let err = validate_create(&bad).expect_err("refused");
        let fields: Vec<_> = err.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["content", "target_type"]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let parsed: Result<CreateCommentRequest, _> =
            serde_json::from_value(serde_json::json!({"content": "x", "author_id": "me"}));
        assert!(parsed.is_err());
    }
}
