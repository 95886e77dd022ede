//! Chat: rooms of a project (and a default room per workspace), messages over HTTP, pushed live.
//!
//! `POST/GET /projects/{project_id}/chat-rooms`, `GET /workspaces/{workspace_id}/chat-room`
//! (the workspace's default room, made on first use), `GET/POST /chat-rooms/{room_id}/messages`
//! (history newest first, paginated by cursor), `PATCH/DELETE
//! /chat-rooms/{room_id}/messages/{message_id}` (own messages only).
//!
//! Who is in a room: every member of the organization who may read the project
//! (`workspace:read`); posting needs `workspace:write`. Live delivery reuses the workspace rooms:
//! a message is stored (with its audit row) first, then pushed as a stateless `chat.*` event to
//! the peers that opted in (`?chat=1` on y-websocket, always on Hocuspocus) of every *loaded*
//! workspace room of the project (only the workspace's own room for its default chat room).
//! Everyone connected there is a member who may read the project, so nobody hears a room they
//! could not read over HTTP, and a project without open editors costs nothing. Clients that are
//! not connected to a workspace read the history over HTTP.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::collab::chat::{self, ChatMessage, ChatRoom};
use nox_persistence::iam::workspaces;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, AccessError, AuthUser};
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::pagination::{Page, PageParams};
use crate::rooms::EventAudience;
use crate::state::AppState;
use crate::validate::Validator;

