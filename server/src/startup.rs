//! Assembling the server: settings → database, store, services → HTTP server on a bound socket.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpMessage, HttpServer, web};
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::jwt::JwtKeys;
use crate::auth::rate_limit::RateLimiter;
use crate::config::{DatabaseSettings, Settings};
use crate::db::Database;
use crate::error::Error;
use crate::services::Services;
use crate::storage::BlobStore;

pub struct Application {
    server: Server,
    address: SocketAddr,
    pub services: Services,
}

impl Application {
    /// Connects to the database (running migrations) and the store, and binds the listening socket.
    pub async fn build(settings: Settings) -> Result<Self, Error> {
        if let DatabaseSettings::Sqlite { path } = &settings.database
            && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::Startup(format!(
                    "KILN_DATA_DIR: cannot create {}: {e}",
                    parent.display()
                ))
            })?;
        }
        let database_settings = settings.database.clone();
        let db = tokio::task::spawn_blocking(move || Database::connect(&database_settings))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let store = BlobStore::open(&settings.storage)?;
        let jwt = Arc::new(JwtKeys::open(db.clone()).await?);
        let limiter = Arc::new(RateLimiter::new(settings.rate_limit_per_minute));
        let services = Services::new(db, store, jwt, limiter);
        announce_bootstrap(
            services
                .accounts
                .bootstrap(settings.bootstrap_token.clone())
                .await?,
            &settings,
        );
        let listener = TcpListener::bind(settings.listen).map_err(|e| {
            Error::Startup(format!(
                "KILN_LISTEN: cannot listen on {}: {e}",
                settings.listen
            ))
        })?;
        let address = listener.local_addr()?;
        let server = http_server(listener, services.clone(), settings.max_json_bytes)?;
        spawn_upload_reaper(services.clone(), settings.upload_session_ttl);
        tracing::info!(%address, storage = services.store.describe(), "kiln-server listening");
        Ok(Self {
            server,
            address,
            services,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }

    /// A handle to stop the server (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// The first start of a registry prints its administrator's token, once; it is stored only as a hash.
fn announce_bootstrap(token: Option<String>, settings: &Settings) {
    match token {
        None => {}
        Some(_) if settings.bootstrap_token.is_some() => {
            println!(
                "kiln: created the administrator \"admin\" with the API token from KILN_BOOTSTRAP_TOKEN"
            );
        }
        Some(token) => {
            println!(
                "kiln: created the administrator \"admin\". Its API token, shown only this once:\n\n    {token}\n\n\
                 Sign in with:  kiln login --token {token}"
            );
        }
    }
}

fn http_server(
    listener: TcpListener,
    services: Services,
    max_json_bytes: usize,
) -> Result<Server, Error> {
    let server = HttpServer::new(move || {
        let (json, path, query) = crate::http::extractor_configs(max_json_bytes);
        App::new()
            .into_utoipa_app()
            .openapi(crate::http::base_openapi())
            .configure(crate::http::routes)
            .app_data(web::Data::new(services.clone()))
            .app_data(json)
            .app_data(path)
            .app_data(query)
            .map(|app| {
                app.wrap(from_fn(crate::auth::middleware::authorize))
                    .wrap_fn(|req, srv| {
                        let request_id =
                            req.extensions().get::<RequestId>().map(|id| id.to_string());
                        let response = srv.call(req);
                        async move {
                            let mut response = response.await?;
                            if let Some(id) =
                                request_id.and_then(|id| HeaderValue::from_str(&id).ok())
                            {
                                response
                                    .headers_mut()
                                    .insert(HeaderName::from_static("x-request-id"), id);
                            }
                            Ok(response)
                        }
                    })
                    .wrap(TracingLogger::default())
            })
            .openapi_service(|api| {
                SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", api)
            })
            .into_app()
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(Error::not_found("route"))
            }))
    })
    .listen(listener)?
    .run();
    Ok(server)
}

fn spawn_upload_reaper(services: Services, ttl: std::time::Duration) {
    actix_web::rt::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            interval.tick().await;
            match services.uploads.reap_idle(ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "aborted idle upload sessions"),
                Err(e) => tracing::warn!(error = %e, "reaping idle upload sessions failed"),
            }
        }
    });
}
