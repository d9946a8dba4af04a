//! Shop orders: placing them (stock reserved atomically), reading them,
//! the buyer's cancel, and the outbox jobs that expire unpaid orders and
//! give their stock back exactly once.
//!
//! Order status is read often (the checkout page polls it), so it is cached
//! (in-process on the embedded engine, Redis with several nodes): every
//! transition writes the new status into the cache right after it commits,
//! and a reader that missed fills in only if nothing is there, so a status
//! read before a transition can never overwrite the one written after it
//! (`Cache::put_value_if_absent`).

use std::sync::Arc;

use crate::bus::{Event, TOPIC_ALARMS};
use crate::service::events::publish_job;
use std::time::Duration;

use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::domain::account::FieldErrors;
use crate::domain::ids::ListingId;
use crate::domain::ids::UserId;
use crate::domain::money::Won;
use crate::domain::now_ms;
use crate::domain::order::{self, BuyerRefusal, LinePrice, OrderStatus, ORDER_NUMBER_RANDOM_LEN};
use crate::domain::product;
use crate::error::{area_error, Code, Refuse};
use crate::metrics::Metrics;
use crate::service::catalog::{Catalog, ShopSettings, StockMove};
use crate::service::market::Market;
use crate::service::outbox::{handler, payload_id, JobError, JobHandler};
use crate::store::cache::Cache;
use crate::store::sql::{
    expiry_job, retrying, LineRequest, NewOrder, OrderLineRecord, OrderRecord, PricedLine,
    SqlStore, JOB_LISTING_RELEASE, JOB_ORDER_EXPIRE, JOB_STOCK_RESTORE,
};
use crate::store::StoreError;

/// Why an order was not placed (nothing was written).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PlaceRefusal {
    /// These options are gone, hidden or not on sale.
    Unavailable(Vec<i64>),
    /// These options have fewer in stock than asked.
    OutOfStock(Vec<i64>),
    /// The prices do not make a valid order (e.g. the total is out of bounds).
    Invalid(String),
    /// The buyer may not place one more order now.
    Buyer(BuyerRefusal),
}

/// How one attempt at placing a shop order ended.
#[derive(Debug)]
enum Placed {
    Order(OrderRecord),
    Refused(PlaceRefusal),
    /// The order number is taken (rare): draw another and place again.
    NumberTaken,
}

/// How one attempt at ordering a used listing ended.
#[derive(Debug)]
enum ListingPlaced {
    Order(OrderRecord),
    /// Not on sale (reserved, sold, hidden or deleted): its status.
    NotForSale(String),
    OwnListing,
    Refused(PlaceRefusal),
    NumberTaken,
}

area_error! {
    /// What the order service (placing, cancelling, expiring orders) answers instead of a result.
    pub enum OrderError {
        own {}
        from {
            Market(super::market::MarketError),
        }
    }
}

/// Every outbox job kind (for `outbox_kinds`).
pub const JOB_KINDS: &[&str] = &[JOB_ORDER_EXPIRE, JOB_STOCK_RESTORE, JOB_LISTING_RELEASE];

const STATUS_CACHE: &str = "order-status";
const STATUS_TTL: Duration = Duration::from_secs(600);
const MAX_PAGE: i64 = 100;

#[derive(Clone)]
pub struct Orders {
    sql: Arc<SqlStore>,
    catalog: Catalog,
    market: Market,
    cache: Arc<dyn Cache>,
    metrics: Arc<Metrics>,
    settings: ShopSettings,
}

/// Where an order's lines come from.
#[derive(Debug, Clone)]
pub enum OrderSource {
    /// The buyer's cart: these options' lines, or all of it.
    Cart { option_ids: Option<Vec<i64>> },
    /// "Buy now": one option, outside the cart.
    BuyNow { option_id: i64, quantity: i64 },
}

#[derive(Debug, Clone)]
pub struct OrderDetail {
    pub order: OrderRecord,
    pub lines: Vec<OrderLineRecord>,
}

