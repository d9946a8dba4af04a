//! Orders and their lines.
//!
//! Placing an order is one transaction: insert the order, reserve each
//! line's stock with a conditional decrement (`stock >= n`), copy the
//! prices into the lines, schedule the expiry job and take the lines out of
//! the cart. If any line is short, the transaction rolls back and nothing
//! is reserved. Lines are decremented in option-id order, so two orders for
//! the same options lock their rows in the same order (no deadlocks on
//! MySQL).
//!
//! Ending an unpaid order (expiry, the buyer's cancel) is a conditional
//! status update that writes a `stock_restore` job in the same transaction;
//! the restore marks each line `restored_at` as it gives the stock back, so
//! running it twice gives back nothing the second time.

use crate::store::sql::OrdersSql;
use sqlx::Row as _;

use super::outbox::{enqueue, NewJob};
use super::{is_unique_violation, last_insert_id, retrying};
use crate::domain::ids::UserId;
use crate::domain::order::{BuyerHolds, BuyerLimits, BuyerRefusal, OrderStatus};
use crate::store::StoreError;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OrderRecord {
    pub id: i64,
    pub order_number: String,
    pub buyer_id: i64,
    pub status: OrderStatus,
    pub total: i64,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// A used-listing order: the listing, and the reservation it holds.
    pub listing_id: Option<i64>,
    pub reservation_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct OrderLineRecord {
    pub id: i64,
    pub order_id: i64,
    /// Shop lines: the option and product; listing lines: the listing.
    pub option_id: Option<i64>,
    pub product_id: Option<i64>,
    pub listing_id: Option<i64>,
    pub product_name: String,
    pub brand: String,
    pub option_label: String,
    pub sku: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub restored_at: Option<i64>,
    /// How many of `quantity` were cancelled (refunded) after payment.
    pub cancelled_quantity: i64,
}

/// One line to order: an option and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRequest {
    pub option_id: i64,
    pub quantity: i64,
}

/// A line priced inside the placing transaction.
#[derive(Debug, Clone)]
pub struct PricedLine {
    pub option_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub brand: String,
    pub option_label: String,
    pub sku: String,
    pub base_price: i64,
    pub price_delta: i64,
    /// Set by the pricer (domain rules), copied into the order line.
    pub unit_price: i64,
    pub quantity: i64,
    /// Stock before and after this order's decrement.
    pub stock_before: i64,
    pub stock_after: i64,
}

/// What the caller decides inside the placing transaction, from the lines
/// as they are now: each line's unit price and the total (domain rules,
/// not SQL), or a refusal.
pub type Pricer = dyn Fn(&mut [PricedLine]) -> Result<i64, PlaceRefusal> + Send + Sync;

/// The job (if any) an order writes for one of its reserved lines.
pub type LineEvents<'a> = dyn Fn(&PricedLine) -> Option<NewJob> + Send + Sync + 'a;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceRefusal {
    /// These options are gone, hidden or not on sale.
    Unavailable(Vec<i64>),
    /// These options have fewer in stock than asked.
    OutOfStock(Vec<i64>),
    /// The pricer refused (e.g. the total is out of bounds).
    Invalid(String),
    /// The buyer may not place one more order now.
    Buyer(BuyerRefusal),
}

#[derive(Debug)]
pub enum Placed {
    Order(OrderRecord, Vec<PricedLine>),
    Refused(PlaceRefusal),
    /// The order number is taken (rare): draw another and place again.
    NumberTaken,
}

/// A new order's fixed parts.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub buyer: UserId,
    pub order_number: &'a str,
    pub expires_at: i64,
    pub limits: BuyerLimits,
    /// Take these options out of the buyer's cart in the same transaction.
    pub from_cart: bool,
}

const ORDER_COLUMNS: &str =
    "id, order_number, buyer_id, status, total, expires_at, paid_at, ended_at, \
     created_at, updated_at, listing_id, reservation_id";
const LINE_COLUMNS: &str =
    "id, order_id, option_id, product_id, product_name, brand, option_label, sku, \
     unit_price, quantity, restored_at, listing_id, cancelled_quantity";

