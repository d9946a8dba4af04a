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
//!    routing. It is passed through the same application (the worker's one
//!    instance), so middleware, authentication, and every refusal (401,
//!    403, 429, 404...) are exactly those of any request.
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

use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use actix_codec::{Framed, FramedParts};
use actix_http::body::{BodySize, MessageBody};
use actix_http::{h1, ConnectionType, HttpService, Request, Response, StatusCode};
use actix_service::{
    fn_factory, fn_service, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt as _,
};
use actix_web::dev::{AppConfig, Server, ServiceResponse};
use actix_web::rt::net::TcpStream;
use actix_web::web;
use bytes::BytesMut;
use futures_util::SinkExt as _;

use super::ws::Accepted;
use crate::AppState;

type Upgraded = Framed<TcpStream, h1::Codec>;

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
            // One application per worker, shared by plain requests and
            // upgrades (a second instance would hold a second copy of the
            // OpenAPI document and routes: some 6 MiB).
            let shared = Rc::new(SharedApp {
                factory: IntoServiceFactory::<_, Request>::into_factory(
                    super::app(state.clone()).0,
                ),
                // The default's host and address ("localhost:8080") are
                // read only by URL generation and `ConnectionInfo`'s
                // fallbacks, which the application does not use (nor the
                // test-only constructor that `HttpServer` uses).
                config: AppConfig::default(),
                service: tokio::sync::OnceCell::new(),
            });
            let upgrades = {
                let shared = shared.clone();
                fn_factory(move || {
                    let shared = shared.clone();
                    async move {
                        let app = shared.service().await?;
                        Ok::<_, ()>(fn_service(move |(req, framed): (Request, Upgraded)| {
                            upgrade(app.clone(), req, framed)
                        }))
                    }
                })
            };
            let app = fn_factory(move || shared.clone().service())
                .map_err(|e: actix_web::Error| e.error_response());
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let graceful = graceful.clone();
                    async move { graceful.notified().await }
                })
                // Small frames (chat) must not wait for Nagle's algorithm.
                .tcp_nodelay(true)
                .local_addr(address)
                .upgrade(upgrades)
                .finish(app)
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

/// A worker's application: built once, its service made by whichever of
/// the HTTP service and the upgrade service starts first.
struct SharedApp<F: ServiceFactory<Request>> {
    factory: F,
    config: AppConfig,
    service: tokio::sync::OnceCell<Rc<F::Service>>,
}

impl<F> SharedApp<F>
where
    F: ServiceFactory<Request, Config = AppConfig, InitError = ()>,
{
    async fn service(self: Rc<Self>) -> Result<Rc<F::Service>, ()> {
        self.service
            .get_or_try_init(|| async {
                self.factory
                    .new_service(self.config.clone())
                    .await
                    .map(Rc::new)
            })
            .await
            .cloned()
    }
}

/// Answer one upgrade request (see the module documentation).
///
/// This future is what the worker's connection task holds for the life of
/// a WebSocket, so it is kept small: the handshake, with the application's
/// response and the HTTP codec, runs boxed and is freed before the session
/// starts (inline, it made every idle connection's task some 4 KiB larger).
async fn upgrade<S, B>(app: Rc<S>, req: Request, framed: Upgraded) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    if let Some((accepted, io, already)) = Box::pin(handshake(app, req, framed)).await? {
        accepted.serve(io, already).await;
    }
    Ok(())
}

/// Send the application's answer to an upgrade request. Returns the
/// accepted session with its socket and what was read past the request
/// head, or None when the request was refused (and the answer sent).
async fn handshake<S, B>(
    app: Rc<S>,
    req: Request,
    mut framed: Upgraded,
) -> Result<Option<(Accepted, TcpStream, BytesMut)>, actix_web::Error>
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
            // The dispatcher's codec and write buffer are dropped here; what
            // it read past the request head goes to the session.
            let FramedParts { io, read_buf, .. } = framed.into_parts();
            Ok(Some((accepted, io, read_buf)))
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
            Ok(None)
        }
    }
}