/// What the checkout page polls; cached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderStatusView {
    pub order_number: String,
    pub buyer_id: i64,
    pub status: OrderStatus,
    pub total: i64,
    pub expires_at: i64,
    pub updated_at: i64,
}

impl From<&OrderRecord> for OrderStatusView {
    fn from(o: &OrderRecord) -> OrderStatusView {
        OrderStatusView {
            order_number: o.order_number.clone(),
            buyer_id: o.buyer_id,
            status: o.status,
            total: o.total,
            expires_at: o.expires_at,
            updated_at: o.updated_at,
        }
    }
}

fn out_of_stock(options: &[i64], why: &str) -> OrderError {
    OrderError::new(Code::OutOfStock, why.to_string())
        .with_details(serde_json::json!({ "options": options }))
}

/// A fresh random order number (a collision is drawn again by the caller).
fn draw_number(now: i64) -> String {
    let mut random = [0u8; ORDER_NUMBER_RANDOM_LEN];
    rand::thread_rng().fill_bytes(&mut random);
    order::order_number(now, &random)
}

/// Prices each line by the domain rules and totals the order.
fn price_lines(lines: &mut [PricedLine]) -> Result<i64, PlaceRefusal> {
    let mut priced = Vec::with_capacity(lines.len());
    for l in lines.iter_mut() {
        let unit = product::option_price(Won(l.base_price), l.price_delta).ok_or_else(|| {
            PlaceRefusal::Invalid(format!("option {} has no valid price", l.option_id))
        })?;
        l.unit_price = unit.get();
        priced.push(LinePrice {
            unit_price: unit,
            quantity: u32::try_from(l.quantity).unwrap_or(0),
        });
    }
    order::total(&priced)
        .map(Won::get)
        .map_err(|e| PlaceRefusal::Invalid(format!("{e:?}")))
}

/// A used listing's order total: one line at its price, by the same
/// domain rules as shop lines.
fn listing_price(price: i64) -> Result<i64, PlaceRefusal> {
    let total = order::total(&[LinePrice {
        unit_price: product::option_price(Won(price), 0)
            .ok_or_else(|| PlaceRefusal::Invalid(format!("the price {price} is not valid")))?,
        quantity: 1,
    }]);
    total
        .map(Won::get)
        .map_err(|e| PlaceRefusal::Invalid(format!("{e:?}")))
}

/// A buyer's limit on what they hold unpaid (`max_unpaid_orders`,
/// `max_unpaid_units`).
fn limit_reached(limit: &'static str, max: i64) -> OrderError {
    let what = if limit == "unpaid_units" {
        format!("at most {max} units in orders waiting for payment")
    } else {
        format!("at most {max} orders waiting for payment")
    };
    OrderError::new(
        Code::LimitReached,
        format!("{what}; pay or cancel one first"),
    )
    .with_details(serde_json::json!({"limit": limit, "max": max}))
}

/// The same listing ordered again too soon after an unpaid order of it
/// ended (`listing_reorder_cooldown_secs`).
fn cooldown(ms: i64) -> OrderError {
    let secs = u64::try_from(ms.div_euclid(1000) + 1).unwrap_or(1);
    OrderError::rate_limited(secs).with_message(format!(
        "your last order of this listing ended unpaid; you can order it again in {secs} s"
    ))
}

impl Orders {
    pub fn new(
        sql: Arc<SqlStore>,
        catalog: Catalog,
        market: Market,
        cache: Arc<dyn Cache>,
        metrics: Arc<Metrics>,
        settings: ShopSettings,
    ) -> Orders {
        Orders {
            sql,
            catalog,
            market,
            cache,
            metrics,
            settings,
        }
    }

    async fn cache_status(&self, o: &OrderRecord) {
        if let Ok(v) = serde_json::to_string(&OrderStatusView::from(o)) {
            self.cache
                .put_value(STATUS_CACHE, &o.order_number, v, STATUS_TTL)
                .await;
        }
    }

