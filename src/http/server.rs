//! The HTTP server: the actix-web application behind actix-http, built by
//! hand instead of with `HttpServer` for one reason: an upgrade service.
//!
//! With `HttpServer`, a WebSocket connection stays inside actix-http's
//! HTTP/1 dispatcher after the upgrade, which keeps two 8 KiB buffers for
//! the connection's whole life and turns every outbound frame into a
//! channel hop and a write of its own. With an upgrade service, the
//! dispatcher hands over the socket instead:
//!
//! 1. Every request that asks for a WebSocket upgrade comes here, before
//!    routing. It is passed through the same application (a second instance
//!    per worker, same state), so middleware, authentication, and every
//!    refusal (401, 403, 429, 404...) are exactly those of any request.
//! 2. If the `/ws` handler accepted (a 101 carrying an [`Accepted`] in its
//!    extensions), the 101 is written, the dispatcher's buffers are dropped,
//!    and the connection's session task owns the bare socket
//!    (`super::wire`) until it ends, inside this future; so the worker
//!    still counts it as a connection and a graceful stop waits for it.
//! 3. Otherwise the response is written with `Connection: close`.
//!
//! Everything else `HttpServer` set up is set up here the same way: the
//! graceful-shutdown signal, `TCP_NODELAY`, the workers, the shutdown
//! timeout; its other settings are actix-http's defaults, as before.

use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::{h1, ConnectionType, HttpService, Request, Response, StatusCode};
use actix_service::{
    fn_factory, fn_service, map_config, IntoServiceFactory, Service, ServiceFactory,
    ServiceFactoryExt as _,
};
use actix_web::dev::{AppConfig, Server, ServiceResponse};
use actix_web::rt::net::TcpStream;
use actix_web::web;
use futures_util::SinkExt as _;

use super::ws::Accepted;
use crate::AppState;

type Upgraded = Framed<TcpStream, h1::Codec>;

/// The application's configuration as `HttpServer` would give it.
fn app_config(address: SocketAddr) -> AppConfig {
    // Public for actix-test and exempt from semver; Cargo.lock pins it.
    AppConfig::__priv_test_new(false, address.to_string(), address)
}

/// Serve the application on `listener`.
pub fn build(
    listener: TcpListener,
    state: web::Data<AppState>,
    workers: Option<usize>,
    shutdown_timeout: Duration,
) -> std::io::Result<Server> {
    let address = listener.local_addr()?;
    let builder = Server::build();
    let graceful = builder.graceful_shutdown_signal();
    let mut builder = builder
        .listen("jangteo", listener, move || {
            let graceful = graceful.clone();
            let app = IntoServiceFactory::<_, Request>::into_factory(super::app(state.clone()).0)
                .map_err(|e: actix_web::Error| e.error_response());
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let graceful = graceful.clone();
                    async move { graceful.notified().await }
                })
                // Small frames (chat) must not wait for Nagle's algorithm.
                .tcp_nodelay(true)
                .local_addr(address)
                .upgrade(upgrades(state.clone(), address))
                .finish(map_config(app, move |()| app_config(address)))
                .tcp()
        })?
        .shutdown_timeout(shutdown_timeout.as_secs())
        // We handle SIGINT/SIGTERM ourselves (see `Application::run`) to
        // close WebSocket sessions before the HTTP drain.
        .disable_signals();
    if let Some(workers) = workers {
        builder = builder.workers(workers);
    }
    Ok(builder.run())
}

/// The upgrade service of one worker: its own instance of the application.
fn upgrades(
    state: web::Data<AppState>,
    address: SocketAddr,
) -> impl ServiceFactory<
    (Request, Upgraded),
    Config = (),
    Response = (),
    Error = actix_web::Error,
    InitError = (),
> {
    fn_factory(move || {
        let app = IntoServiceFactory::<_, Request>::into_factory(super::app(state.clone()).0);
        async move {
            let app = Rc::new(app.new_service(app_config(address)).await?);
            Ok(fn_service(move |(req, framed): (Request, Upgraded)| {
                upgrade(app.clone(), req, framed)
            }))
        }
    })
}

/// Answer one upgrade request (see the module documentation).
async fn upgrade<S, B>(
    app: Rc<S>,
    req: Request,
    mut framed: Upgraded,
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let response: Response<_> = match app.call(req).await {
        Ok(response) => response.map_into_boxed_body().into_parts().1.into(),
        Err(e) => e.error_response().into(),
    };
    let (mut head, body) = response.into_parts();
    let accepted = head.extensions_mut().remove::<Accepted>();
    match accepted {
        Some(accepted) if head.status() == StatusCode::SWITCHING_PROTOCOLS => {
            framed
                .send(h1::Message::Item((head, BodySize::None)))
                .await?;
            let parts = framed.into_parts();
            // The dispatcher's codec and write buffer go here; what it read
            // past the request head goes to the session.
            accepted.serve(parts.io, parts.read_buf).await;
        }
        _ => {
            let body = actix_web::body::to_bytes(body)
                .await
                .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))?;
            head.head_mut().set_connection_type(ConnectionType::Close);
            framed
                .send(h1::Message::Item((
                    head,
                    BodySize::Sized(body.len() as u64),
                )))
                .await?;
            if !body.is_empty() {
                framed.send(h1::Message::Chunk(Some(body))).await?;
            }
        }
    }
    Ok(())
}
