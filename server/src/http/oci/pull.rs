//! Pull and discovery: the base endpoint, tag lists with `n`/`last`, manifests and blobs by tag or
//! digest (with `Range` on blobs), and the referrers API.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get};
use futures_util::TryStreamExt;
use kiln_core::{ModelName, NamespaceName, Sha256Digest};
use serde::Deserialize;

use super::{
    API_VERSION, DigestPath, OciError, ReferencePath, RepositoryPath, caller, reader, refusal,
    unauthorized,
};
use crate::auth::Principal;
use crate::http::file_responses::{Ranged, ranged};
use crate::http::head::{HeadRequest, Headers};
use crate::services::Services;
use crate::services::oci::{Blob, Reference};

/// The base endpoint: 200 to a caller whose credentials are good, 401 with the challenge to one who sent
/// none. Clients learn from this answer how to authenticate (containers/image sends no credentials to a
/// registry whose base answered 200 unasked); without credentials they still pull public models.
#[get("/v2/")]
async fn base(services: Data<Services>, req: HttpRequest) -> Result<HttpResponse, OciError> {
    if let Principal::Anonymous = caller(&services, &req).await? {
        return Err(unauthorized(
            &req,
            None,
            "authenticate with a kiln user name and an API token; public models need none",
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .json(serde_json::json!({})))
}

#[derive(Debug, Deserialize)]
pub struct TagsQuery {
    n: Option<usize>,
    last: Option<String>,
}

#[get("/v2/{namespace}/{model}/tags/list")]
async fn tags(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<RepositoryPath>,
    query: Query<TagsQuery>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let principal = reader(&services, &req, &ns, &model).await?;
    let query = query.into_inner();
    let tags = services
        .oci
        .tags(ns.clone(), model.clone(), query.n, query.last)
        .await
        .map_err(|e| refusal(&req, e, &principal, &ns, &model))?;
    let mut response = HttpResponse::Ok();
    response.insert_header(("Docker-Distribution-API-Version", API_VERSION));
    if let (Some(n), Some(last)) = (query.n, tags.last())
        && tags.len() == n
    {
        response.insert_header((
            header::LINK,
            format!(
                "</v2/{ns}/{model}/tags/list?n={n}&last={}>; rel=\"next\"",
                form_urlencoded::byte_serialize(last.as_bytes()).collect::<String>()
            ),
        ));
    }
    Ok(response.json(serde_json::json!({ "name": format!("{ns}/{model}"), "tags": tags })))
}

#[get("/v2/{namespace}/{model}/manifests/{reference}")]
async fn manifest(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<ReferencePath>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let principal = reader(&services, &req, &ns, &model).await?;
    let served = services
        .oci
        .manifest(ns.clone(), model.clone(), Reference::parse(&path.reference))
        .await
        .map_err(|e| refusal(&req, e, &principal, &ns, &model))?
        .ok_or_else(|| {
            OciError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                format!("no manifest {} in this repository", path.reference),
            )
        })?;
    Ok(HttpResponse::Ok()
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .insert_header(("Docker-Content-Digest", served.digest.clone()))
        .insert_header((header::ETAG, format!("\"{}\"", served.digest)))
        .content_type(served.media_type)
        .body(served.body))
}

#[get("/v2/{namespace}/{model}/blobs/{digest}")]
async fn blob(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<DigestPath>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let principal = reader(&services, &req, &ns, &model).await?;
    let unknown = || {
        OciError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("no blob {} in this repository", path.digest),
        )
    };
    let digest: Sha256Digest = path.digest.parse().map_err(|_| {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "a digest is sha256: and 64 lowercase hex digits",
        )
    })?;
    let found = services
        .oci
        .blob(ns.clone(), model.clone(), digest)
        .await
        .map_err(|e| refusal(&req, e, &principal, &ns, &model))?
        .ok_or_else(unknown)?;
    let size = match &found {
        Blob::File(file) => file.size as u64,
        Blob::Document(doc) => doc.body.len() as u64,
        Blob::TarLayer(layer) => layer.size as u64,
    };
    let Ranged {
        mut response,
        range,
        length,
    } = ranged(&req, size)?;
    response
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .insert_header(("Docker-Content-Digest", digest.to_string()))
        .insert_header((header::ETAG, format!("\"{digest}\"")))
        .no_chunking(length);
    if req.extensions().get::<HeadRequest>().is_some() {
        return Ok(response
            .content_type("application/octet-stream")
            .body(Headers::of_length(length)));
    }
    match found {
        Blob::File(file) => {
            let body = services.downloads.read(&file, range).await?;
            Ok(response
                .content_type("application/octet-stream")
                .streaming(body.map_err(std::io::Error::other)))
        }
        Blob::Document(doc) => {
            let bytes = doc.body.into_bytes();
            let part = match range {
                Some(r) => bytes[r.start as usize..r.end as usize].to_vec(),
                None => bytes,
            };
            Ok(response.content_type(doc.media_type).body(part))
        }
        Blob::TarLayer(layer) => {
            let body = services.oci.read_tar_layer(&layer, range).await?;
            Ok(response
                .content_type(crate::services::oci::image::LAYER_MEDIA_TYPE)
                .streaming(body.map_err(std::io::Error::other)))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ReferrersQuery {
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
}

/// The referrers API: an image index of the manifests whose subject is this digest (a version's signed
/// deployment manifest, attached to every manifest served for it), filtered by `artifactType`. An
/// unknown subject has an empty list (the spec forbids 404 here).
#[get("/v2/{namespace}/{model}/referrers/{digest}")]
async fn referrers(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<DigestPath>,
    query: Query<ReferrersQuery>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let principal = reader(&services, &req, &ns, &model).await?;
    let filter = query.into_inner().artifact_type;
    let entries = services
        .oci
        .referrers(
            ns.clone(),
            model.clone(),
            path.digest.clone(),
            filter.clone(),
        )
        .await
        .map_err(|e| refusal(&req, e, &principal, &ns, &model))?;
    let manifests: Vec<serde_json::Value> = entries
        .into_iter()
        .map(|e| {
            let mut entry = serde_json::json!({
                "mediaType": e.media_type,
                "digest": e.digest,
                "size": e.size,
                "artifactType": e.artifact_type,
            });
            // A referrer without annotations has none listed (not `null`).
            if e.annotations.is_object() {
                entry["annotations"] = e.annotations;
            }
            entry
        })
        .collect();
    let mut response = HttpResponse::Ok();
    response.insert_header(("Docker-Distribution-API-Version", API_VERSION));
    if filter.is_some() {
        response.insert_header(("OCI-Filters-Applied", "artifactType"));
    }
    Ok(response
        .content_type(crate::services::oci::modelpack::INDEX_MEDIA_TYPE)
        .json(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::services::oci::modelpack::INDEX_MEDIA_TYPE,
            "manifests": manifests,
        })))
}
