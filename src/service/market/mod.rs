//! The used-goods marketplace: listings, feed, favourites, blocks, reports,
//! chats per listing, timed reservations, sales and reviews.
//!
//! Listing events (price change, reservation, expiry, sale) are posted as
//! `system` messages into every chat about the listing and published on the
//! bus as alarm events for the notification pipeline.

mod blocks;
mod chats;
mod favourites;
mod neighbourhoods;
mod reports;
mod reservations;
mod reviews;

pub use neighbourhoods::{
    active_area, takes_in, verified, Neighbourhood, NeighbourhoodChange, MAX_NEIGHBOURHOODS,
};
pub use reservations::{hold_jobs, sold_jobs};

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use serde_json::json;

use crate::actors::timers::{Cancel, Schedule, Timers};
use crate::actors::ChatHub;
use crate::bus::{Bus, Event, TOPIC_ALARMS};
use crate::domain::account::{FieldErrors, Status};
use crate::domain::chat::{self, RoomKind};
use crate::domain::events::Alarm;
use crate::domain::ids::{ListingId, UserId};
use crate::domain::listing::{self, Cursor, ListingEvent, ListingStatus, Sort, Transition};
use crate::domain::now_ms;
use crate::error::{area_error, Code, Refuse};
use crate::service::events::publish_job;
use crate::store::cache::Cache;
use crate::store::sql::{
    FeedQuery, ListingFields, ListingRecord, MediaRecord, NewJob, NewReview, ReportRecord,
    ReviewInsert, ReviewSummary, SqlStore,
};
use crate::store::{MessageStore, RoomRecord, UserRecord};

area_error! {
    /// What the marketplace (listings, feed, favourites, blocks, reservations, reviews, reports) answers instead of a result.
    pub enum MarketError {
        own {}
        from {}
    }
}

const FEED_CACHE: &str = "feed";
const FEED_CACHE_TTL: Duration = Duration::from_secs(30);
/// Listing pages (what every viewer sees alike), cleared on any listing
/// change and on reviews; a seller's new nickname shows within the TTL.
const LISTING_CACHE: &str = "listing";
const LISTING_CACHE_TTL: Duration = Duration::from_secs(30);

/// The seller as a listing page shows them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SellerCard {
    pub id: i64,
    pub nickname: String,
    pub withdrawn: bool,
}

/// The viewer-independent part of a listing page (cached).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ListingPage {
    listing: ListingRecord,
    seller: SellerCard,
    manner: f64,
    images: Vec<MediaRecord>,
    /// Active reservation: (buyer, until).
    reservation: Option<(i64, Option<i64>)>,
}

#[derive(Clone)]
pub struct Market {
    sql: Arc<SqlStore>,
    messages: Arc<dyn MessageStore>,
    hub: ChatHub,
    bus: Arc<dyn Bus>,
    cache: Arc<dyn Cache>,
    timers: Addr<Timers>,
    /// How far ahead a reservation's `until` may be (`reservation_max_secs`).
    reservation_max: std::time::Duration,
    /// Listings one user may post per hour (`listings_per_hour`).
    listings_per_hour: u32,
    limiter: Arc<dyn crate::store::RateLimiter>,
    /// How long a neighbourhood stays verified (`neighbourhood_verify_days`).
    neighbourhood_verify: Duration,
}

/// Fields of a new listing or of a change (all optional on change).
#[derive(Debug, Default, Clone)]
pub struct ListingInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub price: Option<i64>,
    pub category: Option<String>,
    pub images: Option<Vec<i64>>,
    /// Only `hidden` and `selling` (to unhide) may be set directly.
    pub status: Option<ListingStatus>,
}

/// A listing with what its page shows.
#[derive(Debug, Clone)]
pub struct ListingDetail {
    pub listing: ListingRecord,
    pub seller: SellerCard,
    pub seller_manner: f64,
    pub images: Vec<MediaRecord>,
    pub is_favourite: bool,
    pub reservation_until: Option<i64>,
    pub reserved_for: Option<i64>,
}

