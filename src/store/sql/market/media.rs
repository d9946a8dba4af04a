//! Uploaded images: their rows (the files are in store::media).

use super::*;

impl SqlStore {
    pub async fn insert_media(&self, m: &NewMedia<'_>, now: i64) -> Result<i64, StoreError> {
        let mut conn = self.writer().acquire().await?;
        sqlx::query(
            "INSERT INTO media (owner_id, content_type, bytes, width, height, original_key, thumb_key, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(m.owner.get())
        .bind(m.content_type)
        .bind(m.bytes)
        .bind(m.width)
        .bind(m.height)
        .bind(m.original_key)
        .bind(m.thumb_key)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        last_insert_id(&mut conn, self.dialect()).await
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
