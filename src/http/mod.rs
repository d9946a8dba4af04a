//! The HTTP surface: routes, extractors, middleware, OpenAPI. Handlers are
//! thin: parse, call a service, shape the answer.

pub mod accounts;
pub mod catalog;
pub mod error;
pub mod extract;
pub mod market;
pub mod middleware;
pub mod notifications;
pub mod oauth;
pub mod openapi;
pub mod orders;
pub mod origin;
pub mod payments;
pub mod regions;
pub mod rooms;
pub mod server;
pub mod system;
pub mod webapp;
pub mod wire;
pub mod ws;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, Error, HttpResponse};
use utoipa::OpenApi as _;
use utoipa_actix_web::{scope, AppExt as _};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::Refuse;
use crate::http::error::ApiError;
use crate::AppState;

/// No route matched: 405 if the path exists under another method, else 404.
async fn no_route(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.resource_map().has_resource(req.path()) {
        return Err(ApiError::new(
            crate::error::Code::MethodNotAllowed,
            format!("{} is not supported here", req.method()),
        ));
    }
    Err(ApiError::not_found("route"))
}

/// Build the actix `App` for one worker, plus the OpenAPI document of all
/// its routes.
pub fn app(
    state: web::Data<AppState>,
) -> (
    App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<BoxBody>,
            Error = Error,
            InitError = (),
        >,
    >,
    utoipa::openapi::OpenApi,
) {
    let max_body = state.config.http.max_body_bytes;
    let (app, mut api) = App::new()
        .app_data(state)
        .app_data(extract::json_config(max_body))
        .app_data(web::PayloadConfig::new(max_body))
        .app_data(extract::query_config())
        .app_data(extract::path_config())
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .service(system::health)
        .service(system::ready)
        .service(system::metrics)
        .service(ws::ws)
        .service(market::serve_media)
        .service(
            scope::scope("/api")
                .service(accounts::signup)
                .service(accounts::verify_email)
                .service(accounts::resend_verification)
                .service(accounts::login)
                .service(accounts::logout)
                .service(accounts::get_me)
                .service(accounts::update_me)
                .service(accounts::withdraw_me)
                .service(market::get_user)
                .service(accounts::admin_users)
                .service(oauth::providers)
                .service(oauth::start)
                .service(oauth::callback)
                .service(oauth::my_identities)
                .service(oauth::link)
                .service(oauth::unlink)
                .service(rooms::create_room)
                .service(rooms::search_rooms)
                .service(rooms::get_room)
                .service(rooms::join_room)
                .service(rooms::leave_room)
                .service(rooms::kick)
                .service(rooms::ban)
                .service(rooms::unban)
                .service(rooms::transfer_owner)
                .service(rooms::members)
                .service(rooms::my_rooms)
                .service(rooms::history)
                .service(rooms::read)
                .service(rooms::edit_message)
                .service(rooms::delete_message)
                .service(regions::search_regions)
                .service(regions::get_region)
                .service(market::add_neighbourhood)
                .service(market::my_neighbourhoods)
                .service(market::update_neighbourhood)
                .service(market::remove_neighbourhood)
                .service(market::upload)
                .service(market::create_listing)
                .service(market::feed)
                .service(market::get_listing)
                .service(market::update_listing)
                .service(market::delete_listing)
                .service(market::add_favourite)
                .service(market::remove_favourite)
                .service(market::my_favourites)
                .service(market::block)
                .service(market::unblock)
                .service(market::my_blocks)
                .service(market::report)
                .service(market::admin_reports)
                .service(market::listing_chat)
                .service(market::listing_chats)
                .service(market::reserve)
                .service(market::cancel_reservation)
                .service(market::sold)
                .service(market::review)
                .service(catalog::list_products)
                .service(catalog::get_product)
                .service(catalog::add_wishlist)
                .service(catalog::remove_wishlist)
                .service(catalog::my_wishlist)
                .service(catalog::create_product)
                .service(catalog::update_product)
                .service(catalog::delete_product)
                .service(catalog::add_option)
                .service(catalog::update_option)
                .service(catalog::delete_option)
                .service(catalog::set_stock)
                .service(catalog::adjust_stock)
                .service(catalog::stock_history)
                .service(catalog::get_cart)
                .service(catalog::add_to_cart)
                .service(catalog::set_cart_quantity)
                .service(catalog::remove_from_cart)
                .service(catalog::clear_cart)
                .service(catalog::review_product)
                .service(catalog::product_reviews)
                .service(catalog::edit_review)
                .service(catalog::delete_review)
                .service(orders::place_order)
                .service(orders::order_listing)
                .service(orders::my_orders)
                .service(orders::get_order)
                .service(orders::order_status)
                .service(orders::cancel_order)
                .service(orders::admin_cancel_order)
                .service(orders::admin_outbox)
                .service(payments::payment_providers)
                .service(payments::ready_payment)
                .service(payments::confirm_payment)
                .service(payments::toss_webhook)
                .service(payments::payment_failures)
                .service(notifications::my_notifications)
                .service(notifications::unread_count)
                .service(notifications::read_all)
                .service(notifications::read_notification)
                .service(notifications::delete_notification)
                .service(notifications::get_prefs)
                .service(notifications::set_prefs)
                .service(notifications::broadcast)
                .service(notifications::stream)
                .service(notifications::my_keywords)
                .service(notifications::add_keyword)
                .service(notifications::remove_keyword)
                .service(notifications::mute_room),
        )
        .split_for_parts();
    // The paths are only known now, after the handlers registered them.
    utoipa::Modify::modify(&openapi::ErrorDefault, &mut api);
    let docs = api.clone();
    let app = app
        .service(SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", docs))
        .service(webapp::app_page)
        .service(webapp::pay_return)
        .service(webapp::app_file)
        .default_service(web::to(no_route))
        .wrap(actix_web::middleware::from_fn(middleware::observe));
    (app, api)
}
