//! The OpenAPI document's fixed parts. Paths and schemas are collected from
//! the handlers themselves (utoipa-actix-web), so a route cannot be
//! registered without appearing in the document.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Jangteo API",
        description = "Chat-centric marketplace. Every error is `{\"code\", \"message\", \"details\"?}`; \
                       see docs/ARCHITECTURE.md for the code table and docs/PROTOCOL.md for the WebSocket protocol."
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "accounts", description = "Sign-up, login, sessions and profiles"),
        (name = "admin", description = "Administrator-only endpoints"),
        (name = "market", description = "Listings, feed, favourites, blocks, reports, reservations, sales, reviews"),
        (name = "chat", description = "Rooms, history and read pointers; live traffic on GET /ws (docs/PROTOCOL.md)"),
        (name = "system", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                super::extract::SESSION_COOKIE,
            ))),
        );
    }
}
