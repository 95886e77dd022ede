//! `chat_rooms` and `chat_messages`: rooms of a project (and one default room per workspace,
//! made on first use) and their messages. A message is committed (with its audit row) before the
//! server tells anyone about it. Rooms are reached only through their live project, so another
//! organization's room is not found.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::orgs::{self, IamError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChatRoom {
    pub id: Uuid,
    pub org_id: Uuid,
    pub project_id: Option<Uuid>,
    /// Set on a workspace's default room.
    pub workspace_id: Option<Uuid>,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

const ROOM_COLUMNS: &str = "r.id, r.org_id, r.project_id, r.workspace_id, r.name, r.created_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChatMessage {
    pub id: Uuid,
    pub room_id: Uuid,
    pub sender_id: Option<Uuid>,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

const MESSAGE_COLUMNS: &str = "id, room_id, sender_id, content, created_at, edited_at";

/// Creates a room in a project (audited as `chat_room.created`).
pub async fn create_room(
    pool: &PgPool,
    org_id: Uuid,
    project_id: Uuid,
    name: &str,
    actor: &Actor<'_>,
) -> Result<ChatRoom, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let room: ChatRoom = sqlx::query_as(&format!(
        "INSERT INTO chat_rooms AS r (org_id, project_id, name) VALUES ($1, $2, $3)
         RETURNING {ROOM_COLUMNS}"
    ))
    .bind(org_id)
    .bind(project_id)
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    let metadata = serde_json::json!({ "project_id": project_id, "name": name });
    let entry = actor.entry(
        org_id,
        "chat_room.created",
        "chat_room",
        room.id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(room)
}

/// The default room of a workspace, made on first use (one per workspace: a unique index).
pub async fn workspace_room(
    pool: &PgPool,
    org_id: Uuid,
    project_id: Uuid,
    workspace_id: Uuid,
) -> Result<ChatRoom, PersistenceError> {
    sqlx::query(
        "INSERT INTO chat_rooms (org_id, project_id, workspace_id, name)
         VALUES ($1, $2, $3, 'General')
         ON CONFLICT (workspace_id) WHERE workspace_id IS NOT NULL DO NOTHING",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(workspace_id)
    .execute(pool)
    .await?;
    Ok(sqlx::query_as(&format!(
        "SELECT {ROOM_COLUMNS} FROM chat_rooms r WHERE r.workspace_id = $1"
    ))
    .bind(workspace_id)
    .fetch_one(pool)
    .await?)
}

/// A room whose project (and organization) is live.
pub async fn find_room(pool: &PgPool, id: Uuid) -> Result<Option<ChatRoom>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ROOM_COLUMNS} FROM chat_rooms r
         JOIN projects p ON p.id = r.project_id AND p.deleted_at IS NULL
         JOIN organizations o ON o.id = p.org_id AND o.deleted_at IS NULL
         LEFT JOIN workspaces w ON w.id = r.workspace_id
         WHERE r.id = $1 AND (r.workspace_id IS NULL OR w.deleted_at IS NULL)"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// One page of a project's rooms, oldest first.
pub async fn list_rooms(
    pool: &PgPool,
    project_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ChatRoom>, PersistenceError> {
    let (at, after_id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {ROOM_COLUMNS} FROM chat_rooms r
         LEFT JOIN workspaces w ON w.id = r.workspace_id
         WHERE r.project_id = $1 AND (r.workspace_id IS NULL OR w.deleted_at IS NULL)
           AND ($2::timestamptz IS NULL OR (r.created_at, r.id) > ($2, $3))
         ORDER BY r.created_at, r.id LIMIT $4"
    ))
    .bind(project_id)
    .bind(at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Stores a message (audited as `chat_message.created`).
pub async fn post_message(
    pool: &PgPool,
    room: &ChatRoom,
    content: &str,
    actor: &Actor<'_>,
) -> Result<ChatMessage, IamError> {
    let mut tx = pool.begin().await?;
    let message: ChatMessage = sqlx::query_as(&format!(
        "INSERT INTO chat_messages (room_id, sender_id, content) VALUES ($1, $2, $3)
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(room.id)
    .bind(actor.user_id)
    .bind(content)
    .fetch_one(&mut *tx)
    .await?;
    let metadata = serde_json::json!({ "room_id": room.id });
    let entry = actor.entry(
        room.org_id,
        "chat_message.created",
        "chat_message",
        message.id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(message)
}

/// One page of a room's live messages, newest first, before the keyset `(created_at, id)`.
pub async fn history(
    pool: &PgPool,
    room_id: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ChatMessage>, PersistenceError> {
    let (at, before_id) = before.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat_messages
         WHERE room_id = $1 AND deleted_at IS NULL
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(room_id)
    .bind(at)
    .bind(before_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A live message of a room.
pub async fn find_message(
    pool: &PgPool,
    room_id: Uuid,
    id: Uuid,
) -> Result<Option<ChatMessage>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat_messages
         WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL"
    ))
    .bind(room_id)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Edits (`Some(content)`) or deletes (`None`) a live message (audited as
/// `chat_message.updated` / `.deleted`). Returns the message as it now reads (a deleted one with
/// its last content).
pub async fn change_message(
    pool: &PgPool,
    room: &ChatRoom,
    id: Uuid,
    content: Option<&str>,
    actor: &Actor<'_>,
) -> Result<ChatMessage, IamError> {
    let mut tx = pool.begin().await?;
    let (set, action) = match content {
        Some(_) => ("content = $3, edited_at = NOW()", "chat_message.updated"),
        None => ("deleted_at = NOW()", "chat_message.deleted"),
    };
    let changed: ChatMessage = sqlx::query_as(&format!(
        "UPDATE chat_messages SET {set}
         WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL
           -- Types $3 also for a delete, whose SET does not use it.
           AND ($3::text IS NULL OR TRUE)
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(room.id)
    .bind(id)
    .bind(content)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IamError::NotFound("message"))?;
    let metadata = serde_json::json!({ "room_id": room.id });
    let entry = actor.entry(room.org_id, action, "chat_message", id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(changed)
}
