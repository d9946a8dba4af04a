//! The shop's catalogue and carts: products, options with stock, images,
//! audited stock changes, wishlists and cart lines.
//!
//! Stock only moves by conditional updates (`... WHERE stock + ? >= 0`), so
//! it can never go negative whatever runs concurrently; the `CHECK (stock
//! >= 0)` in the schema is the second line of defence.

use crate::store::sql::CatalogSql;
use sqlx::Row as _;

use super::market::{media as media_row, MEDIA_COLUMNS};
use super::placeholders;
use super::{
    bind_all, inserted, is_unique_violation, last_insert_id, like_pattern, retrying, Bind,
};
use crate::domain::ids::UserId;
use crate::domain::product::{self, ProductCursor, ProductSort, ProductStatus};
use crate::store::sql::{MediaRecord, NewJob};
use crate::store::StoreError;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProductRecord {
    pub id: i64,
    pub name: String,
    pub brand: String,
    pub description: String,
    pub category: String,
    pub base_price: i64,
    pub status: ProductStatus,
    pub wishlist_count: i64,
    pub review_count: i64,
    pub rating_sum: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OptionRecord {
    pub id: i64,
    pub product_id: i64,
    pub label: String,
    pub sku: String,
    pub price_delta: i64,
    pub stock: i64,
    pub position: i64,
    pub deleted: bool,
}

/// A product's own fields, already checked.
#[derive(Debug, Clone, Copy)]
pub struct ProductFields<'a> {
    pub name: &'a str,
    pub brand: &'a str,
    pub description: &'a str,
    pub category: &'a str,
    pub base_price: i64,
}

/// An option as created, already checked.
#[derive(Debug, Clone)]
pub struct NewOption {
    pub label: String,
    pub sku: String,
    pub price_delta: i64,
    pub stock: i64,
}

/// Outcome of a write that may hit the unique SKU.
#[derive(Debug, PartialEq, Eq)]
pub enum SkuWrite {
    Done(i64),
    SkuTaken,
    /// The product has its maximum of options already.
    TooMany,
}

/// A product list request, already validated.
#[derive(Debug, Clone)]
pub struct ProductQuery {
    pub category: Option<String>,
    pub brand: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock_only: bool,
    /// Lower-cased substring.
    pub q: Option<String>,
    pub sort: ProductSort,
    pub after: Option<ProductCursor>,
    pub limit: i64,
    /// Admins see drafts and hidden products too.
    pub include_unlisted: bool,
}

/// An admin's change to one option's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    /// Set to this many.
    Set(i64),
    /// Add (or, negative, remove) this many.
    Adjust(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockOutcome {
    Changed {
        before: i64,
        after: i64,
    },
    NoOption,
    /// The adjustment would leave fewer than zero.
    WouldGoNegative {
        stock: i64,
    },
}

#[derive(Debug, Clone)]
pub struct AdjustmentRecord {
    pub id: i64,
    pub option_id: i64,
    pub admin_id: i64,
    pub delta: i64,
    pub stock_after: i64,
    pub reason: String,
    pub created_at: i64,
}

/// A cart line with what it refers to now.
#[derive(Debug, Clone)]
pub struct CartRow {
    pub option: OptionRecord,
    pub product: ProductRecord,
    pub quantity: i64,
    pub added_at: i64,
}

/// Outcome of adding to a cart.
#[derive(Debug, PartialEq, Eq)]
pub enum CartAdd {
    /// The line's quantity now.
    Quantity(i64),
    /// The line would pass the per-line maximum.
    TooMany { current: i64 },
    /// A new line would pass the per-cart maximum of lines.
    Full,
}

const PRODUCT_COLUMNS: &str =
    "p.id, p.name, p.brand, p.description, p.category, p.base_price, p.status, \
     p.wishlist_count, p.review_count, p.rating_sum, p.created_at, p.updated_at, p.deleted_at";
const OPTION_COLUMNS: &str =
    "o.id, o.product_id, o.label, o.sku, o.price_delta, o.stock, o.position, o.deleted_at";

fn product_at(row: &sqlx::any::AnyRow, at: usize) -> Result<ProductRecord, StoreError> {
    let id: i64 = row.try_get(at)?;
    let status: String = row.try_get(at + 6)?;
    let deleted_at: Option<i64> = row.try_get(at + 12)?;
    Ok(ProductRecord {
        id,
        name: row.try_get(at + 1)?,
        brand: row.try_get(at + 2)?,
        description: row.try_get(at + 3)?,
        category: row.try_get(at + 4)?,
        base_price: row.try_get(at + 5)?,
        status: ProductStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("product {id}: bad status {status:?}")))?,
        wishlist_count: row.try_get(at + 7)?,
        review_count: row.try_get(at + 8)?,
        rating_sum: row.try_get(at + 9)?,
        created_at: row.try_get(at + 10)?,
        updated_at: row.try_get(at + 11)?,
        deleted: deleted_at.is_some(),
    })
}

