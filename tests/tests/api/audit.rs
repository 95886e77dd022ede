//! The audit log: every admin action leaves a row (with actor, target, IP); the listing filters and
//! pages, and needs `audit:read`.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn every_admin_action_is_audited() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, workspace) = c.owner_with_workspace("aud").await;
    let o = |p: &str| format!("/api/v1/orgs/{org}{p}");

    c.patch(&o(""), &owner.token, json!({"name": "Audited"}))
        .await;
    c.patch(
        &format!("/api/v1/projects/{project}"),
        &owner.token,
        json!({"name": "P"}),
    )
    .await;
    c.patch(
        &format!("/api/v1/workspaces/{workspace}"),
        &owner.token,
        json!({"name": "W"}),
    )
    .await;
    c.delete(&format!("/api/v1/workspaces/{workspace}"), &owner.token)
        .await;
    let role = c
        .post(
            &o("/roles"),
            &owner.token,
            json!({"name": "Temp", "permissions": []}),
        )
        .await
        .id();
    c.patch(
        &o(&format!("/roles/{role}")),
        &owner.token,
        json!({"name": "Temp2"}),
    )
    .await;
    c.delete(&o(&format!("/roles/{role}")), &owner.token).await;
    let member = c.add_member(app.pool(), &owner, org, "mem", "Viewer").await;
    let editor = c.role_id(&owner, org, "Editor").await;
    c.patch(
        &o(&format!("/members/{}", member.user_id)),
        &owner.token,
        json!({ "role_id": editor }),
    )
    .await;
    c.delete(&o(&format!("/members/{}", member.user_id)), &owner.token)
        .await;
    let inv = c.invite(&owner, org, "later@example.com", "Viewer").await;
    c.post(
        &o(&format!("/invitations/{inv}/resend")),
        &owner.token,
        json!({}),
    )
    .await;
    c.delete(&o(&format!("/invitations/{inv}")), &owner.token)
        .await;
    c.put(
        &o("/subscription"),
        &owner.token,
        json!({"plan_id": "team"}),
    )
    .await;
    c.put(
        &o("/features/hocuspocus"),
        &owner.token,
        json!({"value": true}),
    )
    .await;
    c.delete(&o("/features/hocuspocus"), &owner.token).await;
    c.delete(&format!("/api/v1/projects/{project}"), &owner.token)
        .await;
    c.delete(&o(""), &owner.token).await;

    let rows: Vec<(String, Uuid, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_id, target_type, ip_address FROM audit_logs
         WHERE org_id = $1 ORDER BY created_at, id",
    )
    .bind(org)
    .fetch_all(app.pool())
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    for expected in [
        "org.created",
        "project.created",
        "workspace.created",
        "org.updated",
        "project.updated",
        "workspace.updated",
        "workspace.deleted",
        "role.created",
        "role.updated",
        "role.deleted",
        "invitation.created",
        "invitation.accepted",
        "member.role_changed",
        "member.removed",
        "invitation.resent",
        "invitation.revoked",
        "subscription.changed",
        "feature.overridden",
        "feature.override_cleared",
        "project.deleted",
        "org.deleted",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    for (action, actor, target_type, ip) in &rows {
        assert!(target_type.is_some(), "{action} has a target");
        assert_eq!(
            ip.as_deref(),
            Some("127.0.0.1"),
            "{action} has the client IP"
        );
        let expected_actor = if action == "invitation.accepted" {
            member.user_id
        } else {
            owner.user_id
        };
        assert_eq!(*actor, expected_actor, "{action} actor");
    }
}

#[tokio::test]
async fn audit_log_listing_filters_and_pages() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _, _) = c.owner_with_workspace("lister").await;
    let admin = c.add_member(app.pool(), &owner, org, "adm", "Admin").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vie", "Viewer").await;
    c.create_project(&admin, org, "by-admin").await;
    let base = format!("/api/v1/orgs/{org}/audit-logs");

    let all = c.get(&base, &admin.token).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let items = all.body["items"].as_array().unwrap();
    assert!(items.len() >= 7, "{items:?}");
    assert_eq!(items[0]["action"], "project.created", "newest first");

    let by_action = c
        .get(&format!("{base}?action=project.created"), &owner.token)
        .await;
    assert_eq!(by_action.body["items"].as_array().unwrap().len(), 2);
    let by_actor = c
        .get(
            &format!("{base}?action=project.created&actor_id={}", admin.user_id),
            &owner.token,
        )
        .await;
    assert_eq!(by_actor.body["items"].as_array().unwrap().len(), 1);
    let by_type = c
        .get(&format!("{base}?target_type=invitation"), &owner.token)
        .await;
    assert_eq!(by_type.body["items"].as_array().unwrap().len(), 4);
    let future = c
        .get(&format!("{base}?since=2999-01-01T00:00:00Z"), &owner.token)
        .await;
    assert!(future.body["items"].as_array().unwrap().is_empty());
    let past = c
        .get(&format!("{base}?until=2000-01-01T00:00:00Z"), &owner.token)
        .await;
    assert!(past.body["items"].as_array().unwrap().is_empty());
    let bad_range = c
        .get(
            &format!("{base}?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z"),
            &owner.token,
        )
        .await;
    assert_eq!(bad_range.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_date = c
        .get(&format!("{base}?since=yesterday"), &owner.token)
        .await;
    assert_eq!(bad_date.status, StatusCode::BAD_REQUEST);

    // Pages of 3 cover everything exactly once.
    let mut seen = Vec::new();
    let mut path = format!("{base}?limit=3");
    loop {
        let page = c.get(&path, &owner.token).await;
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(cur) => path = format!("{base}?limit=3&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), items.len());

    let denied = c.get(&base, &viewer.token).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}
