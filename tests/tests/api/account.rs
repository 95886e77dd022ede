//! The caller's own account (hardening items 4 and 5): deleting it keeps every organization
//! administrable and stops counting it; `PATCH /me`; sessions' `last_active_at`.

use nox_tests::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

async fn delete_me(app: &TestApp, user: &Session) -> nox_tests::http::Reply {
    app.client
        .delete_with("/api/v1/me", &user.token, json!({ "password": PASSWORD }))
        .await
}

async fn members_used(app: &TestApp, admin: &Session, org: Uuid) -> i64 {
    let usage = app
        .client
        .get(&format!("/api/v1/orgs/{org}/usage"), &admin.token)
        .await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.body);
    usage.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metric"] == "members")
        .and_then(|i| i["used"].as_i64())
        .unwrap_or_else(|| panic!("no members metric in {}", usage.body))
}

fn member_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_sole_owner_cannot_delete_the_account() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("solo").await;
    let org = c.create_org(&owner, "solo-co").await;
    let editor = c
        .add_member(app.pool(), &owner, org, "heir", "Editor")
        .await;

    let refused = delete_me(&app, &owner).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.code(), "last_owner");
    assert_eq!(
        refused.body["error"]["details"]["organizations"][0]["id"],
        org.to_string()
    );
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("solo-co"));
    // Nothing happened: the account and its session still work.
    assert_eq!(
        c.get("/api/v1/me", &owner.token).await.status,
        StatusCode::OK
    );

    // Once another member holds the owner role, the account can go.
    let owner_role = c.role_id(&owner, org, "Owner").await;
    let promoted = c
        .patch(
            &format!("/api/v1/orgs/{org}/members/{}", editor.user_id),
            &owner.token,
            json!({ "role_id": owner_role }),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    let gone = delete_me(&app, &owner).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);

    // The heir is now the sole owner in turn: refused as well.
    let heir_refused = delete_me(&app, &editor).await;
    assert_eq!(heir_refused.code(), "last_owner");
    // And cannot demote themselves below org:admin (the deleted owner does not count).
    let viewer_role = c.role_id(&editor, org, "Viewer").await;
    let demote = c
        .patch(
            &format!("/api/v1/orgs/{org}/members/{}", editor.user_id),
            &editor.token,
            json!({ "role_id": viewer_role }),
        )
        .await;
    assert_eq!(demote.status, StatusCode::CONFLICT, "{}", demote.body);
}

#[tokio::test]
async fn a_deleted_user_is_neither_listed_nor_counted() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("keeper").await;
    let org = c.create_org(&owner, "keeper-co").await;
    let leaver = c
        .add_member(app.pool(), &owner, org, "leaver", "Editor")
        .await;
    assert_eq!(members_used(&app, &owner, org).await, 2);

    let gone = delete_me(&app, &leaver).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);

    let members = c
        .get(&format!("/api/v1/orgs/{org}/members"), &owner.token)
        .await;
    assert_eq!(member_ids(&members.body), [owner.user_id.to_string()]);
    assert_eq!(members_used(&app, &owner, org).await, 1);
    // The role is held by nobody alive: its count says so and it can be deleted.
    let roles = c
        .get(&format!("/api/v1/orgs/{org}/roles"), &owner.token)
        .await;
    let editor = roles.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Editor")
        .unwrap()
        .clone();
    assert_eq!(editor["member_count"], 0, "{editor}");
    let deleted = c
        .delete(
            &format!(
                "/api/v1/orgs/{org}/roles/{}",
                editor["id"].as_str().unwrap()
            ),
            &owner.token,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);

    // The seat is free again under a two-member quota.
    sqlx::query(
        "UPDATE subscriptions SET quotas = jsonb_set(quotas, '{max_members}', '2') WHERE org_id = $1",
    )
    .bind(org)
    .execute(app.pool())
    .await
    .unwrap();
    c.add_member(app.pool(), &owner, org, "newcomer", "Viewer")
        .await;
    assert_eq!(members_used(&app, &owner, org).await, 2);
}
