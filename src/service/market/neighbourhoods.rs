//! Neighbourhoods (동네): a user proves a position inside a region and
//! may keep two, one active, each with the range the feed will use.

use super::*;
use crate::domain::region::{Range, Region, Regions};
use crate::store::sql::{NeighbourhoodRecord, Verified};

/// Neighbourhoods one user may keep (home and one more, as Karrot).
pub const MAX_NEIGHBOURHOODS: i64 = 2;

/// A neighbourhood with its region.
#[derive(Debug, Clone)]
pub struct Neighbourhood {
    pub region: &'static Region,
    pub verified_at: i64,
    pub verified_until: i64,
    pub range: Range,
    pub active: bool,
}

impl Neighbourhood {
    fn of(r: NeighbourhoodRecord) -> Option<Neighbourhood> {
        Some(Neighbourhood {
            region: Regions::get().by_code(&r.region_code)?,
            verified_at: r.verified_at,
            verified_until: r.verified_until,
            range: Range::parse(&r.range).unwrap_or(Range::Near),
            active: r.active,
        })
    }
}

/// A change of one neighbourhood (`PUT /api/me/neighbourhoods/{code}`).
#[derive(Debug, Clone, Default)]
pub struct NeighbourhoodChange {
    /// Only `Some(true)` is meaningful: make it the active one.
    pub active: Option<bool>,
    pub range: Option<String>,
}

/// The user's neighbourhoods still verified at `now`.
pub async fn verified(
    sql: &SqlStore,
    user: UserId,
    now: i64,
) -> Result<Vec<Neighbourhood>, crate::store::StoreError> {
    Ok(sql
        .market()
        .neighbourhoods(user)
        .await?
        .into_iter()
        .filter_map(Neighbourhood::of)
        .filter(|n| n.verified_until > now)
        .collect())
}

/// Whether one of `neighbourhoods` takes `region` in within its range.
pub fn takes_in(neighbourhoods: &[Neighbourhood], region: &Region) -> bool {
    neighbourhoods
        .iter()
        .any(|n| n.region.distance_m(region) <= n.range.metres())
}

/// The regions the user's active neighbourhood sees (any verification:
/// browsing goes on after it runs out); `None` without one.
pub async fn active_area(
    sql: &SqlStore,
    user: UserId,
) -> Result<Option<Vec<String>>, crate::store::StoreError> {
    let active = sql
        .market()
        .neighbourhoods(user)
        .await?
        .into_iter()
        .filter_map(Neighbourhood::of)
        .find(|n| n.active);
    Ok(active.map(|n| {
        Regions::get()
            .in_range(n.region, n.range)
            .into_iter()
            .map(|r| r.code.clone())
            .collect()
    }))
}

