//! Members: list, change role, remove, leave; the last owner rules.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn list_members_with_user_and_role() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("mia").await;
    let org = c.create_org(&owner, "mia-co").await;
    let editor = c.add_member(app.pool(), &owner, org, "ned", "Editor").await;
    let base = format!("/api/v1/orgs/{org}/members");

    let all = c.get(&base, &editor.token).await;
    assert_eq!(all.status, StatusCode::OK);
    let items = all.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["email"], owner.email);
    assert_eq!(items[0]["role_name"], "Owner");
    assert_eq!(items[0]["full_name"], "mia");
    assert_eq!(items[1]["role_name"], "Editor");
    assert_eq!(items[1]["invited_by"], owner.user_id.to_string());

    let first = c.get(&format!("{base}?limit=1"), &owner.token).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = c
        .get(&format!("{base}?limit=1&cursor={cursor}"), &owner.token)
        .await;
    assert_eq!(
        second.body["items"][0]["user_id"],
        editor.user_id.to_string()
    );
    assert!(second.body["next_cursor"].is_null());
}

#[tokio::test]
async fn change_role_rules() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("lou").await;
    let org = c.create_org(&owner, "lou-co").await;
    let editor = c.add_member(app.pool(), &owner, org, "ed", "Editor").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vi", "Viewer").await;
    let admin_role = c.role_id(&owner, org, "Admin").await;
    let viewer_role = c.role_id(&owner, org, "Viewer").await;
    let member = |id: Uuid| format!("/api/v1/orgs/{org}/members/{id}");

    let promoted = c
        .patch(
            &member(editor.user_id),
            &owner.token,
            json!({ "role_id": admin_role }),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(promoted.body["role_name"], "Admin");

    let unknown_role = c
        .patch(
            &member(editor.user_id),
            &owner.token,
            json!({ "role_id": Uuid::new_v4() }),
        )
        .await;
    assert_eq!(unknown_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    let other = c.register("zed").await;
    let other_org = c.create_org(&other, "zed-co").await;
    let foreign_role = c.role_id(&other, other_org, "Admin").await;
    let foreign = c
        .patch(
            &member(editor.user_id),
            &owner.token,
            json!({ "role_id": foreign_role }),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);
    let malformed = c
        .patch(
            &member(editor.user_id),
            &owner.token,
            json!({ "role_id": "nope" }),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let nobody = c
        .patch(
            &member(Uuid::new_v4()),
            &owner.token,
            json!({ "role_id": viewer_role }),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);

    let denied = c
        .patch(
            &member(editor.user_id),
            &viewer.token,
            json!({ "role_id": viewer_role }),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    // An Admin (members:manage, no org:admin) cannot touch the Owner.
    let demote_owner = c
        .patch(
            &member(owner.user_id),
            &editor.token,
            json!({ "role_id": viewer_role }),
        )
        .await;
    assert_eq!(demote_owner.status, StatusCode::FORBIDDEN);

    // The last owner cannot demote themselves.
    let last = c
        .patch(
            &member(owner.user_id),
            &owner.token,
            json!({ "role_id": viewer_role }),
        )
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert_eq!(last.code(), "last_owner");
}

#[tokio::test]
async fn remove_and_leave() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("kim").await;
    let org = c.create_org(&owner, "kim-co").await;
    let admin = c.add_member(app.pool(), &owner, org, "al", "Admin").await;
    let editor = c.add_member(app.pool(), &owner, org, "ed", "Editor").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vi", "Viewer").await;
    let member = |id: Uuid| format!("/api/v1/orgs/{org}/members/{id}");

    let denied = c.delete(&member(editor.user_id), &viewer.token).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let not_owner = c.delete(&member(owner.user_id), &admin.token).await;
    assert_eq!(not_owner.status, StatusCode::FORBIDDEN);

    assert_eq!(
        c.delete(&member(editor.user_id), &admin.token).await.status,
        StatusCode::NO_CONTENT
    );
    let gone = c.get(&format!("/api/v1/orgs/{org}"), &editor.token).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.delete(&member(editor.user_id), &admin.token).await.status,
        StatusCode::NOT_FOUND
    );
    // Anyone may leave.
    assert_eq!(
        c.delete(&member(viewer.user_id), &viewer.token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // ... except the last owner.
    let last = c.delete(&member(owner.user_id), &owner.token).await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert_eq!(last.code(), "last_owner");

    let (members,): (i64,) = sqlx::query_as(
        "SELECT current_value FROM org_usage_metrics WHERE org_id = $1 AND metric_type = 'members'",
    )
    .bind(org)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(members, 2, "usage follows removals");

    // With a second owner, the first may leave.
    let owner_role = c.role_id(&owner, org, "Owner").await;
    let crowned = c
        .patch(
            &member(admin.user_id),
            &owner.token,
            json!({ "role_id": owner_role }),
        )
        .await;
    assert_eq!(crowned.status, StatusCode::OK);
    assert_eq!(
        c.delete(&member(owner.user_id), &owner.token).await.status,
        StatusCode::NO_CONTENT
    );
}
