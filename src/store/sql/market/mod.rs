//! Marketplace data: media, listings and their images, feed queries,
//! favourites, blocks, reports, reservations and reviews.

mod blocks;
mod chats;
mod favourites;
mod listings;
mod media;
mod neighbourhoods;
mod reports;
mod reservations;
mod reviews;

pub use neighbourhoods::{NeighbourhoodRecord, Verified};

use std::collections::HashMap;

use sqlx::Row as _;

use super::outbox::{enqueue_all, JobsFor, NewJob};
use super::{inserted, last_insert_id, retrying};
use crate::domain::ids::{ListingId, UserId};
use crate::domain::listing::{Cursor, ListingStatus, Sort};
use crate::store::StoreError;

/// A listing's editable fields, already checked (`domain::listing`).
#[derive(Debug, Clone, Copy)]
pub struct ListingFields<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub price: i64,
    pub category: &'a str,
}

/// Where a new listing is posted: its region, if the seller has one.
pub type PostedIn<'a> = Option<&'a str>;

/// A review as written after a sale.
#[derive(Debug, Clone, Copy)]
pub struct NewReview<'a> {
    pub listing: ListingId,
    pub reviewer: UserId,
    pub reviewee: UserId,
    /// `good` or `bad` (checked by the service).
    pub rating: &'a str,
    pub tags: &'a [String],
    pub body: &'a str,
}

/// An uploaded image that passed the checks, with its stored files.
#[derive(Debug, Clone, Copy)]
pub struct NewMedia<'a> {
    pub owner: UserId,
    pub content_type: &'a str,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub original_key: &'a str,
    pub thumb_key: &'a str,
}

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
    /// The region (읍/면/동 code) it was posted in, if the seller had one.
    pub region_code: Option<String>,
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
    /// Only listings of these regions (a range around a neighbourhood).
    pub regions: Option<Vec<String>>,
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
     l.view_count, l.favourite_count, l.chat_count, l.created_at, l.updated_at, l.sold_at, l.deleted_at, \
     l.region_code";
pub(in crate::store::sql) const MEDIA_COLUMNS: &str =
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
        region_code: row.try_get(15)?,
    })
}

pub(in crate::store::sql) fn media(row: &sqlx::any::AnyRow) -> Result<MediaRecord, StoreError> {
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
