//! Product reviews, one per paid order line, with the product's count and
//! rating sum kept in the same transaction as each change.

use super::{inserted, retrying};
use crate::domain::ids::UserId;
use crate::store::sql::CatalogSql;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct ProductReviewRecord {
    pub id: i64,
    pub order_line_id: i64,
    pub product_id: i64,
    pub user_id: i64,
    pub rating: i64,
    pub body: String,
    pub images: Vec<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An order line as reviewing needs it: whose, of what, in which state.
#[derive(Debug, Clone)]
pub struct ReviewableLine {
    pub line_id: i64,
    pub buyer_id: i64,
    pub product_id: Option<i64>,
    pub order_status: String,
}

type Row = (i64, i64, i64, i64, i64, String, String, i64, i64);
const COLUMNS: &str =
    "id, order_line_id, product_id, user_id, rating, body, images, created_at, updated_at";

fn review(r: Row) -> ProductReviewRecord {
    ProductReviewRecord {
        id: r.0,
        order_line_id: r.1,
        product_id: r.2,
        user_id: r.3,
        rating: r.4,
        body: r.5,
        images: r.6.split(',').filter_map(|s| s.parse().ok()).collect(),
        created_at: r.7,
        updated_at: r.8,
    }
}

fn image_list(images: &[i64]) -> String {
    images
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl CatalogSql<'_> {
    pub async fn reviewable_line(
        &self,
        line_id: i64,
    ) -> Result<Option<ReviewableLine>, StoreError> {
        let row: Option<(i64, i64, Option<i64>, String)> = sqlx::query_as(
            // A line cancelled in full is as good as a cancelled order.
            "SELECT l.id, o.buyer_id, l.product_id, \
             CASE WHEN l.cancelled_quantity >= l.quantity THEN 'cancelled' ELSE o.status END \
             FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE l.id = ?",
        )
        .bind(line_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(|r| ReviewableLine {
            line_id: r.0,
            buyer_id: r.1,
            product_id: r.2,
            order_status: r.3,
        }))
    }

    /// Insert a review; `None` if that line was reviewed already.
    pub async fn insert_product_review(
        &self,
        line: &ReviewableLine,
        product_id: i64,
        rating: i64,
        body: &str,
        images: &[i64],
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        retrying("insert_product_review", || async {
            let mut tx = self.begin_write().await?;
            let r = sqlx::query(
                "INSERT INTO product_reviews (order_line_id, product_id, user_id, rating, body, images, \
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(line.line_id)
            .bind(product_id)
            .bind(line.buyer_id)
            .bind(rating)
            .bind(body)
            .bind(image_list(images))
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await;
            if !inserted(r)? {
                return Ok(None);
            }
            let id = super::last_insert_id(&mut tx, self.dialect()).await?;
            sqlx::query(
                "UPDATE products SET review_count = review_count + 1, rating_sum = rating_sum + ? WHERE id = ?",
            )
            .bind(rating)
            .bind(product_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(id))
        })
        .await
    }

    pub async fn product_review(&self, id: i64) -> Result<Option<ProductReviewRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM product_reviews WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(review))
    }

    /// Change one's own review; the product's rating sum follows.
    pub async fn update_product_review(
        &self,
        id: i64,
        author: UserId,
        rating: i64,
        body: &str,
        images: &[i64],
        now: i64,
    ) -> Result<bool, StoreError> {
        retrying("update_product_review", || async {
            let mut tx = self.begin_write().await?;
            let old: Option<(i64, i64)> = sqlx::query_as(&format!(
                "SELECT rating, product_id FROM product_reviews WHERE id = ? AND user_id = ?{}",
                self.for_update()
            ))
            .bind(id)
            .bind(author.get())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((old_rating, product)) = old else {
                return Ok(false);
            };
            sqlx::query(
                "UPDATE product_reviews SET rating = ?, body = ?, images = ?, updated_at = ? WHERE id = ?",
            )
            .bind(rating)
            .bind(body)
            .bind(image_list(images))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE products SET rating_sum = rating_sum + ? WHERE id = ?")
                .bind(rating - old_rating)
                .bind(product)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Delete a review (its author's or, for admins, any).
    pub async fn delete_product_review(&self, id: i64) -> Result<bool, StoreError> {
        retrying("delete_product_review", || async {
            let mut tx = self.begin_write().await?;
            let old: Option<(i64, i64)> = sqlx::query_as(&format!(
                "SELECT rating, product_id FROM product_reviews WHERE id = ?{}",
                self.for_update()
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((rating, product)) = old else {
                return Ok(false);
            };
            sqlx::query("DELETE FROM product_reviews WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE products SET review_count = review_count - 1, rating_sum = rating_sum - ? WHERE id = ?",
            )
            .bind(rating)
            .bind(product)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// A product's reviews, newest first, keyset paged by id.
    pub async fn product_reviews(
        &self,
        product_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ProductReviewRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM product_reviews WHERE product_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(product_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(review).collect())
    }
}