    /// The lines an order would have, checked (quantities, count).
    async fn requested_lines(
        &self,
        buyer: UserId,
        source: &OrderSource,
    ) -> Result<(Vec<LineRequest>, bool), OrderError> {
        match source {
            OrderSource::BuyNow {
                option_id,
                quantity,
            } => {
                if !u32::try_from(*quantity).is_ok_and(order::quantity_ok) {
                    return Err(OrderError::field(
                        "quantity",
                        format!("must be {}..={}", order::MIN_QUANTITY, order::MAX_QUANTITY),
                    ));
                }
                Ok((
                    vec![LineRequest {
                        option_id: *option_id,
                        quantity: *quantity,
                    }],
                    false,
                ))
            }
            OrderSource::Cart { option_ids } => {
                let cart = self.sql.catalog().cart(buyer).await?;
                let lines: Vec<LineRequest> = match option_ids {
                    None => cart
                        .iter()
                        .map(|r| LineRequest {
                            option_id: r.option.id,
                            quantity: r.quantity,
                        })
                        .collect(),
                    Some(ids) => {
                        let mut errors = FieldErrors::new();
                        let unique: std::collections::HashSet<_> = ids.iter().collect();
                        if unique.len() != ids.len() {
                            errors.insert("option_ids", "must not repeat an option".into());
                        }
                        let missing: Vec<String> = ids
                            .iter()
                            .filter(|id| !cart.iter().any(|r| r.option.id == **id))
                            .map(|id| id.to_string())
                            .collect();
                        if !missing.is_empty() {
                            errors.insert(
                                "option_ids",
                                format!("not in your cart: {}", missing.join(", ")),
                            );
                        }
                        OrderError::check_fields(errors)?;
                        cart.iter()
                            .filter(|r| ids.contains(&r.option.id))
                            .map(|r| LineRequest {
                                option_id: r.option.id,
                                quantity: r.quantity,
                            })
                            .collect()
                    }
                };
                if lines.is_empty() {
                    return Err(OrderError::field("option_ids", "the cart is empty"));
                }
                if lines.len() > order::MAX_LINES {
                    return Err(OrderError::field(
                        "option_ids",
                        format!("at most {} lines per order", order::MAX_LINES),
                    ));
                }
                Ok((lines, true))
            }
        }
    }

    /// Place an order: stock is reserved for every line or for none.
    pub async fn place(
        &self,
        buyer: UserId,
        source: OrderSource,
    ) -> Result<OrderDetail, OrderError> {
        let (mut lines, from_cart) = self.requested_lines(buyer, &source).await?;
        // Reserved in option-id order: two orders for the same options lock
        // their rows in the same order (no deadlocks on MySQL).
        lines.sort_by_key(|l| l.option_id);
        let now = now_ms();
        let expires_at = self.expiry(now);
        for _ in 0..5 {
            let number = draw_number(now);
            let order = NewOrder {
                buyer,
                order_number: &number,
                expires_at,
            };
            let placed = retrying("place_order", || {
                self.place_once(&order, &lines, from_cart, now)
            })
            .await?;
            match placed {
                Placed::NumberTaken => continue,
                Placed::Refused(refusal) => {
                    let (reason, err) = match refusal {
                        PlaceRefusal::OutOfStock(ids) => (
                            "out_of_stock",
                            out_of_stock(
                                &ids,
                                "not enough stock for some lines; nothing was reserved",
                            ),
                        ),
                        PlaceRefusal::Unavailable(ids) => (
                            "unavailable",
                            out_of_stock(
                                &ids,
                                "some options are no longer on sale; nothing was reserved",
                            ),
                        ),
                        PlaceRefusal::Invalid(why) => ("invalid", OrderError::field("lines", why)),
                        PlaceRefusal::Buyer(BuyerRefusal::Limit { limit, max }) => {
                            ("limit", limit_reached(limit, max))
                        }
                        PlaceRefusal::Buyer(BuyerRefusal::Cooldown(ms)) => ("limit", cooldown(ms)),
                    };
                    self.metrics
                        .orders_refused
                        .with_label_values(&[reason])
                        .inc();
                    return Err(err);
                }
                Placed::Order(record) => return self.placed(record).await,
            }
        }
        Err(OrderError::internal("no free order number after 5 draws"))
    }