/// One feed page.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FeedPage {
    pub items: Vec<FeedItem>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FeedItem {
    pub id: i64,
    pub seller_id: i64,
    pub title: String,
    pub price: i64,
    pub category: String,
    pub status: ListingStatus,
    pub thumbnail_url: Option<String>,
    pub favourite_count: i64,
    pub chat_count: i64,
    pub created_at: i64,
    /// The region it was posted in (e.g. `역삼동`), if any.
    pub region: Option<String>,
}

/// Query parameters of the feed, as given.
#[derive(Debug, Clone, Default)]
pub struct FeedRequest {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub q: Option<String>,
    pub sort: Option<Sort>,
    pub status: Option<ListingStatus>,
    pub seller: Option<i64>,
    /// Listings around this region (a visitor's choice); signed-in users
    /// with a neighbourhood get their active one's by default.
    pub region: Option<String>,
    /// `dong`, `near` (default), `normal`, `far`.
    pub range: Option<String>,
}

/// A listing's region as people read it (`역삼동`).
pub fn region_name(code: Option<&str>) -> Option<String> {
    code.and_then(|c| crate::domain::region::Regions::get().by_code(c))
        .map(|r| r.name.clone())
}

pub fn media_url(key: &str) -> String {
    format!("/media/{key}")
}

fn not_owner() -> MarketError {
    MarketError::new(Code::NotOwner, "only the seller may do this")
}

fn invalid_state(why: impl Into<String>) -> MarketError {
    MarketError::new(Code::InvalidState, why)
}

/// The marketplace's limits.
pub struct MarketPolicy {
    /// How far ahead a reservation's `until` may be.
    pub reservation_max: std::time::Duration,
    /// Listings one user may post per hour.
    pub listings_per_hour: u32,
    /// Where the per-user counts live (in-process, or Redis for all nodes).
    pub limiter: Arc<dyn crate::store::RateLimiter>,
    /// How long a neighbourhood stays verified.
    pub neighbourhood_verify: Duration,
}

impl Market {
    pub fn new(
        sql: Arc<SqlStore>,
        messages: Arc<dyn MessageStore>,
        hub: ChatHub,
        bus: Arc<dyn Bus>,
        cache: Arc<dyn Cache>,
        timers: Addr<Timers>,
        policy: MarketPolicy,
    ) -> Market {
        Market {
            sql,
            messages,
            hub,
            bus,
            cache,
            timers,
            reservation_max: policy.reservation_max,
            listings_per_hour: policy.listings_per_hour,
            limiter: policy.limiter,
            neighbourhood_verify: policy.neighbourhood_verify,
        }
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// A listing that exists and is not deleted.
    async fn live_listing(&self, id: i64) -> Result<ListingRecord, MarketError> {
        match self.sql.market().listing(id).await? {
            Some(l) if !l.deleted => Ok(l),
            _ => Err(MarketError::not_found("listing")),
        }
    }

    async fn owned_listing(&self, user: i64, id: i64) -> Result<ListingRecord, MarketError> {
        let l = self.live_listing(id).await?;
        if l.seller_id != user {
            return Err(not_owner());
        }
        Ok(l)
    }

    async fn active_user(&self, id: i64) -> Result<UserRecord, MarketError> {
        match self.sql.accounts().user_by_id(id).await? {
            Some(u) if u.status == Status::Active => Ok(u),
            _ => Err(MarketError::not_found("user")),
        }
    }

    async fn invalidate_feed(&self) {
        self.cache.clear(LISTING_CACHE).await;
        self.cache.clear(FEED_CACHE).await;
    }
}

/// The outbox job that publishes an alarm event (write it with the change).
fn alarm_job(kind: Alarm, key: i64, data: serde_json::Value) -> NewJob {
    publish_job(TOPIC_ALARMS, &Event::alarm(kind, key, data))
}

/// The job publishing a listing event on the bus (its change's transaction
/// writes it: published if and only if the change committed).
fn event_jobs(event: &ListingEvent) -> Vec<NewJob> {
    event
        .bus_kind()
        .map(|kind| alarm_job(kind, event.listing(), event.bus_data()))
        .into_iter()
        .collect()
}

impl Market {
    /// Tell a listing's chats what happened (after the change committed;
    /// its bus event went with the change, see `event_jobs`).
    async fn emit(&self, listing: &ListingRecord, event: ListingEvent) -> Result<(), MarketError> {
        self.announce(listing, event.notice(), event.chat_payload())
            .await
    }

