//! `comments` and `comment_mentions`: discussion threads anchored to a block, a relation or a
//! workspace. Every function is scoped by `workspace_id`, so a comment of another workspace (or
//! organization) is simply not found. Mutations write their audit row in the same transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::orgs::IamError;

/// A comment as the API shows it. `orphaned`: anchored to a block or relation the projection
/// has marked deleted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Comment {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub author_id: Uuid,
    /// The author's full name, else email (for display).
    pub author_name: Option<String>,
    pub target_type: String,
    pub target_id: Uuid,
    pub parent_comment_id: Option<Uuid>,
    pub content: String,
    pub mentions: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by_id: Option<Uuid>,
    pub orphaned: bool,
}

/// Columns of [`Comment`] for a query over `comments c`.
const COMMENT_COLUMNS: &str = "c.id, c.workspace_id, c.author_id,
    (SELECT COALESCE(u.full_name, u.email) FROM users u WHERE u.id = c.author_id) AS author_name,
    c.target_type, c.target_id,
    c.parent_comment_id, c.content,
    ARRAY(SELECT m.user_id FROM comment_mentions m WHERE m.comment_id = c.id ORDER BY m.user_id)
      AS mentions,
    c.created_at, c.edited_at, c.resolved_at, c.resolved_by_id,
    CASE c.target_type
      WHEN 'BLOCK' THEN EXISTS (SELECT 1 FROM core_blocks b
        WHERE b.id = c.target_id AND b.workspace_id = c.workspace_id AND b.deleted_at IS NOT NULL)
      WHEN 'RELATION' THEN EXISTS (SELECT 1 FROM core_relations r
        WHERE r.id = c.target_id AND r.workspace_id = c.workspace_id AND r.deleted_at IS NOT NULL)
      ELSE FALSE END AS orphaned";

pub struct NewComment<'a> {
    pub org_id: Uuid,
    pub workspace_id: Uuid,
    /// `BLOCK`, `RELATION` or `WORKSPACE` (the caller validates; a reply takes its root's).
    pub target_type: &'a str,
    pub target_id: Uuid,
    pub parent_comment_id: Option<Uuid>,
    pub content: &'a str,
    /// Users to mention; the caller checked they are members of `org_id`.
    pub mentions: &'a [Uuid],
}

/// Filters of a comment list.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommentFilter {
    /// Only comments anchored to this block (threads and their replies).
    pub block_id: Option<Uuid>,
    /// Only threads whose root is (`true`) or is not (`false`) resolved.
    pub resolved: Option<bool>,
}

/// The live comment `id` of `workspace_id`.
pub async fn find(
    pool: &PgPool,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<Comment>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COMMENT_COLUMNS} FROM comments c
         WHERE c.workspace_id = $1 AND c.id = $2 AND c.deleted_at IS NULL"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

