//! The update log against a real PostgreSQL: group commit across workspaces is all or nothing.

use nox_persistence::testing::fresh_database;
use nox_persistence::update_log::{self, NewLogEntry};
use sqlx::PgPool;
use uuid::Uuid;

/// A workspace (with the user, org and project it needs); returns (workspace, user).
async fn workspace(pool: &PgPool, slug: &str) -> (Uuid, Uuid) {
    let user: Uuid = sqlx::query_scalar("INSERT INTO users (email) VALUES ($1) RETURNING id")
        .bind(format!("{slug}@example.com"))
        .fetch_one(pool)
        .await
        .expect("user");
    let org: Uuid =
        sqlx::query_scalar("INSERT INTO organizations (name, slug) VALUES ('O', $1) RETURNING id")
            .bind(slug)
            .fetch_one(pool)
            .await
            .expect("org");
    let project: Uuid = sqlx::query_scalar(
        "INSERT INTO projects (org_id, name, slug, created_by_id) VALUES ($1, 'P', 'p', $2) RETURNING id",
    )
    .bind(org)
    .bind(user)
    .fetch_one(pool)
    .await
    .expect("project");
    let ws = sqlx::query_scalar(
        "INSERT INTO workspaces (project_id, name, type, created_by) VALUES ($1, 'W', 'CANVAS', $2) RETURNING id",
    )
    .bind(project)
    .bind(user)
    .fetch_one(pool)
    .await
    .expect("workspace");
    (ws, user)
}

fn entries(seqs: std::ops::RangeInclusive<i64>, user: Uuid, tag: u8) -> Vec<NewLogEntry> {
    seqs.map(|seq| NewLogEntry {
        seq,
        update: vec![tag, seq as u8],
        user_id: Some(user),
    })
    .collect()
}

#[tokio::test]
async fn one_statement_appends_the_batches_of_several_workspaces() {
    let db = fresh_database().await.expect("db");
    let (a, user_a) = workspace(&db.pool, "a").await;
    let (b, user_b) = workspace(&db.pool, "b").await;
    let (for_a, for_b) = (entries(1..=3, user_a, 0xA), entries(1..=2, user_b, 0xB));
    update_log::append_many(&db.pool, &[(a, &for_a), (b, &for_b)])
        .await
        .expect("append");

    let stored_a = update_log::load(&db.pool, a).await.expect("load a");
    let stored_b = update_log::load(&db.pool, b).await.expect("load b");
    let expected_a: Vec<(i64, Vec<u8>)> = (1..=3).map(|s| (s, vec![0xA, s as u8])).collect();
    let expected_b: Vec<(i64, Vec<u8>)> = (1..=2).map(|s| (s, vec![0xB, s as u8])).collect();
    assert_eq!(stored_a.log, expected_a);
    assert_eq!(stored_b.log, expected_b);
    assert_eq!(stored_a.next_seq(), 4);
    let authors: Vec<Option<Uuid>> =
        sqlx::query_scalar("SELECT user_id FROM workspace_update_log WHERE workspace_id = $1")
            .bind(b)
            .fetch_all(&db.pool)
            .await
            .expect("authors");
    assert_eq!(authors, vec![Some(user_b); 2]);
}

#[tokio::test]
async fn a_conflicting_batch_writes_nothing_for_any_workspace() {
    let db = fresh_database().await.expect("db");
    let (a, user_a) = workspace(&db.pool, "a").await;
    let (b, user_b) = workspace(&db.pool, "b").await;
    update_log::append(&db.pool, b, &entries(1..=1, user_b, 0xB))
        .await
        .expect("first append");

    // b's seq 1 exists already: the whole statement fails, a's entries included.
    let (for_a, for_b) = (entries(1..=2, user_a, 0xA), entries(1..=2, user_b, 0xB));
    let failed = update_log::append_many(&db.pool, &[(a, &for_a), (b, &for_b)]).await;
    assert!(failed.is_err(), "a duplicate seq must fail the statement");
    assert!(update_log::load(&db.pool, a).await.expect("a").is_empty());
    assert_eq!(update_log::load(&db.pool, b).await.expect("b").log.len(), 1);
}
