//! HTTP: routes, request parsing and the OpenAPI document. Handlers are thin: parse, call a service, map
//! the error (in `crate::error`).

mod files;
mod health;
mod models;
mod params;
mod uploads;

use actix_web::{HttpRequest, web};
use kiln_core::api::ErrorResponse;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::repos::audit::Actor;
use crate::error::Error;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kiln",
        description = "kiln model registry: versioned models in content-addressed storage.\n\n\
            Errors are JSON `{\"error\": {\"code\", \"message\", \"details\"?}}` with a 4xx or 5xx status.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "models", description = "Namespaces, models and versions"),
        (name = "blobs", description = "Content-addressed blob uploads"),
        (name = "files", description = "Downloading a version's files"),
        (name = "health", description = "Liveness and readiness"),
    ),
    components(schemas(ErrorResponse))
)]
struct ApiDoc;

/// Registers every route. The same function feeds the server and the generated OpenAPI document.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(
            utoipa_actix_web::scope("/api/v1")
                .service(models::list_namespaces)
                .service(models::list_namespace_models)
                .service(models::list_models)
                .service(models::get_model)
                .service(models::update_model)
                .service(models::create_version)
                .service(models::get_version)
                .service(models::delete_version)
                .service(files::download_file)
                .service(uploads::missing_blobs)
                .service(uploads::create_upload)
                .service(uploads::get_upload)
                .service(uploads::write_chunk)
                .service(uploads::commit_upload)
                .service(uploads::abort_upload),
        );
}

/// The document's info, tags and shared schemas; routes add their paths through [`routes`].
pub fn base_openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document as the running server serves it at /api-docs/openapi.json.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(base_openapi())
        .configure(routes)
        .split_for_parts();
    api
}

/// Request-body and path parsing errors become the API's JSON errors.
pub fn extractor_configs(
    max_json_bytes: usize,
) -> (web::JsonConfig, web::PathConfig, web::QueryConfig) {
    let json = web::JsonConfig::default()
        .limit(max_json_bytes)
        .error_handler(move |err, _| {
            use actix_web::error::JsonPayloadError;
            match err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => Error::PayloadTooLarge {
                    message: format!(
                        "the JSON body is larger than the server's limit of {max_json_bytes} bytes"
                    ),
                },
                JsonPayloadError::ContentType => Error::bad_request(
                    "invalid_content_type",
                    "send the body as Content-Type: application/json",
                ),
                other => {
                    Error::bad_request("invalid_json", format!("the JSON body is invalid: {other}"))
                }
            }
            .into()
        });
    let path = web::PathConfig::default().error_handler(|err, _| {
        Error::bad_request("invalid_path_parameter", err.to_string()).into()
    });
    let query = web::QueryConfig::default()
        .error_handler(|err, _| Error::bad_request("invalid_query", err.to_string()).into());
    (json, path, query)
}

/// Who is calling. Accounts arrive with authentication; until then every caller is anonymous.
pub(crate) fn actor(req: &HttpRequest) -> Actor {
    Actor {
        name: "anonymous".to_owned(),
        remote_addr: req.peer_addr().map(|a| a.ip().to_string()),
    }
}