    /// Post a system message into every chat about a listing.
    async fn announce(
        &self,
        listing: &ListingRecord,
        body: String,
        payload: serde_json::Value,
    ) -> Result<(), MarketError> {
        let rooms = self.sql.market().listing_room_ids(listing.id).await?;
        // Bounded wait until every notice is in (see ChatHub::post_system).
        self.hub
            .post_system_all(&rooms, listing.seller_id, body, payload)
            .await;
        Ok(())
    }

    /// Images must exist, belong to the seller and not be used by another
    /// listing; at most ten, no repeats.
    async fn check_images(
        &self,
        seller: i64,
        images: &[i64],
        listing: Option<i64>,
        errors: &mut FieldErrors,
    ) -> Result<(), MarketError> {
        if images.len() > listing::MAX_IMAGES {
            errors.insert("images", format!("at most {} images", listing::MAX_IMAGES));
            return Ok(());
        }
        let mut unique = images.to_vec();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != images.len() {
            errors.insert("images", "an image is listed twice".into());
            return Ok(());
        }
        let found = self.sql.media().media(images).await?;
        if found.len() != images.len() || found.iter().any(|m| m.owner_id != seller) {
            errors.insert(
                "images",
                "unknown image id (upload it first with POST /api/media)".into(),
            );
            return Ok(());
        }
        if !self
            .sql
            .media()
            .media_in_use(images, listing)
            .await?
            .is_empty()
        {
            errors.insert(
                "images",
                "an image already belongs to another listing".into(),
            );
        }
        Ok(())
    }

    pub async fn create_listing(
        &self,
        seller: UserId,
        input: ListingInput,
    ) -> Result<ListingDetail, MarketError> {
        let seller = seller.get();
        let mut errors = FieldErrors::new();
        for (field, present) in [
            ("title", input.title.is_some()),
            ("price", input.price.is_some()),
            ("category", input.category.is_some()),
        ] {
            if !present {
                errors.insert(field, "is required".into());
            }
        }
        let (title, description) = listing::check_fields(
            input.title.as_deref(),
            Some(input.description.as_deref().unwrap_or("")),
            input.price,
            input.category.as_deref(),
            &mut errors,
        );
        if input.status.is_some() {
            errors.insert("status", "a new listing is always `selling`".into());
        }
        let images = input.images.unwrap_or_default();
        self.check_images(seller, &images, None, &mut errors)
            .await?;
        MarketError::check_fields(errors)?;
        let region = self.posting_region(UserId(seller)).await?;
        // Counted once the listing is valid (a rejected form costs nothing),
        // before it is written: one atomic increment, so parallel posts
        // cannot pass the limit together.
        let w = self
            .limiter
            .hit(&format!("listing:create:{seller}"), 3600)
            .await?;
        if w.count > self.listings_per_hour {
            return Err(
                MarketError::rate_limited(w.resets_in_secs.max(1)).with_message(format!(
                    "at most {} new listings an hour; try again later",
                    self.listings_per_hour
                )),
            );
        }
        let (Some(title), Some(description), Some(price), Some(category)) =
            (title, description, input.price, input.category)
        else {
            return Err(MarketError::internal("validated listing fields missing"));
        };
        let fields = ListingFields {
            title: &title,
            description: &description,
            price,
            category: &category,
        };
        // Keyword alerts listen for new listings.
        let created = |id: i64| {
            vec![alarm_job(
                Alarm::ListingCreated,
                id,
                json!({"listing": id, "seller": seller, "title": title, "price": price}),
            )]
        };
        let id = self
            .sql
            .market()
            .create_listing(
                UserId(seller),
                &fields,
                region.map(|r| r.code.as_str()),
                &images,
                &created,
                now_ms(),
            )
            .await?
            .get();
        self.invalidate_feed().await;
        self.detail_of(Some(seller), id, false).await
    }

