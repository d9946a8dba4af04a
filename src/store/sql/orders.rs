//! Orders and their lines.
//!
//! Placing an order is one transaction that the order service runs step
//! by step ([`OrderTx`]: the buyer's holds, the options as they are, the
//! stock reservation by conditional decrement (`stock >= n`), the order
//! and its lines, its jobs, the cart); the decisions between the steps
//! (limits, prices, which jobs) are the service's. If any line is short,
//! the transaction is dropped and nothing is reserved. Lines are
//! decremented in option-id order, so two orders for the same options lock
//! their rows in the same order (no deadlocks on MySQL).
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
use crate::domain::order::{BuyerHolds, OrderStatus};
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
    /// Set by the order service (domain rules), copied into the order line.
    pub unit_price: i64,
    pub quantity: i64,
    /// Stock before and after this order's decrement.
    pub stock_before: i64,
    pub stock_after: i64,
}

/// A new order's fixed parts.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub buyer: UserId,
    pub order_number: &'a str,
    pub expires_at: i64,
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

impl<'a> OrdersSql<'a> {
    /// Begin an order's write transaction (see [`OrderTx`]).
    pub async fn begin(self) -> Result<OrderTx<'a>, StoreError> {
        Ok(OrderTx {
            tx: self.begin_write().await?,
            sql: self,
        })
    }
}

impl OrdersSql<'_> {
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

/// What a listing is, read (and locked) in an order's transaction.
#[derive(Debug, Clone)]
pub struct ListingForOrder {
    pub seller_id: i64,
    pub title: String,
    pub price: i64,
    pub status: String,
    pub deleted: bool,
}

/// One order's write transaction, a step at a time. The order service
/// runs the workflow (what is checked, in which order, which jobs go with
/// the order; `service::orders`), each step here runs its statements on
/// the transaction. Dropping it without [`OrderTx::commit`] rolls
/// everything back, so a refusal at any step leaves nothing behind.
pub struct OrderTx<'a> {
    sql: OrdersSql<'a>,
    tx: sqlx::Transaction<'static, sqlx::Any>,
}

