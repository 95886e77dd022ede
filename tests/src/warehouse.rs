//! Setup helpers for warehouse tests: a warehouse, invader definitions and templates created
//! through the API.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{Session, TestClient};

impl TestClient {
    /// Creates `org`'s warehouse and returns its id.
    pub async fn create_warehouse(&self, owner: &Session, org: Uuid) -> Uuid {
        let reply = self
            .post(
                &format!("/api/v1/orgs/{org}/warehouses"),
                &owner.token,
                json!({ "name": "Assets" }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "warehouse: {}",
            reply.body
        );
        reply.id()
    }

    /// Creates an invader definition with `schema` as its `config_schema`.
    pub async fn create_invader(
        &self,
        owner: &Session,
        warehouse: Uuid,
        code: &str,
        schema: Value,
    ) -> Uuid {
        let reply = self
            .post(
                &format!("/api/v1/warehouses/{warehouse}/invaders"),
                &owner.token,
                json!({ "code": code, "name": code, "category": "behaviour",
                        "config_schema": schema }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "invader: {}", reply.body);
        reply.id()
    }

    /// Creates a template holding `structure` (`{blocks, relations}`).
    pub async fn create_template(
        &self,
        owner: &Session,
        warehouse: Uuid,
        structure: Value,
    ) -> Uuid {
        let reply = self
            .post(
                &format!("/api/v1/warehouses/{warehouse}/templates"),
                &owner.token,
                json!({ "name": "tpl", "structure_data": structure }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "template: {}",
            reply.body
        );
        reply.id()
    }
}

/// A template structure of `n` unrelated blocks.
pub fn simple_structure(n: usize) -> Value {
    let blocks: Vec<Value> = (0..n)
        .map(|i| {
            json!({ "id": Uuid::new_v4(), "type": "NODE", "name": format!("b{i}"),
                         "visual": { "x": i * 10, "y": 0 } })
        })
        .collect();
    json!({ "blocks": blocks })
}
