//! Register, login, me: success and every error path.

use nox_tests::http::{mail_count, mail_token};
use nox_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

const REGISTER: &str = "/api/v1/auth/register";
const LOGIN: &str = "/api/v1/auth/login";
const VERIFY: &str = "/api/v1/auth/verify-email";
const RESET_REQUEST: &str = "/api/v1/auth/password-reset/request";
const RESET: &str = "/api/v1/auth/password-reset";

#[tokio::test]
async fn register_login_and_me() {
    let app = TestApp::spawn().await;
    let reply = app
        .client
        .send(
            Method::POST,
            REGISTER,
            None,
            Some(json!({"email": "Ada@Example.com", "password": "correct horse battery", "full_name": "Ada"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["user"]["email"], "Ada@Example.com");
    assert_eq!(reply.body["token_type"], "Bearer");
    assert!(reply.body["access_token"].as_str().unwrap().len() > 20);
    assert!(reply.body.get("password_hash").is_none());

    // Login is case-insensitive on the email.
    let login = app
        .client
        .send(
            Method::POST,
            LOGIN,
            None,
            Some(json!({"email": "ada@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let token = login.body["access_token"].as_str().unwrap();
    assert!(login.body["refresh_token"].as_str().unwrap().len() >= 40);

    let me = app.client.get("/api/v1/me", token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["full_name"], "Ada");
    assert_eq!(me.body["id"], reply.body["user"]["id"]);

    // Each login is a session row with the client's details; the refresh token is stored hashed.
    let (count, stored): (i64, String) =
        sqlx::query_as("SELECT COUNT(*) OVER (), refresh_token FROM user_sessions LIMIT 1")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(count, 2);
    assert_ne!(stored, login.body["refresh_token"].as_str().unwrap());
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_case_insensitively() {
    let app = TestApp::spawn().await;
    let body = |email: &str| Some(json!({"email": email, "password": "correct horse battery"}));
    let first = app
        .client
        .send(Method::POST, REGISTER, None, body("bob@example.com"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app
        .client
        .send(Method::POST, REGISTER, None, body("BOB@example.com"))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "email_taken");
}

#[tokio::test]
async fn invalid_registration_lists_every_bad_field() {
    let app = TestApp::spawn().await;
    let reply = app
        .client
        .send(
            Method::POST,
            REGISTER,
            None,
            Some(json!({"email": "not-an-email", "password": "short"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "validation_failed");
    let fields: Vec<&str> = reply.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);
}

#[tokio::test]
async fn malformed_bodies_get_stable_codes() {
    let app = TestApp::spawn().await;
    let bad_json = app
        .client
        .send_raw(REGISTER, "application/json", "{\"email\": ")
        .await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_json.code(), "invalid_json");

    let missing = app
        .client
        .send_raw(REGISTER, "application/json", "{\"email\": \"a@b.co\"}")
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.code(), "invalid_body");
    assert!(missing.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("password"));

    let not_json = app.client.send_raw(REGISTER, "text/plain", "hello").await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(not_json.code(), "unsupported_media_type");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    let user = app.client.register("carol").await;
    let wrong = app
        .client
        .send(
            Method::POST,
            LOGIN,
            None,
            Some(json!({"email": user.email, "password": "wrong password"})),
        )
        .await;
    let unknown = app
        .client
        .send(
            Method::POST,
            LOGIN,
            None,
            Some(json!({"email": "nobody@example.com", "password": "wrong password"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn me_requires_a_valid_token() {
    let app = TestApp::spawn().await;
    let none = app.client.send(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.code(), "unauthorized");
    let garbage = app.client.get("/api/v1/me", "not.a.jwt").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);

    // A token signed with another secret is refused.
    let user = app.client.register("dave").await;
    let other = TestApp::spawn_with(|c| {
        c.jwt_secret = Some("a-different-secret-a-different-secret".into())
    })
    .await;
    let forged = other.client.get("/api/v1/me", &user.token).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // A revoked session's token stops working at once.
    sqlx::query("UPDATE user_sessions SET revoked_at = NOW() WHERE user_id = $1")
        .bind(user.user_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let revoked = app.client.get("/api/v1/me", &user.token).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_validates_its_fields() {
    let app = TestApp::spawn().await;
    let reply = app
        .client
        .send(
            Method::POST,
            LOGIN,
            None,
            Some(json!({"email": "not-an-email", "password": ""})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = reply.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);
}

#[tokio::test]
async fn email_verification_through_a_mailed_single_use_token() {
    let app = TestApp::spawn().await;
    let user = app.client.register("verify").await;
    let me = app.client.get("/api/v1/me", &user.token).await;
    assert_eq!(me.body["is_email_verified"], false);
    assert_eq!(me.body["status"], "PENDING_VERIFICATION");

    // Registration mailed a token; asking again mails a fresh one and retires the first.
    let first = mail_token(&app.db.pool, &user.email, "verify_email")
        .await
        .unwrap();
    let again = app
        .client
        .post("/api/v1/auth/verify-email/request", &user.token, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(
        mail_count(&app.db.pool, &user.email, "verify_email").await,
        2
    );
    let token = mail_token(&app.db.pool, &user.email, "verify_email")
        .await
        .unwrap();
    assert_ne!(first, token);
    let stale = app.client.post_anon(VERIFY, json!({"token": first})).await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST);
    assert_eq!(stale.code(), "invalid_token");
    // The token is stored only as a hash.
    let clear: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM account_tokens WHERE token_hash = $1")
            .bind(&token)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(clear, 0);

    let ok = app.client.post_anon(VERIFY, json!({"token": token})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["is_email_verified"], true);
    assert_eq!(ok.body["status"], "ACTIVE");
    let reused = app.client.post_anon(VERIFY, json!({"token": token})).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);

    let done = app
        .client
        .post("/api/v1/auth/verify-email/request", &user.token, json!({}))
        .await;
    assert_eq!(done.status, StatusCode::CONFLICT);
    assert_eq!(done.code(), "already_verified");

    let empty = app.client.post_anon(VERIFY, json!({"token": " "})).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.body["error"]["fields"][0]["field"], "token");
    let anon = app
        .client
        .post_anon("/api/v1/auth/verify-email/request", json!({}))
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_verification_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.client.register("late").await;
    let token = mail_token(&app.db.pool, &user.email, "verify_email")
        .await
        .unwrap();
    sqlx::query(
        "UPDATE account_tokens SET expires_at = NOW() - INTERVAL '1 second' WHERE user_id = $1",
    )
    .bind(user.user_id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let late = app.client.post_anon(VERIFY, json!({"token": token})).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert_eq!(late.code(), "invalid_token");
}

#[tokio::test]
async fn password_reset_by_mailed_token_signs_out_everywhere() {
    let app = TestApp::spawn().await;
    let user = app.client.register("forgot").await;

    // Unknown and known emails get the same answer; only the known one gets mail.
    let unknown = app
        .client
        .post_anon(RESET_REQUEST, json!({"email": "nobody-here@example.com"}))
        .await;
    let known = app
        .client
        .post_anon(RESET_REQUEST, json!({"email": user.email.to_uppercase()}))
        .await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(unknown.body, known.body);
    let token = mail_token(&app.db.pool, &user.email, "password_reset")
        .await
        .unwrap();
    assert_eq!(
        mail_count(&app.db.pool, "nobody-here@example.com", "password_reset").await,
        0
    );
    let invalid = app
        .client
        .post_anon(RESET_REQUEST, json!({"email": "nope"}))
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.body["error"]["fields"][0]["field"], "email");

    let weak = app
        .client
        .post_anon(RESET, json!({"token": "", "new_password": "short"}))
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.body["error"]["fields"].as_array().unwrap().len(), 2);
    let bogus = app
        .client
        .post_anon(
            RESET,
            json!({"token": "bogus", "new_password": "the new password"}),
        )
        .await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);

    let ok = app
        .client
        .post_anon(
            RESET,
            json!({"token": token, "new_password": "the new password"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
    assert_eq!(
        app.client.get("/api/v1/me", &user.token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let once = app
        .client
        .post_anon(
            RESET,
            json!({"token": token, "new_password": "another password"}),
        )
        .await;
    assert_eq!(once.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.client
            .login(&user.email, "correct horse battery")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client
            .login(&user.email, "the new password")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_reset_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.client.register("slow").await;
    app.client
        .post_anon(RESET_REQUEST, json!({"email": user.email}))
        .await;
    let token = mail_token(&app.db.pool, &user.email, "password_reset")
        .await
        .unwrap();
    sqlx::query("UPDATE account_tokens SET expires_at = NOW() - INTERVAL '1 second' WHERE purpose = 'password_reset'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let late = app
        .client
        .post_anon(
            RESET,
            json!({"token": token, "new_password": "the new password"}),
        )
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn deleting_the_account_frees_the_email() {
    let app = TestApp::spawn().await;
    let user = app.client.register("leaver").await;
    let missing = app
        .client
        .delete_with("/api/v1/me", &user.token, json!({"password": ""}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = app
        .client
        .delete_with(
            "/api/v1/me",
            &user.token,
            json!({"password": "wrong password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.body["error"]["fields"][0]["field"], "password");

    let gone = app
        .client
        .delete_with(
            "/api/v1/me",
            &user.token,
            json!({"password": "correct horse battery"}),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    assert_eq!(
        app.client.get("/api/v1/me", &user.token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client
            .login(&user.email, "correct horse battery")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let deleted_at: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE id = $1 AND deleted_at IS NOT NULL")
            .bind(user.user_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(deleted_at, 1);

    let again = app
        .client
        .send(
            Method::POST,
            REGISTER,
            None,
            Some(json!({"email": user.email, "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_ne!(again.body["user"]["id"], user.user_id.to_string());
}

#[tokio::test]
async fn login_register_and_refresh_are_rate_limited() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limit_login = 3;
        c.rate_limit_register = 2;
        c.rate_limit_refresh = 2;
    })
    .await;
    for i in 0..3 {
        let r = app
            .client
            .login(&format!("someone{i}@example.com"), "wrong password")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app
        .client
        .login("someone9@example.com", "wrong password")
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "rate_limited");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));

    let user = app.client.register("limits").await;
    app.client.register("limits2").await;
    let third = app
        .client
        .send(
            Method::POST,
            REGISTER,
            None,
            Some(json!({"email": "third@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(third.header("retry-after").is_some());

    let mut refresh = user.refresh_token.clone();
    for _ in 0..2 {
        let r = app
            .client
            .post_anon("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        refresh = r.body["refresh_token"].as_str().unwrap().to_string();
    }
    let r = app
        .client
        .post_anon("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}