fn order_row(row: &sqlx::any::AnyRow) -> Result<OrderRecord, StoreError> {
    let id: i64 = row.try_get(0)?;
    let status: String = row.try_get(3)?;
    Ok(OrderRecord {
        id,
        order_number: row.try_get(1)?,
        buyer_id: row.try_get(2)?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("order {id}: bad status {status:?}")))?,
        total: row.try_get(4)?,
        expires_at: row.try_get(5)?,
        paid_at: row.try_get(6)?,
        ended_at: row.try_get(7)?,
        created_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
        listing_id: row.try_get(10)?,
        reservation_id: row.try_get(11)?,
    })
}

fn line_row(row: &sqlx::any::AnyRow) -> Result<OrderLineRecord, StoreError> {
    Ok(OrderLineRecord {
        id: row.try_get(0)?,
        order_id: row.try_get(1)?,
        option_id: row.try_get(2)?,
        product_id: row.try_get(3)?,
        product_name: row.try_get(4)?,
        brand: row.try_get(5)?,
        option_label: row.try_get(6)?,
        sku: row.try_get(7)?,
        unit_price: row.try_get(8)?,
        quantity: row.try_get(9)?,
        restored_at: row.try_get(10)?,
        listing_id: row.try_get(11)?,
        cancelled_quantity: row.try_get(12)?,
    })
}

/// An outbox job about one order (`kind:order` is its key).
fn order_job(kind: &'static str, order: i64, due_at: i64) -> NewJob {
    NewJob {
        kind,
        payload: serde_json::json!({ "order": order }),
        dedup_key: format!("{kind}:{order}"),
        due_at,
    }
}

/// An order as the transaction sees it now.
async fn order_in(conn: &mut sqlx::AnyConnection, id: i64) -> Result<OrderRecord, StoreError> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    order_row(&row)
}

/// Insert a pending order (with the listing and reservation it holds, for
/// a used-listing order); `None` if its number is taken.
async fn insert_order(
    conn: &mut sqlx::AnyConnection,
    dialect: super::Dialect,
    order: &NewOrder<'_>,
    total: i64,
    hold: Option<(i64, i64)>,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO orders (order_number, buyer_id, status, total, listing_id, reservation_id, \
         expires_at, created_at, updated_at) VALUES (?, ?, 'pending_payment', ?, ?, ?, ?, ?, ?)",
    )
    .bind(order.order_number)
    .bind(order.buyer.get())
    .bind(total)
    .bind(hold.map(|h| h.0))
    .bind(hold.map(|h| h.1))
    .bind(order.expires_at)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(_) => Ok(Some(last_insert_id(conn, dialect).await?)),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The outbox kinds this module writes.
pub const JOB_ORDER_EXPIRE: &str = "order_expire";
pub const JOB_STOCK_RESTORE: &str = "stock_restore";
pub const JOB_LISTING_RELEASE: &str = "listing_release";

/// Outcome of ordering a used listing.
#[derive(Debug)]
pub enum ListingPlaced {
    Order(OrderRecord),
    /// Not on sale (reserved, sold, hidden or deleted): its status.
    NotForSale(String),
    OwnListing,
    Refused(PlaceRefusal),
    NumberTaken,
}