    pub async fn update_listing(
        &self,
        user: UserId,
        id: ListingId,
        input: ListingInput,
    ) -> Result<ListingDetail, MarketError> {
        let user = user.get();
        let id = id.get();
        let current = self.owned_listing(user, id).await?;
        let mut errors = FieldErrors::new();
        let (title, description) = listing::check_fields(
            input.title.as_deref(),
            input.description.as_deref(),
            input.price,
            input.category.as_deref(),
            &mut errors,
        );
        if let Some(images) = &input.images {
            self.check_images(user, images, Some(id), &mut errors)
                .await?;
        }
        let target = match input.status {
            None => None,
            Some(ListingStatus::Hidden) => Some((Transition::Hide, ListingStatus::Hidden)),
            Some(ListingStatus::Selling) => Some((Transition::Unhide, ListingStatus::Selling)),
            Some(_) => {
                errors.insert(
                    "status",
                    "only `hidden` or `selling` (to unhide); reserve and sell have their own endpoints".into(),
                );
                None
            }
        };
        MarketError::check_fields(errors)?;
        if let Some((t, to)) = target {
            if current.status != to {
                if listing::transition(current.status, t) != Some(to) {
                    return Err(invalid_state(format!(
                        "a {} listing cannot become {}",
                        current.status.as_str(),
                        to.as_str()
                    )));
                }
                if current.status == ListingStatus::Reserved {
                    self.end_active_reservation(&current).await?;
                }
                if !self
                    .sql
                    .market()
                    .set_listing_status(id, current.status, to, now_ms())
                    .await?
                {
                    return Err(MarketError::new(
                        Code::Conflict,
                        "the listing changed meanwhile; retry",
                    ));
                }
            }
        }
        let new_price = input.price.unwrap_or(current.price);
        let fields = ListingFields {
            title: title.as_deref().unwrap_or(&current.title),
            description: description.as_deref().unwrap_or(&current.description),
            price: new_price,
            category: input.category.as_deref().unwrap_or(&current.category),
        };
        let repriced = (new_price != current.price).then_some(ListingEvent::PriceChanged {
            listing: id,
            old_price: current.price,
            new_price,
        });
        let jobs = repriced.as_ref().map(event_jobs).unwrap_or_default();
        self.sql
            .market()
            .update_listing(
                ListingId(id),
                &fields,
                input.images.as_deref(),
                &jobs,
                now_ms(),
            )
            .await?;
        if let Some(event) = repriced {
            self.emit(&current, event).await?;
        }
        self.invalidate_feed().await;
        self.detail_of(Some(user), id, false).await
    }

    pub async fn delete_listing(&self, user: UserId, id: ListingId) -> Result<(), MarketError> {
        let user = user.get();
        let id = id.get();
        let l = self.owned_listing(user, id).await?;
        if let Some(r) = self.sql.market().active_reservation(id).await? {
            self.timers.do_send(Cancel { id: r.id });
        }
        self.sql.market().delete_listing(l.id, now_ms()).await?;
        self.invalidate_feed().await;
        Ok(())
    }

    /// A listing's page. Hidden listings only for their seller; deleted ones
    /// for nobody. Views by others are counted when `count_view`.
    pub async fn detail(
        &self,
        viewer: Option<UserId>,
        id: ListingId,
        count_view: bool,
    ) -> Result<ListingDetail, MarketError> {
        self.detail_of(viewer.map(UserId::get), id.get(), count_view)
            .await
    }

