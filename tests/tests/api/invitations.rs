//! Invitations: create, list, resend, revoke, accept; expiry, email match, quotas, rate limits.

use nox_tests::http::invitation_token;
use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

const ACCEPT: &str = "/api/v1/invitations/accept";

#[tokio::test]
async fn invitation_lifecycle() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("ivy").await;
    let org = c.create_org(&owner, "ivy-co").await;
    let invitee = c.register("jon").await;
    let stranger = c.register("sam").await;
    let base = format!("/api/v1/orgs/{org}/invitations");
    let editor = c.role_id(&owner, org, "Editor").await;

    let created = c
        .post(
            &base,
            &owner.token,
            json!({"email": invitee.email.to_uppercase(), "role_id": editor}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "PENDING");
    assert_eq!(created.body["role_name"], "Editor");
    assert!(
        created.body.get("token").is_none(),
        "the token is only mailed"
    );
    let id = created.id();

    // Stored hashed, mailed in clear, valid for 7 days.
    let token = invitation_token(app.pool(), &invitee.email.to_uppercase()).await;
    let (stored, hashed, days): (String, String, f64) = sqlx::query_as(
        "SELECT token, encode(sha256(convert_to($2, 'UTF8')), 'hex'),
                EXTRACT(EPOCH FROM expires_at - NOW())::float8 / 86400
         FROM invitations WHERE id = $1",
    )
    .bind(id)
    .bind(&token)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_ne!(stored, token);
    assert_eq!(stored, hashed);
    assert!((6.9..=7.0).contains(&days), "{days}");

    let dup = c
        .post(
            &base,
            &owner.token,
            json!({"email": invitee.email, "role_id": editor}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "invitation_pending");

    let pending = c.get(&format!("{base}?status=pending"), &owner.token).await;
    assert_eq!(pending.body["items"].as_array().unwrap().len(), 1);
    let bad_status = c.get(&format!("{base}?status=LOST"), &owner.token).await;
    assert_eq!(bad_status.status, StatusCode::UNPROCESSABLE_ENTITY);

    let resent = c
        .post(&format!("{base}/{id}/resend"), &owner.token, json!({}))
        .await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    assert_eq!(resent.body["resent_count"], 1);
    assert!(resent.body["last_sent_at"].is_string());
    let new_token = invitation_token(app.pool(), &invitee.email.to_uppercase()).await;
    assert_ne!(new_token, token);
    let old = c
        .post(ACCEPT, &invitee.token, json!({ "token": token }))
        .await;
    assert_eq!(old.status, StatusCode::NOT_FOUND, "the old token is dead");

    let mismatch = c
        .post(ACCEPT, &stranger.token, json!({ "token": new_token }))
        .await;
    assert_eq!(mismatch.status, StatusCode::FORBIDDEN);
    assert_eq!(mismatch.code(), "email_mismatch");
    let empty = c.post(ACCEPT, &invitee.token, json!({ "token": "" })).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

    let accepted = c
        .post(ACCEPT, &invitee.token, json!({ "token": new_token }))
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.body["status"], "ACCEPTED");
    let me = c.get(&format!("/api/v1/orgs/{org}"), &invitee.token).await;
    assert_eq!(me.body["role_name"], "Editor");
    let again = c
        .post(ACCEPT, &invitee.token, json!({ "token": new_token }))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "invitation_accepted");

    // A member cannot be invited again.
    let member = c
        .post(
            &base,
            &owner.token,
            json!({"email": invitee.email, "role_id": editor}),
        )
        .await;
    assert_eq!(member.status, StatusCode::CONFLICT);
    assert_eq!(member.code(), "already_member");
}

