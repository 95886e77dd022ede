//! The migrations create the whole NOX schema with the constraints the seed names. Each test runs
//! against its own fresh database on a real PostgreSQL.

use nox_persistence::testing::fresh_database;
use sqlx::PgPool;
use uuid::Uuid;

const SEED_TABLES: [&str; 32] = [
    "users",
    "user_security",
    "user_mfa_backup_codes",
    "user_sessions",
    "social_identities",
    "organizations",
    "roles",
    "org_members",
    "invitations",
    "subscriptions",
    "org_usage_metrics",
    "api_keys",
    "warehouses",
    "asset_collections",
    "assets_block_templates",
    "assets_invader_definitions",
    "projects",
    "workspaces",
    "core_blocks",
    "block_invader_usages",
    "core_relations",
    "core_snapshots",
    "comments",
    "notes",
    "chat_rooms",
    "chat_messages",
    "files",
    "file_attachments",
    "audit_logs",
    "edit_locks",
    "feature_flags",
    "org_feature_overrides",
];

const SYNC_TABLES: [&str; 4] = [
    "workspace_update_log",
    "workspace_snapshots",
    "workspace_projection_status",
    "mail_outbox",
];

async fn user(pool: &PgPool, email: &str) -> Uuid {
    sqlx::query_scalar("INSERT INTO users (email) VALUES ($1) RETURNING id")
        .bind(email)
        .fetch_one(pool)
        .await
        .expect("insert user")
}

async fn org(pool: &PgPool, slug: &str) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO organizations (name, slug) VALUES ('Org', $1) RETURNING id")
        .bind(slug)
        .fetch_one(pool)
        .await
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[tokio::test]
async fn every_seed_table_and_sync_table_exists() {
    let db = fresh_database().await.expect("db");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&db.pool)
    .await
    .expect("tables");
    for table in SEED_TABLES.iter().chain(SYNC_TABLES.iter()) {
        assert!(tables.iter().any(|t| t == table), "missing table {table}");
    }
}

#[tokio::test]
async fn live_org_slug_is_unique_and_reusable_after_soft_delete() {
    let db = fresh_database().await.expect("db");
    let first = org(&db.pool, "acme").await.expect("first");
    let dup = org(&db.pool, "acme")
        .await
        .expect_err("duplicate live slug");
    assert!(is_unique_violation(&dup));
    sqlx::query("UPDATE organizations SET deleted_at = NOW() WHERE id = $1")
        .bind(first)
        .execute(&db.pool)
        .await
        .expect("soft delete");
    org(&db.pool, "acme")
        .await
        .expect("slug reusable after soft delete");
}

#[tokio::test]
async fn email_is_unique_case_insensitively_among_live_users() {
    let db = fresh_database().await.expect("db");
    let id = user(&db.pool, "Ada@Example.com").await;
    let dup = sqlx::query("INSERT INTO users (email) VALUES ('ada@example.com')")
        .execute(&db.pool)
        .await
        .expect_err("same email in another case");
    assert!(is_unique_violation(&dup));
    sqlx::query("UPDATE users SET deleted_at = NOW() WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .expect("soft delete");
    user(&db.pool, "ada@example.com").await;
}

#[tokio::test]
async fn one_pending_invitation_per_org_and_email() {
    let db = fresh_database().await.expect("db");
    let inviter = user(&db.pool, "owner@example.com").await;
    let org_id = org(&db.pool, "inv").await.expect("org");
    let role: Uuid =
        sqlx::query_scalar("INSERT INTO roles (org_id, name) VALUES ($1, 'Viewer') RETURNING id")
            .bind(org_id)
            .fetch_one(&db.pool)
            .await
            .expect("role");
    let invite = |token: &'static str, email: &'static str| {
        sqlx::query(
            "INSERT INTO invitations (email, org_id, role_id, token, invited_by_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, NOW() + INTERVAL '1 day')",
        )
        .bind(email)
        .bind(org_id)
        .bind(role)
        .bind(token)
        .bind(inviter)
        .execute(&db.pool)
    };
    invite("t1", "guest@example.com").await.expect("first");
    let dup = invite("t2", "Guest@example.com")
        .await
        .expect_err("second pending");
    assert!(is_unique_violation(&dup));
    sqlx::query("UPDATE invitations SET status = 'ACCEPTED'")
        .execute(&db.pool)
        .await
        .expect("accept");
    invite("t3", "guest@example.com")
        .await
        .expect("new pending once none is pending");
}

#[tokio::test]
async fn warehouse_owner_type_is_checked() {
    let db = fresh_database().await.expect("db");
    let err = sqlx::query("INSERT INTO warehouses (owner_id, owner_type) VALUES ($1, 'TEAM')")
        .bind(Uuid::new_v4())
        .execute(&db.pool)
        .await
        .expect_err("owner_type outside USER/ORG");
    assert!(matches!(&err, sqlx::Error::Database(e) if e.is_check_violation()));
}

#[tokio::test]
async fn deleting_a_user_cascades_to_sessions_and_security() {
    let db = fresh_database().await.expect("db");
    let id = user(&db.pool, "gone@example.com").await;
    sqlx::query("INSERT INTO user_security (user_id) VALUES ($1)")
        .bind(id)
        .execute(&db.pool)
        .await
        .expect("security");
    sqlx::query(
        "INSERT INTO user_sessions (user_id, refresh_token, expires_at) VALUES ($1, 'r', NOW())",
    )
    .bind(id)
    .execute(&db.pool)
    .await
    .expect("session");
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .expect("delete");
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM user_sessions) + (SELECT count(*) FROM user_security)",
    )
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!(left, 0);
}