    /// A new order: counted, its status cached, with its lines.
    async fn placed(&self, order: OrderRecord) -> Result<OrderDetail, OrderError> {
        self.metrics.orders_placed.inc();
        self.cache_status(&order).await;
        let lines = self.sql.orders().order_lines(order.id).await?;
        Ok(OrderDetail { order, lines })
    }

    /// One attempt at placing a shop order, in one transaction: the
    /// buyer's limits, the options as they are now, their prices (domain
    /// rules), the stock reserved for every line or for none, the order
    /// with its expiry job and the low-stock alarms its lines cause, and
    /// the cart. A refusal drops the transaction: nothing is written.
    async fn place_once(
        &self,
        order: &NewOrder<'_>,
        requested: &[LineRequest],
        from_cart: bool,
        now: i64,
    ) -> Result<Placed, StoreError> {
        let refused = |r| Ok(Placed::Refused(r));
        let mut tx = self.sql.orders().begin().await?;
        let units: i64 = requested.iter().map(|l| l.quantity).sum();
        let holds = tx.buyer_holds(order.buyer, None).await?;
        if let Some(r) = self.settings.buyer_limits.refusal(&holds, units, now) {
            return refused(PlaceRefusal::Buyer(r));
        }
        let mut lines = match tx.options(requested).await? {
            Ok(lines) => lines,
            Err(gone) => return refused(PlaceRefusal::Unavailable(gone)),
        };
        let total = match price_lines(&mut lines) {
            Ok(total) => total,
            Err(r) => return refused(r),
        };
        let short = tx.reserve(&mut lines).await?;
        if !short.is_empty() {
            return refused(PlaceRefusal::OutOfStock(short));
        }
        let Some(id) = tx.insert_shop_order(order, total, &lines, now).await? else {
            return Ok(Placed::NumberTaken);
        };
        let mut jobs = vec![expiry_job(id, order.expires_at)];
        jobs.extend(lines.iter().filter_map(|l| {
            self.catalog.low_stock_job(StockMove {
                product_id: l.product_id,
                option_id: l.option_id,
                sku: &l.sku,
                name: &l.product_name,
                label: &l.option_label,
                before: l.stock_before,
                after: l.stock_after,
            })
        }));
        tx.enqueue(&jobs, now).await?;
        if from_cart {
            let options: Vec<i64> = lines.iter().map(|l| l.option_id).collect();
            tx.clear_cart(order.buyer, &options).await?;
        }
        Ok(Placed::Order(tx.commit(id).await?))
    }

    /// One attempt at ordering a used listing, in one transaction: the
    /// listing is locked and must be on sale and someone else's, the
    /// buyer's limits hold, the listing goes from `selling` to `reserved`
    /// for the buyer (an untimed reservation: the order's expiry ends it),
    /// and the order of one line at the listing's price is written with its
    /// expiry job and the hold's announcements.
    async fn place_listing_once(
        &self,
        order: &NewOrder<'_>,
        listing: ListingId,
        now: i64,
    ) -> Result<ListingPlaced, StoreError> {
        let mut tx = self.sql.orders().begin().await?;
        let Some(item) = tx.listing(listing.get()).await? else {
            return Ok(ListingPlaced::NotForSale("missing".into()));
        };
        if item.deleted {
            return Ok(ListingPlaced::NotForSale("deleted".into()));
        }
        if item.seller_id == order.buyer.get() {
            return Ok(ListingPlaced::OwnListing);
        }
        let holds = tx.buyer_holds(order.buyer, Some(listing.get())).await?;
        if let Some(r) = self.settings.buyer_limits.refusal(&holds, 0, now) {
            return Ok(ListingPlaced::Refused(PlaceRefusal::Buyer(r)));
        }
        let total = match listing_price(item.price) {
            Ok(total) => total,
            Err(r) => return Ok(ListingPlaced::Refused(r)),
        };
        let Some(reservation) = tx.hold_listing(listing.get(), order.buyer, now).await? else {
            return Ok(ListingPlaced::NotForSale(item.status));
        };
        let Some(id) = tx
            .insert_listing_order(order, listing.get(), reservation, &item.title, total, now)
            .await?
        else {
            return Ok(ListingPlaced::NumberTaken);
        };
        let mut jobs = vec![expiry_job(id, order.expires_at)];
        jobs.extend(crate::service::market::hold_jobs(
            listing,
            item.seller_id,
            order.buyer,
            reservation,
        ));
        tx.enqueue(&jobs, now).await?;
        Ok(ListingPlaced::Order(tx.commit(id).await?))
    }

