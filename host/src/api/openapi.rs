//! The API's OpenAPI 3.1 document, generated from the handlers'
//! `#[utoipa::path]` attributes and the request and answer types: the
//! router registers each route together with its description (see
//! `router`), so a route cannot be served without one.

use super::error::{ErrorBody, ErrorDetail};
use serde::Deserialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "weft",
        description = "Durable execution for workflows compiled to WebAssembly components. \
            Every request but `/healthz` and this document needs a bearer token when the \
            server runs with authentication (`weft serve --admin-token`); in dev mode \
            (loopback, no token) none is needed."
    ),
    security(("token" = [])),
    components(schemas(ErrorBody, ErrorDetail))
)]
pub struct ApiDoc;

/// Add what holds for every operation, once the routes are in: the bearer
/// token, and the one error shape of every failed request.
pub fn complete(api: &mut utoipa::openapi::OpenApi) {
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "token",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    let name = <ErrorBody as ToSchema>::name();
    let error: RefOr<Response> = ResponseBuilder::new()
        .description(
            "An error: 400 bad input, 401 no or an unknown token, 403 a token without \
                 the role, 404 not found (also a run of another namespace), 409 a conflict, \
                 413 too large, 429 over a rate limit (with `Retry-After`).",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(name)))
                .build(),
        )
        .build()
        .into();
    for item in api.paths.paths.values_mut() {
        for operation in operations(item) {
            operation
                .responses
                .responses
                .entry("default".to_string())
                .or_insert_with(|| error.clone());
        }
    }
}

/// The operations of one path.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// `?namespace=` (default: the token's, else `default`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NamespaceQuery {
    /// The namespace (default: the token's, else `default`).
    pub namespace: Option<String>,
}