impl OrderTx<'_> {
    /// What the buyer holds unpaid, read under the buyer's row lock
    /// (MySQL), so one buyer's orders are counted one at a time. `listing`:
    /// the used listing the new order is for (its last unpaid end counts).
    pub async fn buyer_holds(
        &mut self,
        buyer: UserId,
        listing: Option<i64>,
    ) -> Result<BuyerHolds, StoreError> {
        let buyer = buyer.get();
        self.sql.lock_user(&mut self.tx, buyer).await?;
        // Two plain reads (no SUM: MySQL returns it as DECIMAL); at most
        // `unpaid_orders` orders of at most 50 lines are summed here.
        let (unpaid_orders,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM orders WHERE buyer_id = ? AND status = 'pending_payment'",
        )
        .bind(buyer)
        .fetch_one(&mut *self.tx)
        .await?;
        let quantities: Vec<(i64,)> = sqlx::query_as(
            "SELECT l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id \
             WHERE o.buyer_id = ? AND o.status = 'pending_payment' AND l.option_id IS NOT NULL",
        )
        .bind(buyer)
        .fetch_all(&mut *self.tx)
        .await?;
        let listing_order_ended_at = match listing {
            Some(listing) => {
                let (last,): (Option<i64>,) = sqlx::query_as(
                    "SELECT MAX(o.ended_at) FROM orders o \
                     WHERE o.buyer_id = ? AND o.listing_id = ? AND o.status IN ('cancelled', 'expired', 'cancelled_by_user')",
                )
                .bind(buyer)
                .bind(listing)
                .fetch_one(&mut *self.tx)
                .await?;
                last
            }
            None => None,
        };
        Ok(BuyerHolds {
            unpaid_orders,
            unpaid_units: quantities.iter().map(|q| q.0).sum(),
            listing_order_ended_at,
        })
    }

    /// Each requested option with its product as they are now (prices
    /// not yet set), or the ids of those gone, hidden or not on sale.
    pub async fn options(
        &mut self,
        lines: &[LineRequest],
    ) -> Result<Result<Vec<PricedLine>, Vec<i64>>, StoreError> {
        let mut priced = Vec::with_capacity(lines.len());
        let mut unavailable = Vec::new();
        for l in lines {
            let row = sqlx::query(
                "SELECT o.id, o.product_id, p.name, p.brand, o.label, o.sku, p.base_price, o.price_delta, o.stock \
                 FROM product_options o JOIN products p ON p.id = o.product_id \
                 WHERE o.id = ? AND o.deleted_at IS NULL AND p.deleted_at IS NULL AND p.status = 'on_sale'",
            )
            .bind(l.option_id)
            .fetch_optional(&mut *self.tx)
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
        Ok(if unavailable.is_empty() {
            Ok(priced)
        } else {
            Err(unavailable)
        })
    }

    /// Reserve each line's stock with a conditional decrement (`stock >=
    /// n`) and note its stock before and after; the ids of the lines that
    /// are short (then nothing may be committed: drop the transaction).
    /// Call with lines in option-id order, so two orders for the same
    /// options lock their rows in the same order.
    pub async fn reserve(&mut self, lines: &mut [PricedLine]) -> Result<Vec<i64>, StoreError> {
        let mut short = Vec::new();
        for l in lines {
            let r = sqlx::query(
                "UPDATE product_options SET stock = stock - ? WHERE id = ? AND stock >= ?",
            )
            .bind(l.quantity)
            .bind(l.option_id)
            .bind(l.quantity)
            .execute(&mut *self.tx)
            .await?;
            if r.rows_affected() != 1 {
                short.push(l.option_id);
                continue;
            }
            let (after,): (i64,) = sqlx::query_as("SELECT stock FROM product_options WHERE id = ?")
                .bind(l.option_id)
                .fetch_one(&mut *self.tx)
                .await?;
            l.stock_before = after + l.quantity;
            l.stock_after = after;
        }
        Ok(short)
    }

    /// Insert the pending order and its shop lines (prices copied); `None`
    /// if its number is taken (draw another).
    pub async fn insert_shop_order(
        &mut self,
        order: &NewOrder<'_>,
        total: i64,
        lines: &[PricedLine],
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let dialect = self.sql.dialect();
        let Some(id) = insert_order(&mut self.tx, dialect, order, total, None, now).await? else {
            return Ok(None);
        };
        for l in lines {
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
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(Some(id))
    }

    /// Take these options out of the buyer's cart.
    pub async fn clear_cart(&mut self, buyer: UserId, options: &[i64]) -> Result<(), StoreError> {
        if options.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "DELETE FROM cart_items WHERE user_id = ? AND option_id IN ({})",
            super::placeholders(options.len())
        );
        let mut q = sqlx::query(&sql).bind(buyer.get());
        for id in options {
            q = q.bind(id);
        }
        q.execute(&mut *self.tx).await?;
        Ok(())
    }

    /// The listing, read under its row lock (MySQL); `None` if missing.
    pub async fn listing(&mut self, listing: i64) -> Result<Option<ListingForOrder>, StoreError> {
        let row: Option<(i64, String, i64, String, Option<i64>)> = sqlx::query_as(&format!(
            "SELECT seller_id, title, price, status, deleted_at FROM listings WHERE id = ?{}",
            self.sql.for_update()
        ))
        .bind(listing)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(
            |(seller_id, title, price, status, deleted)| ListingForOrder {
                seller_id,
                title,
                price,
                status,
                deleted: deleted.is_some(),
            },
        ))
    }

    /// Take the listing from `selling` to `reserved` for the buyer (an
    /// untimed reservation: the order's expiry ends it); the reservation's
    /// id, or `None` if the listing was not for sale.
    pub async fn hold_listing(
        &mut self,
        listing: i64,
        buyer: UserId,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let taken = sqlx::query(
            "UPDATE listings SET status = 'reserved', updated_at = ? \
             WHERE id = ? AND status = 'selling' AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(listing)
        .execute(&mut *self.tx)
        .await?;
        if taken.rows_affected() != 1 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO reservations (listing_id, buyer_id, active_listing_id, until, status, created_at) \
             VALUES (?, ?, ?, NULL, 'active', ?)",
        )
        .bind(listing)
        .bind(buyer.get())
        .bind(listing)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(Some(
            last_insert_id(&mut self.tx, self.sql.dialect()).await?,
        ))
    }

    /// Insert the pending order of a used listing (one line at `total`)
    /// holding `reservation`; `None` if its number is taken.
    pub async fn insert_listing_order(
        &mut self,
        order: &NewOrder<'_>,
        listing: i64,
        reservation: i64,
        title: &str,
        total: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let dialect = self.sql.dialect();
        let hold = Some((listing, reservation));
        let Some(id) = insert_order(&mut self.tx, dialect, order, total, hold, now).await? else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO order_lines (order_id, listing_id, product_name, brand, option_label, sku, \
             unit_price, quantity) VALUES (?, ?, ?, '', '', '', ?, 1)",
        )
        .bind(id)
        .bind(listing)
        .bind(title)
        .bind(total)
        .execute(&mut *self.tx)
        .await?;
        Ok(Some(id))
    }

    /// Write outbox jobs with the order (its expiry, alarms).
    pub async fn enqueue(&mut self, jobs: &[NewJob], now: i64) -> Result<(), StoreError> {
        super::outbox::enqueue_all(&mut self.tx, jobs, now).await
    }

    /// Commit, wake this node's outbox worker for the jobs written, and
    /// return the order as committed.
    pub async fn commit(mut self, order: i64) -> Result<OrderRecord, StoreError> {
        let record = order_in(&mut self.tx, order).await?;
        self.sql.outbox().commit_with_jobs(self.tx).await?;
        Ok(record)
    }
}

/// The outbox job that expires an unpaid order at `due_at`.
pub fn expiry_job(order: i64, due_at: i64) -> NewJob {
    order_job(JOB_ORDER_EXPIRE, order, due_at)
}
