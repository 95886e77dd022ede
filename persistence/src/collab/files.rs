//! `files` and `file_attachments`: uploaded files of a project (their bytes live in a
//! content-addressed store; `storage_path` is its key) and the links from a file to a block, a
//! comment or a chat message. Every function is scoped by `project_id`, so another project's (or
//! organization's) file is not found. Uploads count against the plan's storage quota under the
//! organization lock, with `org_usage_metrics` recounted in the same transaction.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::billing;
use crate::iam::orgs::{self, IamError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredFile {
    pub id: Uuid,
    pub project_id: Uuid,
    pub uploader_id: Uuid,
    pub file_name: String,
    pub mime_type: String,
    pub file_size: i64,
    pub checksum_sha256: Option<String>,
    pub storage_path: String,
    pub created_at: DateTime<Utc>,
}

const FILE_COLUMNS: &str = "id, project_id, uploader_id, file_name, mime_type, file_size,
    checksum_sha256, storage_path, created_at";

pub struct NewFile<'a> {
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub file_name: &'a str,
    pub mime_type: &'a str,
    pub file_size: i64,
    pub checksum_sha256: &'a str,
    pub storage_path: &'a str,
}

/// Records an uploaded file within the plan's storage quota (audited as `file.uploaded`).
pub async fn create(
    pool: &PgPool,
    new: NewFile<'_>,
    actor: &Actor<'_>,
) -> Result<StoredFile, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, new.org_id).await?;
    billing::check_storage(&mut tx, new.org_id, new.file_size).await?;
    let file: StoredFile = sqlx::query_as(&format!(
        "INSERT INTO files (uploader_id, project_id, file_name, mime_type, file_size,
                            checksum_sha256, storage_path)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {FILE_COLUMNS}"
    ))
    .bind(actor.user_id)
    .bind(new.project_id)
    .bind(new.file_name)
    .bind(new.mime_type)
    .bind(new.file_size)
    .bind(new.checksum_sha256)
    .bind(new.storage_path)
    .fetch_one(&mut *tx)
    .await?;
    billing::refresh_usage(&mut tx, new.org_id).await?;
    let metadata = serde_json::json!({
        "project_id": new.project_id, "file_name": new.file_name, "mime_type": new.mime_type,
        "file_size": new.file_size, "checksum_sha256": new.checksum_sha256,
    });
    let entry = actor.entry(new.org_id, "file.uploaded", "file", file.id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(file)
}

/// A live file of `project_id`.
pub async fn find(
    pool: &PgPool,
    project_id: Uuid,
    id: Uuid,
) -> Result<Option<StoredFile>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {FILE_COLUMNS} FROM files
         WHERE project_id = $1 AND id = $2 AND deleted_at IS NULL"
    ))
    .bind(project_id)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// One page of a project's live files, oldest first, after the keyset `(created_at, id)`.
