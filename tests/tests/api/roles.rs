//! Roles: CRUD, the permission vocabulary, the protected Owner role, no privilege escalation.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn role_crud_and_validation() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("rita").await;
    let org = c.create_org(&owner, "rita-co").await;
    let base = format!("/api/v1/orgs/{org}/roles");

    let listed = c.get(&base, &owner.token).await;
    assert_eq!(listed.status, StatusCode::OK);
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Admin", "Editor", "Owner", "Viewer"]);
    assert_eq!(listed.body["items"][2]["member_count"], 1);

    let created = c
        .post(
            &base,
            &owner.token,
            json!({"name": "Reviewer", "permissions": ["workspace:write", "workspace:read", "workspace:read"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body["permissions"],
        json!(["workspace:read", "workspace:write"])
    );
    let role = created.id();

    let bad = c
        .post(
            &base,
            &owner.token,
            json!({"name": "", "permissions": ["workspace:read", "root", "x:y"]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = bad.body["error"]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 2);
    assert!(fields[1]["message"].as_str().unwrap().contains("root, x:y"));

    let dup = c
        .post(
            &base,
            &owner.token,
            json!({"name": "Reviewer", "permissions": []}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "role_name_taken");

    let path = format!("{base}/{role}");
    let updated = c
        .patch(
            &path,
            &owner.token,
            json!({"name": "Commenter", "permissions": ["workspace:read"]}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["name"], "Commenter");
    let bad_patch = c
        .patch(&path, &owner.token, json!({"permissions": ["nope"]}))
        .await;
    assert_eq!(bad_patch.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A role in use cannot be deleted.
    let member = c
        .add_member(app.pool(), &owner, org, "mo", "Commenter")
        .await;
    let in_use = c.delete(&path, &owner.token).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);
    assert_eq!(in_use.code(), "role_in_use");
    let viewer_role = c.role_id(&owner, org, "Viewer").await;
    let moved = c
        .patch(
            &format!("/api/v1/orgs/{org}/members/{}", member.user_id),
            &owner.token,
            json!({ "role_id": viewer_role }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    assert_eq!(
        c.delete(&path, &owner.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.delete(&path, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );

    // Members without roles:manage may read roles but not change them.
    assert_eq!(c.get(&base, &member.token).await.status, StatusCode::OK);
    let denied = c
        .post(
            &base,
            &member.token,
            json!({"name": "Mine", "permissions": []}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_owner_role_is_protected() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("otto").await;
    let org = c.create_org(&owner, "otto-co").await;
    let owner_role = c.role_id(&owner, org, "Owner").await;
    let path = format!("/api/v1/orgs/{org}/roles/{owner_role}");

    let strip = c
        .patch(
            &path,
            &owner.token,
            json!({"permissions": ["workspace:read"]}),
        )
        .await;
    assert_eq!(strip.status, StatusCode::CONFLICT);
    assert_eq!(strip.code(), "owner_role_protected");
    let rename = c.patch(&path, &owner.token, json!({"name": "Boss"})).await;
    assert_eq!(rename.code(), "owner_role_protected");
    let delete = c.delete(&path, &owner.token).await;
    assert_eq!(delete.code(), "owner_role_protected");
    // Narrowing the Owner role while keeping org:admin is fine.
    let narrowed = c
        .patch(
            &path,
            &owner.token,
            json!({"permissions": ["org:admin", "members:manage"]}),
        )
        .await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.body);
}

#[tokio::test]
async fn no_role_change_leaves_the_org_without_org_admin() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("bess").await;
    let org = c.create_org(&owner, "bess-co").await;
    let boss = c
        .post(
            &format!("/api/v1/orgs/{org}/roles"),
            &owner.token,
            json!({"name": "Boss", "permissions": ["org:admin", "members:manage", "roles:manage"]}),
        )
        .await;
    let boss = boss.id();
    let moved = c
        .patch(
            &format!("/api/v1/orgs/{org}/members/{}", owner.user_id),
            &owner.token,
            json!({ "role_id": boss }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let strip = c
        .patch(
            &format!("/api/v1/orgs/{org}/roles/{boss}"),
            &owner.token,
            json!({"permissions": ["members:manage", "roles:manage"]}),
        )
        .await;
    assert_eq!(strip.status, StatusCode::CONFLICT);
    assert_eq!(strip.code(), "last_owner");
    let (perms,): (Vec<String>,) = sqlx::query_as("SELECT permissions FROM roles WHERE id = $1")
        .bind(boss)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(perms.contains(&"org:admin".to_string()), "rolled back");
}

#[tokio::test]
async fn nobody_grants_permissions_they_do_not_hold() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("ada").await;
    let org = c.create_org(&owner, "ada-co").await;
    let admin = c.add_member(app.pool(), &owner, org, "adam", "Admin").await;
    let base = format!("/api/v1/orgs/{org}/roles");

    let escalate = c
        .post(
            &base,
            &admin.token,
            json!({"name": "Root", "permissions": ["org:admin"]}),
        )
        .await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN);
    let owner_role = c.role_id(&owner, org, "Owner").await;
    let edit_owner = c
        .patch(
            &format!("{base}/{owner_role}"),
            &admin.token,
            json!({"permissions": ["org:admin"]}),
        )
        .await;
    assert_eq!(edit_owner.status, StatusCode::FORBIDDEN);
    let fine = c
        .post(
            &base,
            &admin.token,
            json!({"name": "Helper", "permissions": ["workspace:write"]}),
        )
        .await;
    assert_eq!(fine.status, StatusCode::CREATED, "{}", fine.body);
}
