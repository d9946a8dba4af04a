//! Shop orders over REST: place (from the cart or "buy now"), read, poll
//! the status, cancel before paying; the admins' view of the outbox.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::OptionalJson;
use super::extract::{Admin, Auth, Verified};
use super::payments::{PaymentView, RefundView};
use crate::domain::ids::ListingId;
use crate::domain::order::OrderStatus;
use crate::error::{Code, Refuse};
use crate::http::error::{
    ApiError, BadParameter, ErrorBody, Forbidden, NoSuchOrder, NotAdmin, NotFound, Unauthenticated,
    Unverified,
};
use crate::service::orders::{OrderDetail, OrderSource, OrderStatusView};
use crate::service::payments::{CancelInput, Canceller};
use crate::store::sql::RefundLine;
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlaceOrder {
    /// The lines of my cart for these options (all lines when absent);
    /// they leave the cart when the order is placed.
    Cart { option_ids: Option<Vec<i64>> },
    /// One option, outside the cart.
    BuyNow { option_id: i64, quantity: i64 },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineView {
    /// The line's id (reviews name it).
    pub line_id: i64,
    /// Shop lines: the option and product.
    pub option_id: Option<i64>,
    pub product_id: Option<i64>,
    /// A used-listing order's line: the listing.
    pub listing_id: Option<i64>,
    pub product_name: String,
    pub brand: String,
    pub option_label: String,
    pub sku: String,
    /// The price of one at order time, in won.
    pub unit_price: i64,
    pub quantity: i64,
    pub amount: i64,
    /// When this line's reserved stock went back (order expired or cancelled).
    pub restored_at: Option<i64>,
    /// How many of `quantity` were cancelled (refunded) after payment.
    pub cancelled_quantity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// Human-friendly and unique, e.g. `261127-7KQ2MX9PWD`.
    pub order_number: String,
    pub status: OrderStatus,
    /// In won: the sum of the lines at their order-time prices.
    pub total: i64,
    /// An unpaid order expires then (epoch ms).
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// A used-listing order: the listing it holds while unpaid.
    pub listing_id: Option<i64>,
    pub lines: Vec<OrderLineView>,
    /// The payment (on the order page `GET /api/orders/{number}`; null
    /// elsewhere and while unpaid).
    pub payment: Option<PaymentView>,
    /// Cancels (refunds) after payment, oldest first (on the order page and
    /// the cancel answer; empty elsewhere).
    pub refunds: Vec<RefundView>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&OrderDetail> for OrderView {
    fn from(d: &OrderDetail) -> OrderView {
        let o = &d.order;
        OrderView {
            order_number: o.order_number.clone(),
            status: o.status,
            total: o.total,
            expires_at: o.expires_at,
            paid_at: o.paid_at,
            ended_at: o.ended_at,
            listing_id: o.listing_id,
            payment: None,
            refunds: Vec::new(),
            lines: d
                .lines
                .iter()
                .map(|l| OrderLineView {
                    line_id: l.id,
                    option_id: l.option_id,
                    product_id: l.product_id,
                    listing_id: l.listing_id,
                    product_name: l.product_name.clone(),
                    brand: l.brand.clone(),
                    option_label: l.option_label.clone(),
                    sku: l.sku.clone(),
                    unit_price: l.unit_price,
                    quantity: l.quantity,
                    amount: l.unit_price.saturating_mul(l.quantity),
                    restored_at: l.restored_at,
                    cancelled_quantity: l.cancelled_quantity,
                })
                .collect(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderStatusOut {
    pub order_number: String,
    pub status: OrderStatus,
    pub total: i64,
    pub expires_at: i64,
    pub updated_at: i64,
}

impl From<OrderStatusView> for OrderStatusOut {
    fn from(v: OrderStatusView) -> OrderStatusOut {
        OrderStatusOut {
            order_number: v.order_number,
            status: v.status,
            total: v.total,
            expires_at: v.expires_at,
            updated_at: v.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MyOrders {
    pub items: Vec<OrderView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrderPage {
    /// From the previous page's `next_before`.
    pub before: Option<i64>,
    /// 1..=100, default 20.
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutboxParams {
    /// `dead` (default), `pending` or `done`.
    pub status: Option<String>,
    /// Jobs with a smaller id (the last id of the previous page).
    pub before: Option<i64>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxJobView {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub due_at: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// Place an order: every line's stock is reserved, or none (409 `out_of_stock` names the short options).
#[utoipa::path(
    tag = "shop",
    request_body = PlaceOrder,
    responses(
        (status = 201, body = OrderView),
        Unauthenticated,
        Unverified,
        (status = 409, description = "`out_of_stock`: `details.options` lists the options that are short or no longer on sale; `limit_reached`: the buyer has `max_unpaid_orders` orders or would hold more than `max_unpaid_units` units waiting for payment (`details.limit`)", body = ErrorBody),
        (status = 422, description = "`validation_failed` (empty cart, options not in the cart, quantity)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/orders")]
pub async fn place_order(
    state: web::Data<AppState>,
    auth: Verified,
    body: web::Json<PlaceOrder>,
) -> Result<HttpResponse, ApiError> {
    let source = match body.into_inner() {
        PlaceOrder::Cart { option_ids } => OrderSource::Cart { option_ids },
        PlaceOrder::BuyNow {
            option_id,
            quantity,
        } => OrderSource::BuyNow {
            option_id,
            quantity,
        },
    };
    let d = state.orders.place(auth.0.uid(), source).await?;
    Ok(HttpResponse::Created().json(OrderView::from(&d)))
}

/// Buy a used listing through the app: an order of one item at its price.
/// The listing is reserved for the buyer while the order waits for its
/// payment, and goes back on sale if the order expires or is cancelled.
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses(
        (status = 201, body = OrderView),
        Unauthenticated,
        Unverified,
        (status = 404, description = "`not_found` (also hidden or deleted)", body = ErrorBody),
        (status = 409, description = "`invalid_state` (reserved or sold), `conflict` (your own listing), `limit_reached` (`unpaid_orders`: `max_unpaid_orders` orders wait for payment)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: your last order of this listing ended unpaid less than `listing_reorder_cooldown_secs` ago (`Retry-After`)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/listings/{id}/order")]
pub async fn order_listing(
    state: web::Data<AppState>,
    auth: Verified,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let d = state
        .orders
        .place_listing(auth.0.uid(), ListingId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Created().json(OrderView::from(&d)))
}

/// My orders, newest first.
#[utoipa::path(
    tag = "shop",
    params(OrderPage),
    responses(
        (status = 200, body = MyOrders),
        BadParameter,
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me/orders")]
pub async fn my_orders(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<OrderPage>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(20);
    let orders = state
        .orders
        .mine(auth.0.uid(), query.before, Some(limit))
        .await?;
    let next_before = if orders.len() as i64 == limit {
        orders.last().map(|d| d.order.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(MyOrders {
        items: orders.iter().map(OrderView::from).collect(),
        next_before,
    }))
}

/// One order with its lines (its buyer and admins only; others get 404).
#[utoipa::path(
    tag = "shop",
    params(("number" = String, Path, description = "Order number")),
    responses(
        (status = 200, body = OrderView),
        Unauthenticated,
        NoSuchOrder,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/orders/{number}")]
pub async fn get_order(
    state: web::Data<AppState>,
    auth: Auth,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let d = state
        .orders
        .get(auth.0.uid(), auth.0.is_admin(), &number)
        .await?;
    Ok(HttpResponse::Ok().json(order_page(&state, &d).await?))
}

/// The order page: the order, its payment and its refunds.
async fn order_page(state: &AppState, d: &OrderDetail) -> Result<OrderView, ApiError> {
    let mut view = OrderView::from(d);
    view.payment = state.orders.payment(&d.order).await?.map(PaymentView::from);
    view.refunds = state
        .payments
        .refunds(d.order.id)
        .await?
        .into_iter()
        .map(RefundView::from)
        .collect();
    Ok(view)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrder {
    /// Paid orders: the lines and quantities to cancel (all that is left
    /// when absent). Unpaid orders take no lines.
    pub lines: Option<Vec<CancelLineBody>>,
    /// Shown to the buyer and sent to the provider (at most 200 characters).
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelLineBody {
    pub line_id: i64,
    pub quantity: i64,
}

impl From<CancelOrder> for CancelInput {
    fn from(b: CancelOrder) -> CancelInput {
        CancelInput {
            lines: b.lines.map(|ls| {
                ls.into_iter()
                    .map(|l| RefundLine {
                        line: l.line_id,
                        quantity: l.quantity,
                    })
                    .collect()
            }),
            reason: b.reason,
        }
    }
}

/// An order's status, for the checkout page to poll (cached; buyer and admins only).
#[utoipa::path(
    tag = "shop",
    params(("number" = String, Path, description = "Order number")),
    responses(
        (status = 200, body = OrderStatusOut),
        Unauthenticated,
        NoSuchOrder,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/orders/{number}/status")]
pub async fn order_status(
    state: web::Data<AppState>,
    auth: Auth,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let v = state
        .orders
        .status(auth.0.uid(), auth.0.is_admin(), &number)
        .await?;
    Ok(HttpResponse::Ok().json(OrderStatusOut::from(v)))
}

/// Cancel an order (its buyer only). Unpaid: the reserved stock goes back
/// at once. Paid: within `cancel_window_hours` of payment, whole or per line
/// with quantities (body optional); never a reviewed line. The stock of the
/// cancelled quantities comes back once, the order becomes
/// `partially_cancelled` or `cancelled`, and the provider refunds unit
/// price x quantity (`refunds[].status`: `pending` until it has, `done`).
#[utoipa::path(
    tag = "shop",
    params(("number" = String, Path, description = "Order number")),
    request_body(content = Option<CancelOrder>, description = "Optional: lines and reason"),
    responses(
        (status = 200, body = OrderView),
        Unauthenticated,
        NoSuchOrder,
        (status = 409, description = "`invalid_state`: expired or already cancelled; `cancel_refused`: `details.rule` is `window_passed`, `reviewed`, `quantity` or `nothing_left`", body = ErrorBody),
        (status = 422, description = "`validation_failed` (lines, reason) or `invalid_body`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/orders/{number}/cancel")]
pub async fn cancel_order(
    state: web::Data<AppState>,
    auth: Auth,
    number: web::Path<String>,
    body: OptionalJson<CancelOrder>,
) -> Result<HttpResponse, ApiError> {
    let who = Canceller {
        user: auth.0.uid(),
        admin: false,
    };
    let (d, _) = state
        .payments
        .cancel(who, &number, body.into_inner().into())
        .await?;
    Ok(HttpResponse::Ok().json(order_page(&state, &d).await?))
}

/// Cancel any order as an administrator: like the buyer's cancel, without
/// the time window (reviewed lines and quantities still hold).
#[utoipa::path(
    tag = "admin",
    params(("number" = String, Path, description = "Order number")),
    request_body(content = Option<CancelOrder>, description = "Optional: lines and reason"),
    responses(
        (status = 200, body = OrderView),
        Unauthenticated,
        NotAdmin,
        NotFound,
        (status = 409, description = "`invalid_state` or `cancel_refused` (`details.rule`)", body = ErrorBody),
        (status = 422, description = "`validation_failed` or `invalid_body`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/admin/orders/{number}/cancel")]
pub async fn admin_cancel_order(
    state: web::Data<AppState>,
    admin: Admin,
    number: web::Path<String>,
    body: OptionalJson<CancelOrder>,
) -> Result<HttpResponse, ApiError> {
    let who = Canceller {
        user: admin.0.uid(),
        admin: true,
    };
    let (d, _) = state
        .payments
        .cancel(who, &number, body.into_inner().into())
        .await?;
    Ok(HttpResponse::Ok().json(order_page(&state, &d).await?))
}

/// Outbox jobs by state, newest first: dead ones need an operator (administrators only).
#[utoipa::path(
    tag = "admin",
    params(OutboxParams),
    responses(
        (status = 200, body = Vec<OutboxJobView>),
        BadParameter,
        Forbidden,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/admin/outbox")]
pub async fn admin_outbox(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<OutboxParams>,
) -> Result<HttpResponse, ApiError> {
    let status = query.status.as_deref().unwrap_or("dead");
    if !["dead", "pending", "done"].contains(&status) {
        return Err(ApiError::new(
            Code::InvalidParameter,
            "status must be dead, pending or done",
        ));
    }
    let limit = ApiError::page_limit(query.limit, 50, 200)?;
    let jobs = state.outbox.jobs(status, query.before, limit).await?;
    Ok(HttpResponse::Ok().json(
        jobs.into_iter()
            .map(|j| OutboxJobView {
                id: j.id,
                kind: j.kind,
                payload: j.payload,
                status: j.status,
                due_at: j.due_at,
                attempts: j.attempts,
                last_error: j.last_error,
                created_at: j.created_at,
            })
            .collect::<Vec<_>>(),
    ))
}
