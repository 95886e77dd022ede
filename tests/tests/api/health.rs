use nox_tests::TestApp;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn healthz_and_readyz_answer_ok() {
    let app = TestApp::spawn().await;
    let health = app.client.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = app.client.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["migrations"], true);
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let app = TestApp::spawn().await;
    let reply = app
        .client
        .send(Method::GET, "/api/v1/nope", None, None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "not_found");
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = TestApp::spawn().await;
    let resp = reqwest::get(format!("{}/healthz", app.client.base))
        .await
        .unwrap();
    let id = resp.headers().get("x-request-id").expect("request id");
    assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
}
