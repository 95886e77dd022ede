//! Subscriptions, quotas, usage and feature flags.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn subscription_and_usage() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _, _) = c.owner_with_workspace("sue").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vi", "Viewer").await;

    let sub = c
        .get(&format!("/api/v1/orgs/{org}/subscription"), &owner.token)
        .await;
    assert_eq!(sub.status, StatusCode::OK, "{}", sub.body);
    assert_eq!(sub.body["plan_id"], "free");
    assert_eq!(sub.body["quotas"]["max_projects"], 5);

    let usage = c
        .get(&format!("/api/v1/orgs/{org}/usage"), &owner.token)
        .await;
    assert_eq!(usage.status, StatusCode::OK);
    let used: Vec<(String, i64)> = usage.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["metric"].as_str().unwrap().into(),
                i["used"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        used,
        [
            ("projects".into(), 1),
            ("workspaces".into(), 1),
            ("members".into(), 2),
            ("storage_bytes".into(), 0)
        ]
    );

    for path in ["subscription", "usage"] {
        let denied = c
            .get(&format!("/api/v1/orgs/{org}/{path}"), &viewer.token)
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{path}");
    }
    let plans = c.get("/api/v1/plans", &viewer.token).await;
    assert_eq!(plans.body["items"].as_array().unwrap().len(), 3);

    let path = format!("/api/v1/orgs/{org}/subscription");
    let denied = c
        .put(&path, &viewer.token, json!({"plan_id": "team"}))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let invalid = c.put(&path, &owner.token, json!({"plan_id": "gold"})).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let team = c.put(&path, &owner.token, json!({"plan_id": "team"})).await;
    assert_eq!(team.status, StatusCode::OK, "{}", team.body);
    assert_eq!(team.body["quotas"]["max_projects"], 100);

    // On team, grow past the free plan; going back down is refused.
    for i in 0..5 {
        c.create_project(&owner, org, &format!("extra-{i}")).await;
    }
    let down = c.put(&path, &owner.token, json!({"plan_id": "free"})).await;
    assert_eq!(down.status, StatusCode::CONFLICT);
    assert_eq!(down.code(), "usage_exceeds_plan");
}

#[tokio::test]
async fn project_and_workspace_quotas_answer_402() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, _) = c.owner_with_workspace("quo").await;
    for i in 2..=5 {
        c.create_project(&owner, org, &format!("p{i}")).await;
    }
    let over = c
        .post(
            &format!("/api/v1/orgs/{org}/projects"),
            &owner.token,
            json!({"name": "six", "slug": "six"}),
        )
        .await;
    assert_eq!(over.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(over.code(), "quota_exceeded");
    assert!(over.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 5 projects"));
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM projects WHERE org_id = $1 AND deleted_at IS NULL")
            .bind(org)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(count, 5);

    // Deleting one frees a slot.
    let listed = c
        .get(&format!("/api/v1/orgs/{org}/projects"), &owner.token)
        .await;
    let last = listed.body["items"][4]["id"].as_str().unwrap().to_string();
    c.delete(&format!("/api/v1/projects/{last}"), &owner.token)
        .await;
    c.create_project(&owner, org, "six").await;

    sqlx::query(
        "UPDATE subscriptions SET quotas = jsonb_set(quotas, '{max_workspaces}', '1') WHERE org_id = $1",
    )
    .bind(org)
    .execute(app.pool())
    .await
    .unwrap();
    let ws = c
        .post(
            &format!("/api/v1/projects/{project}/workspaces"),
            &owner.token,
            json!({"name": "two", "type": "CANVAS"}),
        )
        .await;
    assert_eq!(ws.status, StatusCode::PAYMENT_REQUIRED);
    assert!(ws.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 1 workspaces"));
}

#[tokio::test]
async fn feature_flags_with_overrides() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("fay").await;
    let org = c.create_org(&owner, "fay-co").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vi", "Viewer").await;
    let base = format!("/api/v1/orgs/{org}/features");

    let flag = |body: &serde_json::Value, key: &str| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no flag {key}"))
    };
    let all = c.get(&base, &viewer.token).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(flag(&all.body, "canvas.relations")["value"], true);
    assert_eq!(flag(&all.body, "hocuspocus")["value"], true);

    let denied = c
        .put(
            &format!("{base}/hocuspocus"),
            &viewer.token,
            json!({"value": true}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let set = c
        .put(
            &format!("{base}/hocuspocus"),
            &owner.token,
            json!({"value": false}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["overridden"], true);
    let seen = c.get(&base, &viewer.token).await;
    assert_eq!(flag(&seen.body, "hocuspocus")["value"], false);
    assert_eq!(flag(&seen.body, "hocuspocus")["default_value"], true);

    // Values are typed: each flag takes only its own type.
    for (key, bad) in [
        ("hocuspocus", json!("yes")),
        ("canvas.relations", json!(1)),
        ("canvas.max_zoom", json!("lots")),
        ("canvas.max_zoom", json!(0)),
    ] {
        let refused = c
            .put(
                &format!("{base}/{key}"),
                &owner.token,
                json!({"value": bad}),
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{key}");
        assert_eq!(refused.body["error"]["fields"][0]["field"], "value");
    }
    let zoom = c
        .put(
            &format!("{base}/canvas.max_zoom"),
            &owner.token,
            json!({"value": 8}),
        )
        .await;
    assert_eq!(zoom.status, StatusCode::OK, "{}", zoom.body);

    let null = c
        .put(
            &format!("{base}/hocuspocus"),
            &owner.token,
            json!({"value": null}),
        )
        .await;
    assert_eq!(null.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = c
        .put(&format!("{base}/nope"), &owner.token, json!({"value": 1}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let cleared = c.delete(&format!("{base}/hocuspocus"), &owner.token).await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(cleared.body["overridden"], false);
    assert_eq!(cleared.body["value"], true);
}
