//! Webhook subscriptions of a namespace (namespace admins), their delivery log and redelivery.

use actix_web::web::{Data, Json, Path, Query};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post};
use kiln_core::api::{
    CreatedWebhook, ErrorResponse, NewWebhook, WebhookDeliveries, WebhookDelivery,
    WebhookSubscription, WebhookSubscriptions, WebhookUpdate,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::actor;
use super::json_object::JsonObject;
use super::params::NamespacePath;
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// Namespace, e.g. `acme`
    #[param(value_type = kiln_core::NamespaceName)]
    pub namespace: String,
    /// The subscription's id
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryPath {
    /// Namespace, e.g. `acme`
    #[param(value_type = kiln_core::NamespaceName)]
    pub namespace: String,
    /// The subscription's id
    pub id: String,
    /// The delivery's id
    pub delivery: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// How many, newest first (1-200, default 50)
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// Subscribe to a namespace's events
///
/// Deliveries are POSTed to the URL with the Standard Webhooks headers (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the secret in this answer, shown only
/// once), retried with backoff for a day, one model's events in order (namespace admins; audited).
#[utoipa::path(tag = "webhooks", params(NamespacePath), request_body = NewWebhook, responses(
    (status = 201, description = "The subscription, and its signing secret (shown only here)", body = CreatedWebhook),
    (status = 400, description = "Not a valid namespace or model name (`invalid_name`), a URL kiln will not send to (`invalid_webhook_url`: not http(s), or a private, loopback or link-local address), no events (`invalid_webhook`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[post("/namespaces/{namespace}/webhooks")]
async fn create_webhook(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<NamespacePath>,
    body: JsonObject<NewWebhook>,
) -> Result<HttpResponse, Error> {
    let created = services
        .webhooks
        .create(
            path.into_inner().namespace.parse()?,
            body.into_inner(),
            actor(&req, &principal),
        )
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// List a namespace's webhook subscriptions
///
/// Each with its URL, events, state and failures since the last success; never its secret (namespace
/// admins).
#[utoipa::path(tag = "webhooks", params(NamespacePath), responses(
    (status = 200, description = "Its subscriptions (without their secrets)", body = WebhookSubscriptions),
    (status = 400, description = "Not a valid namespace name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[get("/namespaces/{namespace}/webhooks")]
async fn list_webhooks(
    services: Data<Services>,
    path: Path<NamespacePath>,
) -> Result<Json<WebhookSubscriptions>, Error> {
    let listed = services
        .webhooks
        .list(path.into_inner().namespace.parse()?)
        .await?;
    Ok(Json(listed))
}

/// Get a webhook subscription
///
/// Its URL, events, whether it is enabled (and why not), and failures since the last success (namespace
/// admins).
#[utoipa::path(tag = "webhooks", params(WebhookPath), responses(
    (status = 200, description = "The subscription", body = WebhookSubscription),
    (status = 400, description = "Not a valid namespace name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such namespace, or no such subscription in it", body = ErrorResponse),
))]
#[get("/namespaces/{namespace}/webhooks/{id}")]
async fn get_webhook(
    services: Data<Services>,
    path: Path<WebhookPath>,
) -> Result<Json<WebhookSubscription>, Error> {
    let WebhookPath { namespace, id } = path.into_inner();
    Ok(Json(services.webhooks.get(namespace.parse()?, id).await?))
}

/// Change a webhook subscription
///
/// Its URL, events or description; `enabled: true` turns on a subscription kiln disabled after failing
/// deliveries (its failure count reset), `false` pauses it (namespace admins; audited).
#[utoipa::path(tag = "webhooks", params(WebhookPath), request_body = WebhookUpdate, responses(
    (status = 200, description = "The subscription as it is now", body = WebhookSubscription),
    (status = 400, description = "Not a valid namespace name (`invalid_name`), a URL kiln will not send to (`invalid_webhook_url`), no events (`invalid_webhook`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such namespace, or no such subscription in it", body = ErrorResponse),
))]
#[patch("/namespaces/{namespace}/webhooks/{id}")]
async fn update_webhook(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<WebhookPath>,
    body: JsonObject<WebhookUpdate>,
) -> Result<Json<WebhookSubscription>, Error> {
    let WebhookPath { namespace, id } = path.into_inner();
    let updated = services
        .webhooks
        .update(
            namespace.parse()?,
            id,
            body.into_inner(),
            actor(&req, &principal),
        )
        .await?;
    Ok(Json(updated))
}

/// Delete a webhook subscription
///
/// With its delivery log; deliveries not yet sent are dropped (namespace admins; audited).
#[utoipa::path(tag = "webhooks", params(WebhookPath), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Not a valid namespace name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such namespace, or no such subscription in it", body = ErrorResponse),
))]
#[delete("/namespaces/{namespace}/webhooks/{id}")]
async fn delete_webhook(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<WebhookPath>,
) -> Result<HttpResponse, Error> {
    let WebhookPath { namespace, id } = path.into_inner();
    services
        .webhooks
        .delete(namespace.parse()?, id, actor(&req, &principal))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List a subscription's deliveries
///
/// Newest first, each with its tries: the receiver's status, how long it took, the start of its
/// answer, or why no answer counted.
#[utoipa::path(tag = "webhooks", params(WebhookPath, DeliveriesQuery), responses(
    (status = 200, description = "The deliveries", body = WebhookDeliveries),
    (status = 400, description = "Not a valid namespace name (`invalid_name`), or a limit that is not a number (`invalid_query`)", body = ErrorResponse),
    (status = 404, description = "No such namespace, or no such subscription in it", body = ErrorResponse),
))]
#[get("/namespaces/{namespace}/webhooks/{id}/deliveries")]
async fn list_deliveries(
    services: Data<Services>,
    path: Path<WebhookPath>,
    query: Query<DeliveriesQuery>,
) -> Result<Json<WebhookDeliveries>, Error> {
    let WebhookPath { namespace, id } = path.into_inner();
    let deliveries = services
        .webhooks
        .deliveries(namespace.parse()?, id, query.limit)
        .await?;
    Ok(Json(deliveries))
}

/// Send a delivery again
///
/// Now, under the same `webhook-id` (so a receiver that already has it can drop it): a delivery the
/// receiver lost, or one given up after a day of retries (namespace admins; audited).
#[utoipa::path(tag = "webhooks", params(DeliveryPath), responses(
    (status = 200, description = "The delivery, pending again", body = WebhookDelivery),
    (status = 400, description = "Not a valid namespace name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such namespace, subscription or delivery", body = ErrorResponse),
    (status = 409, description = "A replica is sending this delivery right now (`delivery_in_progress`)", body = ErrorResponse),
))]
#[post("/namespaces/{namespace}/webhooks/{id}/deliveries/{delivery}/redeliver")]
async fn redeliver(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<DeliveryPath>,
) -> Result<Json<WebhookDelivery>, Error> {
    let DeliveryPath {
        namespace,
        id,
        delivery,
    } = path.into_inner();
    let delivered = services
        .webhooks
        .redeliver(namespace.parse()?, id, delivery, actor(&req, &principal))
        .await?;
    Ok(Json(delivered))
}