impl OrdersSql<'_> {
    /// What the buyer holds unpaid, read under the buyer's row lock
    /// (MySQL), so one buyer's orders are counted one at a time; whether
    /// one more may be placed is [`BuyerLimits::refusal`]'s to say.
    /// `units`: shop units in the new order; `listing`: the used listing
    /// it is for.
    async fn buyer_refusal(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        order: &NewOrder<'_>,
        units: i64,
        listing: Option<i64>,
        now: i64,
    ) -> Result<Option<PlaceRefusal>, StoreError> {
        let buyer = order.buyer.get();
        self.lock_user(tx, buyer).await?;
        // Two plain reads (no SUM: MySQL returns it as DECIMAL); at most
        // `unpaid_orders` orders of at most 50 lines are summed here.
        let (unpaid_orders,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM orders WHERE buyer_id = ? AND status = 'pending_payment'",
        )
        .bind(buyer)
        .fetch_one(&mut **tx)
        .await?;
        let quantities: Vec<(i64,)> = sqlx::query_as(
            "SELECT l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id \
             WHERE o.buyer_id = ? AND o.status = 'pending_payment' AND l.option_id IS NOT NULL",
        )
        .bind(buyer)
        .fetch_all(&mut **tx)
        .await?;
        let listing_order_ended_at = match listing {
            Some(listing) => {
                let (last,): (Option<i64>,) = sqlx::query_as(
                    "SELECT MAX(o.ended_at) FROM orders o \
                     WHERE o.buyer_id = ? AND o.listing_id = ? AND o.status IN ('cancelled', 'expired', 'cancelled_by_user')",
                )
                .bind(buyer)
                .bind(listing)
                .fetch_one(&mut **tx)
                .await?;
                last
            }
            None => None,
        };
        let holds = BuyerHolds {
            unpaid_orders,
            unpaid_units: quantities.iter().map(|q| q.0).sum(),
            listing_order_ended_at,
        };
        Ok(order
            .limits
            .refusal(&holds, units, now)
            .map(PlaceRefusal::Buyer))
    }

    /// Place an order (see the module doc). `price` sees the lines with
    /// their current prices and stock and returns the total or a refusal;
    /// `events` sees each reserved line (its stock before and after) and
    /// returns the jobs to write with the order (e.g. a low-stock alarm).
    pub async fn place_order(
        &self,
        order: &NewOrder<'_>,
        lines: &[LineRequest],
        price: &Pricer,
        events: &LineEvents<'_>,
        now: i64,
    ) -> Result<Placed, StoreError> {
        let mut sorted = lines.to_vec();
        sorted.sort_by_key(|l| l.option_id);
        retrying("place_order", || {
            self.place_order_once(order, &sorted, price, events, now)
        })
        .await
    }

    async fn place_order_once(
        &self,
        order: &NewOrder<'_>,
        lines: &[LineRequest],
        price: &Pricer,
        events: &LineEvents<'_>,
        now: i64,
    ) -> Result<Placed, StoreError> {
        let mut tx = self.begin_write().await?;
        let units: i64 = lines.iter().map(|l| l.quantity).sum();
        if let Some(refusal) = self.buyer_refusal(&mut tx, order, units, None, now).await? {
            return Ok(Placed::Refused(refusal));
        }
        // Read each option and its product as they are now.
        let mut priced = Vec::with_capacity(lines.len());
        let mut unavailable = Vec::new();
        for l in lines {
            let row = sqlx::query(
                "SELECT o.id, o.product_id, p.name, p.brand, o.label, o.sku, p.base_price, o.price_delta, o.stock \
                 FROM product_options o JOIN products p ON p.id = o.product_id \
                 WHERE o.id = ? AND o.deleted_at IS NULL AND p.deleted_at IS NULL AND p.status = 'on_sale'",
            )
            .bind(l.option_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                unavailable.push(l.option_id);
                continue;
            };
            let stock: i64 = row.try_get(8)?;
            priced.push(PricedLine {
                option_id: row.try_get(0)?,
                product_id: row.try_get(1)?,
                product_name: row.try_get(2)?,
                brand: row.try_get(3)?,
                option_label: row.try_get(4)?,
                sku: row.try_get(5)?,
                base_price: row.try_get(6)?,
                price_delta: row.try_get(7)?,
                unit_price: 0,
                quantity: l.quantity,
                stock_before: stock,
                stock_after: stock,
            });
        }
        if !unavailable.is_empty() {
            return Ok(Placed::Refused(PlaceRefusal::Unavailable(unavailable)));
        }
        let total = match price(&mut priced) {
            Ok(t) => t,
            Err(refusal) => return Ok(Placed::Refused(refusal)),
        };
        // Reserve: conditional decrements. Every short line is reported.
        let mut short = Vec::new();
        for l in &mut priced {
            let r = sqlx::query(
                "UPDATE product_options SET stock = stock - ? WHERE id = ? AND stock >= ?",
            )
            .bind(l.quantity)
            .bind(l.option_id)
            .bind(l.quantity)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                short.push(l.option_id);
                continue;
            }
            let (after,): (i64,) = sqlx::query_as("SELECT stock FROM product_options WHERE id = ?")
                .bind(l.option_id)
                .fetch_one(&mut *tx)
                .await?;
            l.stock_before = after + l.quantity;
            l.stock_after = after;
        }
        if !short.is_empty() {
            tx.rollback().await?;
            return Ok(Placed::Refused(PlaceRefusal::OutOfStock(short)));
        }
        // A duplicate order number: dropping the transaction rolls the
        // reservations back; the caller draws another number.
        let Some(id) = insert_order(&mut tx, self.dialect(), order, total, None, now).await? else {
            return Ok(Placed::NumberTaken);
        };
        for l in &priced {
            sqlx::query(
                "INSERT INTO order_lines (order_id, option_id, product_id, product_name, brand, option_label, sku, \
                 unit_price, quantity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(l.option_id)
            .bind(l.product_id)
            .bind(&l.product_name)
            .bind(&l.brand)
            .bind(&l.option_label)
            .bind(&l.sku)
            .bind(l.unit_price)
            .bind(l.quantity)
            .execute(&mut *tx)
            .await?;
        }
        enqueue(
            &mut tx,
            &order_job(JOB_ORDER_EXPIRE, id, order.expires_at),
            now,
        )
        .await?;
        if order.from_cart {
            let sql = format!(
                "DELETE FROM cart_items WHERE user_id = ? AND option_id IN ({})",
                super::placeholders(priced.len())
            );
            let mut q = sqlx::query(&sql).bind(order.buyer.get());
            for l in &priced {
                q = q.bind(l.option_id);
            }
            q.execute(&mut *tx).await?;
        }
        for l in &priced {
            if let Some(job) = events(l) {
                enqueue(&mut tx, &job, now).await?;
            }
        }
        let record = order_in(&mut tx, id).await?;
        self.outbox().commit_with_jobs(tx).await?;
        Ok(Placed::Order(record, priced))
    }

    pub async fn order_by_number(&self, number: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE order_number = ?"
        ))
        .bind(number)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(order_row).transpose()
    }

    pub async fn order(&self, id: i64) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(order_row).transpose()
    }

    pub async fn order_lines(&self, order_id: i64) -> Result<Vec<OrderLineRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LINE_COLUMNS} FROM order_lines WHERE order_id = ? ORDER BY id"
        ))
        .bind(order_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(line_row).collect()
    }

    /// A buyer's orders, newest first, keyset paged by id.
    pub async fn orders_of(
        &self,
        buyer: UserId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE buyer_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(buyer.get())
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(order_row).collect()
    }

    /// Order a used listing: in one transaction the listing goes from
    /// `selling` to `reserved` for the buyer (an untimed reservation: the
    /// order's expiry ends it), and the order of one line at the listing's
    /// price, priced by `price`, is written with its expiry job and the
    /// jobs `events` derives from the new reservation's id and the seller.
    pub async fn place_listing_order(
        &self,
        order: &NewOrder<'_>,
        listing_id: i64,
        price: &Pricer,
        events: &(dyn Fn(i64, i64) -> Vec<NewJob> + Send + Sync),
        now: i64,
    ) -> Result<ListingPlaced, StoreError> {
        retrying("place_listing_order", || async {
            let mut tx = self.begin_write().await?;
            let row: Option<(i64, String, i64, String, Option<i64>)> = sqlx::query_as(&format!(
                "SELECT seller_id, title, price, status, deleted_at FROM listings WHERE id = ?{}",
                self.for_update()
            ))
            .bind(listing_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((seller, title, listing_price, status, deleted)) = row else {
                return Ok(ListingPlaced::NotForSale("missing".into()));
            };
            if deleted.is_some() {
                return Ok(ListingPlaced::NotForSale("deleted".into()));
            }
            if seller == order.buyer.get() {
                return Ok(ListingPlaced::OwnListing);
            }
            if let Some(refusal) = self
                .buyer_refusal(&mut tx, order, 0, Some(listing_id), now)
                .await?
            {
                return Ok(ListingPlaced::Refused(refusal));
            }
            let mut lines = [PricedLine {
                option_id: 0,
                product_id: 0,
                product_name: title.clone(),
                brand: String::new(),
                option_label: String::new(),
                sku: String::new(),
                base_price: listing_price,
                price_delta: 0,
                unit_price: 0,
                quantity: 1,
                stock_before: 1,
                stock_after: 0,
            }];
            let total = match price(&mut lines) {
                Ok(t) => t,
                Err(refusal) => return Ok(ListingPlaced::Refused(refusal)),
            };
            let taken = sqlx::query(
                "UPDATE listings SET status = 'reserved', updated_at = ? \
                 WHERE id = ? AND status = 'selling' AND deleted_at IS NULL",
            )
            .bind(now)
            .bind(listing_id)
            .execute(&mut *tx)
            .await?;
            if taken.rows_affected() != 1 {
                return Ok(ListingPlaced::NotForSale(status));
            }
            sqlx::query(
                "INSERT INTO reservations (listing_id, buyer_id, active_listing_id, until, status, created_at) \
                 VALUES (?, ?, ?, NULL, 'active', ?)",
            )
            .bind(listing_id)
            .bind(order.buyer.get())
            .bind(listing_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let reservation = last_insert_id(&mut tx, self.dialect()).await?;
            let hold = Some((listing_id, reservation));
            let Some(id) = insert_order(&mut tx, self.dialect(), order, total, hold, now).await?
            else {
                return Ok(ListingPlaced::NumberTaken);
            };
            sqlx::query(
                "INSERT INTO order_lines (order_id, listing_id, product_name, brand, option_label, sku, \
                 unit_price, quantity) VALUES (?, ?, ?, '', '', '', ?, 1)",
            )
            .bind(id)
            .bind(listing_id)
            .bind(&title)
            .bind(lines[0].unit_price)
            .execute(&mut *tx)
            .await?;
            enqueue(&mut tx, &order_job(JOB_ORDER_EXPIRE, id, order.expires_at), now).await?;
            super::outbox::enqueue_all(&mut tx, &events(reservation, seller), now).await?;
            let record = order_in(&mut tx, id).await?;
            self.outbox().commit_with_jobs(tx).await?;
            Ok(ListingPlaced::Order(record))
        })
        .await
    }

    /// End an unpaid order (`to` is `expired` or `cancelled_by_user`): a
    /// conditional update from `pending_payment`, and in the same
    /// transaction the job that undoes its hold: `stock_restore` for shop
    /// lines, `listing_release` for a used listing. `None` if the order was
    /// not pending (paid, or ended already): nothing changed.
    /// `jobs` (e.g. the `order.expired` event) are written with the change.
    pub async fn end_unpaid_order(
        &self,
        id: i64,
        to: OrderStatus,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<Option<OrderRecord>, StoreError> {
        retrying("end_unpaid_order", || async {
            let mut tx = self.begin_write().await?;
            let r = sqlx::query(
                "UPDATE orders SET status = ?, ended_at = ?, updated_at = ? \
                 WHERE id = ? AND status = 'pending_payment'",
            )
            .bind(to.as_str())
            .bind(now)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Ok(None);
            }
            let record = order_in(&mut tx, id).await?;
            let kind = if record.listing_id.is_some() {
                JOB_LISTING_RELEASE
            } else {
                JOB_STOCK_RESTORE
            };
            enqueue(&mut tx, &order_job(kind, id, now), now).await?;
            for job in jobs {
                enqueue(&mut tx, job, now).await?;
            }
            self.outbox().commit_with_jobs(tx).await?;
            Ok(Some(record))
        })
        .await
    }

    /// Give an order's reserved stock back, each line at most once ever.
    /// Returns `(option_id, stock after)` for the lines restored now.
    pub async fn restore_order_stock(
        &self,
        order_id: i64,
        now: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        retrying("restore_order_stock", || async {
            let mut tx = self.begin_write().await?;
            let lines: Vec<(i64, i64, i64)> = sqlx::query_as(
                "SELECT id, option_id, quantity FROM order_lines \
                 WHERE order_id = ? AND restored_at IS NULL AND option_id IS NOT NULL ORDER BY option_id",
            )
            .bind(order_id)
            .fetch_all(&mut *tx)
            .await?;
            let mut restored = Vec::new();
            for (line, option, quantity) in lines {
                // The per-line key: only the run that sets `restored_at`
                // gives the stock back.
                let r = sqlx::query(
                    "UPDATE order_lines SET restored_at = ? WHERE id = ? AND restored_at IS NULL",
                )
                .bind(now)
                .bind(line)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    continue;
                }
                sqlx::query("UPDATE product_options SET stock = stock + ? WHERE id = ?")
                    .bind(quantity)
                    .bind(option)
                    .execute(&mut *tx)
                    .await?;
                let (after,): (i64,) =
                    sqlx::query_as("SELECT stock FROM product_options WHERE id = ?")
                        .bind(option)
                        .fetch_one(&mut *tx)
                        .await?;
                restored.push((option, after));
            }
            tx.commit().await?;
            Ok(restored)
        })
        .await
    }
}
