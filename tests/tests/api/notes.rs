//! Notes: private notes seen by their author only, shared ones by every member, CRUD on project
//! and workspace notes, bad input, tenancy and audit.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn private_and_shared_notes_honour_visibility() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, ws) = c.owner_with_workspace("nora").await;
    let editor = c.add_member(app.pool(), &owner, org, "ed", "Editor").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vi", "Viewer").await;

    let private = c
        .post(
            &format!("/api/v1/projects/{project}/notes"),
            &editor.token,
            json!({"title": "mine", "content": "todo"}),
        )
        .await;
    assert_eq!(private.status, StatusCode::CREATED, "{}", private.body);
    assert_eq!(private.body["visibility"], "PRIVATE");
    let shared = c
        .post(
            &format!("/api/v1/workspaces/{ws}/notes"),
            &editor.token,
            json!({"title": "team", "content": "plan", "visibility": "SHARED"}),
        )
        .await;
    assert_eq!(shared.status, StatusCode::CREATED, "{}", shared.body);
    assert_eq!(shared.body["owner_type"], "WORKSPACE");

    // Another member sees the shared note only; the private one is not found for them.
    let listed = c
        .get(&format!("/api/v1/projects/{project}/notes"), &owner.token)
        .await;
    assert!(listed.body["items"].as_array().unwrap().is_empty());
    let mine = c
        .get(&format!("/api/v1/projects/{project}/notes"), &editor.token)
        .await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    let private_path = format!("/api/v1/notes/{}", private.id());
    assert_eq!(
        c.get(&private_path, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    let hijack = c
        .patch(&private_path, &owner.token, json!({"content": "x"}))
        .await;
    assert_eq!(hijack.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.get(&private_path, &editor.token).await.status,
        StatusCode::OK
    );

    let shared_path = format!("/api/v1/notes/{}", shared.id());
    let ws_notes = c
        .get(&format!("/api/v1/workspaces/{ws}/notes"), &viewer.token)
        .await;
    assert_eq!(ws_notes.body["items"][0]["title"], "team");
    // A Viewer reads but does not write; an Editor may edit the shared text, not its visibility.
    let by_viewer = c
        .patch(&shared_path, &viewer.token, json!({"content": "x"}))
        .await;
    assert_eq!(by_viewer.status, StatusCode::FORBIDDEN);
    let other_editor = c.add_member(app.pool(), &owner, org, "ed2", "Editor").await;
    let edited = c
        .patch(
            &shared_path,
            &other_editor.token,
            json!({"content": "plan v2"}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["content"], "plan v2");
    let hide = c
        .patch(
            &shared_path,
            &other_editor.token,
            json!({"visibility": "PRIVATE"}),
        )
        .await;
    assert_eq!(hide.status, StatusCode::FORBIDDEN);
    assert_eq!(
        c.delete(&shared_path, &other_editor.token).await.status,
        StatusCode::FORBIDDEN
    );
    // The owner holds project:manage.
    assert_eq!(
        c.delete(&shared_path, &owner.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(&shared_path, &editor.token).await.status,
        StatusCode::NOT_FOUND
    );

    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_logs WHERE org_id = $1 AND action LIKE 'note.%'",
    )
    .bind(org)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(audited, 4, "2 created, 1 updated, 1 deleted");
}

#[tokio::test]
async fn bad_note_input_and_foreign_notes() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner_a, _org_a, project_a, _ws_a) = c.owner_with_workspace("ali").await;
    let (owner_b, _org_b, _project_b, _ws_b) = c.owner_with_workspace("bea").await;
    let path = format!("/api/v1/projects/{project_a}/notes");
    for body in [
        json!({"visibility": "PUBLIC"}),
        json!({"title": "x".repeat(256)}),
        json!({"title": 5}),
        json!({"owner_id": project_a}),
    ] {
        let reply = c.post(&path, &owner_a.token, body.clone()).await;
        assert!(reply.status.is_client_error(), "{body}: {}", reply.status);
        assert!(!reply.code().is_empty(), "{body}");
    }
    let shared = c
        .post(
            &path,
            &owner_a.token,
            json!({"title": "secret", "visibility": "SHARED"}),
        )
        .await;
    let note = format!("/api/v1/notes/{}", shared.id());
    for reply in [
        c.get(&note, &owner_b.token).await,
        c.patch(&note, &owner_b.token, json!({"title": "x"})).await,
        c.delete(&note, &owner_b.token).await,
        c.get(&path, &owner_b.token).await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert!(!reply.body.to_string().contains("secret"));
    }
}