pub async fn list(
    pool: &PgPool,
    project_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<StoredFile>, PersistenceError> {
    let (at, after_id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {FILE_COLUMNS} FROM files
         WHERE project_id = $1 AND deleted_at IS NULL
           AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(project_id)
    .bind(at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Soft-deletes a live file and removes its attachments (audited as `file.deleted`). The bytes
/// stay in the store: other files may share them.
pub async fn soft_delete(
    pool: &PgPool,
    org_id: Uuid,
    project_id: Uuid,
    id: Uuid,
    actor: &Actor<'_>,
) -> Result<(), IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let deleted = sqlx::query(
        "UPDATE files SET deleted_at = NOW()
         WHERE project_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(project_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(IamError::NotFound("file"));
    }
    sqlx::query("DELETE FROM file_attachments WHERE file_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    billing::refresh_usage(&mut tx, org_id).await?;
    let metadata = serde_json::json!({ "project_id": project_id });
    let entry = actor.entry(org_id, "file.deleted", "file", id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attachment {
    pub id: Uuid,
    pub file_id: Uuid,
    pub target_type: String,
    pub target_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub created_by_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const ATTACHMENT_COLUMNS: &str =
    "id, file_id, target_type, target_id, workspace_id, created_by_id, created_at";

/// The workspace of a live comment or chat message of `project_id` (`None` for a project chat
/// room's message: it belongs to no workspace), or not found.
pub async fn target_in_project(
    pool: &PgPool,
    project_id: Uuid,
    target_type: &str,
    target_id: Uuid,
) -> Result<Option<Option<Uuid>>, PersistenceError> {
    let sql = match target_type {
        "COMMENT" => {
            "SELECT c.workspace_id FROM comments c JOIN workspaces w ON w.id = c.workspace_id
             WHERE c.id = $2 AND w.project_id = $1 AND c.deleted_at IS NULL
               AND w.deleted_at IS NULL"
        }
        "CHAT_MESSAGE" => {
            "SELECT r.workspace_id FROM chat_messages m JOIN chat_rooms r ON r.id = m.room_id
             WHERE m.id = $2 AND r.project_id = $1 AND m.deleted_at IS NULL"
        }
        _ => return Ok(None),
    };
    let found: Option<(Option<Uuid>,)> = sqlx::query_as(sql)
        .bind(project_id)
        .bind(target_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.map(|(workspace,)| workspace))
}

pub struct NewAttachment<'a> {
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub file_id: Uuid,
    /// `BLOCK`, `COMMENT` or `CHAT_MESSAGE`; the caller checked the target is the project's.
    pub target_type: &'a str,
    pub target_id: Uuid,
    pub workspace_id: Option<Uuid>,
}

/// Attaches a live file of the project to a target (audited as `file.attached`). Attaching the
/// same file to the same target twice is a unique violation.
pub async fn attach(
    pool: &PgPool,
    new: NewAttachment<'_>,
    actor: &Actor<'_>,
) -> Result<Attachment, IamError> {
    let mut tx = pool.begin().await?;
    let attachment: Attachment = sqlx::query_as(&format!(
        "INSERT INTO file_attachments (file_id, target_type, target_id, workspace_id, created_by_id)
         SELECT f.id, $3, $4, $5, $6 FROM files f
         WHERE f.project_id = $1 AND f.id = $2 AND f.deleted_at IS NULL
         RETURNING {ATTACHMENT_COLUMNS}"
    ))
    .bind(new.project_id)
    .bind(new.file_id)
    .bind(new.target_type)
    .bind(new.target_id)
    .bind(new.workspace_id)
    .bind(actor.user_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IamError::NotFound("file"))?;
    let metadata = serde_json::json!({
        "file_id": new.file_id, "target_type": new.target_type, "target_id": new.target_id,
    });
    let entry = actor.entry(
        new.org_id,
        "file.attached",
        "file_attachment",
        attachment.id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(attachment)
}

/// Removes one attachment of a live file of the project (audited as `file.detached`).
pub async fn detach(
    pool: &PgPool,
    org_id: Uuid,
    project_id: Uuid,
    file_id: Uuid,
    attachment_id: Uuid,
    actor: &Actor<'_>,
) -> Result<(), IamError> {
    let mut tx = pool.begin().await?;
    let removed = sqlx::query(
        "DELETE FROM file_attachments a USING files f
         WHERE a.id = $3 AND a.file_id = $2 AND f.id = a.file_id AND f.project_id = $1
           AND f.deleted_at IS NULL",
    )
    .bind(project_id)
    .bind(file_id)
    .bind(attachment_id)
    .execute(&mut *tx)
    .await?;
    if removed.rows_affected() == 0 {
        return Err(IamError::NotFound("attachment"));
    }
    let metadata = serde_json::json!({ "file_id": file_id });
    let entry = actor.entry(
        org_id,
        "file.detached",
        "file_attachment",
        attachment_id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// The attachments of a live file of the project, oldest first.
pub async fn attachments_of_file(
    pool: &PgPool,
    project_id: Uuid,
    file_id: Uuid,
) -> Result<Vec<Attachment>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.file_id, a.target_type, a.target_id, a.workspace_id, a.created_by_id,
                a.created_at
         FROM file_attachments a JOIN files f ON f.id = a.file_id
         WHERE f.project_id = $1 AND f.id = $2 AND f.deleted_at IS NULL
         ORDER BY a.created_at, a.id",
    )
    .bind(project_id)
    .bind(file_id)
    .fetch_all(pool)
    .await?)
}

/// A live file as attached to one target.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttachedFile {
    pub attachment_id: Uuid,
    pub attached_at: DateTime<Utc>,
    pub file_id: Uuid,
    pub file_name: String,
    pub mime_type: String,
    pub file_size: i64,
    pub checksum_sha256: Option<String>,
}

/// The live files of `project_id` attached to a target, in attachment order.
pub async fn attached_to(
    pool: &PgPool,
    project_id: Uuid,
    target_type: &str,
    target_id: Uuid,
) -> Result<Vec<AttachedFile>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT a.id AS attachment_id, a.created_at AS attached_at, f.id AS file_id, f.file_name,
                f.mime_type, f.file_size, f.checksum_sha256
         FROM file_attachments a JOIN files f ON f.id = a.file_id
         WHERE f.project_id = $1 AND f.deleted_at IS NULL
           AND a.target_type = $2 AND a.target_id = $3
         ORDER BY a.created_at, a.id",
    )
    .bind(project_id)
    .bind(target_type)
    .bind(target_id)
    .fetch_all(pool)
    .await?)
}