    fn expiry(&self, now: i64) -> i64 {
        now + i64::try_from(self.settings.payment_window.as_millis()).unwrap_or(600_000)
    }

    /// Buy a used listing through the app: an order of one line at the
    /// listing's price; the listing is reserved for the buyer while the
    /// order waits for its payment and goes back on sale if it expires or
    /// is cancelled.
    pub async fn place_listing(
        &self,
        buyer: UserId,
        listing: ListingId,
    ) -> Result<OrderDetail, OrderError> {
        let now = now_ms();
        for _ in 0..5 {
            let number = draw_number(now);
            let order = NewOrder {
                buyer,
                order_number: &number,
                expires_at: self.expiry(now),
            };
            let placed = retrying("place_listing_order", || {
                self.place_listing_once(&order, listing, now)
            })
            .await?;
            match placed {
                ListingPlaced::NumberTaken => continue,
                ListingPlaced::NotForSale(status)
                    if status == "missing" || status == "deleted" || status == "hidden" =>
                {
                    return Err(OrderError::not_found("listing"))
                }
                ListingPlaced::NotForSale(status) => {
                    return Err(OrderError::new(
                        Code::InvalidState,
                        format!("a {status} listing cannot be ordered"),
                    ))
                }
                ListingPlaced::OwnListing => {
                    return Err(OrderError::new(
                        Code::Conflict,
                        "you cannot order your own listing",
                    ))
                }
                ListingPlaced::Refused(PlaceRefusal::Invalid(why)) => {
                    return Err(OrderError::field("price", why))
                }
                ListingPlaced::Refused(PlaceRefusal::Buyer(BuyerRefusal::Limit { limit, max })) => {
                    return Err(limit_reached(limit, max))
                }
                ListingPlaced::Refused(PlaceRefusal::Buyer(BuyerRefusal::Cooldown(ms))) => {
                    return Err(cooldown(ms))
                }
                ListingPlaced::Refused(_) => {
                    return Err(OrderError::internal(
                        "unexpected refusal of a listing order",
                    ))
                }
                ListingPlaced::Order(record) => {
                    if let Some(reservation) = record.reservation_id {
                        if let Err(e) = self
                            .market
                            .order_hold_started(listing, buyer, reservation)
                            .await
                        {
                            tracing::warn!(error = %e, "announcing an order hold failed");
                        }
                    }
                    return self.placed(record).await;
                }
            }
        }
        Err(OrderError::internal("no free order number after 5 draws"))
    }

    /// An order its buyer (or an admin) may see; anyone else gets 404, as
    /// if it did not exist.
    async fn visible(
        &self,
        viewer: UserId,
        admin: bool,
        number: &str,
    ) -> Result<OrderRecord, OrderError> {
        if !order::is_order_number(number) {
            return Err(OrderError::not_found("order"));
        }
        match self.sql.orders().order_by_number(number).await? {
            Some(o) if admin || o.buyer_id == viewer.get() => Ok(o),
            _ => Err(OrderError::not_found("order")),
        }
    }

