//! The canvas page (issue 5 item 6): the bundle built from `web/` by `npm run build` into
//! `server/assets/` (committed) is embedded into the binary, so `nox-sync serve` serves it with
//! no build step for the user.
//!
//! `GET /` and `GET /w/{workspace_id}` answer `index.html` (the page reads the workspace id from
//! its path); `GET /assets/app.js` and `/assets/app.css` answer the bundle. Every answer is
//! `Cache-Control: no-cache` with a strong `ETag` (a hash of the content), so browsers revalidate
//! and get a `304` until the server is upgraded.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

pub const INDEX_HTML: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../assets/index.html"),
};

pub const APP_JS: Asset = Asset {
    name: "app.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../assets/app.js"),
};

pub const APP_CSS: Asset = Asset {
    name: "app.css",
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("../assets/app.css"),
};

/// `GET /api/v1/docs`: the API reference page (Swagger UI, vendored in `assets/docs/`; see its
/// README for version and license).
pub const DOCS_HTML: Asset = Asset {
    name: "docs/index.html",
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../assets/docs/index.html"),
};

pub const DOCS_INIT_JS: Asset = Asset {
    name: "docs/init.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../assets/docs/init.js"),
};

pub const DOCS_UI_JS: Asset = Asset {
    name: "docs/swagger-ui-bundle.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../assets/docs/swagger-ui-bundle.js"),
};

pub const DOCS_UI_CSS: Asset = Asset {
    name: "docs/swagger-ui.css",
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("../assets/docs/swagger-ui.css"),
};

const ASSETS: [&Asset; 7] = [
    &INDEX_HTML,
    &APP_JS,
    &APP_CSS,
    &DOCS_HTML,
    &DOCS_INIT_JS,
    &DOCS_UI_JS,
    &DOCS_UI_CSS,
];

impl Asset {
    /// `"<first 16 bytes of the SHA-256, hex>"`, computed once per asset.
    pub fn etag(&self) -> &'static str {
        static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
        let etags = ETAGS.get_or_init(|| {
            ASSETS
                .iter()
                .map(|a| format!("\"{}\"", hex::encode(&Sha256::digest(a.body)[..16])))
                .collect()
        });
        ASSETS
            .iter()
            .position(|a| a.name == self.name)
            .map(|i| etags[i].as_str())
            .unwrap_or("\"\"")
    }

    /// The asset, or `304 Not Modified` when the request already has this version.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let etag = self.etag();
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        let headers = [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, HeaderValue::from_static(etag)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (
            headers,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            )],
            self.body,
        )
            .into_response()
    }
}

/// `GET /`: the page.
pub async fn index(headers: HeaderMap) -> Response {
    INDEX_HTML.respond(&headers)
}

/// `GET /w/{workspace_id}`: the page too; it reads the id from `location.pathname`. The id is
/// not checked here (the page asks the API, which answers 404 for unknown or foreign ids).
pub async fn workspace_page(Path(_workspace_id): Path<String>, headers: HeaderMap) -> Response {
    INDEX_HTML.respond(&headers)
}

/// `GET /assets/app.js`.
pub async fn app_js(headers: HeaderMap) -> Response {
    APP_JS.respond(&headers)
}

/// `GET /assets/app.css`.
pub async fn app_css(headers: HeaderMap) -> Response {
    APP_CSS.respond(&headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn content_types_and_cache_headers() {
        let none = HeaderMap::new();
        for (response, content_type) in [
            (index(none.clone()).await, "text/html; charset=utf-8"),
            (
                workspace_page(Path("x".into()), none.clone()).await,
                "text/html; charset=utf-8",
            ),
            (app_js(none.clone()).await, "text/javascript; charset=utf-8"),
            (app_css(none.clone()).await, "text/css; charset=utf-8"),
        ] {
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(header_of(&response, header::CONTENT_TYPE), content_type);
            assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
            assert!(header_of(&response, header::ETAG).len() > 10);
        }
    }

    #[tokio::test]
    async fn etag_revalidates_with_304() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static(APP_JS.etag()),
        );
        let response = app_js(headers.clone()).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        // Another asset's tag does not match.
        assert_eq!(app_css(headers).await.status(), StatusCode::OK);
        assert_ne!(APP_JS.etag(), APP_CSS.etag());
    }

    #[test]
    fn the_page_loads_the_bundle() {
        let html = std::str::from_utf8(INDEX_HTML.body).expect("utf-8");
        assert!(html.contains("/assets/app.js"));
        assert!(html.contains("/assets/app.css"));
        assert!(!APP_JS.body.is_empty() && !APP_CSS.body.is_empty());
    }
}
