//! `GET /openapi.json`: the OpenAPI 3.1 document of every route (INTERFACE.md section
//! 10), generated from the handlers' `#[utoipa::path]` annotations.
//!
//! The route table (`api.rs`) adds each handler with `utoipa_axum::routes!`, which takes
//! the method and path from the annotation both to route the request and to document
//! it, so the two cannot disagree. Routes that have no handler function to annotate (the
//! operator page's files) go through [`documented_get`], the one other way to add one.
//! [`finish`] then adds what every operation of a kind shares (the auth, scoping, body
//! and log errors), by the same rules the extractors and middleware follow.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Extension;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;

use super::schemas;
use crate::admin::{PageAnswer, PageRoute};

/// The security scheme's name: the `X-Auth-Token` header of `PUT /v2/api_auth`'s token.
const TOKEN_SCHEME: &str = "X-Auth-Token";

/// What the route table starts from: the document's info, tags, security scheme and
/// the schemas that no annotation names directly.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Piston Webhooks",
        description = "A Kazoo-compatible webhook dispatcher (Crossbar conventions). \
            Bodies are `{\"data\": ...}` and answers the Crossbar envelope; ids are 32 \
            lowercase hex characters. Every request body is read before routing, so any \
            route may answer 413 (over `--max-body-bytes`) or 408 (a body that stalls); \
            a known path with another method answers 405, an unknown path 404.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&TokenScheme),
    security(("X-Auth-Token" = [])),
    components(schemas(schemas::Event, schemas::ErrorEnvelope)),
    tags(
        (name = "auth", description = "Tokens (INTERFACE.md section 3)"),
        (name = "accounts", description = "Accounts (INTERFACE.md section 3)"),
        (name = "webhooks", description = "Webhooks (INTERFACE.md sections 4 and 9)"),
        (name = "attempts", description = "Delivery attempts (INTERFACE.md section 4)"),
        (name = "events", description = "Event ingest over HTTP (INTERFACE.md section 5)"),
        (name = "operations", description = "Health, this document, the operator page (INTERFACE.md section 10)"),
    )
)]
struct ApiDoc;

/// Adds the `X-Auth-Token` API-key scheme.
struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut key = ApiKeyValue::new(TOKEN_SCHEME);
        key.description = Some(
            "A token from `PUT /v2/api_auth`. It acts on its own account and every \
             descendant account."
                .into(),
        );
        components.add_security_scheme(TOKEN_SCHEME, SecurityScheme::ApiKey(ApiKey::Header(key)));
    }
}

/// An empty route table carrying the document's base.
pub(crate) fn base<S: Clone + Send + Sync + 'static>() -> OpenApiRouter<S> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
}

/// Adds a `GET` route that has no annotated handler, with its documentation.
pub(crate) fn documented_get<S: Clone + Send + Sync + 'static>(
    router: OpenApiRouter<S>,
    path: &str,
    handler: MethodRouter<S>,
    operation: Operation,
) -> OpenApiRouter<S> {
    let mut router = router.route(path, handler);
    router
        .get_openapi_mut()
        .paths
        .add_path_operation(path, vec![HttpMethod::Get], operation);
    router
}

/// Adds the operator page's routes (`crate::admin`), documented as public `GET`s.
pub(crate) fn page_routes<S: Clone + Send + Sync + 'static>(
    mut router: OpenApiRouter<S>,
    routes: Vec<PageRoute<S>>,
) -> OpenApiRouter<S> {
    let text = || ObjectBuilder::new().schema_type(Type::String).build();
    for route in routes {
        let (status, response) = match route.answer {
            PageAnswer::File(content_type) => {
                let media_type = content_type.split(';').next().unwrap_or(content_type);
                let response = ResponseBuilder::new()
                    .description("The file, locked down by its headers (no envelope).")
                    .content(
                        media_type,
                        ContentBuilder::new().schema(Some(text())).build(),
                    );
                ("200", response)
            }
            PageAnswer::Redirect => {
                let location = HeaderBuilder::new().schema(Some(text())).build();
                let response = ResponseBuilder::new()
                    .description("To the page, by the relative `Location: ../admin`.")
                    .header("Location", location);
                ("308", response)
            }
        };
        let operation = OperationBuilder::new()
            .tag("operations")
            .summary(Some(format!("The operator page: {}", route.path)))
            .security(SecurityRequirement::default())
            .response(status, response.build())
            .build();
        router = documented_get(router, &route.path, route.handler, operation);
    }
    router
}

/// Completes the collected document: the error answers every operation of a kind
/// shares, following the code that gives them.
pub(crate) fn finish(mut doc: OpenApi) -> OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        let scoped = path.contains("{account_id}");
        let operations = [
            (&mut item.get, false),
            (&mut item.put, true),
            (&mut item.post, true),
            (&mut item.patch, true),
            (&mut item.delete, true),
        ];
        for (operation, writes) in operations {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            // Public operations say `security: [{}]`; the others use the document's.
            let public = operation
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(is_empty_requirement));
            if !public {
                add_error(
                    operation,
                    "401",
                    "Missing, unknown or expired `X-Auth-Token`.",
                );
            }
            if scoped {
                add_error(
                    operation,
                    "403",
                    "The account is outside the caller's account and its descendants.",
                );
                add_error(
                    operation,
                    "404",
                    "`bad_identifier`: no such account (or webhook of it).",
                );
            }
            if operation.request_body.is_some() {
                add_error(
                    operation,
                    "400",
                    "Invalid JSON, or a validation error keyed by field path.",
                );
                add_error(
                    operation,
                    "413",
                    "The body is larger than `--max-body-bytes`, or the document to store \
                     larger than `--max-document-bytes`.",
                );
                add_error(operation, "408", "The request body did not arrive in time.");
            }
            if writes && !public {
                add_error(
                    operation,
                    "503",
                    "The event log cannot take writes (disk full, writer stopped).",
                );
            }
        }
    }
    doc
}

fn is_empty_requirement(requirement: &SecurityRequirement) -> bool {
    serde_json::to_value(requirement).is_ok_and(|v| v.as_object().is_some_and(|m| m.is_empty()))
}

/// Adds an error answer unless the annotation already describes that status.
fn add_error(operation: &mut Operation, status: &str, description: &str) {
    let responses: &mut BTreeMap<_, _> = &mut operation.responses.responses;
    responses.entry(status.to_owned()).or_insert_with(|| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                    .build(),
            )
            .build()
            .into()
    });
}

/// The serialized document, served as is.
#[derive(Clone)]
pub(crate) struct OpenApiJson(Arc<str>);

impl OpenApiJson {
    pub(crate) fn new(doc: &OpenApi) -> Self {
        // The document is plain data; serializing it cannot fail.
        let text = serde_json::to_string(doc).unwrap_or_default();
        OpenApiJson(text.into())
    }
}

/// `GET /openapi.json` (no auth).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    security(()),
    responses((
        status = 200,
        description = "This OpenAPI 3.1 document (no envelope).",
        content_type = "application/json",
        body = Object,
    ))
)]
pub(crate) async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> Response {
    let mut response = doc.0.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