    pub async fn get(
        &self,
        viewer: UserId,
        admin: bool,
        number: &str,
    ) -> Result<OrderDetail, OrderError> {
        let order = self.visible(viewer, admin, number).await?;
        let lines = self.sql.orders().order_lines(order.id).await?;
        Ok(OrderDetail { order, lines })
    }

    /// The payment of an order the viewer may see, if it was paid.
    pub async fn payment(
        &self,
        order: &OrderRecord,
    ) -> Result<Option<crate::store::sql::PaymentRecord>, OrderError> {
        Ok(self.sql.payments().payment_of_order(order.id).await?)
    }

    /// The status the checkout page polls (cached).
    pub async fn status(
        &self,
        viewer: UserId,
        admin: bool,
        number: &str,
    ) -> Result<OrderStatusView, OrderError> {
        if !order::is_order_number(number) {
            return Err(OrderError::not_found("order"));
        }
        let cached = self
            .cache
            .get_value(STATUS_CACHE, number)
            .await
            .and_then(|v| serde_json::from_str::<OrderStatusView>(&v).ok());
        let view = match cached {
            Some(v) => v,
            None => {
                let Some(o) = self.sql.orders().order_by_number(number).await? else {
                    return Err(OrderError::not_found("order"));
                };
                let v = OrderStatusView::from(&o);
                if let Ok(text) = serde_json::to_string(&v) {
                    self.cache
                        .put_value_if_absent(STATUS_CACHE, number, text, STATUS_TTL)
                        .await;
                }
                v
            }
        };
        if !admin && view.buyer_id != viewer.get() {
            return Err(OrderError::not_found("order"));
        }
        Ok(view)
    }

