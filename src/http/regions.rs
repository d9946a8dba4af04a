//! Regions (동네): search by name and one region with its neighbours.
//! Public and read-only: the data is the compiled-in boundary file
//! (`domain::region`), the same on every node and engine.

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::region::{Region, Regions};
use crate::error::{Code, Refuse};
use crate::http::error::{ApiError, BadParameter, NotFound};

/// How far `GET /api/regions/{code}` looks for neighbours (metres between
/// centroids) and how many it lists.
const NEAR_M: f64 = 10_000.0;
const NEAR_MAX: usize = 50;

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionView {
    /// The 법정동 code, e.g. `11680101`.
    pub code: String,
    /// The region's own name, e.g. `역삼동`.
    pub name: String,
    /// e.g. `강남구` (empty for 세종특별자치시).
    pub sigungu: String,
    /// e.g. `서울특별시`.
    pub sido: String,
    /// e.g. `서울특별시 강남구 역삼동`.
    pub full_name: String,
    /// The centroid of its boundary.
    pub lat: f64,
    pub lng: f64,
}

impl From<&Region> for RegionView {
    fn from(r: &Region) -> RegionView {
        RegionView {
            code: r.code.clone(),
            name: r.name.clone(),
            sigungu: r.sigungu.clone(),
            sido: r.sido.clone(),
            full_name: r.full_name(),
            lat: r.lat,
            lng: r.lng,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionList {
    pub items: Vec<RegionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NearRegion {
    #[serde(flatten)]
    pub region: RegionView,
    /// Between the two centroids, in metres.
    pub distance_m: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionDetail {
    #[serde(flatten)]
    pub region: RegionView,
    /// The regions whose centroid lies within 10 km of this one's,
    /// nearest first (at most 50; this region not included).
    pub near: Vec<NearRegion>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RegionQuery {
    /// Words of the name, e.g. `역삼` or `강남 역삼` (1..=40 characters);
    /// every word must appear in `시도 시군구 읍면동`.
    pub query: String,
    /// 1..=50, default 20.
    pub limit: Option<i64>,
}

/// Search regions by name (Korean substrings). Public.
#[utoipa::path(
    tag = "regions",
    params(RegionQuery),
    responses((status = 200, body = RegionList), BadParameter)
)]
#[get("/regions")]
pub async fn search_regions(query: web::Query<RegionQuery>) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(query.limit, 20, 50)?;
    let words = query.query.trim();
    if words.is_empty() || words.chars().count() > 40 {
        return Err(ApiError::new(
            Code::InvalidParameter,
            "query must be 1..=40 characters",
        ));
    }
    let items = Regions::get()
        .search(words, usize::try_from(limit).unwrap_or(20))
        .into_iter()
        .map(RegionView::from)
        .collect();
    Ok(HttpResponse::Ok().json(RegionList { items }))
}

/// One region, with the regions near it by distance. Public.
#[utoipa::path(
    tag = "regions",
    params(("code" = String, Path, description = "The region's code, e.g. `11680101`")),
    responses((status = 200, body = RegionDetail), NotFound)
)]
#[get("/regions/{code}")]
pub async fn get_region(code: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let regions = Regions::get();
    let region = regions
        .by_code(&code)
        .ok_or_else(|| ApiError::not_found("region"))?;
    let near = regions
        .near(region, NEAR_M, NEAR_MAX + 1)
        .into_iter()
        .filter(|(r, _)| r.code != region.code)
        .take(NEAR_MAX)
        .map(|(r, d)| NearRegion {
            region: RegionView::from(r),
            // At most 10 km: fits.
            distance_m: d.round() as u32,
        })
        .collect();
    Ok(HttpResponse::Ok().json(RegionDetail {
        region: RegionView::from(region),
        near,
    }))
}
