//! The OpenAPI document's fixed parts. Paths and schemas are collected from
//! the handlers themselves (utoipa-actix-web), so a route cannot be
//! registered without appearing in the document.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::domain::listing::{ListingStatus, Sort};
use crate::domain::order::OrderStatus;
use crate::domain::product::{ProductSort, ProductStatus, StockState};
use crate::http::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Jangteo API",
        description = "Chat-centric marketplace. Every error is `{\"code\", \"message\", \"details\"?}`; \
                       see docs/ARCHITECTURE.md for the code table and docs/PROTOCOL.md for the WebSocket protocol."
    ),
    components(schemas(ErrorBody, Sort, ListingStatus, ProductSort, ProductStatus, StockState, OrderStatus)),
    modifiers(&Security),
    tags(
        (name = "accounts", description = "Sign-up, login, sessions and profiles"),
        (name = "admin", description = "Administrator-only endpoints"),
        (name = "market", description = "Listings, feed, favourites, blocks, reports, reservations, sales, reviews"),
        (name = "regions", description = "Regions (읍/면/동): search by name, neighbours by distance"),
        (name = "shop", description = "The curated shop: products, wishlist, cart, orders"),
        (name = "chat", description = "Rooms, history and read pointers; live traffic on GET /ws (docs/PROTOCOL.md)"),
        (name = "notifications", description = "The notification inbox and settings; live `notification` frames on GET /ws"),
        (name = "system", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// Every operation answers any error with the one envelope: each gets a
/// `default` response with the `ErrorBody` schema, next to the statuses it
/// documents by name. Statuses the framework produces for any route (400
/// for a path id out of range, 413, 415, 429, 503 ...) are then described
/// truthfully without repeating them on every handler, and a schema-driven
/// client validates every error body it gets. Applied in `http::app` once
/// the handlers have registered their paths.
pub struct ErrorDefault;

impl Modify for ErrorDefault {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
        let error = |description: &str| -> Response {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        let envelope = error(
            "Any other outcome is an error: `{\"code\", \"message\", \"details\"?}` (codes: docs/ERRORS.md)",
        );
        // Any route: the URI is checked before routing.
        let uri_too_long = error(
            "`uri_too_long`: the URI (path and query) is longer than `max_uri_bytes`; nothing was done",
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for op in operations.into_iter().flatten() {
                let responses = &mut op.responses.responses;
                responses
                    .entry("414".to_string())
                    .or_insert_with(|| RefOr::T(uri_too_long.clone()));
                responses
                    .entry("default".to_string())
                    .or_insert_with(|| RefOr::T(envelope.clone()));
            }
        }
    }
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The `metrics_token` setting, when the deployment sets one",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                super::extract::SESSION_COOKIE,
            ))),
        );
    }
}