    /// `detail` for callers inside the service, which hold plain ids.
    pub(super) async fn detail_of(
        &self,
        viewer: Option<i64>,
        id: i64,
        count_view: bool,
    ) -> Result<ListingDetail, MarketError> {
        // The seller always sees their own listing fresh (they act on its
        // state right after changing it); everyone else may get the cache.
        let mut page = self.listing_page(id, false).await?;
        if viewer == Some(page.listing.seller_id) {
            page = self.listing_page(id, true).await?;
        }
        let mut l = page.listing;
        let is_seller = viewer == Some(l.seller_id);
        if l.status == ListingStatus::Hidden && !is_seller {
            return Err(MarketError::not_found("listing"));
        }
        if count_view && !is_seller {
            self.sql.market().count_view(id).await?;
        }
        // Views change on every visit: never from the cache.
        l.view_count = self.sql.market().view_count(id).await?;
        let is_favourite = match viewer {
            Some(v) => self.sql.market().is_favourite(v, id).await?,
            None => false,
        };
        Ok(ListingDetail {
            seller_manner: page.manner,
            seller: page.seller,
            images: page.images,
            is_favourite,
            reservation_until: page.reservation.and_then(|(_, until)| until),
            reserved_for: page
                .reservation
                .filter(|_| is_seller)
                .map(|(buyer, _)| buyer),
            listing: l,
        })
    }

    /// What every viewer of a listing sees alike: from the cache (Redis
    /// with several nodes), else from the store (and then cached under the
    /// generation read before the queries, so a page computed while the
    /// listing changed is never served; see `store::cache`).
    async fn listing_page(&self, id: i64, fresh: bool) -> Result<ListingPage, MarketError> {
        let key = id.to_string();
        if !fresh {
            if let Some(hit) = self.cache.get(LISTING_CACHE, &key).await {
                if let Ok(page) = serde_json::from_str::<ListingPage>(&hit) {
                    return Ok(page);
                }
            }
        }
        let generation = self.cache.generation(LISTING_CACHE).await;
        let l = self.live_listing(id).await?;
        let seller = self
            .sql
            .accounts()
            .user_by_id(l.seller_id)
            .await?
            .ok_or_else(|| MarketError::internal("listing without seller"))?;
        let summary = self.sql.market().review_summary(l.seller_id).await?;
        let images = self.sql.media().listing_images(id).await?;
        let reservation = self.sql.market().active_reservation(id).await?;
        let page = ListingPage {
            listing: l,
            seller: SellerCard {
                id: seller.id,
                nickname: seller.nickname,
                withdrawn: seller.status == Status::Withdrawn,
            },
            manner: listing::manner_score(summary.good, summary.bad),
            images,
            reservation: reservation.map(|r| (r.buyer_id, r.until)),
        };
        if let Ok(text) = serde_json::to_string(&page) {
            self.cache
                .set(LISTING_CACHE, generation, &key, text, LISTING_CACHE_TTL)
                .await;
        }
        Ok(page)
    }

