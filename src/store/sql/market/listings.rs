//! Listings, their images, the feed and search.

use super::*;
use crate::store::sql::MarketSql;
use crate::store::sql::{bind_all, like_pattern, Bind};

impl MarketSql<'_> {
    pub async fn create_listing(
        &self,
        seller: UserId,
        f: &ListingFields<'_>,
        region: PostedIn<'_>,
        images: &[i64],
        events: JobsFor<'_>,
        now: i64,
    ) -> Result<ListingId, StoreError> {
        retrying("create_listing", || async {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO listings (seller_id, title, description, price, category, status, search_text, \
             created_at, updated_at, region_code) VALUES (?, ?, ?, ?, ?, 'selling', ?, ?, ?, ?)",
        )
        .bind(seller.get())
        .bind(f.title)
        .bind(f.description)
        .bind(f.price)
        .bind(f.category)
        .bind(crate::domain::listing::search_text(f.title, f.description))
        .bind(now)
        .bind(now)
        .bind(region)
        .execute(&mut *tx)
        .await?;
        let id = last_insert_id(&mut tx, self.dialect()).await?;
        insert_images(&mut tx, id, images).await?;
        enqueue_all(&mut tx, &events(id), now).await?;
        self.outbox().commit_with_jobs(tx).await?;
        Ok(ListingId(id))
    })
        .await
    }

    /// Write the editable fields (all given, already merged) and, if
    /// `images` is given, replace the images; `jobs` (e.g. a price drop
    /// event) are written with the change.
    pub async fn update_listing(
        &self,
        id: ListingId,
        f: &ListingFields<'_>,
        images: Option<&[i64]>,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<(), StoreError> {
        let id = id.get();
        retrying("update_listing", || async {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE listings SET title = ?, description = ?, price = ?, category = ?, search_text = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(f.title)
        .bind(f.description)
        .bind(f.price)
        .bind(f.category)
        .bind(crate::domain::listing::search_text(f.title, f.description))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(images) = images {
            sqlx::query("DELETE FROM listing_images WHERE listing_id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_images(&mut tx, id, images).await?;
        }
        enqueue_all(&mut tx, jobs, now).await?;
        self.outbox().commit_with_jobs(tx).await?;
        Ok(())
    })
        .await
    }

    /// Move a listing from `from` to `to`; false if it was not in `from`.
    pub async fn set_listing_status(
        &self,
        id: i64,
        from: ListingStatus,
        to: ListingStatus,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE listings SET status = ?, updated_at = ? WHERE id = ? AND status = ? AND deleted_at IS NULL")
            .bind(to.as_str())
            .bind(now)
            .bind(id)
            .bind(from.as_str())
            .execute(self.writer())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn delete_listing(&self, id: i64, now: i64) -> Result<(), StoreError> {
        retrying("delete_listing", || async {
            let mut tx = self.begin_write().await?;
            sqlx::query("UPDATE listings SET deleted_at = ?, updated_at = ? WHERE id = ?")
                .bind(now)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
            "UPDATE reservations SET status = 'cancelled', active_listing_id = NULL, ended_at = ? \
             WHERE active_listing_id = ?",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn listing(&self, id: i64) -> Result<Option<ListingRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LISTING_COLUMNS} FROM listings l WHERE l.id = ?"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(listing).transpose()
    }

    pub async fn view_count(&self, id: i64) -> Result<i64, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT view_count FROM listings WHERE id = ?")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    pub async fn count_view(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE listings SET view_count = view_count + 1 WHERE id = ?")
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// One page of the feed (keyset pagination, newest or by price).
    pub async fn feed(&self, f: &FeedQuery) -> Result<Vec<ListingRecord>, StoreError> {
        let mut sql =
            format!("SELECT {LISTING_COLUMNS} FROM listings l WHERE l.deleted_at IS NULL");
        // Bind order is kept by pushing to one list of typed values.
        let mut binds: Vec<Bind> = Vec::new();
        match f.status {
            Some(s) => {
                sql.push_str(" AND l.status = ?");
                binds.push(Bind::T(s.as_str().to_string()));
            }
            None => sql.push_str(" AND l.status IN ('selling', 'reserved')"),
        }
        if let Some(c) = &f.category {
            sql.push_str(" AND l.category = ?");
            binds.push(Bind::T(c.clone()));
        }
        if let Some(p) = f.min_price {
            sql.push_str(" AND l.price >= ?");
            binds.push(Bind::I(p));
        }
        if let Some(p) = f.max_price {
            sql.push_str(" AND l.price <= ?");
            binds.push(Bind::I(p));
        }
        if let Some(seller) = f.seller {
            sql.push_str(" AND l.seller_id = ?");
            binds.push(Bind::I(seller));
        }
        if let Some(q) = &f.q {
            sql.push_str(" AND l.search_text LIKE ? ESCAPE '!'");
            binds.push(Bind::T(like_pattern(q)));
        }
        if let Some(regions) = &f.regions {
            if regions.is_empty() {
                sql.push_str(" AND 1 = 0");
            } else {
                sql.push_str(&format!(
                    " AND l.region_code IN ({})",
                    crate::store::sql::placeholders(regions.len())
                ));
                binds.extend(regions.iter().map(|r| Bind::T(r.clone())));
            }
        }
        if let Some(viewer) = f.viewer {
            sql.push_str(" AND l.seller_id NOT IN (SELECT b.blocked_id FROM blocks b WHERE b.blocker_id = ?)");
            binds.push(Bind::I(viewer));
        }
        if let Some(c) = f.after {
            match f.sort {
                Sort::Recent => {
                    sql.push_str(" AND l.id < ?");
                    binds.push(Bind::I(c.id));
                }
                Sort::PriceAsc => {
                    sql.push_str(" AND (l.price > ? OR (l.price = ? AND l.id > ?))");
                    binds.extend([Bind::I(c.price), Bind::I(c.price), Bind::I(c.id)]);
                }
                Sort::PriceDesc => {
                    sql.push_str(" AND (l.price < ? OR (l.price = ? AND l.id < ?))");
                    binds.extend([Bind::I(c.price), Bind::I(c.price), Bind::I(c.id)]);
                }
            }
        }
        sql.push_str(match f.sort {
            Sort::Recent => " ORDER BY l.id DESC",
            Sort::PriceAsc => " ORDER BY l.price ASC, l.id ASC",
            Sort::PriceDesc => " ORDER BY l.price DESC, l.id DESC",
        });
        sql.push_str(" LIMIT ?");
        binds.push(Bind::I(f.limit));
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(listing).collect()
    }
}
