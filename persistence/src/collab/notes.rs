//! `notes`: personal (`PRIVATE`, seen by their author only) or `SHARED` notes owned by a project
//! or a workspace. Reads filter by visibility in SQL, so another member's private note is simply
//! not found; mutations write their audit row in the same transaction.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::orgs::IamError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Note {
    pub id: Uuid,
    pub org_id: Option<Uuid>,
    /// `PROJECT` or `WORKSPACE`.
    pub owner_type: String,
    pub owner_id: Uuid,
    pub title: Option<String>,
    pub content: Option<String>,
    /// `PRIVATE` or `SHARED`.
    pub visibility: String,
    pub created_by_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const NOTE_COLUMNS: &str = "n.id, n.org_id, n.owner_type, n.owner_id, n.title, n.content,
    n.visibility, n.created_by_id, n.created_at, n.updated_at";

/// Notes `reader` may see: shared ones and their own.
const VISIBLE_TO: &str = "(n.visibility = 'SHARED' OR n.created_by_id = $READER)";

pub struct NewNote<'a> {
    pub org_id: Uuid,
    pub owner_type: &'a str,
    pub owner_id: Uuid,
    pub title: Option<&'a str>,
    pub content: Option<&'a str>,
    pub visibility: &'a str,
}

/// Fields to change; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct NotePatch<'a> {
    pub title: Option<&'a str>,
    pub content: Option<&'a str>,
    pub visibility: Option<&'a str>,
}

/// Creates a note (audited as `note.created`).
pub async fn create(pool: &PgPool, new: NewNote<'_>, actor: &Actor<'_>) -> Result<Note, IamError> {
    let mut tx = pool.begin().await?;
    let note: Note = sqlx::query_as(&format!(
        "INSERT INTO notes AS n (org_id, owner_type, owner_id, title, content, visibility,
                                 created_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {NOTE_COLUMNS}"
    ))
    .bind(new.org_id)
    .bind(new.owner_type)
    .bind(new.owner_id)
    .bind(new.title)
    .bind(new.content)
    .bind(new.visibility)
    .bind(actor.user_id)
    .fetch_one(&mut *tx)
    .await?;
    let metadata = serde_json::json!({
        "owner_type": new.owner_type, "owner_id": new.owner_id, "visibility": new.visibility,
    });
    let entry = actor.entry(new.org_id, "note.created", "note", note.id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(note)
}

/// A live note `reader` may see, with the project it belongs to (its owner's, which is live).
pub async fn find_visible(
    pool: &PgPool,
    id: Uuid,
    reader: Uuid,
) -> Result<Option<(Note, Uuid)>, PersistenceError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        note: Note,
        project_id: Uuid,
    }
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {NOTE_COLUMNS}, COALESCE(p.id, w.project_id) AS project_id FROM notes n
         LEFT JOIN projects p ON n.owner_type = 'PROJECT' AND p.id = n.owner_id
           AND p.deleted_at IS NULL
         LEFT JOIN workspaces w ON n.owner_type = 'WORKSPACE' AND w.id = n.owner_id
           AND w.deleted_at IS NULL
         WHERE n.id = $1 AND n.deleted_at IS NULL AND {}
           AND COALESCE(p.id, w.project_id) IS NOT NULL",
        VISIBLE_TO.replace("$READER", "$2")
    ))
    .bind(id)
    .bind(reader)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.note, r.project_id)))
}

/// One page of the live notes of an owner that `reader` may see, oldest first.
pub async fn list(
    pool: &PgPool,
    owner_type: &str,
    owner_id: Uuid,
    reader: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Note>, PersistenceError> {
    let (at, after_id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {NOTE_COLUMNS} FROM notes n
         WHERE n.owner_type = $1 AND n.owner_id = $2 AND n.deleted_at IS NULL AND {}
           AND ($4::timestamptz IS NULL OR (n.created_at, n.id) > ($4, $5))
         ORDER BY n.created_at, n.id LIMIT $6",
        VISIBLE_TO.replace("$READER", "$3")
    ))
    .bind(owner_type)
    .bind(owner_id)
    .bind(reader)
    .bind(at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Changes a live note (audited as `note.updated`).
pub async fn update(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    patch: NotePatch<'_>,
    actor: &Actor<'_>,
) -> Result<Note, IamError> {
    let mut tx = pool.begin().await?;
    let note: Note = sqlx::query_as(&format!(
        "UPDATE notes n SET title = COALESCE($2, n.title), content = COALESCE($3, n.content),
           visibility = COALESCE($4, n.visibility), updated_at = NOW()
         WHERE n.id = $1 AND n.deleted_at IS NULL RETURNING {NOTE_COLUMNS}"
    ))
    .bind(id)
    .bind(patch.title)
    .bind(patch.content)
    .bind(patch.visibility)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IamError::NotFound("note"))?;
    let entry = actor.entry(org_id, "note.updated", "note", id, None);
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(note)
}

/// Soft-deletes a live note (audited as `note.deleted`).
pub async fn soft_delete(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    actor: &Actor<'_>,
) -> Result<(), IamError> {
    let mut tx = pool.begin().await?;
    let deleted =
        sqlx::query("UPDATE notes SET deleted_at = NOW() WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    if deleted.rows_affected() == 0 {
        return Err(IamError::NotFound("note"));
    }
    let entry = actor.entry(org_id, "note.deleted", "note", id, None);
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(())
}