    /// The feed: keyset pages with an opaque cursor. The first page of a
    /// query is cached for viewers without blocks and dropped whenever any
    /// listing changes.
    pub async fn feed(
        &self,
        viewer: Option<UserId>,
        req: FeedRequest,
    ) -> Result<FeedPage, MarketError> {
        let viewer = viewer.map(UserId::get);
        let limit = req.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(MarketError::new(
                Code::InvalidParameter,
                "limit must be between 1 and 100",
            ));
        }
        let sort = req.sort.unwrap_or(Sort::Recent);
        let after = match &req.cursor {
            None => None,
            Some(c) => match Cursor::decode(c) {
                Some(c) if c.sort == sort => Some(c),
                _ => {
                    return Err(MarketError::new(
                        Code::InvalidParameter,
                        "bad cursor (or a cursor of another sort order)",
                    ))
                }
            },
        };
        if let Some(c) = &req.category {
            if !listing::CATEGORIES.contains(&c.as_str()) {
                return Err(MarketError::new(
                    Code::InvalidParameter,
                    format!("unknown category {c:?}"),
                ));
            }
        }
        if req.min_price.is_some_and(|p| p < 0) || req.max_price.is_some_and(|p| p < 0) {
            return Err(MarketError::new(
                Code::InvalidParameter,
                "prices are 0 or more",
            ));
        }
        if req.status == Some(ListingStatus::Hidden) {
            return Err(MarketError::new(
                Code::InvalidParameter,
                "hidden listings are not in the feed",
            ));
        }
        let q = req
            .q
            .as_deref()
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty());
        if q.as_ref().is_some_and(|q| q.chars().count() > 100) {
            return Err(MarketError::new(
                Code::InvalidParameter,
                "q is at most 100 characters",
            ));
        }
        let has_blocks = match viewer {
            Some(v) => !self.sql.market().blocked_by(v).await?.is_empty(),
            None => false,
        };
        let around = self
            .feed_area(
                viewer.map(UserId),
                req.region.as_deref(),
                req.range.as_deref(),
            )
            .await?;
        let cache_key = (after.is_none() && !has_blocks).then(|| {
            format!(
                "{limit}|{sort:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
                req.category,
                req.min_price,
                req.max_price,
                q,
                req.status,
                req.seller,
                around.map(|(r, range)| (&r.code, range))
            )
        });
        let mut generation = 0;
        if let Some(key) = &cache_key {
            if let Some(hit) = self.cache.get(FEED_CACHE, key).await {
                if let Ok(page) = serde_json::from_str::<FeedPage>(&hit) {
                    return Ok(page);
                }
            }
            // Before the query: a change while it runs voids this page.
            generation = self.cache.generation(FEED_CACHE).await;
        }
        let rows = self
            .sql
            .market()
            .feed(&FeedQuery {
                category: req.category.clone(),
                min_price: req.min_price,
                max_price: req.max_price,
                q,
                sort,
                status: req.status,
                after,
                limit: limit + 1,
                viewer: viewer.filter(|_| has_blocks),
                seller: req.seller,
                regions: around.map(|(home, range)| {
                    crate::domain::region::Regions::get()
                        .in_range(home, range)
                        .into_iter()
                        .map(|r| r.code.clone())
                        .collect()
                }),
            })
            .await?;
        let more = rows.len() as i64 > limit;
        let rows: Vec<ListingRecord> = rows.into_iter().take(limit as usize).collect();
        let next_cursor = if more {
            rows.last().map(|l| {
                Cursor {
                    sort,
                    price: l.price,
                    id: l.id,
                }
                .encode()
            })
        } else {
            None
        };
        let page = FeedPage {
            items: self.feed_items(&rows).await?,
            next_cursor,
        };
        if let Some(key) = cache_key {
            if let Ok(text) = serde_json::to_string(&page) {
                self.cache
                    .set(FEED_CACHE, generation, &key, text, FEED_CACHE_TTL)
                    .await;
            }
        }
        Ok(page)
    }

    pub async fn feed_items(&self, rows: &[ListingRecord]) -> Result<Vec<FeedItem>, MarketError> {
        let ids: Vec<i64> = rows.iter().map(|l| l.id).collect();
        let thumbs = self.sql.media().listing_thumbnails(&ids).await?;
        Ok(rows
            .iter()
            .map(|l| FeedItem {
                id: l.id,
                seller_id: l.seller_id,
                title: l.title.clone(),
                price: l.price,
                category: l.category.clone(),
                status: l.status,
                thumbnail_url: thumbs.get(&l.id).map(|m| media_url(&m.thumb_key)),
                favourite_count: l.favourite_count,
                chat_count: l.chat_count,
                created_at: l.created_at,
                region: region_name(l.region_code.as_deref()),
            })
            .collect())
    }
}