    /// My orders, newest first; `before` is the last id of the previous page.
    pub async fn mine(
        &self,
        buyer: UserId,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Vec<OrderDetail>, OrderError> {
        let limit = OrderError::page_limit(limit, 20, MAX_PAGE)?;
        let orders = self.sql.orders().orders_of(buyer, before, limit).await?;
        let mut out = Vec::with_capacity(orders.len());
        for order in orders {
            let lines = self.sql.orders().order_lines(order.id).await?;
            out.push(OrderDetail { order, lines });
        }
        Ok(out)
    }

    /// The buyer gives up an unpaid order: its stock goes back at once
    /// (and the outbox job makes sure of it if this node dies now).
    pub async fn cancel(&self, buyer: UserId, number: &str) -> Result<OrderDetail, OrderError> {
        let order = self.visible(buyer, false, number).await?;
        if order::transition(order.status, order::Transition::CancelByUser).is_none() {
            return Err(OrderError::new(
                Code::InvalidState,
                format!("a {} order cannot be cancelled here", order.status.as_str()),
            ));
        }
        let Some(ended) = self
            .sql
            .orders()
            .end_unpaid_order(order.id, OrderStatus::CancelledByUser, &[], now_ms())
            .await?
        else {
            return Err(OrderError::new(
                Code::InvalidState,
                "the order changed meanwhile (paid or expired)",
            ));
        };
        self.cache_status(&ended).await;
        let undone = if ended.listing_id.is_some() {
            self.release_listing(ended.id).await
        } else {
            self.restore_stock(ended.id).await
        };
        if let Err(e) = undone {
            tracing::warn!(order = ended.id, error = %e, "undoing the hold now failed; the outbox will");
        }
        let lines = self.sql.orders().order_lines(ended.id).await?;
        Ok(OrderDetail {
            order: ended,
            lines,
        })
    }

    /// An order's number by its id (admin views).
    pub async fn number_of(&self, order_id: i64) -> Result<Option<String>, OrderError> {
        Ok(self
            .sql
            .orders()
            .order(order_id)
            .await?
            .map(|o| o.order_number))
    }

    /// The key of an order's payment with `provider` (recorded, or bound
    /// at a ready step), for webhooks that name only the order.
    pub async fn payment_key_of(
        &self,
        number: &str,
        provider: &str,
    ) -> Result<Option<String>, OrderError> {
        if !order::is_order_number(number) {
            return Ok(None);
        }
        let Some(o) = self.sql.orders().order_by_number(number).await? else {
            return Ok(None);
        };
        if let Some(p) = self.sql.payments().payment_of_order(o.id).await? {
            if p.provider == provider {
                return Ok(Some(p.payment_key));
            }
        }
        Ok(self.sql.payments().payment_intent(o.id, provider).await?)
    }

    /// The order was just paid or cancelled (`service::payments` recorded
    /// it): the status cache learns it, and the order as it is now.
    pub async fn reload(&self, order_id: i64) -> Result<OrderDetail, OrderError> {
        let Some(order) = self.sql.orders().order(order_id).await? else {
            return Err(OrderError::not_found("order"));
        };
        self.cache_status(&order).await;
        let lines = self.sql.orders().order_lines(order.id).await?;
        Ok(OrderDetail { order, lines })
    }

    /// Outbox `order_expire`: end the order if it is still unpaid.
    pub async fn expire(&self, order_id: i64) -> Result<(), OrderError> {
        let Some(order) = self.sql.orders().order(order_id).await? else {
            return Ok(());
        };
        if order.status != OrderStatus::PendingPayment {
            return Ok(());
        }
        // The buyer hears of it through the outbox: the event is written
        // with the change, so it goes out if and only if the order expired.
        let event = Event::alarm(
            crate::domain::events::Alarm::OrderExpired,
            order.buyer_id,
            serde_json::json!({"order": order.order_number, "buyer": order.buyer_id, "total": order.total}),
        );
        if let Some(ended) = self
            .sql
            .orders()
            .end_unpaid_order(
                order_id,
                OrderStatus::Expired,
                &[publish_job(TOPIC_ALARMS, &event)],
                now_ms(),
            )
            .await?
        {
            tracing::info!(order = %ended.order_number, "order expired unpaid");
            self.cache_status(&ended).await;
        }
        Ok(())
    }

    /// Outbox `stock_restore` (and the cancel's fast path): give an ended
    /// order's stock back, each line at most once.
    pub async fn restore_stock(&self, order_id: i64) -> Result<(), OrderError> {
        let restored = self
            .sql
            .orders()
            .restore_order_stock(order_id, now_ms())
            .await?;
        if !restored.is_empty() {
            tracing::info!(order = order_id, lines = restored.len(), "stock restored");
        }
        Ok(())
    }

    /// Outbox `listing_release` (and the cancel's fast path): end the
    /// reservation a used-listing order held; idempotent.
    pub async fn release_listing(&self, order_id: i64) -> Result<(), OrderError> {
        let Some(order) = self.sql.orders().order(order_id).await? else {
            return Ok(());
        };
        let ended = matches!(
            order.status,
            OrderStatus::Expired | OrderStatus::CancelledByUser
        );
        match order.reservation_id {
            Some(r) if ended => {
                self.market
                    .order_hold_ended(r, order.status == OrderStatus::Expired)
                    .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Run one outbox job of this service.
    async fn run_job(&self, kind: &str, payload: &serde_json::Value) -> Result<(), JobError> {
        let id = payload_id(payload, "order")?;
        let done = match kind {
            JOB_ORDER_EXPIRE => self.expire(id).await,
            JOB_STOCK_RESTORE => self.restore_stock(id).await,
            JOB_LISTING_RELEASE => self.release_listing(id).await,
            other => return Err(format!("not a job of the orders service: {other}").into()),
        };
        Ok(done?)
    }

    /// The outbox handlers of this service, one per kind in [`JOB_KINDS`].
    pub fn job_handlers(&self) -> Vec<(&'static str, JobHandler)> {
        JOB_KINDS
            .iter()
            .map(|&kind| {
                let run = handler(self, move |orders, payload| async move {
                    orders.run_job(kind, &payload).await
                });
                (kind, run)
            })
            .collect()
    }
}