impl Market {
    /// Verify the user where they are: the region containing the position
    /// becomes (or stays) one of their neighbourhoods, verified for
    /// `neighbourhood_verify_days` from now. `true` if it is new.
    pub async fn verify_neighbourhood(
        &self,
        user: UserId,
        lat: f64,
        lng: f64,
    ) -> Result<(Neighbourhood, bool), MarketError> {
        let mut errors = FieldErrors::new();
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            errors.insert("lat", "must be a latitude, -90..=90".into());
        }
        if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
            errors.insert("lng", "must be a longitude, -180..=180".into());
        }
        MarketError::check_fields(errors)?;
        let region = Regions::get().containing(lat, lng).ok_or_else(|| {
            MarketError::new(
                Code::OutsideServiceArea,
                "no region here: Jangteo serves Korea's 읍/면/동 (not at sea)",
            )
        })?;
        let now = now_ms();
        let until =
            now + i64::try_from(self.neighbourhood_verify.as_millis()).unwrap_or(i64::MAX / 2);
        let outcome = self
            .sql
            .market()
            .verify_neighbourhood(
                user,
                &region.code,
                Range::Near.as_str(),
                MAX_NEIGHBOURHOODS,
                now,
                until,
            )
            .await?;
        let (record, added) = match outcome {
            Verified::Added(r) => (r, true),
            Verified::Renewed(r) => (r, false),
            Verified::Limit => {
                return Err(MarketError::new(
                    Code::NeighbourhoodLimit,
                    format!("at most {MAX_NEIGHBOURHOODS} neighbourhoods; remove one first"),
                )
                .with_details(json!({ "max": MAX_NEIGHBOURHOODS })))
            }
        };
        let n = Neighbourhood::of(record)
            .ok_or_else(|| MarketError::internal("a stored region code is unknown"))?;
        Ok((n, added))
    }

    /// The user's neighbourhoods, the active one first.
    pub async fn neighbourhoods(&self, user: UserId) -> Result<Vec<Neighbourhood>, MarketError> {
        Ok(self
            .sql
            .market()
            .neighbourhoods(user)
            .await?
            .into_iter()
            .filter_map(Neighbourhood::of)
            .collect())
    }

    /// Make a neighbourhood the active one and/or change its range.
    pub async fn change_neighbourhood(
        &self,
        user: UserId,
        code: &str,
        change: NeighbourhoodChange,
    ) -> Result<Neighbourhood, MarketError> {
        let mut errors = FieldErrors::new();
        if change.active == Some(false) {
            errors.insert(
                "active",
                "make another neighbourhood active instead (true only)".into(),
            );
        }
        let range = match change.range.as_deref() {
            None => None,
            Some(r) => match Range::parse(r) {
                Some(range) => Some(range),
                None => {
                    errors.insert("range", "one of dong, near, normal, far".into());
                    None
                }
            },
        };
        if change.active.is_none() && change.range.is_none() {
            errors.insert("active", "give `active: true` and/or `range`".into());
        }
        MarketError::check_fields(errors)?;
        let changed = self
            .sql
            .market()
            .update_neighbourhood(
                user,
                code,
                change.active == Some(true),
                range.map(Range::as_str),
            )
            .await?;
        if !changed {
            return Err(MarketError::not_found("neighbourhood"));
        }
        self.neighbourhoods(user)
            .await?
            .into_iter()
            .find(|n| n.region.code == code)
            .ok_or_else(|| MarketError::not_found("neighbourhood"))
    }

    pub async fn remove_neighbourhood(&self, user: UserId, code: &str) -> Result<(), MarketError> {
        if !self.sql.market().remove_neighbourhood(user, code).await? {
            return Err(MarketError::not_found("neighbourhood"));
        }
        Ok(())
    }
}

impl Market {
    /// The area a feed covers: `region` with `range` (default `near`) when
    /// given (visitors browse this way); else the viewer's active
    /// neighbourhood with its range (or `range`); else the whole country.
    pub(super) async fn feed_area(
        &self,
        viewer: Option<UserId>,
        region: Option<&str>,
        range: Option<&str>,
    ) -> Result<Option<(&'static Region, Range)>, MarketError> {
        let range = match range {
            None => None,
            Some(r) => Some(Range::parse(r).ok_or_else(|| {
                MarketError::new(
                    Code::InvalidParameter,
                    "range is one of dong, near, normal, far",
                )
            })?),
        };
        if let Some(code) = region {
            let home = Regions::get().by_code(code).ok_or_else(|| {
                MarketError::new(Code::InvalidParameter, format!("unknown region {code:?}"))
            })?;
            return Ok(Some((home, range.unwrap_or(Range::Near))));
        }
        let active = match viewer {
            Some(v) => self.neighbourhoods(v).await?.into_iter().find(|n| n.active),
            None => None,
        };
        match (active, range) {
            (Some(n), range) => Ok(Some((n.region, range.unwrap_or(n.range)))),
            (None, Some(_)) => Err(MarketError::new(
                Code::InvalidParameter,
                "range needs a region (or a neighbourhood of yours)",
            )),
            (None, None) => Ok(None),
        }
    }

    /// Where a seller posts now: their active neighbourhood's region
    /// (`None` while they have none); refused once its verification ran
    /// out, until they verify again.
    pub(super) async fn posting_region(
        &self,
        seller: UserId,
    ) -> Result<Option<&'static Region>, MarketError> {
        let active = self
            .neighbourhoods(seller)
            .await?
            .into_iter()
            .find(|n| n.active);
        match active {
            Some(n) if n.verified_until <= now_ms() => Err(MarketError::new(
                Code::NeighbourhoodExpired,
                format!(
                    "your verification of {} has run out; verify again where you are",
                    n.region.name
                ),
            )),
            Some(n) => Ok(Some(n.region)),
            None => Ok(None),
        }
    }
}
