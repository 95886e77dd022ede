//! The warehouse over HTTP (docs/design.md §17): warehouses, collections, templates, invader
//! definitions, saving a selection and inserting a template, JSON Schema checks, tenancy.

use nox_tests::warehouse::simple_structure;
use nox_tests::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

async fn audit_count(app: &TestApp, org: Uuid, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_logs WHERE org_id = $1 AND action = $2")
        .bind(org)
        .bind(action)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn one_warehouse_per_organization_with_crud_and_audit() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _, ws) = c.owner_with_workspace("wh").await;
    let base = format!("/api/v1/orgs/{org}/warehouses");
    let created = c.post(&base, &owner.token, json!({"name": "Assets"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["org_id"], org.to_string());
    let wh = created.id();
    let again = c.post(&base, &owner.token, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "warehouse_exists");
    let bad = c.post(&base, &owner.token, json!({"name": " "})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = c.post(&base, &owner.token, json!({"nme": "x"})).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);

    let listed = c.get(&base, &owner.token).await;
    assert_eq!(ids(&listed.body), [wh.to_string()]);
    assert!(listed.body["next_cursor"].is_null());
    let path = format!("/api/v1/warehouses/{wh}");
    let renamed = c
        .patch(&path, &owner.token, json!({"name": "Library"}))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(c.get(&path, &owner.token).await.body["name"], "Library");

    // An Editor manages assets but may not delete the whole warehouse (org:admin).
    let editor = crate::warehouse_member(&app, &owner, org, "Editor").await;
    assert_eq!(
        c.delete(&path, &editor.token).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.delete(&path, &owner.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(&path, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    // Its assets went with it; a new warehouse can be made.
    assert_eq!(
        c.post(&base, &owner.token, json!({})).await.status,
        StatusCode::CREATED
    );
    for action in [
        "warehouse.created",
        "warehouse.updated",
        "warehouse.deleted",
    ] {
        assert!(
            audit_count(&app, org, action).await >= 1,
            "{action} not audited"
        );
    }
    let _ = ws;
}

#[tokio::test]
async fn collections_nest_refuse_cycles_and_page() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _, _) = c.owner_with_workspace("folders").await;
    let wh = c.create_warehouse(&owner, org).await;
    let base = format!("/api/v1/warehouses/{wh}/collections");
    let make = |name: &str, parent: Option<Uuid>| {
        let body = json!({"name": name, "parent_collection_id": parent});
        let (base, token) = (base.clone(), owner.token.clone());
        async move { c.post(&base, &token, body).await }
    };
    let a = make("A", None).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = a.id();
    let b = make("B", Some(a)).await.id();
    let cc = make("C", Some(b)).await.id();
    let dup = make("A", None).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "collection_name_taken");
    let stray = make("D", Some(Uuid::new_v4())).await;
    assert_eq!(stray.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        stray.body["error"]["fields"][0]["field"],
        "parent_collection_id"
    );

    // A under its own grandchild: refused; to the top level and back: fine.
    let cycle = c
        .patch(
            &format!("/api/v1/collections/{a}"),
            &owner.token,
            json!({"parent_collection_id": cc}),
        )
        .await;
    assert_eq!(
        cycle.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        cycle.body
    );
    let self_parent = c
        .patch(
            &format!("/api/v1/collections/{a}"),
            &owner.token,
            json!({"parent_collection_id": a}),
        )
        .await;
    assert_eq!(self_parent.status, StatusCode::UNPROCESSABLE_ENTITY);
    let moved = c
        .patch(
            &format!("/api/v1/collections/{cc}"),
            &owner.token,
            json!({"parent_collection_id": null, "name": "C2"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert!(moved.body["parent_collection_id"].is_null());
    assert_eq!(moved.body["name"], "C2");

    let roots = c.get(&format!("{base}?parent=root"), &owner.token).await;
    assert_eq!(ids(&roots.body), [a.to_string(), cc.to_string()]);
    let children = c.get(&format!("{base}?parent={a}"), &owner.token).await;
    assert_eq!(ids(&children.body), [b.to_string()]);
    let bad_filter = c.get(&format!("{base}?parent=nope"), &owner.token).await;
    assert_eq!(bad_filter.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Pagination: one per page, every collection exactly once.
    let mut seen = Vec::new();
    let mut url = format!("{base}?limit=1");
    loop {
        let page = c.get(&url, &owner.token).await;
        assert_eq!(page.status, StatusCode::OK);
        seen.extend(ids(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => url = format!("{base}?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);

    let not_empty = c
        .delete(&format!("/api/v1/collections/{a}"), &owner.token)
        .await;
    assert_eq!(not_empty.status, StatusCode::CONFLICT);
    assert_eq!(not_empty.code(), "collection_not_empty");
    let gone = c
        .delete(&format!("/api/v1/collections/{b}"), &owner.token)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(&format!("/api/v1/collections/{b}"), &owner.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(audit_count(&app, org, "asset_collection.created").await, 3);
    assert_eq!(audit_count(&app, org, "asset_collection.deleted").await, 1);
}

#[tokio::test]
async fn templates_crud_checks_the_structure() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _, _) = c.owner_with_workspace("tpl").await;
    let wh = c.create_warehouse(&owner, org).await;
    let folder = c
        .post(
            &format!("/api/v1/warehouses/{wh}/collections"),
            &owner.token,
            json!({"name": "UI"}),
        )
        .await
        .id();
    let base = format!("/api/v1/warehouses/{wh}/templates");
    let (p, k) = (Uuid::new_v4(), Uuid::new_v4());
    let structure = json!({
        "blocks": [
            {"id": p, "type": "GROUP", "name": "card", "visual": {"x": 0, "y": 0}},
            {"id": k, "type": "NODE", "parent_block_id": p, "config": {"label": "hi"}},
        ],
        "relations": [{"id": Uuid::new_v4(), "source_block_id": p, "target_block_id": k,
                       "type": "CONTAINS"}],
    });
    let created = c
        .post(
            &base,
            &owner.token,
            json!({"name": "Card", "collection_id": folder, "structure_data": structure,
                   "description": "a card", "version": "2.0.0"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let tpl = created.id();
    assert_eq!(
        created.body["structure_data"]["blocks"][1]["config"]["label"],
        "hi"
    );
    assert_eq!(created.body["version"], "2.0.0");

    for bad in [
        json!({"blocks": []}),
        json!({"blocks": [{"id": p, "type": ""}]}),
        json!({"blocks": [{"id": p, "type": "X", "parent_block_id": Uuid::new_v4()}]}),
        json!({"blocks": [{"id": p, "type": "X"}, {"id": p, "type": "Y"}]}),
        json!({"blocks": [{"id": p, "type": "X"}], "relations": [
            {"id": k, "source_block_id": p, "target_block_id": k, "type": "L"}]}),
        json!({"blocks": [{"id": p, "type": "X", "extra": 1}]}),
        json!("not a template"),
    ] {
        let reply = c
            .post(
                &base,
                &owner.token,
                json!({"name": "bad", "structure_data": bad}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            reply.body
        );
        assert_eq!(reply.code(), "validation_failed");
    }
    let foreign_folder = c
        .post(
            &base,
            &owner.token,
            json!({"name": "x", "collection_id": Uuid::new_v4(), "structure_data": simple_structure(1)}),
        )
        .await;
    assert_eq!(foreign_folder.status, StatusCode::UNPROCESSABLE_ENTITY);

    c.create_template(&owner, wh, simple_structure(2)).await;
    let in_folder = c
        .get(&format!("{base}?collection_id={folder}"), &owner.token)
        .await;
    assert_eq!(ids(&in_folder.body), [tpl.to_string()]);
    assert_eq!(ids(&c.get(&base, &owner.token).await.body).len(), 2);

    let path = format!("/api/v1/templates/{tpl}");
    let patched = c
        .patch(
            &path,
            &owner.token,
            json!({"name": "Card v2", "collection_id": null, "description": "",
                   "structure_data": simple_structure(3)}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert!(patched.body["collection_id"].is_null());
    assert!(patched.body["description"].is_null());
    assert_eq!(
        patched.body["structure_data"]["blocks"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let bad_patch = c
        .patch(
            &path,
            &owner.token,
            json!({"structure_data": {"blocks": 1}}),
        )
        .await;
    assert_eq!(bad_patch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        c.delete(&path, &owner.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(&path, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    for action in [
        "asset_template.created",
        "asset_template.updated",
        "asset_template.deleted",
    ] {
        assert!(audit_count(&app, org, action).await >= 1, "{action}");
    }
}

#[tokio::test]
async fn invader_definitions_compile_their_schema() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _, _) = c.owner_with_workspace("inv").await;
    let wh = c.create_warehouse(&owner, org).await;
    let base = format!("/api/v1/warehouses/{wh}/invaders");
    let body = |code: &str, schema: Value| json!({"code": code, "name": "Retry", "category": "network", "config_schema": schema});
    for broken in [
        json!({"type": "no-such-type"}),
        json!({"minimum": "zero"}),
        json!({"$ref": "http://127.0.0.1:9/remote.json"}),
        json!(42),
    ] {
        let reply = c
            .post(&base, &owner.token, body("retry", broken.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{broken}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["fields"][0]["field"], "config_schema");
    }
    let bad_code = c
        .post(&base, &owner.token, body("Has Spaces", json!({})))
        .await;
    assert_eq!(bad_code.status, StatusCode::UNPROCESSABLE_ENTITY);
    let schema = json!({"type": "object", "properties": {"times": {"type": "integer"}}});
    let created = c.post(&base, &owner.token, body("retry", schema)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["compiler_hooks"], json!({}));
    assert_eq!(created.body["version"], "1.0.0");
    let inv = created.id();
    let dup = c
        .post(&base, &owner.token, body("retry", json!(true)))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "invader_code_taken");
    // Codes are per warehouse: another organization may use the same one.
    let (other, other_org, _, _) = c.owner_with_workspace("inv-other").await;
    let other_wh = c.create_warehouse(&other, other_org).await;
    c.create_invader(&other, other_wh, "retry", json!(true))
        .await;

    let path = format!("/api/v1/invaders/{inv}");
    let broken = c
        .patch(&path, &owner.token, json!({"config_schema": {"type": 5}}))
        .await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    let patched = c
        .patch(
            &path,
            &owner.token,
            json!({"category": "io", "compiler_hooks": {"on": "x"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["category"], "io");
    assert_eq!(
        ids(&c.get(&base, &owner.token).await.body),
        [inv.to_string()]
    );
    assert_eq!(
        c.get(&path, &other.token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.delete(&path, &owner.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(&path, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    // The code is free again once the definition is deleted.
    c.create_invader(&owner, wh, "retry", json!(true)).await;
    for action in [
        "invader_definition.created",
        "invader_definition.updated",
        "invader_definition.deleted",
    ] {
        assert!(audit_count(&app, org, action).await >= 1, "{action}");
    }
}

/// Owner A with a workspace and a warehouse holding one template and one invader; the same for B.
struct TwoTenants {
    app: TestApp,
    owner: Session,
    ws: Uuid,
    invader: Uuid,
    template: Uuid,
    other: Session,
    other_ws: Uuid,
    other_invader: Uuid,
    other_template: Uuid,
}

const RETRY_SCHEMA: &str = r#"{"type": "object", "required": ["times"],
    "properties": {"times": {"type": "integer", "minimum": 1}}}"#;

async fn two_tenants() -> TwoTenants {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let schema: Value = serde_json::from_str(RETRY_SCHEMA).unwrap();
    let (owner, org, _, ws) = c.owner_with_workspace("tenant-a").await;
    let wh = c.create_warehouse(&owner, org).await;
    let invader = c.create_invader(&owner, wh, "retry", schema.clone()).await;
    let template = c.create_template(&owner, wh, simple_structure(1)).await;
    let (other, other_org, _, other_ws) = c.owner_with_workspace("tenant-b").await;
    let other_wh = c.create_warehouse(&other, other_org).await;
    let other_invader = c.create_invader(&other, other_wh, "retry", schema).await;
    let other_template = c
        .create_template(&other, other_wh, simple_structure(1))
        .await;
    TwoTenants {
        app,
        owner,
        ws,
        invader,
        template,
        other,
        other_ws,
        other_invader,
        other_template,
    }
}

#[tokio::test]
async fn applying_an_invader_checks_the_config_against_the_schema() {
    let t = two_tenants().await;
    let c = &t.app.client;
    let block = c
        .post(
            &format!("/api/v1/workspaces/{}/blocks", t.ws),
            &t.owner.token,
            json!({"type": "NODE"}),
        )
        .await
        .id();
    let apply = |invader: Uuid, body: Value| {
        let path = format!(
            "/api/v1/workspaces/{}/blocks/{block}/invaders/{invader}",
            t.ws
        );
        let token = t.owner.token.clone();
        async move { c.put(&path, &token, body).await }
    };
    let wrong = apply(t.invader, json!({"config": {"times": 0}})).await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    assert_eq!(wrong.body["error"]["fields"][0]["field"], "config");
    assert!(wrong.body["error"]["fields"][0]["message"]
        .as_str()
        .unwrap()
        .contains("/times"));
    let missing = apply(t.invader, json!({"config": {}})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let foreign = apply(t.other_invader, json!({"config": {"times": 2}})).await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(foreign.body["error"]["fields"][0]["field"], "invader_id");
    let unknown = apply(Uuid::new_v4(), json!({"config": {"times": 2}})).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);

    let applied = apply(t.invader, json!({"config": {"times": 3}})).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    let usage = &applied.body["invaders"][t.invader.to_string()];
    assert_eq!(usage["config_snapshot"]["times"], 3);
    assert_eq!(usage["applied_version"], "1.0.0");
    let no_block = c
        .put(
            &format!(
                "/api/v1/workspaces/{}/blocks/{}/invaders/{}",
                t.ws,
                Uuid::new_v4(),
                t.invader
            ),
            &t.owner.token,
            json!({"config": {"times": 3}}),
        )
        .await;
    assert_eq!(no_block.status, StatusCode::NOT_FOUND);
    // Another organization's owner cannot reach the workspace at all.
    let stranger = c
        .put(
            &format!(
                "/api/v1/workspaces/{}/blocks/{block}/invaders/{}",
                t.ws, t.other_invader
            ),
            &t.other.token,
            json!({"config": {"times": 3}}),
        )
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn blocks_may_reference_only_their_organizations_assets() {
    let t = two_tenants().await;
    let c = &t.app.client;
    let blocks = format!("/api/v1/workspaces/{}/blocks", t.ws);
    let post = |body: Value| {
        let (path, token) = (blocks.clone(), t.owner.token.clone());
        async move { c.post(&path, &token, body).await }
    };
    let foreign_origin = post(json!({"type": "N", "origin_asset_id": t.other_template})).await;
    assert_eq!(foreign_origin.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        foreign_origin.body["error"]["fields"][0]["field"],
        "origin_asset_id"
    );
    let unknown_origin = post(json!({"type": "N", "origin_asset_id": Uuid::new_v4()})).await;
    assert_eq!(unknown_origin.status, StatusCode::UNPROCESSABLE_ENTITY);
    let own_origin = post(json!({"type": "N", "origin_asset_id": t.template})).await;
    assert_eq!(
        own_origin.status,
        StatusCode::CREATED,
        "{}",
        own_origin.body
    );

    let usage = |invader: Uuid, times: i64| json!({ invader.to_string(): {"applied_version": null, "config_snapshot": {"times": times}} });
    let foreign_invader = post(json!({"type": "N", "invaders": usage(t.other_invader, 2)})).await;
    assert_eq!(foreign_invader.status, StatusCode::UNPROCESSABLE_ENTITY);
    let field = foreign_invader.body["error"]["fields"][0]["field"]
        .as_str()
        .unwrap();
    assert_eq!(field, format!("invaders.{}", t.other_invader));
    let invalid = post(json!({"type": "N", "invaders": usage(t.invader, 0)})).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let valid = post(json!({"type": "N", "invaders": usage(t.invader, 2)})).await;
    assert_eq!(valid.status, StatusCode::CREATED, "{}", valid.body);
    let id = valid.id();
    let patch = c
        .patch(
            &format!("{blocks}/{id}"),
            &t.owner.token,
            json!({"invaders": usage(t.other_invader, 2)}),
        )
        .await;
    assert_eq!(patch.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing of the refused writes reached the document.
    let listed = c.get(&blocks, &t.owner.token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    let _ = t.other_ws;
}

#[tokio::test]
async fn save_selection_and_insert_round_trip() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _, ws) = c.owner_with_workspace("copy").await;
    let wh = c.create_warehouse(&owner, org).await;
    let blocks = format!("/api/v1/workspaces/{ws}/blocks");
    let make = |body: Value| {
        let (path, token) = (blocks.clone(), owner.token.clone());
        async move { c.post(&path, &token, body).await.id() }
    };
    let a = make(json!({"type": "GROUP", "name": "A", "visual": {"x": 100, "y": 50}})).await;
    let a1 = make(json!({"type": "NODE", "name": "A1", "parent_block_id": a,
                         "visual": {"x": 120, "y": 80}}))
    .await;
    let b = make(json!({"type": "NODE", "name": "B", "visual": {"x": 300, "y": 40}})).await;
    let outside = make(json!({"type": "NODE", "name": "C"})).await;
    let relations = format!("/api/v1/workspaces/{ws}/relations");
    for (s, t) in [(a, a1), (a1, b), (a, outside)] {
        let r = c
            .post(
                &relations,
                &owner.token,
                json!({"type": "LINK", "source_block_id": s, "target_block_id": t}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let saved = c
        .post(
            &format!("/api/v1/warehouses/{wh}/templates/from-selection"),
            &owner.token,
            json!({"workspace_id": ws, "block_ids": [a, b], "name": "pair"}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
    let structure = &saved.body["structure_data"];
    let saved_blocks = structure["blocks"].as_array().unwrap();
    assert_eq!(saved_blocks.len(), 3, "A, its child A1, and B");
    assert_eq!(
        structure["relations"].as_array().unwrap().len(),
        2,
        "A→C left out"
    );
    for block in saved_blocks {
        let id = block["id"].as_str().unwrap();
        assert!(
            ![a, a1, b].iter().any(|x| x.to_string() == id),
            "ids remapped"
        );
    }
    let template = saved.id();

    let unknown = c
        .post(
            &format!("/api/v1/warehouses/{wh}/templates/from-selection"),
            &owner.token,
            json!({"workspace_id": ws, "block_ids": [Uuid::new_v4()], "name": "x"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);

    let inserted = c
        .post(
            &format!("/api/v1/workspaces/{ws}/templates/{template}/instantiate"),
            &owner.token,
            json!({"x": 1000, "y": 500}),
        )
        .await;
    assert_eq!(inserted.status, StatusCode::CREATED, "{}", inserted.body);
    let new_blocks: Vec<String> = inserted.body["block_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(new_blocks.len(), 3);
    assert_eq!(inserted.body["relation_ids"].as_array().unwrap().len(), 2);

    let doc = c.get(&blocks, &owner.token).await;
    let all = doc.body["items"].as_array().unwrap();
    assert_eq!(all.len(), 7);
    let copies: Vec<&Value> = all
        .iter()
        .filter(|b| new_blocks.contains(&b["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(copies.len(), 3);
    for copy in &copies {
        assert_eq!(copy["origin_asset_id"], template.to_string());
        assert_eq!(copy["created_by_id"], owner.user_id.to_string());
    }
    let by_name = |name: &str| copies.iter().find(|b| b["name"] == name).unwrap();
    // Positions relative to the selection's top-left (100, 40), placed at (1000, 500).
    assert_eq!(by_name("A")["visual"]["x"], 1000);
    assert_eq!(by_name("A")["visual"]["y"], 510);
    assert_eq!(by_name("B")["visual"]["x"], 1200);
    assert_eq!(by_name("A1")["parent_block_id"], by_name("A")["id"]);
    let rels = c.get(&relations, &owner.token).await;
    let copied_rels = rels.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| new_blocks.contains(&r["source_block_id"].as_str().unwrap().to_string()))
        .count();
    assert_eq!(copied_rels, 2);

    // A Viewer may read the template but not insert it; a bad point is refused.
    let viewer = crate::warehouse_member(&app, &owner, org, "Viewer").await;
    let path = format!("/api/v1/workspaces/{ws}/templates/{template}/instantiate");
    let denied = c.post(&path, &viewer.token, json!({"x": 0, "y": 0})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let viewed = c
        .get(&format!("/api/v1/templates/{template}"), &viewer.token)
        .await;
    assert_eq!(viewed.status, StatusCode::OK);
    let not_a_point = c
        .post(&path, &owner.token, json!({"x": "left", "y": 0}))
        .await;
    assert_eq!(not_a_point.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn templates_and_workspaces_do_not_cross_organizations() {
    let t = two_tenants().await;
    let c = &t.app.client;
    // B's template into A's workspace, by A's owner: the template is not found.
    let foreign_template = c
        .post(
            &format!(
                "/api/v1/workspaces/{}/templates/{}/instantiate",
                t.ws, t.other_template
            ),
            &t.owner.token,
            json!({"x": 0, "y": 0}),
        )
        .await;
    assert_eq!(foreign_template.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign_template.code(), "not_found");
    // A's template into B's workspace, by B's owner: A's template is not found either.
    let into_foreign = c
        .post(
            &format!(
                "/api/v1/workspaces/{}/templates/{}/instantiate",
                t.other_ws, t.template
            ),
            &t.other.token,
            json!({"x": 0, "y": 0}),
        )
        .await;
    assert_eq!(into_foreign.status, StatusCode::NOT_FOUND);
    // Saving B's workspace into A's warehouse: 404 for the workspace.
    let wh: Uuid = c
        .get(&format!("/api/v1/templates/{}", t.template), &t.owner.token)
        .await
        .body["warehouse_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let cross = c
        .post(
            &format!("/api/v1/warehouses/{wh}/templates/from-selection"),
            &t.owner.token,
            json!({"workspace_id": t.other_ws, "block_ids": [Uuid::new_v4()], "name": "spy"}),
        )
        .await;
    assert_eq!(cross.status, StatusCode::NOT_FOUND);
    // Every asset of A answers 404 to B, exactly like a missing one.
    for path in [
        format!("/api/v1/warehouses/{wh}"),
        format!("/api/v1/warehouses/{wh}/templates"),
        format!("/api/v1/warehouses/{wh}/invaders"),
        format!("/api/v1/warehouses/{wh}/collections"),
        format!("/api/v1/templates/{}", t.template),
        format!("/api/v1/invaders/{}", t.invader),
    ] {
        let reply = c.get(&path, &t.other.token).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        let missing = c
            .get(
                &path.replace(&wh.to_string(), &Uuid::new_v4().to_string()),
                &t.other.token,
            )
            .await;
        assert_eq!(
            reply.body, missing.body,
            "{path} differs from a missing one"
        );
    }
}

#[tokio::test]
async fn insertion_respects_the_block_quota() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _, ws) = c.owner_with_workspace("quota").await;
    let wh = c.create_warehouse(&owner, org).await;
    let template = c.create_template(&owner, wh, simple_structure(3)).await;
    sqlx::query(
        "UPDATE subscriptions SET quotas = quotas || '{\"max_blocks_per_workspace\": 4}'
         WHERE org_id = $1",
    )
    .bind(org)
    .execute(app.pool())
    .await
    .unwrap();
    let path = format!("/api/v1/workspaces/{ws}/templates/{template}/instantiate");
    let first = c.post(&path, &owner.token, json!({"x": 0, "y": 0})).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let second = c.post(&path, &owner.token, json!({"x": 0, "y": 0})).await;
    assert_eq!(
        second.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        second.body
    );
    assert_eq!(second.code(), "quota_exceeded");
    let blocks = c
        .get(&format!("/api/v1/workspaces/{ws}/blocks"), &owner.token)
        .await;
    assert_eq!(
        blocks.body["items"].as_array().unwrap().len(),
        3,
        "nothing partial"
    );
}

#[tokio::test]
async fn template_invaders_are_the_organizations_and_match_their_schemas() {
    let t = two_tenants().await;
    let c = &t.app.client;
    let wh: Uuid = c
        .get(&format!("/api/v1/templates/{}", t.template), &t.owner.token)
        .await
        .body["warehouse_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let with_invader = |invader: Uuid, times: i64| {
        json!({"blocks": [{"id": Uuid::new_v4(), "type": "NODE", "invaders": {
            invader.to_string(): {"applied_version": "1.0.0", "config_snapshot": {"times": times}}
        }}]})
    };
    let create = |structure: Value| {
        let path = format!("/api/v1/warehouses/{wh}/templates");
        let token = t.owner.token.clone();
        async move {
            c.post(
                &path,
                &token,
                json!({"name": "t", "structure_data": structure}),
            )
            .await
        }
    };
    let foreign = create(with_invader(t.other_invader, 2)).await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);
    let field = foreign.body["error"]["fields"][0]["field"]
        .as_str()
        .unwrap();
    assert!(
        field.starts_with("structure_data.blocks[0].invaders."),
        "{field}"
    );
    let invalid = create(with_invader(t.invader, 0)).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let valid = create(with_invader(t.invader, 2)).await;
    assert_eq!(valid.status, StatusCode::CREATED, "{}", valid.body);
    let template = valid.id();

    let path = format!(
        "/api/v1/workspaces/{}/templates/{template}/instantiate",
        t.ws
    );
    let inserted = c.post(&path, &t.owner.token, json!({"x": 0, "y": 0})).await;
    assert_eq!(inserted.status, StatusCode::CREATED, "{}", inserted.body);
    let block = inserted.body["block_ids"][0].as_str().unwrap().to_string();
    let copy = c
        .get(
            &format!("/api/v1/workspaces/{}/blocks/{block}", t.ws),
            &t.owner.token,
        )
        .await;
    assert_eq!(
        copy.body["invaders"][t.invader.to_string()]["config_snapshot"]["times"],
        2
    );
    // Once the definition is gone the template cannot be inserted as it is: 422, nothing written.
    let deleted = c
        .delete(&format!("/api/v1/invaders/{}", t.invader), &t.owner.token)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let stale = c.post(&path, &t.owner.token, json!({"x": 0, "y": 0})).await;
    assert_eq!(
        stale.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        stale.body
    );
    let blocks = c
        .get(
            &format!("/api/v1/workspaces/{}/blocks", t.ws),
            &t.owner.token,
        )
        .await;
    assert_eq!(blocks.body["items"].as_array().unwrap().len(), 1);
}
