//! Uploaded images: their rows (the files are in store::media).

use super::*;
use crate::store::sql::placeholders;
use crate::store::sql::MediaSql;

impl MediaSql<'_> {
    /// Record an upload unless its owner's uploads would then pass
    /// `quota` bytes (`None`: over quota, nothing written). The sum is part
    /// of the insert, under the owner's row lock on MySQL, so parallel
    /// uploads cannot pass the quota together.
    pub async fn insert_media(
        &self,
        m: &NewMedia<'_>,
        quota: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        self.lock_user(&mut tx, m.owner.get()).await?;
        let done = sqlx::query(
            "INSERT INTO media (owner_id, content_type, bytes, width, height, original_key, thumb_key, created_at) \
             SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM (SELECT 1 AS one) AS one \
             WHERE (SELECT COALESCE(SUM(bytes), 0) FROM media WHERE owner_id = ?) + ? <= ?",
        )
        .bind(m.owner.get())
        .bind(m.content_type)
        .bind(m.bytes)
        .bind(m.width)
        .bind(m.height)
        .bind(m.original_key)
        .bind(m.thumb_key)
        .bind(now)
        .bind(m.owner.get())
        .bind(m.bytes)
        .bind(quota)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let id = last_insert_id(&mut tx, self.dialect()).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Bytes of the originals `owner` has uploaded.
    pub async fn media_bytes_of(&self, owner: i64) -> Result<i64, StoreError> {
        // MySQL's SUM is a DECIMAL: made an integer there.
        let sum = match self.dialect() {
            crate::store::sql::Dialect::Sqlite => "COALESCE(SUM(bytes), 0)",
            crate::store::sql::Dialect::MySql => "CAST(COALESCE(SUM(bytes), 0) AS SIGNED)",
        };
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT {sum} FROM media WHERE owner_id = ?"))
            .bind(owner)
            .fetch_one(self.reader())
            .await?;
        Ok(n)
    }

    /// Uploads older than `before` that nothing uses (no listing, product
    /// or review shows them), at most `limit`: (id, original key, thumb key).
    pub async fn orphan_media(
        &self,
        before: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT m.id, m.original_key, m.thumb_key FROM media m \
             WHERE m.created_at < ? \
             AND NOT EXISTS (SELECT 1 FROM listing_images li WHERE li.media_id = m.id) \
             AND NOT EXISTS (SELECT 1 FROM product_images pi WHERE pi.media_id = m.id) \
             ORDER BY m.created_at LIMIT ?",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows)
    }

    /// Delete an upload's row if still nothing uses it (reviews keep their
    /// images as a comma-separated id list); true if it was deleted, and
    /// its files may go.
    pub async fn delete_orphan_media(&self, id: i64) -> Result<bool, StoreError> {
        let n = id.to_string();
        let done = sqlx::query(
            "DELETE FROM media WHERE id = ? \
             AND NOT EXISTS (SELECT 1 FROM listing_images li WHERE li.media_id = ?) \
             AND NOT EXISTS (SELECT 1 FROM product_images pi WHERE pi.media_id = ?) \
             AND NOT EXISTS (SELECT 1 FROM product_reviews r WHERE r.user_id = media.owner_id \
                 AND (r.images = ? OR r.images LIKE ? OR r.images LIKE ? OR r.images LIKE ?))",
        )
        .bind(id)
        .bind(id)
        .bind(id)
        .bind(&n)
        .bind(format!("{n},%"))
        .bind(format!("%,{n}"))
        .bind(format!("%,{n},%"))
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn media(&self, ids: &[i64]) -> Result<Vec<MediaRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {MEDIA_COLUMNS} FROM media m WHERE m.id IN ({})",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(self.reader()).await?;
        rows.iter().map(media).collect()
    }

    /// Images of a listing in display order.
    pub async fn listing_images(&self, listing_id: i64) -> Result<Vec<MediaRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MEDIA_COLUMNS} FROM listing_images li JOIN media m ON m.id = li.media_id \
             WHERE li.listing_id = ? ORDER BY li.position"
        ))
        .bind(listing_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(media).collect()
    }

    /// The first image of each listing (its thumbnail).
    pub async fn listing_thumbnails(
        &self,
        listing_ids: &[i64],
    ) -> Result<HashMap<i64, MediaRecord>, StoreError> {
        if listing_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT li.listing_id, {MEDIA_COLUMNS} FROM listing_images li JOIN media m ON m.id = li.media_id \
             WHERE li.position = 0 AND li.listing_id IN ({})",
            placeholders(listing_ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in listing_ids {
            q = q.bind(*id);
        }
        let mut out = HashMap::new();
        for row in q.fetch_all(self.reader()).await? {
            let listing_id: i64 = row.try_get(0)?;
            let m = MediaRecord {
                id: row.try_get(1)?,
                owner_id: row.try_get(2)?,
                content_type: row.try_get(3)?,
                bytes: row.try_get(4)?,
                width: row.try_get(5)?,
                height: row.try_get(6)?,
                original_key: row.try_get(7)?,
                thumb_key: row.try_get(8)?,
                created_at: row.try_get(9)?,
            };
            out.insert(listing_id, m);
        }
        Ok(out)
    }

    /// Media ids already attached to a listing other than `except`.
    pub async fn media_in_use(
        &self,
        ids: &[i64],
        except: Option<i64>,
    ) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT media_id FROM listing_images WHERE listing_id <> ? AND media_id IN ({})",
            placeholders(ids.len())
        );
        let mut q = sqlx::query_as::<_, (i64,)>(&sql).bind(except.unwrap_or(0));
        for id in ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(self.reader())
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect())
    }
}
