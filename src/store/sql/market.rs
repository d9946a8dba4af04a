//! Marketplace data: media, listings and their images, feed queries,
//! favourites, blocks, reports, reservations and reviews.

use std::collections::HashMap;

use sqlx::Row as _;

use super::{inserted, last_insert_id, retrying, SqlStore};
use crate::domain::listing::{Cursor, ListingStatus, Sort};
use crate::store::StoreError;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MediaRecord {
    pub id: i64,
    pub owner_id: i64,
    pub content_type: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub original_key: String,
    pub thumb_key: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ListingRecord {
    pub id: i64,
    pub seller_id: i64,
    pub title: String,
    pub description: String,
    pub price: i64,
    pub category: String,
    pub status: ListingStatus,
    pub buyer_id: Option<i64>,
    pub view_count: i64,
    pub favourite_count: i64,
    pub chat_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub sold_at: Option<i64>,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRecord {
    pub id: i64,
    pub listing_id: i64,
    pub buyer_id: i64,
    pub until: Option<i64>,
    pub status: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct ReportRecord {
    pub id: i64,
    pub reporter_id: i64,
    pub target_kind: String,
    pub target_id: i64,
    pub room_id: Option<i64>,
    pub reason: String,
    pub created_at: i64,
}

/// A feed request, already validated.
#[derive(Debug, Clone)]
pub struct FeedQuery {
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Lower-cased substring.
    pub q: Option<String>,
    pub sort: Sort,
    /// `None`: selling and reserved (the default feed).
    pub status: Option<ListingStatus>,
    pub after: Option<Cursor>,
    pub limit: i64,
    /// Listings of users this viewer blocked are left out.
    pub viewer: Option<i64>,
    pub seller: Option<i64>,
}

/// Aggregates of the reviews a user received.
#[derive(Debug, Clone, Default)]
pub struct ReviewSummary {
    pub good: i64,
    pub bad: i64,
    pub tags: HashMap<String, i64>,
}

/// Outcome of inserting a review.
#[derive(Debug, PartialEq, Eq)]
pub enum ReviewInsert {
    Added,
    AlreadyReviewed,
}

const LISTING_COLUMNS: &str = "l.id, l.seller_id, l.title, l.description, l.price, l.category, l.status, l.buyer_id, \
     l.view_count, l.favourite_count, l.chat_count, l.created_at, l.updated_at, l.sold_at, l.deleted_at";
const MEDIA_COLUMNS: &str =
    "m.id, m.owner_id, m.content_type, m.bytes, m.width, m.height, m.original_key, m.thumb_key, m.created_at";

fn listing(row: &sqlx::any::AnyRow) -> Result<ListingRecord, StoreError> {
    let id: i64 = row.try_get(0)?;
    let status: String = row.try_get(6)?;
    let deleted_at: Option<i64> = row.try_get(14)?;
    Ok(ListingRecord {
        id,
        seller_id: row.try_get(1)?,
        title: row.try_get(2)?,
        description: row.try_get(3)?,
        price: row.try_get(4)?,
        category: row.try_get(5)?,
        status: ListingStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("listing {id}: bad status {status:?}")))?,
        buyer_id: row.try_get(7)?,
        view_count: row.try_get(8)?,
        favourite_count: row.try_get(9)?,
        chat_count: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
        sold_at: row.try_get(13)?,
        deleted: deleted_at.is_some(),
    })
}

fn media(row: &sqlx::any::AnyRow) -> Result<MediaRecord, StoreError> {
    Ok(MediaRecord {
        id: row.try_get(0)?,
        owner_id: row.try_get(1)?,
        content_type: row.try_get(2)?,
        bytes: row.try_get(3)?,
        width: row.try_get(4)?,
        height: row.try_get(5)?,
        original_key: row.try_get(6)?,
        thumb_key: row.try_get(7)?,
        created_at: row.try_get(8)?,
    })
}

type ReservationRow = (i64, i64, i64, Option<i64>, String, i64);
type ReportRow = (i64, i64, String, i64, Option<i64>, String, i64);

fn reservation(r: ReservationRow) -> ReservationRecord {
    ReservationRecord {
        id: r.0,
        listing_id: r.1,
        buyer_id: r.2,
        until: r.3,
        status: r.4,
        created_at: r.5,
    }
}

const RESERVATION_COLUMNS: &str = "id, listing_id, buyer_id, until, status, created_at";

/// `?, ?, ...` for an IN list.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

async fn insert_images(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    listing_id: i64,
    images: &[i64],
) -> Result<(), StoreError> {
    for (pos, media_id) in images.iter().enumerate() {
        sqlx::query("INSERT INTO listing_images (listing_id, position, media_id) VALUES (?, ?, ?)")
            .bind(listing_id)
            .bind(pos as i64)
            .bind(*media_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl SqlStore {
    // ------------------------------------------------------------- media

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_media(
        &self,
        owner: i64,
        content_type: &str,
        bytes: i64,
        width: i64,
        height: i64,
        original_key: &str,
        thumb_key: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut conn = self.writer().acquire().await?;
        sqlx::query(
            "INSERT INTO media (owner_id, content_type, bytes, width, height, original_key, thumb_key, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(owner)
        .bind(content_type)
        .bind(bytes)
        .bind(width)
        .bind(height)
        .bind(original_key)
        .bind(thumb_key)
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

    // ---------------------------------------------------------- listings

    #[allow(clippy::too_many_arguments)]
    pub async fn create_listing(
        &self,
        seller: i64,
        title: &str,
        description: &str,
        price: i64,
        category: &str,
        images: &[i64],
        now: i64,
    ) -> Result<i64, StoreError> {
        retrying("create_listing", || {
            self.create_listing_once(seller, title, description, price, category, images, now)
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_listing_once(
        &self,
        seller: i64,
        title: &str,
        description: &str,
        price: i64,
        category: &str,
        images: &[i64],
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO listings (seller_id, title, description, price, category, status, search_text, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'selling', ?, ?, ?)",
        )
        .bind(seller)
        .bind(title)
        .bind(description)
        .bind(price)
        .bind(category)
        .bind(crate::domain::listing::search_text(title, description))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id = last_insert_id(&mut tx, self.dialect()).await?;
        insert_images(&mut tx, id, images).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Write the editable fields (all given, already merged) and, if
    /// `images` is given, replace the images.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_listing(
        &self,
        id: i64,
        title: &str,
        description: &str,
        price: i64,
        category: &str,
        images: Option<&[i64]>,
        now: i64,
    ) -> Result<(), StoreError> {
        retrying("update_listing", || {
            self.update_listing_once(id, title, description, price, category, images, now)
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_listing_once(
        &self,
        id: i64,
        title: &str,
        description: &str,
        price: i64,
        category: &str,
        images: Option<&[i64]>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "UPDATE listings SET title = ?, description = ?, price = ?, category = ?, search_text = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(title)
        .bind(description)
        .bind(price)
        .bind(category)
        .bind(crate::domain::listing::search_text(title, description))
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
        tx.commit().await?;
        Ok(())
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
        retrying("delete_listing", || self.delete_listing_once(id, now)).await
    }

    async fn delete_listing_once(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
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
        enum V {
            I(i64),
            T(String),
        }
        let mut binds: Vec<V> = Vec::new();
        match f.status {
            Some(s) => {
                sql.push_str(" AND l.status = ?");
                binds.push(V::T(s.as_str().to_string()));
            }
            None => sql.push_str(" AND l.status IN ('selling', 'reserved')"),
        }
        if let Some(c) = &f.category {
            sql.push_str(" AND l.category = ?");
            binds.push(V::T(c.clone()));
        }
        if let Some(p) = f.min_price {
            sql.push_str(" AND l.price >= ?");
            binds.push(V::I(p));
        }
        if let Some(p) = f.max_price {
            sql.push_str(" AND l.price <= ?");
            binds.push(V::I(p));
        }
        if let Some(seller) = f.seller {
            sql.push_str(" AND l.seller_id = ?");
            binds.push(V::I(seller));
        }
        if let Some(q) = &f.q {
            let escaped: String = q
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '!' => vec!['!', c],
                    c => vec![c],
                })
                .collect();
            sql.push_str(" AND l.search_text LIKE ? ESCAPE '!'");
            binds.push(V::T(format!("%{escaped}%")));
        }
        if let Some(viewer) = f.viewer {
            sql.push_str(" AND l.seller_id NOT IN (SELECT b.blocked_id FROM blocks b WHERE b.blocker_id = ?)");
            binds.push(V::I(viewer));
        }
        if let Some(c) = f.after {
            match f.sort {
                Sort::Recent => {
                    sql.push_str(" AND l.id < ?");
                    binds.push(V::I(c.id));
                }
                Sort::PriceAsc => {
                    sql.push_str(" AND (l.price > ? OR (l.price = ? AND l.id > ?))");
                    binds.extend([V::I(c.price), V::I(c.price), V::I(c.id)]);
                }
                Sort::PriceDesc => {
                    sql.push_str(" AND (l.price < ? OR (l.price = ? AND l.id < ?))");
                    binds.extend([V::I(c.price), V::I(c.price), V::I(c.id)]);
                }
            }
        }
        sql.push_str(match f.sort {
            Sort::Recent => " ORDER BY l.id DESC",
            Sort::PriceAsc => " ORDER BY l.price ASC, l.id ASC",
            Sort::PriceDesc => " ORDER BY l.price DESC, l.id DESC",
        });
        sql.push_str(" LIMIT ?");
        binds.push(V::I(f.limit));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                V::I(i) => q.bind(i),
                V::T(t) => q.bind(t),
            };
        }
        let rows = q.fetch_all(self.reader()).await?;
        rows.iter().map(listing).collect()
    }

    // -------------------------------------------------------- favourites

    /// Add a favourite; false if it was there already.
    pub async fn add_favourite(
        &self,
        user: i64,
        listing_id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        retrying("add_favourite", || {
            self.add_favourite_once(user, listing_id, now)
        })
        .await
    }

    async fn add_favourite_once(
        &self,
        user: i64,
        listing_id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let added = sqlx::query(
            "INSERT INTO favourites (user_id, listing_id, created_at) VALUES (?, ?, ?)",
        )
        .bind(user)
        .bind(listing_id)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if !inserted(added)? {
            return Ok(false);
        }
        sqlx::query("UPDATE listings SET favourite_count = favourite_count + 1 WHERE id = ?")
            .bind(listing_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn remove_favourite(&self, user: i64, listing_id: i64) -> Result<bool, StoreError> {
        retrying("remove_favourite", || {
            self.remove_favourite_once(user, listing_id)
        })
        .await
    }

    async fn remove_favourite_once(&self, user: i64, listing_id: i64) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let r = sqlx::query("DELETE FROM favourites WHERE user_id = ? AND listing_id = ?")
            .bind(user)
            .bind(listing_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE listings SET favourite_count = favourite_count - 1 WHERE id = ?")
            .bind(listing_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn is_favourite(&self, user: i64, listing_id: i64) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT listing_id FROM favourites WHERE user_id = ? AND listing_id = ?",
        )
        .bind(user)
        .bind(listing_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.is_some())
    }

    /// A user's favourite listings (not deleted), most recently added first.
    pub async fn favourites(&self, user: i64) -> Result<Vec<ListingRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LISTING_COLUMNS} FROM favourites f JOIN listings l ON l.id = f.listing_id \
             WHERE f.user_id = ? AND l.deleted_at IS NULL ORDER BY f.created_at DESC, l.id DESC LIMIT 500"
        ))
        .bind(user)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(listing).collect()
    }

    // ------------------------------------------------------------ blocks

    pub async fn block(&self, blocker: i64, blocked: i64, now: i64) -> Result<(), StoreError> {
        let r =
            sqlx::query("INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)")
                .bind(blocker)
                .bind(blocked)
                .bind(now)
                .execute(self.writer())
                .await;
        inserted(r).map(|_| ())
    }

    pub async fn unblock(&self, blocker: i64, blocked: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?")
            .bind(blocker)
            .bind(blocked)
            .execute(self.writer())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// True if either user blocked the other.
    pub async fn blocked_between(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT blocker_id FROM blocks WHERE (blocker_id = ? AND blocked_id = ?) OR (blocker_id = ? AND blocked_id = ?) LIMIT 1",
        )
        .bind(a)
        .bind(b)
        .bind(b)
        .bind(a)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.is_some())
    }

    pub async fn blocked_by(&self, user: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT blocked_id FROM blocks WHERE blocker_id = ? ORDER BY created_at",
        )
        .bind(user)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Direct rooms (plain and per listing) between two users.
    pub async fn direct_rooms_between(&self, a: i64, b: i64) -> Result<Vec<i64>, StoreError> {
        let key = crate::domain::chat::direct_key(a, b);
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM rooms WHERE direct_key = ? OR direct_key LIKE ?")
                .bind(&key)
                .bind(format!("{key}:%"))
                .fetch_all(self.reader())
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    // ----------------------------------------------------------- reports

    pub async fn insert_report(
        &self,
        reporter: i64,
        kind: &str,
        target: i64,
        room: Option<i64>,
        reason: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut conn = self.writer().acquire().await?;
        sqlx::query(
            "INSERT INTO reports (reporter_id, target_kind, target_id, room_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(reporter)
        .bind(kind)
        .bind(target)
        .bind(room)
        .bind(reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        last_insert_id(&mut conn, self.dialect()).await
    }

    pub async fn reports(
        &self,
        before_id: i64,
        limit: i64,
    ) -> Result<Vec<ReportRecord>, StoreError> {
        let rows: Vec<ReportRow> = sqlx::query_as(
            "SELECT id, reporter_id, target_kind, target_id, room_id, reason, created_at FROM reports \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ReportRecord {
                id: r.0,
                reporter_id: r.1,
                target_kind: r.2,
                target_id: r.3,
                room_id: r.4,
                reason: r.5,
                created_at: r.6,
            })
            .collect())
    }

    // ------------------------------------------------------ listing chat

    /// Buyers who chatted about a listing: (room, buyer, last activity).
    pub async fn listing_chats(
        &self,
        listing_id: i64,
        seller: i64,
    ) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT r.id, m.user_id, r.last_activity_at FROM rooms r JOIN room_members m ON m.room_id = r.id \
             WHERE r.listing_id = ? AND m.user_id <> ? ORDER BY r.last_activity_at DESC",
        )
        .bind(listing_id)
        .bind(seller)
        .fetch_all(self.reader())
        .await?;
        Ok(rows)
    }

    /// Rooms about a listing.
    pub async fn listing_room_ids(&self, listing_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM rooms WHERE listing_id = ?")
            .bind(listing_id)
            .fetch_all(self.reader())
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The room about `listing_id` between the seller and `buyer`, if any.
    pub async fn listing_room_of(
        &self,
        listing_id: i64,
        buyer: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT r.id FROM rooms r JOIN room_members m ON m.room_id = r.id WHERE r.listing_id = ? AND m.user_id = ?",
        )
        .bind(listing_id)
        .bind(buyer)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(|r| r.0))
    }

    // ------------------------------------------------------ reservations

    /// Reserve `listing` for `buyer`, replacing an active reservation.
    /// Returns (new id, the replaced reservation).
    pub async fn reserve(
        &self,
        listing_id: i64,
        buyer: i64,
        until: Option<i64>,
        now: i64,
    ) -> Result<(i64, Option<ReservationRecord>), StoreError> {
        retrying("reserve", || {
            self.reserve_once(listing_id, buyer, until, now)
        })
        .await
    }

    /// Lock a listing's row for the rest of the transaction (MySQL):
    /// reservation and sale transactions take it first, so they serialise
    /// per listing and lock in one order.
    async fn lock_listing(
        &self,
        conn: &mut sqlx::AnyConnection,
        listing_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "SELECT id FROM listings WHERE id = ?{}",
            self.for_update()
        ))
        .bind(listing_id)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(())
    }

    async fn reserve_once(
        &self,
        listing_id: i64,
        buyer: i64,
        until: Option<i64>,
        now: i64,
    ) -> Result<(i64, Option<ReservationRecord>), StoreError> {
        let mut tx = self.writer().begin().await?;
        self.lock_listing(&mut tx, listing_id).await?;
        let old: Option<ReservationRow> = sqlx::query_as(&format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE active_listing_id = ?"
        ))
        .bind(listing_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(old) = &old {
            sqlx::query("UPDATE reservations SET status = 'replaced', active_listing_id = NULL, ended_at = ? WHERE id = ?")
                .bind(now)
                .bind(old.0)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO reservations (listing_id, buyer_id, active_listing_id, until, status, created_at) \
             VALUES (?, ?, ?, ?, 'active', ?)",
        )
        .bind(listing_id)
        .bind(buyer)
        .bind(listing_id)
        .bind(until)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id = last_insert_id(&mut tx, self.dialect()).await?;
        sqlx::query("UPDATE listings SET status = 'reserved', updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(listing_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((id, old.map(reservation)))
    }

    pub async fn active_reservation(
        &self,
        listing_id: i64,
    ) -> Result<Option<ReservationRecord>, StoreError> {
        let row: Option<ReservationRow> = sqlx::query_as(&format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE active_listing_id = ?"
        ))
        .bind(listing_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(reservation))
    }

    pub async fn reservation(&self, id: i64) -> Result<Option<ReservationRecord>, StoreError> {
        let row: Option<ReservationRow> = sqlx::query_as(&format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(reservation))
    }

    /// End reservation `id` if it is still active, with `status`
    /// (`cancelled` or `expired`), and put its listing back on sale.
    /// Returns false if it had already ended: this conditional update is
    /// what makes a timer fire at most once, and never after a cancel.
    pub async fn end_reservation(
        &self,
        id: i64,
        status: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        retrying("end_reservation", || {
            self.end_reservation_once(id, status, now)
        })
        .await
    }

    async fn end_reservation_once(
        &self,
        id: i64,
        status: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT listing_id FROM reservations WHERE id = ? AND status = 'active'",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((listing_id,)) = row else {
            return Ok(false);
        };
        self.lock_listing(&mut tx, listing_id).await?;
        // The conditional update decides: of several nodes ending the same
        // reservation (timers fire on every node), exactly one changes it.
        let ended = sqlx::query("UPDATE reservations SET status = ?, active_listing_id = NULL, ended_at = ? WHERE id = ? AND status = 'active'")
            .bind(status)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if ended.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE listings SET status = 'selling', updated_at = ? WHERE id = ? AND status = 'reserved'")
            .bind(now)
            .bind(listing_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every active reservation with an expiry (to rebuild timers).
    pub async fn timed_reservations(&self) -> Result<Vec<ReservationRecord>, StoreError> {
        let rows: Vec<ReservationRow> = sqlx::query_as(&format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE status = 'active' AND until IS NOT NULL"
        ))
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(reservation).collect())
    }

    /// Mark sold (to `buyer` if known); completes an active reservation.
    /// False if the listing was not selling or reserved.
    pub async fn mark_sold(
        &self,
        listing_id: i64,
        buyer: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        retrying("mark_sold", || self.mark_sold_once(listing_id, buyer, now)).await
    }

    async fn mark_sold_once(
        &self,
        listing_id: i64,
        buyer: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let r = sqlx::query(
            "UPDATE listings SET status = 'sold', buyer_id = ?, sold_at = ?, updated_at = ? \
             WHERE id = ? AND status IN ('selling', 'reserved') AND deleted_at IS NULL",
        )
        .bind(buyer)
        .bind(now)
        .bind(now)
        .bind(listing_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE reservations SET status = 'completed', active_listing_id = NULL, ended_at = ? WHERE active_listing_id = ?",
        )
        .bind(now)
        .bind(listing_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    // ----------------------------------------------------------- reviews

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_review(
        &self,
        listing_id: i64,
        reviewer: i64,
        reviewee: i64,
        rating: &str,
        tags: &[String],
        body: &str,
        now: i64,
    ) -> Result<ReviewInsert, StoreError> {
        let r = sqlx::query(
            "INSERT INTO reviews (listing_id, reviewer_id, reviewee_id, rating, tags, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(listing_id)
        .bind(reviewer)
        .bind(reviewee)
        .bind(rating)
        .bind(tags.join(","))
        .bind(body)
        .bind(now)
        .execute(self.writer())
        .await;
        Ok(if inserted(r)? {
            ReviewInsert::Added
        } else {
            ReviewInsert::AlreadyReviewed
        })
    }

    pub async fn review_summary(&self, user: i64) -> Result<ReviewSummary, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT rating, tags FROM reviews WHERE reviewee_id = ?")
                .bind(user)
                .fetch_all(self.reader())
                .await?;
        let mut s = ReviewSummary::default();
        for (rating, tags) in rows {
            if rating == "good" {
                s.good += 1;
            } else {
                s.bad += 1;
            }
            for t in tags.split(',').filter(|t| !t.is_empty()) {
                *s.tags.entry(t.to_string()).or_insert(0) += 1;
            }
        }
        Ok(s)
    }

    pub async fn reviews_of_listing(
        &self,
        listing_id: i64,
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT reviewer_id, reviewee_id, rating FROM reviews WHERE listing_id = ?",
        )
        .bind(listing_id)
        .fetch_all(self.reader())
        .await?;
        Ok(rows)
    }
}
