//! A user's neighbourhoods (동네): verify by position, list, switch the
//! active one, set its range, remove.

use super::*;
use crate::http::error::{NotFound, Unauthenticated};
use crate::http::regions::RegionView;
use crate::service::market::{Neighbourhood, NeighbourhoodChange};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionRequest {
    /// Latitude (WGS84 degrees), e.g. 37.5006.
    #[serde(default)]
    #[schema(value_type = f64)]
    pub lat: serde_json::Value,
    /// Longitude (WGS84 degrees), e.g. 127.0364.
    #[serde(default)]
    #[schema(value_type = f64)]
    pub lng: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NeighbourhoodUpdate {
    /// `true`: make this the active neighbourhood (the other one stops being active).
    pub active: Option<bool>,
    /// `dong` (this region only), `near` (~3 km), `normal` (~6 km), `far` (~10 km).
    pub range: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NeighbourhoodView {
    pub region: RegionView,
    /// When the user last proved a position inside it (epoch ms).
    pub verified_at: i64,
    /// Posting there needs a new verification after this (epoch ms).
    pub verified_until: i64,
    /// `dong`, `near`, `normal` or `far`.
    pub range: &'static str,
    /// The neighbourhood the feed follows.
    pub active: bool,
}

impl From<&Neighbourhood> for NeighbourhoodView {
    fn from(n: &Neighbourhood) -> NeighbourhoodView {
        NeighbourhoodView {
            region: RegionView::from(n.region),
            verified_at: n.verified_at,
            verified_until: n.verified_until,
            range: n.range.as_str(),
            active: n.active,
        }
    }
}

fn coordinate(v: &serde_json::Value) -> f64 {
    // Not a number (or missing): NaN, which the service refuses by name.
    v.as_f64().unwrap_or(f64::NAN)
}

/// Verify a neighbourhood where the device is: the region that contains
/// the position (201 if new, 200 if verified again).
#[utoipa::path(
    tag = "regions",
    request_body = PositionRequest,
    responses(
        (status = 201, body = NeighbourhoodView, description = "A new neighbourhood"),
        (status = 200, body = NeighbourhoodView, description = "Verified again"),
        Unauthenticated,
        (status = 409, description = "`neighbourhood_limit`: two already", body = ErrorBody),
        (status = 422, description = "`validation_failed` (`lat`, `lng`) or `outside_service_area`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/me/neighbourhoods")]
pub async fn add_neighbourhood(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<PositionRequest>,
) -> Result<HttpResponse, ApiError> {
    let (n, added) = state
        .market
        .verify_neighbourhood(auth.0.uid(), coordinate(&body.lat), coordinate(&body.lng))
        .await?;
    let mut reply = if added {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(reply.json(NeighbourhoodView::from(&n)))
}

/// My neighbourhoods, the active one first.
#[utoipa::path(
    tag = "regions",
    responses((status = 200, body = Vec<NeighbourhoodView>), Unauthenticated),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me/neighbourhoods")]
pub async fn my_neighbourhoods(
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    let list = state.market.neighbourhoods(auth.0.uid()).await?;
    Ok(HttpResponse::Ok().json(list.iter().map(NeighbourhoodView::from).collect::<Vec<_>>()))
}

/// Make a neighbourhood the active one and/or set its range.
#[utoipa::path(
    tag = "regions",
    params(("code" = String, Path, description = "The region's code")),
    request_body = NeighbourhoodUpdate,
    responses(
        (status = 200, body = NeighbourhoodView),
        Unauthenticated,
        (status = 404, description = "`not_found`: not one of my neighbourhoods", body = ErrorBody),
        (status = 422, description = "`validation_failed` (`active`, `range`)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[put("/me/neighbourhoods/{code}")]
pub async fn update_neighbourhood(
    state: web::Data<AppState>,
    auth: Auth,
    code: web::Path<String>,
    body: web::Json<NeighbourhoodUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let n = state
        .market
        .change_neighbourhood(
            auth.0.uid(),
            &code,
            NeighbourhoodChange {
                active: body.active,
                range: body.range,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(NeighbourhoodView::from(&n)))
}

/// Remove a neighbourhood (the other one, if any, becomes the active one).
#[utoipa::path(
    tag = "regions",
    params(("code" = String, Path, description = "The region's code")),
    responses((status = 204, description = "Removed"), Unauthenticated, NotFound),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/me/neighbourhoods/{code}")]
pub async fn remove_neighbourhood(
    state: web::Data<AppState>,
    auth: Auth,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .market
        .remove_neighbourhood(auth.0.uid(), &code)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
