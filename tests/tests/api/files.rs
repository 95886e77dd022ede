//! Files: upload → attach → download round trip, sniffed types and cleaned names, plan limits,
//! bad multipart bodies, permissions and tenancy.

use nox_tests::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// The PNG signature and a little more: enough for the sniffer.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake image body";
const BOUNDARY: &str = "nox-test-boundary";

/// A `multipart/form-data` body with one part.
fn multipart(field: &str, file_name: &str, client_type: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"{file_name}\"\r\nContent-Type: {client_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

struct Raw {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

async fn send_body(
    app: &TestApp,
    token: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Raw {
    let reply = reqwest::Client::new()
        .post(format!("{}{path}", app.client.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    Raw {
        status: reply.status(),
        headers: reply.headers().clone(),
        bytes: reply.bytes().await.unwrap().to_vec(),
    }
}

async fn upload(
    app: &TestApp,
    session: &Session,
    project: Uuid,
    name: &str,
    content: &[u8],
) -> Raw {
    send_body(
        app,
        &session.token,
        &format!("/api/v1/projects/{project}/files"),
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        multipart("file", name, "text/html", content),
    )
    .await
}

async fn download(app: &TestApp, session: &Session, path: &str) -> Raw {
    let reply = reqwest::Client::new()
        .get(format!("{}{path}", app.client.base))
        .bearer_auth(&session.token)
        .send()
        .await
        .unwrap();
    Raw {
        status: reply.status(),
        headers: reply.headers().clone(),
        bytes: reply.bytes().await.unwrap().to_vec(),
    }
}

fn header<'a>(raw: &'a Raw, name: &str) -> &'a str {
    raw.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn upload_attach_download_round_trip() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, ws) = c.owner_with_workspace("fay").await;

    // The client claims HTML and a path; the server sniffs PNG and keeps only the name.
    let uploaded = upload(&app, &owner, project, "../../etc/evil.html", PNG).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.json());
    let file = uploaded.json();
    assert_eq!(file["mime_type"], "image/png");
    assert_eq!(file["file_name"], "evil.html");
    assert_eq!(file["file_size"], PNG.len());
    let checksum = file["checksum_sha256"].as_str().unwrap().to_string();
    assert_eq!(checksum.len(), 64);
    let file_id = file["id"].as_str().unwrap();
    let base = format!("/api/v1/projects/{project}/files/{file_id}");

    // Attach to a block and to a comment of the project.
    let block = c
        .post(
            &format!("/api/v1/workspaces/{ws}/blocks"),
            &owner.token,
            json!({"type": "NODE", "name": "with file"}),
        )
        .await;
    let block_id = block.body["id"].as_str().unwrap();
    let on_block = c
        .post(
            &format!("{base}/attachments"),
            &owner.token,
            json!({"target_type": "BLOCK", "target_id": block_id, "workspace_id": ws}),
        )
        .await;
    assert_eq!(on_block.status, StatusCode::CREATED, "{}", on_block.body);
    let again = c
        .post(
            &format!("{base}/attachments"),
            &owner.token,
            json!({"target_type": "BLOCK", "target_id": block_id, "workspace_id": ws}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "already_attached");
    let comment = c
        .post(
            &format!("/api/v1/workspaces/{ws}/comments"),
            &owner.token,
            json!({"content": "see attached"}),
        )
        .await;
    let on_comment = c
        .post(
            &format!("{base}/attachments"),
            &owner.token,
            json!({"target_type": "COMMENT", "target_id": comment.id()}),
        )
        .await;
    assert_eq!(
        on_comment.status,
        StatusCode::CREATED,
        "{}",
        on_comment.body
    );
    assert_eq!(on_comment.body["workspace_id"], ws.to_string());
    let room = c
        .get(&format!("/api/v1/workspaces/{ws}/chat-room"), &owner.token)
        .await
        .id();
    let message = c
        .post(
            &format!("/api/v1/chat-rooms/{room}/messages"),
            &owner.token,
            json!({"content": "file attached"}),
        )
        .await;
    let on_message = c
        .post(
            &format!("{base}/attachments"),
            &owner.token,
            json!({"target_type": "CHAT_MESSAGE", "target_id": message.id()}),
        )
        .await;
    assert_eq!(
        on_message.status,
        StatusCode::CREATED,
        "{}",
        on_message.body
    );
    let detached = c
        .delete(
            &format!("{base}/attachments/{}", on_message.id()),
            &owner.token,
        )
        .await;
    assert_eq!(detached.status, StatusCode::NO_CONTENT);
    let listed = c.get(&format!("{base}/attachments"), &owner.token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    let on_that_block = c
        .get(
            &format!(
                "/api/v1/projects/{project}/attachments?target_type=BLOCK&target_id={block_id}"
            ),
            &owner.token,
        )
        .await;
    assert_eq!(
        on_that_block.status,
        StatusCode::OK,
        "{}",
        on_that_block.body
    );
    assert_eq!(on_that_block.body["items"][0]["file_id"], file_id);
    assert_eq!(on_that_block.body["items"][0]["file_name"], "evil.html");
    let bad_filter = c
        .get(
            &format!(
                "/api/v1/projects/{project}/attachments?target_type=PAGE&target_id={block_id}"
            ),
            &owner.token,
        )
        .await;
    assert_eq!(bad_filter.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Download: same bytes, sniffed type, attachment disposition, no sniffing by browsers.
    let got = download(&app, &owner, &format!("{base}/content")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.bytes, PNG);
    assert_eq!(header(&got, "content-type"), "image/png");
    assert_eq!(header(&got, "x-content-type-options"), "nosniff");
    assert!(header(&got, "content-disposition").starts_with("attachment; filename=\"evil.html\""));
    assert_eq!(header(&got, "etag"), format!("\"{checksum}\""));
    // The store holds it under its checksum, nowhere near the client's path.
    let stored: String = sqlx::query_scalar("SELECT storage_path FROM files WHERE id = $1")
        .bind(Uuid::parse_str(file_id).unwrap())
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, format!("{}/{}", &checksum[..2], &checksum[2..]));

    // Detach, then usage counts the bytes until the file is deleted.
    let attachment = on_block.body["id"].as_str().unwrap();
    let detached = c
        .delete(&format!("{base}/attachments/{attachment}"), &owner.token)
        .await;
    assert_eq!(detached.status, StatusCode::NO_CONTENT);
    let listed = c.get(&format!("{base}/attachments"), &owner.token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let usage = c
        .get(&format!("/api/v1/orgs/{org}/usage"), &owner.token)
        .await;
    let storage = usage.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metric"] == "storage_bytes")
        .cloned()
        .unwrap();
    assert_eq!(storage["used"], PNG.len());
    assert_eq!(
        c.delete(&base, &owner.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        download(&app, &owner, &format!("{base}/content"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_logs WHERE org_id = $1 AND action LIKE 'file.%' ORDER BY created_at",
    )
    .bind(org)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "file.uploaded",
            "file.attached",
            "file.attached",
            "file.attached",
            "file.detached",
            "file.detached",
            "file.deleted"
        ]
    );
}

#[tokio::test]
async fn plan_limits_refuse_large_files_and_full_storage() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, _ws) = c.owner_with_workspace("lim").await;
    sqlx::query(
        "UPDATE subscriptions SET quotas = quotas || '{\"max_file_bytes\": 10, \"max_storage_bytes\": 15}'
         WHERE org_id = $1",
    )
    .bind(org)
    .execute(app.pool())
    .await
    .unwrap();
    let big = upload(&app, &owner, project, "big.txt", b"01234567890").await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(big.json()["error"]["code"], "file_too_large");
    let first = upload(&app, &owner, project, "a.txt", b"0123456789").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json());
    assert_eq!(first.json()["mime_type"], "text/plain; charset=utf-8");
    let second = upload(&app, &owner, project, "b.txt", b"abcdefghij").await;
    assert_eq!(second.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(second.json()["error"]["code"], "quota_exceeded");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM files WHERE project_id = $1")
        .bind(project)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn bad_uploads_and_attachments_are_json_4xx() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, ws) = c.owner_with_workspace("bad").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vic", "Viewer").await;
    let path = format!("/api/v1/projects/{project}/files");
    let multipart_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        ("application/json", b"{}".to_vec(), StatusCode::BAD_REQUEST),
        (
            "multipart/form-data",
            b"no boundary".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            &multipart_type,
            b"--garbage".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            &multipart_type,
            multipart("other", "x.txt", "text/plain", b"x"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (content_type, body, status) in cases {
        let reply = send_body(&app, &owner.token, &path, content_type, body).await;
        assert_eq!(reply.status, status, "{content_type}: {}", reply.json());
        assert!(reply.json()["error"]["code"].is_string(), "{content_type}");
    }
    let denied = upload(&app, &viewer, project, "v.txt", b"hi").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let file = upload(&app, &owner, project, "ok.txt", b"hello")
        .await
        .json();
    let base = format!("{path}/{}", file["id"].as_str().unwrap());
    let attach_cases = [
        (
            json!({"target_type": "PAGE", "target_id": Uuid::new_v4()}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"target_type": "BLOCK", "target_id": Uuid::new_v4()}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"target_type": "BLOCK", "target_id": Uuid::new_v4(), "workspace_id": ws}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"target_type": "COMMENT", "target_id": Uuid::new_v4()}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"target_type": "COMMENT"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in attach_cases {
        let reply = c
            .post(&format!("{base}/attachments"), &owner.token, body.clone())
            .await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert!(!reply.code().is_empty());
    }
    // The Viewer may read and download, not delete.
    assert_eq!(
        download(&app, &viewer, &format!("{base}/content"))
            .await
            .bytes,
        b"hello"
    );
    assert_eq!(
        c.delete(&base, &viewer.token).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn another_orgs_files_and_targets_are_not_found() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner_a, _org_a, project_a, ws_a) = c.owner_with_workspace("amy").await;
    let (owner_b, _org_b, project_b, _ws_b) = c.owner_with_workspace("bill").await;
    let file_a = upload(&app, &owner_a, project_a, "a.txt", b"secret")
        .await
        .json();
    let id_a = file_a["id"].as_str().unwrap();
    let file_b = upload(&app, &owner_b, project_b, "b.txt", b"mine")
        .await
        .json();
    let id_b = file_b["id"].as_str().unwrap();
    for path in [
        format!("/api/v1/projects/{project_a}/files/{id_a}/content"),
        format!("/api/v1/projects/{project_b}/files/{id_a}/content"),
        format!("/api/v1/projects/{project_a}/files/{id_a}"),
        format!("/api/v1/projects/{project_a}/files"),
    ] {
        let reply = download(&app, &owner_b, &path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!String::from_utf8_lossy(&reply.bytes).contains("secret"));
    }
    // B cannot attach its file to A's comment or A's block.
    let comment_a = c
        .post(
            &format!("/api/v1/workspaces/{ws_a}/comments"),
            &owner_a.token,
            json!({"content": "a"}),
        )
        .await;
    for body in [
        json!({"target_type": "COMMENT", "target_id": comment_a.id()}),
        json!({"target_type": "BLOCK", "target_id": Uuid::new_v4(), "workspace_id": ws_a}),
    ] {
        let reply = c
            .post(
                &format!("/api/v1/projects/{project_b}/files/{id_b}/attachments"),
                &owner_b.token,
                body.clone(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{body}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn uploads_above_the_global_body_limit_stream_through() {
    let app = TestApp::spawn().await;
    let (owner, _org, project, _ws) = app.client.owner_with_workspace("big").await;
    // 5 MiB: above the 1 MiB limit of every other route, within the Free plan's 10 MiB.
    let content: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let started = std::time::Instant::now();
    let uploaded = upload(&app, &owner, project, "blob.bin", &content).await;
    let took = started.elapsed();
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.json());
    assert_eq!(uploaded.json()["file_size"], content.len());
    assert_eq!(uploaded.json()["mime_type"], "application/octet-stream");
    let id = uploaded.json()["id"].as_str().unwrap().to_string();
    let got = download(
        &app,
        &owner,
        &format!("/api/v1/projects/{project}/files/{id}/content"),
    )
    .await;
    assert!(got.bytes == content, "the downloaded bytes differ");
    eprintln!("5 MiB upload took {took:?}");
    // Every other route keeps the 1 MiB limit.
    let json_too_big = app
        .client
        .post(
            &format!("/api/v1/projects/{project}/notes"),
            &owner.token,
            serde_json::json!({"content": "x".repeat(2 * 1024 * 1024)}),
        )
        .await;
    assert_eq!(json_too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
}