/// Longest chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatRoomView {
    pub id: Uuid,
    pub org_id: Uuid,
    pub project_id: Option<Uuid>,
    /// Set on a workspace's default room.
    pub workspace_id: Option<Uuid>,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<ChatRoom> for ChatRoomView {
    fn from(r: ChatRoom) -> Self {
        ChatRoomView {
            id: r.id,
            org_id: r.org_id,
            project_id: r.project_id,
            workspace_id: r.workspace_id,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatMessageView {
    pub id: Uuid,
    pub room_id: Uuid,
    /// `null` once the sender's account is gone.
    pub sender_id: Option<Uuid>,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

impl From<ChatMessage> for ChatMessageView {
    fn from(m: ChatMessage) -> Self {
        ChatMessageView {
            id: m.id,
            room_id: m.room_id,
            sender_id: m.sender_id,
            content: m.content,
            created_at: m.created_at,
            edited_at: m.edited_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChatRoomRequest {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessageRequest {
    pub content: String,
}

#[derive(Serialize)]
struct ChatEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room_id: Uuid,
    message: &'a ChatMessageView,
}

/// Creates a chat room in a project (`workspace:write`).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/chat-rooms", tag = "chat",
    params(("project_id" = Uuid, Path)), request_body = CreateChatRoomRequest,
    responses((status = 201, body = ChatRoomView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_room(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(project_id): Path<Uuid>,
    Json(body): Json<CreateChatRoomRequest>,
) -> ApiResult<(StatusCode, Json<ChatRoomView>)> {
    let (project, permissions) = access::project(&state.db, user, project_id).await?;
    access::require(&permissions, Permission::WorkspaceWrite)?;
    Validator::new().text("name", &body.name, 255).finish()?;
    let room = chat::create_room(
        state.db.pool(),
        project.org_id,
        project_id,
        body.name.trim(),
        &client.actor(&user),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(room.into())))
}

/// The project's chat rooms, oldest first (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/chat-rooms", tag = "chat",
    params(("project_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<ChatRoomView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_rooms(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<ChatRoomView>>> {
    let (_, permissions) = access::project(&state.db, user, project_id).await?;
    access::require(&permissions, Permission::WorkspaceRead)?;
    let page = params.resolve()?;
    let rows = chat::list_rooms(state.db.pool(), project_id, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |r| (r.created_at, r.id),
        ChatRoomView::from,
    )))
}

/// The workspace's default chat room, made on first use (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/chat-room", tag = "chat",
    params(("workspace_id" = Uuid, Path)),
    responses((status = 200, body = ChatRoomView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn workspace_room(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
) -> ApiResult<Json<ChatRoomView>> {
    let grant =
        access::workspace_permission(&state.db, user, workspace_id, Permission::WorkspaceRead)
            .await?;
    let room = chat::workspace_room(
        state.db.pool(),
        grant.org_id(),
        grant.access.project_id,
        workspace_id,
    )
    .await?;
    Ok(Json(room.into()))
}

/// The room, when the caller holds `needed` in its project (not found otherwise, like a missing
/// room).
async fn room_with(
    state: &AppState,
    user: AuthUser,
    room_id: Uuid,
    needed: Permission,
) -> ApiResult<ChatRoom> {
    let room = chat::find_room(state.db.pool(), room_id)
        .await?
        .ok_or_else(|| ApiError::not_found("chat room"))?;
    let project_id = room
        .project_id
        .ok_or_else(|| ApiError::not_found("chat room"))?;
    let (project, permissions) = match access::project(&state.db, user, project_id).await {
        Ok(found) => found,
        Err(AccessError::NotFound(_)) => return Err(ApiError::not_found("chat room")),
        Err(other) => return Err(other.into()),
    };
    access::require(&permissions, needed)?;
    if needed == Permission::WorkspaceWrite && project.status == "ARCHIVED" {
        return Err(AccessError::ProjectArchived.into());
    }
    Ok(room)
}

/// The room's messages, newest first; `next_cursor` pages further back (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/chat-rooms/{room_id}/messages", tag = "chat",
    params(("room_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<ChatMessageView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<ChatMessageView>>> {
    room_with(&state, user, room_id, Permission::WorkspaceRead).await?;
    let page = params.resolve()?;
    let rows = chat::history(state.db.pool(), room_id, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |m| (m.created_at, m.id),
        ChatMessageView::from,
    )))
}

fn check_content(content: &str) -> ApiResult<()> {
    Validator::new()
        .text("content", content, MAX_MESSAGE_CHARS)
        .finish()
}

/// Posts a message (`workspace:write`): stored, then pushed live.
#[utoipa::path(post, path = "/api/v1/chat-rooms/{room_id}/messages", tag = "chat",
    params(("room_id" = Uuid, Path)), request_body = ChatMessageRequest,
    responses((status = 201, body = ChatMessageView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn post_message(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(room_id): Path<Uuid>,
    Json(body): Json<ChatMessageRequest>,
) -> ApiResult<(StatusCode, Json<ChatMessageView>)> {
    let room = room_with(&state, user, room_id, Permission::WorkspaceWrite).await?;
    check_content(&body.content)?;
    let message: ChatMessageView = chat::post_message(
        state.db.pool(),
        &room,
        body.content.trim(),
        &client.actor(&user),
    )
    .await?
    .into();
    push(&state, &room, "chat.message", &message).await;
    Ok((StatusCode::CREATED, Json(message)))
}

/// The caller's own live message of the room, or 404 / 403 `not_sender`.
async fn own_message(
    state: &AppState,
    user: AuthUser,
    room: &ChatRoom,
    message_id: Uuid,
) -> ApiResult<()> {
    let message = chat::find_message(state.db.pool(), room.id, message_id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    if message.sender_id != Some(user.user_id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_sender",
            "only the sender may edit or delete a message",
        ));
    }
    Ok(())
}

/// Edits one's own message (`workspace:write`).
#[utoipa::path(patch, path = "/api/v1/chat-rooms/{room_id}/messages/{message_id}", tag = "chat",
    params(("room_id" = Uuid, Path), ("message_id" = Uuid, Path)),
    request_body = ChatMessageRequest,
    responses((status = 200, body = ChatMessageView),
        (status = 403, description = "`not_sender` or a missing permission", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_message(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((room_id, message_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<ChatMessageRequest>,
) -> ApiResult<Json<ChatMessageView>> {
    let room = room_with(&state, user, room_id, Permission::WorkspaceWrite).await?;
    own_message(&state, user, &room, message_id).await?;
    check_content(&body.content)?;
    let content = Some(body.content.trim());
    let message: ChatMessageView = chat::change_message(
        state.db.pool(),
        &room,
        message_id,
        content,
        &client.actor(&user),
    )
    .await?
    .into();
    push(&state, &room, "chat.message_updated", &message).await;
    Ok(Json(message))
}

/// Deletes one's own message (`workspace:write`).
#[utoipa::path(delete, path = "/api/v1/chat-rooms/{room_id}/messages/{message_id}", tag = "chat",
    params(("room_id" = Uuid, Path), ("message_id" = Uuid, Path)),
    responses((status = 204),
        (status = 403, description = "`not_sender` or a missing permission", body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_message(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((room_id, message_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let room = room_with(&state, user, room_id, Permission::WorkspaceWrite).await?;
    own_message(&state, user, &room, message_id).await?;
    let message: ChatMessageView = chat::change_message(
        state.db.pool(),
        &room,
        message_id,
        None,
        &client.actor(&user),
    )
    .await?
    .into();
    push(&state, &room, "chat.message_deleted", &message).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Pushes a committed message to the open editors of the room's workspaces (see the module doc).
async fn push(state: &AppState, room: &ChatRoom, kind: &'static str, message: &ChatMessageView) {
    let event = ChatEvent {
        kind,
        room_id: room.id,
        message,
    };
    let Ok(event) = serde_json::to_string(&event) else {
        return;
    };
    let workspace_ids = match (room.workspace_id, room.project_id) {
        (Some(workspace_id), _) => vec![workspace_id],
        (None, Some(project_id)) => {
            match workspaces::ids_of_project(state.db.pool(), project_id).await {
                Ok(ids) => ids,
                Err(err) => {
                    // The message is stored; live delivery is best effort beyond that.
                    tracing::warn!(room_id = %room.id, error = %err, "chat push skipped");
                    return;
                }
            }
        }
        (None, None) => Vec::new(),
    };
    let mut reached = 0;
    for workspace_id in workspace_ids {
        reached += state
            .rooms
            .broadcast_if_loaded(workspace_id, event.clone(), EventAudience::Chat)
            .await;
    }
    tracing::debug!(room_id = %room.id, kind, reached, "chat event pushed");
}
