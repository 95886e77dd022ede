//! Account security: lockout, password change, TOTP MFA with backup codes.

use nox_server::auth::totp;
use nox_tests::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn code(secret: &str) -> String {
    totp::code_at(secret, now()).unwrap()
}

/// The code of the next time step (accepted as one step of drift): a TOTP step is usable once, so
/// after confirming with the current code the next login needs a later one.
fn next_code(secret: &str) -> String {
    totp::code_at(secret, now() + totp::STEP_SECS).unwrap()
}

async fn audit_count(app: &TestApp, org: Uuid, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_logs WHERE org_id = $1 AND action = $2")
        .bind(org)
        .bind(action)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn user_with_org(app: &TestApp, name: &str) -> (Session, Uuid) {
    let user = app.client.register(name).await;
    let slug = format!("{name}-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let org = app.client.create_org(&user, &slug).await;
    (user, org)
}

#[tokio::test]
async fn five_failures_lock_the_account_and_success_resets_the_count() {
    let app = TestApp::spawn().await;
    let (user, org) = user_with_org(&app, "locky").await;

    // Failures below the threshold, then a success: the count goes back to zero.
    for _ in 0..3 {
        let r = app.client.login(&user.email, "wrong password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.client.login(&user.email, PASSWORD).await.status,
        StatusCode::OK
    );
    let attempts: i32 =
        sqlx::query_scalar("SELECT failed_login_attempts FROM user_security WHERE user_id = $1")
            .bind(user.user_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 0);

    // Five in a row lock the account; the fifth answer already says so.
    for i in 1..=5 {
        let r = app.client.login(&user.email, "wrong password").await;
        if i < 5 {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        } else {
            assert_eq!(r.status, StatusCode::LOCKED, "attempt {i}: {}", r.body);
        }
    }
    let locked = app.client.login(&user.email, PASSWORD).await;
    assert_eq!(locked.status, StatusCode::LOCKED);
    assert_eq!(locked.code(), "account_locked");
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((850..=900).contains(&retry), "retry-after {retry}");

    assert_eq!(audit_count(&app, org, "auth.login_failed").await, 8);
    assert_eq!(audit_count(&app, org, "auth.account_locked").await, 1);

    // When the lock runs out the right password works again and clears the counters.
    sqlx::query(
        "UPDATE user_security SET locked_until = NOW() - INTERVAL '1 second' WHERE user_id = $1",
    )
    .bind(user.user_id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        app.client.login(&user.email, PASSWORD).await.status,
        StatusCode::OK
    );
    let (attempts, until): (i32, Option<String>) = sqlx::query_as(
        "SELECT failed_login_attempts, locked_until::text FROM user_security WHERE user_id = $1",
    )
    .bind(user.user_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((attempts, until), (0, None));
}

#[tokio::test]
async fn password_change_needs_the_current_one_and_signs_out_other_sessions() {
    let app = TestApp::spawn().await;
    let (user, org) = user_with_org(&app, "pw").await;
    let other = app.client.login(&user.email, PASSWORD).await;
    let other_token = other.body["access_token"].as_str().unwrap().to_string();

    let invalid = app
        .client
        .post(
            "/api/v1/me/password",
            &user.token,
            json!({"current_password": "", "new_password": "short"}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = invalid.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["current_password", "new_password"]);

    let wrong = app
        .client
        .post(
            "/api/v1/me/password",
            &user.token,
            json!({"current_password": "not it at all", "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        wrong.body["error"]["fields"][0]["field"],
        "current_password"
    );

    let anon = app
        .client
        .post_anon(
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);

    let ok = app
        .client
        .post(
            "/api/v1/me/password",
            &user.token,
            json!({"current_password": PASSWORD, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
    assert_eq!(
        app.client.get("/api/v1/me", &user.token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.client.get("/api/v1/me", &other_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client.login(&user.email, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client
            .login(&user.email, "a brand new password")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(audit_count(&app, org, "auth.password_changed").await, 1);
}

/// Enrolls and confirms MFA; returns the secret and the backup codes.
async fn enable_mfa(app: &TestApp, user: &Session) -> (String, Vec<String>) {
    let enroll = app
        .client
        .post("/api/v1/me/mfa/enroll", &user.token, json!({}))
        .await;
    assert_eq!(enroll.status, StatusCode::OK, "{}", enroll.body);
    let secret = enroll.body["secret"].as_str().unwrap().to_string();
    let uri = enroll.body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")));
    let confirm = app
        .client
        .post(
            "/api/v1/me/mfa/confirm",
            &user.token,
            json!({"code": code(&secret)}),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    let codes: Vec<String> = confirm.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

async fn mfa_step(app: &TestApp, email: &str, code: &str) -> nox_tests::http::Reply {
    let login = app.client.login(email, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["mfa_required"], true);
    assert!(login.body.get("access_token").is_none());
    let token = login.body["mfa_token"].as_str().unwrap();
    app.client
        .post_anon(
            "/api/v1/auth/mfa",
            json!({"mfa_token": token, "code": code}),
        )
        .await
}

#[tokio::test]
async fn mfa_enroll_confirm_login_and_backup_codes() {
    let app = TestApp::spawn().await;
    let (user, org) = user_with_org(&app, "totp").await;

    // Confirming before enrolling, or with a wrong code, is refused.
    let early = app
        .client
        .post(
            "/api/v1/me/mfa/confirm",
            &user.token,
            json!({"code": "123456"}),
        )
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.code(), "mfa_not_enrolled");
    let enroll = app
        .client
        .post("/api/v1/me/mfa/enroll", &user.token, json!({}))
        .await;
    let secret = enroll.body["secret"].as_str().unwrap().to_string();
    let wrong = app
        .client
        .post(
            "/api/v1/me/mfa/confirm",
            &user.token,
            json!({"code": "000000x"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.body["error"]["fields"][0]["field"], "code");
    let empty = app
        .client
        .post("/api/v1/me/mfa/confirm", &user.token, json!({"code": ""}))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Not enabled until confirmed: login still gives a session straight away.
    let plain = app.client.login(&user.email, PASSWORD).await;
    assert!(plain.body["access_token"].is_string());
    let stored: Option<String> =
        sqlx::query_scalar("SELECT mfa_secret FROM user_security WHERE user_id = $1")
            .bind(user.user_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some(secret.as_str()));

    let (secret, codes) = enable_mfa(&app, &user).await;
    assert_eq!(audit_count(&app, org, "auth.mfa_enabled").await, 1);
    let again = app
        .client
        .post("/api/v1/me/mfa/enroll", &user.token, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // Backup codes are stored hashed.
    let hashes: Vec<String> =
        sqlx::query_scalar("SELECT code_hash FROM user_mfa_backup_codes WHERE user_id = $1")
            .bind(user.user_id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(hashes.len(), 10);
    assert!(hashes.iter().all(|h| !codes.contains(h)));

    // Login now needs the second step; a TOTP code completes it.
    let done = mfa_step(&app, &user.email, &next_code(&secret)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let token = done.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.client.get("/api/v1/me", token).await.status,
        StatusCode::OK
    );

    // A wrong code is refused (and counted as a failed login).
    let bad = mfa_step(&app, &user.email, "not-a-code").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(audit_count(&app, org, "auth.mfa_failed").await, 1);

    // A backup code works exactly once.
    let backup = mfa_step(&app, &user.email, &codes[0]).await;
    assert_eq!(backup.status, StatusCode::OK, "{}", backup.body);
    let reused = mfa_step(&app, &user.email, &codes[0]).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);

    // The MFA token is not an access token, and a forged or garbage one is refused.
    let login = app.client.login(&user.email, PASSWORD).await;
    let mfa_token = login.body["mfa_token"].as_str().unwrap();
    assert_eq!(
        app.client.get("/api/v1/me", mfa_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let garbage = app
        .client
        .post_anon(
            "/api/v1/auth/mfa",
            json!({"mfa_token": "garbage", "code": code(&secret)}),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    let invalid = app
        .client
        .post_anon("/api/v1/auth/mfa", json!({"mfa_token": "", "code": ""}))
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.body["error"]["fields"].as_array().unwrap().len(), 2);
    // Nor is an access token an MFA token.
    let swapped = app
        .client
        .post_anon(
            "/api/v1/auth/mfa",
            json!({"mfa_token": user.token, "code": code(&secret)}),
        )
        .await;
    assert_eq!(swapped.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn mfa_disable_needs_password_and_code() {
    let app = TestApp::spawn().await;
    let (user, org) = user_with_org(&app, "nomfa").await;
    let not_yet = app
        .client
        .post(
            "/api/v1/me/mfa/disable",
            &user.token,
            json!({"password": PASSWORD, "code": "123456"}),
        )
        .await;
    assert_eq!(not_yet.status, StatusCode::CONFLICT);
    let (secret, _) = enable_mfa(&app, &user).await;

    let missing = app
        .client
        .post(
            "/api/v1/me/mfa/disable",
            &user.token,
            json!({"password": "", "code": ""}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong_pw = app
        .client
        .post(
            "/api/v1/me/mfa/disable",
            &user.token,
            json!({"password": "nope nope nope", "code": code(&secret)}),
        )
        .await;
    assert_eq!(wrong_pw.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_pw.body["error"]["fields"][0]["field"], "password");
    let wrong_code = app
        .client
        .post(
            "/api/v1/me/mfa/disable",
            &user.token,
            json!({"password": PASSWORD, "code": "12345x"}),
        )
        .await;
    assert_eq!(wrong_code.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_code.body["error"]["fields"][0]["field"], "code");

    let off = app
        .client
        .post(
            "/api/v1/me/mfa/disable",
            &user.token,
            json!({"password": PASSWORD, "code": next_code(&secret)}),
        )
        .await;
    assert_eq!(off.status, StatusCode::NO_CONTENT, "{}", off.body);
    assert_eq!(audit_count(&app, org, "auth.mfa_disabled").await, 1);
    let login = app.client.login(&user.email, PASSWORD).await;
    assert!(login.body["access_token"].is_string(), "{}", login.body);
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM user_mfa_backup_codes WHERE user_id = $1")
            .bind(user.user_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn mfa_endpoints_need_authentication() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/me/mfa/enroll",
        "/api/v1/me/mfa/confirm",
        "/api/v1/me/mfa/disable",
    ] {
        let r = app.client.post_anon(path, Value::Null).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn a_totp_code_is_accepted_once() {
    let app = TestApp::spawn().await;
    let (user, _org) = user_with_org(&app, "replay").await;
    let (secret, _) = enable_mfa(&app, &user).await;

    // The code that confirmed MFA cannot also log in.
    let confirm_code = code(&secret);
    let replayed_confirm = mfa_step(&app, &user.email, &confirm_code).await;
    assert_eq!(
        replayed_confirm.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        replayed_confirm.body
    );

    let later = next_code(&secret);
    let first = mfa_step(&app, &user.email, &later).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // The same code again (a fresh mfa_token), three times: refused each time.
    for attempt in 0..2 {
        let again = mfa_step(&app, &user.email, &later).await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED, "replay {attempt}");
    }
    // Nor can it disable MFA.
    let disable = app
        .client
        .post(
            "/api/v1/me/mfa/disable",
            &user.token,
            json!({"password": PASSWORD, "code": later}),
        )
        .await;
    assert_eq!(disable.status, StatusCode::UNPROCESSABLE_ENTITY);
    let last_step: Option<i64> =
        sqlx::query_scalar("SELECT totp_last_step FROM user_security WHERE user_id = $1")
            .bind(user.user_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(last_step.is_some_and(|s| s as u64 >= now() / totp::STEP_SECS));
}

#[tokio::test]
async fn an_mfa_token_is_redeemed_once() {
    let app = TestApp::spawn().await;
    let (user, _org) = user_with_org(&app, "once").await;
    let (_secret, codes) = enable_mfa(&app, &user).await;
    let login = app.client.login(&user.email, PASSWORD).await;
    let token = login.body["mfa_token"].as_str().unwrap().to_string();
    let redeem = |code: String| {
        let token = token.clone();
        let client = app.client.clone();
        async move {
            client
                .post_anon(
                    "/api/v1/auth/mfa",
                    json!({"mfa_token": token, "code": code}),
                )
                .await
        }
    };
    let first = redeem(codes[0].clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let second = redeem(codes[1].clone()).await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED, "{}", second.body);
    // The replay did not spend the second backup code: it still completes a fresh login.
    let fresh = mfa_step(&app, &user.email, &codes[1]).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);

    // Two redemptions racing with one token: exactly one session.
    let login = app.client.login(&user.email, PASSWORD).await;
    let token = login.body["mfa_token"].as_str().unwrap().to_string();
    let race = |code: String| {
        let token = token.clone();
        let client = app.client.clone();
        async move {
            client
                .post_anon(
                    "/api/v1/auth/mfa",
                    json!({"mfa_token": token, "code": code}),
                )
                .await
                .status
        }
    };
    let (a, b) = tokio::join!(race(codes[2].clone()), race(codes[3].clone()));
    let wins = [a, b].iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(wins, 1, "{a} {b}");
}
