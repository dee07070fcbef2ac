//! `weft namespace …` and `weft token …`: namespaces and their API tokens.

use super::Client;
use serde_json::{Value, json};

/// `weft namespace …`: create, list, show, delete.
pub async fn namespace(client: &Client, action: &str, name: Option<&str>) -> anyhow::Result<()> {
    let name = || name.ok_or_else(|| anyhow::anyhow!("name the namespace"));
    match action {
        "create" => {
            client
                .post("/v1/namespaces", &json!({ "name": name()? }))
                .await?;
            out!("namespace {} created", name()?);
        }
        "delete" => {
            client
                .delete(&format!("/v1/namespaces/{}", name()?))
                .await?;
            out!("namespace {} deleted", name()?);
        }
        "show" => {
            let ns = client.get(&format!("/v1/namespaces/{}", name()?)).await?;
            out!("{}", serde_json::to_string_pretty(&ns)?);
        }
        _ => {
            let list = client.get("/v1/namespaces").await?;
            for ns in list["namespaces"].as_array().into_iter().flatten() {
                out!("{}", ns["name"].as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

/// `weft token create`: prints the token's value, the only time it is shown.
/// What `weft token create` issues.
pub struct NewToken {
    pub role: String,
    pub description: Option<String>,
    /// Map this client certificate common name instead of issuing a secret.
    pub client_cert: Option<String>,
}

pub async fn token_create(client: &Client, namespace: &str, new: NewToken) -> anyhow::Result<()> {
    let role = new.role;
    let body = json!({
        "role": role,
        "description": new.description.unwrap_or_default(),
        "client_cert": new.client_cert,
    });
    let token = client
        .post(&format!("/v1/namespaces/{namespace}/tokens"), &body)
        .await?;
    if let Some(name) = token["client_cert"].as_str() {
        out!(
            "{}: client certificate `{name}` acts as {role} in {namespace}",
            token["id"].as_str().unwrap_or_default()
        );
        return Ok(());
    }
    eprintln!(
        "token {} ({role} in {namespace}): shown once, keep it now",
        token["id"].as_str().unwrap_or_default()
    );
    out!("{}", token["token"].as_str().unwrap_or_default());
    Ok(())
}

/// `weft token list`: ids, roles and last use, never values.
pub async fn token_list(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let list = client
        .get(&format!("/v1/namespaces/{namespace}/tokens"))
        .await?;
    out!(
        "{:<24} {:<8} {:<10} {:<10} DESCRIPTION",
        "ID",
        "ROLE",
        "LAST USED",
        "REVOKED"
    );
    let now = crate::clock::now_ms();
    let when = |v: &Value| {
        v.as_i64().map_or("-".to_string(), |t| {
            format!("{}s ago", (now - t).max(0) / 1000)
        })
    };
    for t in list["tokens"].as_array().into_iter().flatten() {
        let description = match t["client_cert"].as_str() {
            Some(name) => format!(
                "[client cert {name}] {}",
                t["description"].as_str().unwrap_or_default()
            ),
            None => t["description"].as_str().unwrap_or_default().to_string(),
        };
        out!(
            "{:<24} {:<8} {:<10} {:<10} {}",
            t["id"].as_str().unwrap_or_default(),
            t["role"].as_str().unwrap_or_default(),
            when(&t["last_used_at_ms"]),
            when(&t["revoked_at_ms"]),
            description.trim_end()
        );
    }
    Ok(())
}

pub async fn token_revoke(client: &Client, namespace: &str, id: &str) -> anyhow::Result<()> {
    client
        .delete(&format!("/v1/namespaces/{namespace}/tokens/{id}"))
        .await?;
    out!("token {id} revoked");
    Ok(())
}