#[tokio::test]
async fn revoked_and_expired_invitations_are_gone() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("rex").await;
    let org = c.create_org(&owner, "rex-co").await;
    let base = format!("/api/v1/orgs/{org}/invitations");
    let a = c.register("ann").await;
    let b = c.register("ben").await;

    let revoked = c.invite(&owner, org, &a.email, "Viewer").await;
    let token_a = invitation_token(app.pool(), &a.email).await;
    assert_eq!(
        c.delete(&format!("{base}/{revoked}"), &owner.token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = c.post(ACCEPT, &a.token, json!({ "token": token_a })).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(r.code(), "invitation_revoked");
    let twice = c.delete(&format!("{base}/{revoked}"), &owner.token).await;
    assert_eq!(twice.status, StatusCode::GONE);
    let resend = c
        .post(&format!("{base}/{revoked}/resend"), &owner.token, json!({}))
        .await;
    assert_eq!(resend.status, StatusCode::GONE);

    let expiring = c.invite(&owner, org, &b.email, "Viewer").await;
    let token_b = invitation_token(app.pool(), &b.email).await;
    sqlx::query("UPDATE invitations SET expires_at = NOW() - INTERVAL '1 minute' WHERE id = $1")
        .bind(expiring)
        .execute(app.pool())
        .await
        .unwrap();
    let e = c.post(ACCEPT, &b.token, json!({ "token": token_b })).await;
    assert_eq!(e.status, StatusCode::GONE);
    assert_eq!(e.code(), "invitation_expired");
    let expired = c.get(&format!("{base}?status=EXPIRED"), &owner.token).await;
    assert_eq!(expired.body["items"][0]["id"], expiring.to_string());
    // An expired invitation does not block a new one for the same address.
    c.invite(&owner, org, &b.email, "Viewer").await;
    let fresh = invitation_token(app.pool(), &b.email).await;
    let ok = c.post(ACCEPT, &b.token, json!({ "token": fresh })).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    let unknown = c
        .post(ACCEPT, &a.token, json!({"token": "no-such-token"}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invitation_validation_and_permissions() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("val").await;
    let org = c.create_org(&owner, "val-co").await;
    let admin = c.add_member(app.pool(), &owner, org, "adi", "Admin").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vee", "Viewer").await;
    let base = format!("/api/v1/orgs/{org}/invitations");
    let viewer_role = c.role_id(&owner, org, "Viewer").await;
    let owner_role = c.role_id(&owner, org, "Owner").await;

    let bad = c
        .post(
            &base,
            &owner.token,
            json!({"email": "nope", "role_id": viewer_role}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let no_role = c
        .post(
            &base,
            &owner.token,
            json!({"email": "x@example.com", "role_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(no_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_role.body["error"]["fields"][0]["field"], "role_id");
    let missing = c
        .post(&base, &owner.token, json!({"email": "x@example.com"}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);

    let denied = c
        .post(
            &base,
            &viewer.token,
            json!({"email": "x@example.com", "role_id": viewer_role}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        c.get(&base, &viewer.token).await.status,
        StatusCode::FORBIDDEN
    );
    // An Admin cannot invite someone as Owner.
    let crown = c
        .post(
            &base,
            &admin.token,
            json!({"email": "x@example.com", "role_id": owner_role}),
        )
        .await;
    assert_eq!(crown.status, StatusCode::FORBIDDEN);
    let fine = c
        .post(
            &base,
            &admin.token,
            json!({"email": "x@example.com", "role_id": viewer_role}),
        )
        .await;
    assert_eq!(fine.status, StatusCode::CREATED);
}

#[tokio::test]
async fn member_quota_counts_members_and_pending_invitations() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("qa").await;
    let org = c.create_org(&owner, "qa-co").await;
    sqlx::query(
        "UPDATE subscriptions SET quotas = jsonb_set(quotas, '{max_members}', '2') WHERE org_id = $1",
    )
    .bind(org)
    .execute(app.pool())
    .await
    .unwrap();
    let late = c.register("late").await;
    c.invite(&owner, org, &late.email, "Viewer").await;
    let viewer_role = c.role_id(&owner, org, "Viewer").await;
    let over = c
        .post(
            &format!("/api/v1/orgs/{org}/invitations"),
            &owner.token,
            json!({"email": "third@example.com", "role_id": viewer_role}),
        )
        .await;
    assert_eq!(over.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(over.code(), "quota_exceeded");
    assert!(over.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains('2'));

    // Lowering the quota after inviting: accepting is refused too.
    sqlx::query(
        "UPDATE subscriptions SET quotas = jsonb_set(quotas, '{max_members}', '1') WHERE org_id = $1",
    )
    .bind(org)
    .execute(app.pool())
    .await
    .unwrap();
    let token = invitation_token(app.pool(), &late.email).await;
    let full = c.post(ACCEPT, &late.token, json!({ "token": token })).await;
    assert_eq!(full.status, StatusCode::PAYMENT_REQUIRED);
}

#[tokio::test]
async fn sending_invitations_is_rate_limited() {
    let app = TestApp::spawn_with(|config| config.rate_limit_invitations = 2).await;
    let c = &app.client;
    let owner = c.register("rl").await;
    let org = c.create_org(&owner, "rl-co").await;
    let role = c.role_id(&owner, org, "Viewer").await;
    let base = format!("/api/v1/orgs/{org}/invitations");
    let first = c
        .post(
            &base,
            &owner.token,
            json!({"email": "a@example.com", "role_id": role}),
        )
        .await;
    let id = first.id();
    let resent = c
        .post(&format!("{base}/{id}/resend"), &owner.token, json!({}))
        .await;
    assert_eq!(resent.status, StatusCode::OK);
    let limited = c
        .post(
            &base,
            &owner.token,
            json!({"email": "b@example.com", "role_id": role}),
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "rate_limited");
}