async fn find_in(
    conn: &mut PgConnection,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Comment, IamError> {
    sqlx::query_as(&format!(
        "SELECT {COMMENT_COLUMNS} FROM comments c
         WHERE c.workspace_id = $1 AND c.id = $2 AND c.deleted_at IS NULL"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(IamError::NotFound("comment"))
}

/// Creates a comment with its mentions (audited as `comment.created`).
pub async fn create(
    pool: &PgPool,
    new: NewComment<'_>,
    actor: &Actor<'_>,
) -> Result<Comment, IamError> {
    let mut tx = pool.begin().await?;
    let (id,): (Uuid,) = sqlx::query_as(
        "INSERT INTO comments
           (workspace_id, author_id, target_type, target_id, parent_comment_id, content)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(new.workspace_id)
    .bind(actor.user_id)
    .bind(new.target_type)
    .bind(new.target_id)
    .bind(new.parent_comment_id)
    .bind(new.content)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO comment_mentions (comment_id, user_id)
         SELECT $1, u FROM UNNEST($2::uuid[]) AS u ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(new.mentions)
    .execute(&mut *tx)
    .await?;
    let metadata = serde_json::json!({
        "workspace_id": new.workspace_id, "target_type": new.target_type,
        "target_id": new.target_id, "parent_comment_id": new.parent_comment_id,
        "mentions": new.mentions,
    });
    let entry = actor.entry(new.org_id, "comment.created", "comment", id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    let created = find_in(&mut tx, new.workspace_id, id).await?;
    tx.commit().await?;
    Ok(created)
}

/// One page of live comments of a workspace, oldest first, after the keyset `(created_at, id)`.
pub async fn list(
    pool: &PgPool,
    workspace_id: Uuid,
    filter: CommentFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Comment>, PersistenceError> {
    let (at, after_id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {COMMENT_COLUMNS} FROM comments c
         LEFT JOIN comments root ON root.id = c.parent_comment_id
         WHERE c.workspace_id = $1 AND c.deleted_at IS NULL
           AND ($2::uuid IS NULL OR (c.target_type = 'BLOCK' AND c.target_id = $2))
           AND ($3::bool IS NULL
                OR (COALESCE(root.resolved_at, c.resolved_at) IS NOT NULL) = $3)
           AND ($4::timestamptz IS NULL OR (c.created_at, c.id) > ($4, $5))
         ORDER BY c.created_at, c.id LIMIT $6"
    ))
    .bind(workspace_id)
    .bind(filter.block_id)
    .bind(filter.resolved)
    .bind(at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Live comment counts per block of a workspace (unresolved threads and their replies), for the
/// canvas badges.
pub async fn open_counts_by_block(
    pool: &PgPool,
    workspace_id: Uuid,
) -> Result<Vec<(Uuid, i64)>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT c.target_id, COUNT(*) FROM comments c
         LEFT JOIN comments root ON root.id = c.parent_comment_id
         WHERE c.workspace_id = $1 AND c.deleted_at IS NULL AND c.target_type = 'BLOCK'
           AND COALESCE(root.resolved_at, c.resolved_at) IS NULL
         GROUP BY c.target_id ORDER BY c.target_id",
    )
    .bind(workspace_id)
    .fetch_all(pool)
    .await?)
}

/// What a change to an existing comment does.
#[derive(Debug, Clone, Copy)]
pub enum CommentChange<'a> {
    Edit(&'a str),
    Delete,
    Resolve,
    Reopen,
}

impl CommentChange<'_> {
    fn action(&self) -> &'static str {
        match self {
            CommentChange::Edit(_) => "comment.updated",
            CommentChange::Delete => "comment.deleted",
            CommentChange::Resolve => "comment.resolved",
            CommentChange::Reopen => "comment.reopened",
        }
    }

    fn sql(&self) -> &'static str {
        match self {
            CommentChange::Edit(_) => {
                "UPDATE comments SET content = $3, edited_at = NOW()
                 WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
            }
            CommentChange::Delete => {
                "UPDATE comments SET deleted_at = NOW()
                 WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
            }
            CommentChange::Resolve => {
                "UPDATE comments SET resolved_at = COALESCE(resolved_at, NOW()),
                   resolved_by_id = COALESCE(resolved_by_id, $3::uuid)
                 WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
            }
            CommentChange::Reopen => {
                "UPDATE comments SET resolved_at = NULL, resolved_by_id = NULL
                 WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
            }
        }
    }
}

/// Applies `change` to the live comment `id` of `workspace_id` (audited as `comment.updated`,
/// `.deleted`, `.resolved` or `.reopened`). Returns the comment as it now reads (a deleted one as
/// it read just before). Who may make which change is the caller's decision.
pub async fn change(
    pool: &PgPool,
    org_id: Uuid,
    workspace_id: Uuid,
    id: Uuid,
    change: CommentChange<'_>,
    actor: &Actor<'_>,
) -> Result<Comment, IamError> {
    let mut tx = pool.begin().await?;
    let before = find_in(&mut tx, workspace_id, id).await?;
    let query = sqlx::query(change.sql()).bind(workspace_id).bind(id);
    let query = match change {
        CommentChange::Edit(content) => query.bind(content.to_string()),
        CommentChange::Resolve => query.bind(actor.user_id),
        CommentChange::Delete | CommentChange::Reopen => query,
    };
    query.execute(&mut *tx).await?;
    let metadata = serde_json::json!({ "workspace_id": workspace_id });
    let entry = actor.entry(org_id, change.action(), "comment", id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    let after = match change {
        CommentChange::Delete => before,
        _ => find_in(&mut tx, workspace_id, id).await?,
    };
    tx.commit().await?;
    Ok(after)
}

/// Which of `user_ids` are members of `org_id` with a live account, with their email and name
/// (for mention mails).
pub async fn members_among(
    pool: &PgPool,
    org_id: Uuid,
    user_ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT u.id, u.email FROM org_members m
         JOIN users u ON u.id = m.user_id AND u.deleted_at IS NULL
         WHERE m.org_id = $1 AND m.user_id = ANY($2) ORDER BY u.id",
    )
    .bind(org_id)
    .bind(user_ids)
    .fetch_all(pool)
    .await?)
}