fn option_at(row: &sqlx::any::AnyRow, at: usize) -> Result<OptionRecord, StoreError> {
    let deleted_at: Option<i64> = row.try_get(at + 7)?;
    Ok(OptionRecord {
        id: row.try_get(at)?,
        product_id: row.try_get(at + 1)?,
        label: row.try_get(at + 2)?,
        sku: row.try_get(at + 3)?,
        price_delta: row.try_get(at + 4)?,
        stock: row.try_get(at + 5)?,
        position: row.try_get(at + 6)?,
        deleted: deleted_at.is_some(),
    })
}

impl CatalogSql<'_> {
    /// Create a product with its options and images in one transaction.
    pub async fn create_product(
        &self,
        f: &ProductFields<'_>,
        status: ProductStatus,
        options: &[NewOption],
        images: &[i64],
        now: i64,
    ) -> Result<SkuWrite, StoreError> {
        let attempt = retrying("create_product", || async {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO products (name, brand, description, category, base_price, status, search_text, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(f.name)
        .bind(f.brand)
        .bind(f.description)
        .bind(f.category)
        .bind(f.base_price)
        .bind(status.as_str())
        .bind(product::search_text(f.name, f.brand, f.description))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id = last_insert_id(&mut tx, self.dialect()).await?;
        for (position, o) in options.iter().enumerate() {
            insert_option(&mut tx, self.dialect(), id, o, position as i64).await?;
        }
        replace_product_images(&mut tx, id, images).await?;
        tx.commit().await?;
        Ok(id)
    })
        .await;
        match attempt {
            Err(StoreError::Sql(e)) if is_unique_violation(&e) => Ok(SkuWrite::SkuTaken),
            other => other.map(SkuWrite::Done),
        }
    }

    /// Write a product's fields (all given, already merged); replace the
    /// images when `images` is given.
    pub async fn update_product(
        &self,
        id: i64,
        fields: &ProductFields<'_>,
        images: Option<&[i64]>,
        now: i64,
    ) -> Result<(), StoreError> {
        retrying("update_product", || async {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "UPDATE products SET name = ?, brand = ?, description = ?, category = ?, base_price = ?, \
                 search_text = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
            )
            .bind(fields.name)
            .bind(fields.brand)
            .bind(fields.description)
            .bind(fields.category)
            .bind(fields.base_price)
            .bind(product::search_text(
                fields.name,
                fields.brand,
                fields.description,
            ))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if let Some(images) = images {
                replace_product_images(&mut tx, id, images).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn set_product_status(
        &self,
        id: i64,
        status: ProductStatus,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE products SET status = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Soft delete: the product leaves the shop; carts show it unavailable
    /// and past orders keep their lines.
    pub async fn delete_product(&self, id: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE products SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn product(&self, id: i64) -> Result<Option<ProductRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = ?"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(|r| product_at(r, 0)).transpose()
    }

    /// The live options of a product, in display order.
    pub async fn product_options(&self, product_id: i64) -> Result<Vec<OptionRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OPTION_COLUMNS} FROM product_options o \
             WHERE o.product_id = ? AND o.deleted_at IS NULL ORDER BY o.position, o.id"
        ))
        .bind(product_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| option_at(r, 0)).collect()
    }

    /// One option and its product (deleted ones too: callers decide).
    pub async fn option_with_product(
        &self,
        option_id: i64,
    ) -> Result<Option<(OptionRecord, ProductRecord)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {OPTION_COLUMNS}, {PRODUCT_COLUMNS} FROM product_options o \
             JOIN products p ON p.id = o.product_id WHERE o.id = ?"
        ))
        .bind(option_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref()
            .map(|r| Ok((option_at(r, 0)?, product_at(r, 8)?)))
            .transpose()
    }

    /// Add an option unless the product has `max` live options already
    /// (counted under the product's row lock, so parallel adds cannot
    /// overshoot).
    pub async fn add_option(
        &self,
        product_id: i64,
        option: &NewOption,
        max: usize,
    ) -> Result<SkuWrite, StoreError> {
        let attempt = retrying("add_option", || async {
            let mut tx = self.begin_write().await?;
            sqlx::query(&format!(
                "SELECT id FROM products WHERE id = ?{}",
                self.for_update()
            ))
            .bind(product_id)
            .fetch_optional(&mut *tx)
            .await?;
            let (live, next): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(CASE WHEN deleted_at IS NULL THEN 1 END), COALESCE(MAX(position) + 1, 0) \
                 FROM product_options WHERE product_id = ?",
            )
            .bind(product_id)
            .fetch_one(&mut *tx)
            .await?;
            if usize::try_from(live).unwrap_or(usize::MAX) >= max {
                return Ok(None);
            }
            let id = insert_option(&mut tx, self.dialect(), product_id, option, next).await?;
            tx.commit().await?;
            Ok(Some(id))
        })
        .await;
        match attempt {
            Err(StoreError::Sql(e)) if is_unique_violation(&e) => Ok(SkuWrite::SkuTaken),
            Ok(None) => Ok(SkuWrite::TooMany),
            other => other.map(|id| id.map_or(SkuWrite::TooMany, SkuWrite::Done)),
        }
    }

    pub async fn update_option(
        &self,
        option_id: i64,
        label: &str,
        price_delta: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE product_options SET label = ?, price_delta = ? WHERE id = ?")
            .bind(label)
            .bind(price_delta)
            .bind(option_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub async fn delete_option(&self, option_id: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE product_options SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(option_id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Change an option's stock and write the audit row in one transaction,
    /// with the job `events` derives from the stock before and after.
    pub async fn change_stock(
        &self,
        option_id: i64,
        admin: UserId,
        change: StockChange,
        reason: &str,
        events: &(dyn Fn(i64, i64) -> Option<NewJob> + Send + Sync),
        now: i64,
    ) -> Result<StockOutcome, StoreError> {
        retrying("change_stock", || async {
            let mut tx = self.begin_write().await?;
            let lock = format!(
                "SELECT stock FROM product_options WHERE id = ? AND deleted_at IS NULL{}",
                self.for_update()
            );
            let Some((before,)) = sqlx::query_as::<_, (i64,)>(&lock)
                .bind(option_id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(StockOutcome::NoOption);
            };
            let delta = match change {
                StockChange::Set(n) => n - before,
                StockChange::Adjust(d) => d,
            };
            // Conditional even after the lock: orders decrement without
            // taking it (SQLite has one writer; MySQL's row lock orders us).
            let r = sqlx::query(
                "UPDATE product_options SET stock = stock + ? WHERE id = ? AND stock + ? >= 0",
            )
            .bind(delta)
            .bind(option_id)
            .bind(delta)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Ok(StockOutcome::WouldGoNegative { stock: before });
            }
            let (after,): (i64,) =
                sqlx::query_as("SELECT stock FROM product_options WHERE id = ?")
                    .bind(option_id)
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query(
                "INSERT INTO stock_adjustments (option_id, admin_id, delta, stock_after, reason, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(option_id)
            .bind(admin.get())
            .bind(after - before)
            .bind(after)
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if let Some(job) = events(before, after) {
                super::outbox::enqueue(&mut tx, &job, now).await?;
            }
            self.outbox().commit_with_jobs(tx).await?;
            Ok(StockOutcome::Changed { before, after })
        })
        .await
    }

    /// An option's stock history, newest first, keyset paged by id.
    pub async fn stock_adjustments(
        &self,
        option_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AdjustmentRecord>, StoreError> {
        type Row = (i64, i64, i64, i64, i64, String, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, option_id, admin_id, delta, stock_after, reason, created_at FROM stock_adjustments \
             WHERE option_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(option_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AdjustmentRecord {
                id: r.0,
                option_id: r.1,
                admin_id: r.2,
                delta: r.3,
                stock_after: r.4,
                reason: r.5,
                created_at: r.6,
            })
            .collect())
    }

    pub async fn product_images(&self, product_id: i64) -> Result<Vec<MediaRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MEDIA_COLUMNS} FROM product_images pi JOIN media m ON m.id = pi.media_id \
             WHERE pi.product_id = ? ORDER BY pi.position"
        ))
        .bind(product_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(media_row).collect()
    }

    /// The first image of each product.
    pub async fn product_thumbnails(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, MediaRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let sql = format!(
            "SELECT {MEDIA_COLUMNS}, pi.product_id FROM product_images pi JOIN media m ON m.id = pi.media_id \
             WHERE pi.position = 0 AND pi.product_id IN ({})",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(self.reader()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(9)?, media_row(r)?)))
            .collect()
    }

    /// Whether each product has an option in stock.
    pub async fn products_in_stock(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashSet<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let sql = format!(
            "SELECT DISTINCT product_id FROM product_options \
             WHERE deleted_at IS NULL AND stock > 0 AND product_id IN ({})",
            placeholders(ids.len())
        );
        let mut q = sqlx::query_as::<_, (i64,)>(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(self.reader())
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect())
    }

    /// One page of products (keyset pagination by the sort's key and id).
    pub async fn products(&self, f: &ProductQuery) -> Result<Vec<ProductRecord>, StoreError> {
        let mut sql =
            format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.deleted_at IS NULL");
        let mut binds: Vec<Bind> = Vec::new();
        if !f.include_unlisted {
            sql.push_str(" AND p.status IN ('on_sale', 'sold_out')");
        }
        if let Some(c) = &f.category {
            sql.push_str(" AND p.category = ?");
            binds.push(Bind::T(c.clone()));
        }
        if let Some(b) = &f.brand {
            sql.push_str(" AND LOWER(p.brand) = ?");
            binds.push(Bind::T(b.to_lowercase()));
        }
        if let Some(p) = f.min_price {
            sql.push_str(" AND p.base_price >= ?");
            binds.push(Bind::I(p));
        }
        if let Some(p) = f.max_price {
            sql.push_str(" AND p.base_price <= ?");
            binds.push(Bind::I(p));
        }
        if f.in_stock_only {
            sql.push_str(
                " AND p.status = 'on_sale' AND EXISTS (SELECT 1 FROM product_options o \
                 WHERE o.product_id = p.id AND o.deleted_at IS NULL AND o.stock > 0)",
            );
        }
        if let Some(q) = &f.q {
            sql.push_str(" AND p.search_text LIKE ? ESCAPE '!'");
            binds.push(Bind::T(like_pattern(q)));
        }
        let key = match f.sort {
            ProductSort::Newest => None,
            ProductSort::PriceAsc | ProductSort::PriceDesc => Some("p.base_price"),
            ProductSort::Popular => Some("p.wishlist_count"),
        };
        let descending = f.sort != ProductSort::PriceAsc;
        let cmp = if descending { "<" } else { ">" };
        if let Some(c) = f.after {
            match key {
                None => {
                    sql.push_str(&format!(" AND p.id {cmp} ?"));
                    binds.push(Bind::I(c.id));
                }
                Some(k) => {
                    sql.push_str(&format!(" AND ({k} {cmp} ? OR ({k} = ? AND p.id {cmp} ?))"));
                    binds.extend([Bind::I(c.key), Bind::I(c.key), Bind::I(c.id)]);
                }
            }
        }
        let dir = if descending { "DESC" } else { "ASC" };
        match key {
            None => sql.push_str(&format!(" ORDER BY p.id {dir}")),
            Some(k) => sql.push_str(&format!(" ORDER BY {k} {dir}, p.id {dir}")),
        }
        sql.push_str(" LIMIT ?");
        binds.push(Bind::I(f.limit));
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(|r| product_at(r, 0)).collect()
    }

    /// Add to or remove from a wishlist; `true` if that changed anything.
    /// The product's count moves in the same transaction.
    pub async fn set_wishlisted(
        &self,
        user: UserId,
        product_id: i64,
        on: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        retrying("set_wishlisted", || async {
            let mut tx = self.begin_write().await?;
            let changed = if on {
                inserted(
                    sqlx::query(
                        "INSERT INTO wishlist (user_id, product_id, created_at) VALUES (?, ?, ?)",
                    )
                    .bind(user.get())
                    .bind(product_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await,
                )?
            } else {
                sqlx::query("DELETE FROM wishlist WHERE user_id = ? AND product_id = ?")
                    .bind(user.get())
                    .bind(product_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1
            };
            if changed {
                sqlx::query("UPDATE products SET wishlist_count = wishlist_count + ? WHERE id = ?")
                    .bind(if on { 1i64 } else { -1 })
                    .bind(product_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(changed)
        })
        .await
    }

    pub async fn is_wishlisted(&self, user: UserId, product_id: i64) -> Result<bool, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT product_id FROM wishlist WHERE user_id = ? AND product_id = ?")
                .bind(user.get())
                .bind(product_id)
                .fetch_optional(self.reader())
                .await?;
        Ok(row.is_some())
    }

    /// A user's wishlist, latest first: (added_at, product), keyset paged
    /// by (added_at, product id).
    pub async fn wishlist(
        &self,
        user: UserId,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<(i64, ProductRecord)>, StoreError> {
        let (at, id) = after.unwrap_or((i64::MAX, i64::MAX));
        let rows = sqlx::query(&format!(
            "SELECT w.created_at, {PRODUCT_COLUMNS} FROM wishlist w JOIN products p ON p.id = w.product_id \
             WHERE w.user_id = ? AND (w.created_at < ? OR (w.created_at = ? AND w.product_id < ?)) \
             ORDER BY w.created_at DESC, w.product_id DESC LIMIT ?"
        ))
        .bind(user.get())
        .bind(at)
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, product_at(r, 1)?)))
            .collect()
    }

    /// Add `quantity` of an option to a cart line (creating it), unless the
    /// line would pass `max`, or a new line would pass `max_lines` (checked
    /// by the insert itself, so parallel adds cannot overshoot).
    pub async fn cart_add(
        &self,
        user: UserId,
        option_id: i64,
        quantity: i64,
        (max, max_lines): (i64, i64),
        now: i64,
    ) -> Result<CartAdd, StoreError> {
        retrying("cart_add", || async {
            let mut tx = self.begin_write().await?;
            // One user's cart changes one at a time (MySQL: the user's row
            // lock), so the line count below is not raced and parallel
            // adds queue instead of deadlocking on gap locks.
            self.lock_user(&mut tx, user.get()).await?;
            let lock = format!(
                "SELECT quantity FROM cart_items WHERE user_id = ? AND option_id = ?{}",
                self.for_update()
            );
            let current: Option<(i64,)> = sqlx::query_as(&lock)
                .bind(user.get())
                .bind(option_id)
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = match current {
                Some((current,)) if current + quantity > max => CartAdd::TooMany { current },
                Some((current,)) => {
                    sqlx::query(
                        "UPDATE cart_items SET quantity = ?, updated_at = ? WHERE user_id = ? AND option_id = ?",
                    )
                    .bind(current + quantity)
                    .bind(now)
                    .bind(user.get())
                    .bind(option_id)
                    .execute(&mut *tx)
                    .await?;
                    CartAdd::Quantity(current + quantity)
                }
                None => {
                    // A concurrent first add of the same option hits the
                    // primary key; `retrying` does not retry that, so the
                    // caller sees an error only in that rare race, and the
                    // client's retry adds on top.
                    let added = sqlx::query(
                        "INSERT INTO cart_items (user_id, option_id, quantity, added_at, updated_at) \
                         SELECT ?, ?, ?, ?, ? FROM (SELECT 1 AS one) AS one \
                         WHERE (SELECT COUNT(*) FROM cart_items WHERE user_id = ?) < ?",
                    )
                    .bind(user.get())
                    .bind(option_id)
                    .bind(quantity)
                    .bind(now)
                    .bind(now)
                    .bind(user.get())
                    .bind(max_lines)
                    .execute(&mut *tx)
                    .await?;
                    if added.rows_affected() == 1 {
                        CartAdd::Quantity(quantity)
                    } else {
                        CartAdd::Full
                    }
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
        .await
    }

    /// Set a line's quantity; `false` if there is no such line.
    pub async fn cart_set(
        &self,
        user: UserId,
        option_id: i64,
        quantity: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE cart_items SET quantity = ?, updated_at = ? WHERE user_id = ? AND option_id = ?",
        )
        .bind(quantity)
        .bind(now)
        .bind(user.get())
        .bind(option_id)
        .execute(self.writer())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Remove lines (all of the cart when `options` is `None`); how many.
    pub async fn cart_remove(
        &self,
        user: UserId,
        options: Option<&[i64]>,
    ) -> Result<u64, StoreError> {
        let r = match options {
            None => {
                sqlx::query("DELETE FROM cart_items WHERE user_id = ?")
                    .bind(user.get())
                    .execute(self.writer())
                    .await?
            }
            Some([]) => return Ok(0),
            Some(ids) => {
                let sql = format!(
                    "DELETE FROM cart_items WHERE user_id = ? AND option_id IN ({})",
                    placeholders(ids.len())
                );
                let mut q = sqlx::query(&sql).bind(user.get());
                for id in ids {
                    q = q.bind(*id);
                }
                q.execute(self.writer()).await?
            }
        };
        Ok(r.rows_affected())
    }

    /// A user's cart with each line's option and product as they are now,
    /// in the order the lines were added.
    pub async fn cart(&self, user: UserId) -> Result<Vec<CartRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OPTION_COLUMNS}, {PRODUCT_COLUMNS}, c.quantity, c.added_at FROM cart_items c \
             JOIN product_options o ON o.id = c.option_id JOIN products p ON p.id = o.product_id \
             WHERE c.user_id = ? ORDER BY c.added_at, c.option_id"
        ))
        .bind(user.get())
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CartRow {
                    option: option_at(r, 0)?,
                    product: product_at(r, 8)?,
                    quantity: r.try_get(21)?,
                    added_at: r.try_get(22)?,
                })
            })
            .collect()
    }
}

async fn insert_option(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: super::Dialect,
    product_id: i64,
    o: &NewOption,
    position: i64,
) -> Result<i64, StoreError> {
    sqlx::query(
        "INSERT INTO product_options (product_id, label, sku, price_delta, stock, position) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(product_id)
    .bind(&o.label)
    .bind(&o.sku)
    .bind(o.price_delta)
    .bind(o.stock)
    .bind(position)
    .execute(&mut **tx)
    .await?;
    last_insert_id(tx, dialect).await
}

async fn replace_product_images(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    product_id: i64,
    images: &[i64],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM product_images WHERE product_id = ?")
        .bind(product_id)
        .execute(&mut **tx)
        .await?;
    for (pos, media_id) in images.iter().enumerate() {
        sqlx::query("INSERT INTO product_images (product_id, position, media_id) VALUES (?, ?, ?)")
            .bind(product_id)
            .bind(pos as i64)
            .bind(*media_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