#[tokio::test]
async fn workspace_delete_cascades_to_blocks_relations_and_log() {
    let db = fresh_database().await.expect("db");
    let owner = user(&db.pool, "w@example.com").await;
    let org_id = org(&db.pool, "w").await.expect("org");
    let project: Uuid = sqlx::query_scalar(
        "INSERT INTO projects (org_id, name, slug, created_by_id) VALUES ($1, 'P', 'p', $2) RETURNING id",
    )
    .bind(org_id)
    .bind(owner)
    .fetch_one(&db.pool)
    .await
    .expect("project");
    let ws: Uuid = sqlx::query_scalar(
        "INSERT INTO workspaces (project_id, name, type, created_by) VALUES ($1, 'W', 'CANVAS', $2) RETURNING id",
    )
    .bind(project)
    .bind(owner)
    .fetch_one(&db.pool)
    .await
    .expect("workspace");
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for id in [a, b] {
        sqlx::query(
            "INSERT INTO core_blocks (id, workspace_id, type, name) VALUES ($1, $2, 'NODE', 'n')",
        )
        .bind(id)
        .bind(ws)
        .execute(&db.pool)
        .await
        .expect("block");
    }
    sqlx::query(
        "INSERT INTO core_relations (workspace_id, source_block_id, target_block_id, type) VALUES ($1, $2, $3, 'LINK')",
    )
    .bind(ws)
    .bind(a)
    .bind(b)
    .execute(&db.pool)
    .await
    .expect("relation");
    let dup = sqlx::query(
        "INSERT INTO core_relations (workspace_id, source_block_id, target_block_id, type) VALUES ($1, $2, $3, 'LINK')",
    )
    .bind(ws)
    .bind(a)
    .bind(b)
    .execute(&db.pool)
    .await
    .expect_err("second live relation with the same endpoints");
    assert!(is_unique_violation(&dup));
    sqlx::query("INSERT INTO workspace_update_log (workspace_id, seq, update_bytes) VALUES ($1, 1, '\\x00')")
        .bind(ws)
        .execute(&db.pool)
        .await
        .expect("log");
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(project)
        .execute(&db.pool)
        .await
        .expect("delete project");
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM workspaces) + (SELECT count(*) FROM core_blocks)
              + (SELECT count(*) FROM core_relations) + (SELECT count(*) FROM workspace_update_log)",
    )
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!(left, 0);
}

#[tokio::test]
async fn updated_at_is_maintained_by_trigger() {
    let db = fresh_database().await.expect("db");
    let id = user(&db.pool, "t@example.com").await;
    sqlx::query("UPDATE users SET updated_at = NOW() - INTERVAL '1 day' WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .expect("backdate");
    sqlx::query("UPDATE users SET full_name = 'T' WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .expect("update");
    let fresh: bool = sqlx::query_scalar(
        "SELECT updated_at > NOW() - INTERVAL '1 minute' FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .expect("read");
    assert!(fresh);
}
