//! `/api/v1/docs` works offline (hardening item 6): the page and everything it loads come from
//! the server itself.

use nox_tests::TestApp;
use reqwest::StatusCode;

async fn fetch(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let resp = reqwest::get(format!("{}{path}", app.client.base))
        .await
        .unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, resp.text().await.unwrap())
}

/// The `src`/`href` values of the page's `<script>` and `<link>` tags.
fn referenced(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attr) {
            let after = &rest[start + attr.len()..];
            let end = after.find('"').unwrap();
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_locally() {
    let app = TestApp::spawn().await;
    let (status, content_type, html) = fetch(&app, "/api/v1/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let assets = referenced(&html);
    assert!(assets.len() >= 3, "{assets:?}");
    for asset in &assets {
        assert!(asset.starts_with("/api/v1/docs/"), "not local: {asset}");
        let (status, content_type, body) = fetch(&app, asset).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(
            content_type.starts_with("text/javascript") || content_type.starts_with("text/css"),
            "{asset}: {content_type}"
        );
        assert!(!body.is_empty(), "{asset}");
    }
    // The viewer itself is there (not a loader that fetches it from elsewhere).
    let (_, _, bundle) = fetch(&app, "/api/v1/docs/swagger-ui-bundle.js").await;
    assert!(bundle.len() > 500_000 && bundle.contains("SwaggerUIBundle"));
    let (_, _, init) = fetch(&app, "/api/v1/docs/init.js").await;
    assert!(init.contains("/api/v1/openapi.json"));
    let (status, _, _) = fetch(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
}
