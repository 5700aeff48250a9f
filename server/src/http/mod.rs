//! HTTP: routes, request parsing and the OpenAPI document. Handlers are thin: parse, call a service, map
//! the error (in `crate::error`).

mod accounts;
mod aliases;
pub mod authorize;
pub mod body_rate;
pub mod cors;
mod distillations;
mod file_responses;
mod files;
pub mod head;
mod health;
mod json_object;
mod manifests;
pub mod metrics;
mod models;
pub mod oci;
mod openapi;
mod pages;
mod params;
mod ranges;
pub mod request_metrics;
mod runner_distillations;
mod runners;
mod servings;
mod storage_lifecycle;
pub mod ui;
mod uploads;
mod webhooks;

use actix_web::{HttpRequest, web};
use kiln_core::ErrorCode;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Principal;
use crate::db::repos::audit::Actor;
use crate::error::Error;

/// Registers every route. The same function feeds the server and the generated OpenAPI document.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(manifests::jwks)
        .service(
            utoipa_actix_web::scope("/api/v1")
                .service(models::list_namespaces)
                .service(models::list_namespace_models)
                .service(models::list_models)
                .service(models::get_model)
                .service(models::update_model)
                .service(models::list_versions)
                .service(models::create_version)
                .service(models::get_version)
                .service(models::delete_version)
                .service(models::delete_model)
                .service(models::set_visibility)
                .service(accounts::exchange_token)
                .service(accounts::me)
                .service(accounts::list_tokens)
                .service(accounts::create_token)
                .service(accounts::revoke_token)
                .service(accounts::list_users)
                .service(accounts::create_user)
                .service(accounts::audit_log)
                .service(accounts::rotate_jwt_key)
                .service(accounts::create_namespace)
                .service(accounts::list_members)
                .service(accounts::set_member)
                .service(accounts::remove_member)
                .service(accounts::namespace_settings)
                .service(accounts::set_namespace_settings)
                .service(files::download_file)
                .service(files::download_variant_file)
                .service(manifests::version_manifest)
                .service(manifests::version_manifest_by_sequence)
                .service(manifests::alias_manifest)
                .service(manifests::alias_manifest_by_sequence)
                .service(aliases::list_aliases)
                .service(aliases::set_alias)
                .service(aliases::alias_history)
                .service(servings::report_serving)
                .service(servings::withdraw_serving)
                .service(servings::list_servings)
                .service(runners::register_runner)
                .service(runners::runner_heartbeat)
                .service(runners::claim_job)
                .service(runners::job_file)
                .service(runners::report_result)
                .service(runners::list_runners)
                .service(runner_distillations::claim_distillation)
                .service(runner_distillations::teacher_file)
                .service(runner_distillations::data_file)
                .service(runner_distillations::save_checkpoint)
                .service(runner_distillations::load_checkpoint)
                .service(runner_distillations::upload_student_file)
                .service(runner_distillations::report_distillation)
                .service(distillations::request_distillation)
                .service(distillations::list_distillations)
                .service(distillations::get_distillation)
                .service(distillations::cancel_distillation)
                .service(uploads::missing_blobs)
                .service(uploads::create_upload)
                .service(uploads::get_upload)
                .service(uploads::write_chunk)
                .service(uploads::commit_upload)
                .service(uploads::abort_upload)
                .service(storage_lifecycle::collect_garbage)
                .service(storage_lifecycle::check_store)
                .service(storage_lifecycle::namespace_usage)
                .service(storage_lifecycle::set_quota)
                .service(storage_lifecycle::check_quota)
                .service(storage_lifecycle::retention_rules)
                .service(storage_lifecycle::set_namespace_retention)
                .service(storage_lifecycle::remove_namespace_retention)
                .service(storage_lifecycle::apply_retention)
                .service(storage_lifecycle::set_model_retention)
                .service(storage_lifecycle::remove_model_retention)
                .service(webhooks::create_webhook)
                .service(webhooks::list_webhooks)
                .service(webhooks::get_webhook)
                .service(webhooks::update_webhook)
                .service(webhooks::delete_webhook)
                .service(webhooks::list_deliveries)
                .service(webhooks::redeliver),
        );
}

/// The document's info, tags and shared schemas; routes add their paths through [`routes`].
pub fn base_openapi() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi()
}

/// Completes the document the routes assembled: each operation gets its access rule from the policy table.
pub fn finish_openapi(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    openapi::apply_access_rules(&mut api);
    api
}

/// The OpenAPI document as the running server serves it at /api-docs/openapi.json.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(base_openapi())
        .configure(routes)
        .split_for_parts();
    finish_openapi(api)
}

/// A JSON body that does not fit its type. A name, path or digest it holds that its type refused keeps
/// its own code, so a bad file path is `invalid_path` whether it arrives in a URL or in a JSON body.
pub(crate) fn body_error(e: &serde_json::Error) -> Error {
    match kiln_core::CoreError::code_of_message(&e.to_string()) {
        Some(code) => Error::bad_request(code, e.to_string()),
        None => Error::bad_request(
            ErrorCode::InvalidJson,
            format!("the JSON body is invalid: {e}"),
        ),
    }
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
                JsonPayloadError::Deserialize(e) => body_error(&e),
                JsonPayloadError::Payload(actix_web::error::PayloadError::Io(e))
                    if e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    Error::RequestTimeout {
                        message: e.to_string(),
                    }
                }
                JsonPayloadError::ContentType => Error::bad_request(
                    ErrorCode::InvalidContentType,
                    "send the body as Content-Type: application/json",
                ),
                other => Error::bad_request(
                    ErrorCode::InvalidJson,
                    format!("the JSON body is invalid: {other}"),
                ),
            }
            .into()
        });
    let path = web::PathConfig::default().error_handler(|err, _| {
        Error::bad_request(ErrorCode::InvalidPathParameter, err.to_string()).into()
    });
    let query = web::QueryConfig::default().error_handler(|err, _| {
        Error::bad_request(ErrorCode::InvalidQuery, err.to_string()).into()
    });
    (json, path, query)
}

/// Who is calling, for the audit log.
pub(crate) fn actor(req: &HttpRequest, principal: &Principal) -> Actor {
    Actor {
        name: principal.audit_name(),
        user_id: principal.user().map(|u| u.id.clone()),
        remote_addr: req.peer_addr().map(|a| a.ip().to_string()),
    }
}

/// The signed-in user; the policy table already refused anyone else on routes that call this.
pub(crate) fn signed_in(principal: &Principal) -> Result<&crate::auth::User, Error> {
    principal
        .user()
        .ok_or_else(crate::auth::policy::sign_in_needed)
}
