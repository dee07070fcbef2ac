//! `GET /v1/openapi.json`: the API described by an OpenAPI 3.1 document
//! generated from the routes. Every operation has a summary, a unique
//! operation id, its path parameters and the error shape; every documented
//! operation is served; and no route is registered outside the document.

use crate::support::{Server, workspace};
use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// `{name}` segments of a path template.
fn template_params(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_every_route_and_only_routes_that_exist() {
    // With authentication on: the document is read without a token.
    let server = Server::start(&["--admin-token", crate::tenancy::ADMIN]);
    let response = reqwest::get(server.url("/v1/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0", "{}", doc["openapi"]);
    // Valid against the OpenAPI 3.1 schema, references resolved, as a
    // client generator reads it.
    let validator = workspace().join("tests/ui/openapi.mjs");
    let url = server.url("/v1/openapi.json");
    let checked = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(validator)
            .arg(url)
            .output()
            .expect("node runs (scripts/setup.sh --tests installs swagger-parser)")
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(said.contains(r#""openapi":"3.1.0""#), "{said}");
    assert_eq!(doc["info"]["title"], "weft");
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );

    let mut ids = BTreeSet::new();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let name = format!("{} {path}", method.to_uppercase());
            let summary = op["summary"].as_str().unwrap_or_default();
            assert!(!summary.trim().is_empty(), "{name} has no description");
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(ids.insert(id.clone()), "{name}: operation id {id} twice");
            assert!(op["tags"][0].is_string(), "{name} has no tag");
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(declared, template_params(path), "{name}'s path parameters");
            let error = &op["responses"]["default"]["content"]["application/json"]["schema"];
            assert_eq!(error["$ref"], "#/components/schemas/ErrorBody", "{name}");
            operations.push((method, path.clone()));
        }
    }
    assert!(operations.len() >= 45, "{} operations", operations.len());
    for schema in ["StartBody", "RunRecord", "Limits", "ErrorBody"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    // A field's doc comment is its description.
    let wait = &doc["paths"]["/v1/runs/{run_id}"]["get"]["parameters"][1];
    assert_eq!(wait["name"], "wait");
    assert!(wait["description"].as_str().unwrap().contains("seconds"));

    // Every documented operation is served: with placeholder parameters
    // and no body it may be refused, but never as an unknown route or
    // method.
    let http = reqwest::Client::new();
    for (method, path) in &operations {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = http
            .request(method.clone(), server.url(&concrete))
            .bearer_auth(crate::tenancy::ADMIN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("no such route"),
            "{method} {concrete}: {status} {body}"
        );
    }

    // Routes are registered only through `routes!` (each with its
    // handler's description): a route added any other way would be served
    // without being in the document.
    let router = std::fs::read_to_string(workspace().join("host/src/api/mod.rs")).unwrap();
    for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
        assert!(
            !router.contains(call),
            "host/src/api/mod.rs registers a route with `{call}`: use `routes!` and `#[utoipa::path]`"
        );
    }
}
