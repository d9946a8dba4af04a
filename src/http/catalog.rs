//! The shop over REST: products (public), their admin routes (catalogue,
//! options, stock with its audit trail), wishlists and the cart.

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Admin, Auth, MaybeAuth};
use super::market::MediaView;
use crate::domain::product::{ProductSort, ProductStatus, StockState};
use crate::http::error::{
    ApiError, BadParameter, ErrorBody, Forbidden, Invalid, NotFound, Unauthenticated,
};
use crate::service::catalog::{
    CartView, OptionInput, OptionView, ProductDetail, ProductInput, ProductItem, ProductListRequest,
};
use crate::service::market::media_url;
use crate::store::sql::{ProductReviewRecord, StockChange};
use crate::AppState;

// ------------------------------------------------------------ views

#[derive(Debug, Serialize, ToSchema)]
pub struct OptionOut {
    pub id: i64,
    pub label: String,
    pub sku: String,
    /// Won added to the product's base price (may be negative).
    pub price_delta: i64,
    /// This option's price in won.
    pub price: i64,
    pub stock_state: StockState,
    /// Exact count: shown when low ("only 2 left") and to admins.
    pub stock: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub id: i64,
    pub name: String,
    pub brand: String,
    pub description: String,
    pub category: String,
    pub base_price: i64,
    pub status: ProductStatus,
    pub options: Vec<OptionOut>,
    pub images: Vec<MediaView>,
    pub thumbnail_url: Option<String>,
    pub wishlist_count: i64,
    /// Whether the caller has it in their wishlist.
    pub in_wishlist: bool,
    pub review_count: i64,
    /// Average rating 1..5, one decimal; null without reviews.
    pub rating: Option<f64>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn rating(count: i64, sum: i64) -> Option<f64> {
    (count > 0).then(|| ((sum as f64 / count as f64) * 10.0).round() / 10.0)
}

fn option_out(o: &OptionView, exact: bool) -> OptionOut {
    OptionOut {
        id: o.option.id,
        label: o.option.label.clone(),
        sku: o.option.sku.clone(),
        price_delta: o.option.price_delta,
        price: o.price.get(),
        stock_state: o.stock_state,
        stock: (exact || o.stock_state == StockState::Low).then_some(o.option.stock),
    }
}

impl ProductView {
    fn of(d: &ProductDetail, admin: bool) -> ProductView {
        let p = &d.product;
        ProductView {
            id: p.id,
            name: p.name.clone(),
            brand: p.brand.clone(),
            description: p.description.clone(),
            category: p.category.clone(),
            base_price: p.base_price,
            status: p.status,
            options: d.options.iter().map(|o| option_out(o, admin)).collect(),
            thumbnail_url: d.images.first().map(|m| media_url(&m.thumb_key)),
            images: d.images.iter().map(MediaView::from).collect(),
            wishlist_count: p.wishlist_count,
            in_wishlist: d.in_wishlist,
            review_count: p.review_count,
            rating: rating(p.review_count, p.rating_sum),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductCard {
    pub id: i64,
    pub name: String,
    pub brand: String,
    pub category: String,
    /// Price of the cheapest configuration is `base_price` plus the
    /// smallest delta; lists show the base price.
    pub base_price: i64,
    pub status: ProductStatus,
    /// On sale with at least one option in stock.
    pub in_stock: bool,
    pub thumbnail_url: Option<String>,
    pub wishlist_count: i64,
    pub review_count: i64,
    pub rating: Option<f64>,
    pub created_at: i64,
}

impl From<&ProductItem> for ProductCard {
    fn from(i: &ProductItem) -> ProductCard {
        let p = &i.product;
        ProductCard {
            id: p.id,
            name: p.name.clone(),
            brand: p.brand.clone(),
            category: p.category.clone(),
            base_price: p.base_price,
            status: p.status,
            in_stock: i.in_stock,
            thumbnail_url: i.thumbnail.as_ref().map(|m| media_url(&m.thumb_key)),
            wishlist_count: p.wishlist_count,
            review_count: p.review_count,
            rating: rating(p.review_count, p.rating_sum),
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    pub items: Vec<ProductCard>,
    /// Opaque; pass as `cursor` for the next page. Absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WishlistItem {
    pub added_at: i64,
    pub product: ProductCard,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WishlistPage {
    pub items: Vec<WishlistItem>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockAdjustmentView {
    pub id: i64,
    pub option_id: i64,
    /// The administrator who changed it.
    pub admin_id: i64,
    pub delta: i64,
    pub stock_after: i64,
    pub reason: String,
    pub created_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CartLineView {
    pub option_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub brand: String,
    pub option_label: String,
    pub quantity: i64,
    /// Current price of one; the order fixes it.
    pub unit_price: i64,
    pub line_total: i64,
    pub stock_state: StockState,
    /// False when the option or product is gone, hidden, not on sale, or
    /// has fewer in stock than this line; such a line cannot be ordered.
    pub available: bool,
    pub added_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CartOut {
    pub lines: Vec<CartLineView>,
    /// Sum of the available lines at current prices, in won.
    pub total: i64,
}

impl From<&CartView> for CartOut {
    fn from(c: &CartView) -> CartOut {
        CartOut {
            lines: c
                .lines
                .iter()
                .map(|l| CartLineView {
                    option_id: l.row.option.id,
                    product_id: l.row.product.id,
                    product_name: l.row.product.name.clone(),
                    brand: l.row.product.brand.clone(),
                    option_label: l.row.option.label.clone(),
                    quantity: l.row.quantity,
                    unit_price: l.unit_price.get(),
                    line_total: l.unit_price.get().saturating_mul(l.row.quantity),
                    stock_state: l.stock_state,
                    available: l.available,
                    added_at: l.row.added_at,
                })
                .collect(),
            total: c.total.get(),
        }
    }
}

// ------------------------------------------------------------ requests

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionRequest {
    /// e.g. `270mm / 블랙`; 1..=50 characters.
    pub label: String,
    /// Unique across the shop: 1..=40 of `A-Z a-z 0-9 - _`.
    pub sku: String,
    /// Won added to the base price (may be negative; the price stays >= 0).
    #[serde(default)]
    pub price_delta: i64,
    /// Initial stock, 0..=1000000.
    #[serde(default)]
    pub stock: i64,
}

impl From<OptionRequest> for OptionInput {
    fn from(o: OptionRequest) -> OptionInput {
        OptionInput {
            label: o.label,
            sku: o.sku,
            price_delta: o.price_delta,
            stock: o.stock,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    /// 1..=100 characters.
    pub name: String,
    /// 1..=50 characters.
    pub brand: String,
    /// Up to 5000 characters.
    pub description: Option<String>,
    /// One of `bags`, `watches`, `jewelry`, `shoes`, `clothing`, `accessories`, `beauty`, `other`.
    pub category: String,
    /// Whole won, 0..=10000000000.
    pub base_price: i64,
    /// Default `draft`.
    pub status: Option<ProductStatus>,
    /// Media ids you uploaded (`POST /api/media`), in display order.
    pub images: Option<Vec<i64>>,
    /// At most 100.
    pub options: Option<Vec<OptionRequest>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    pub name: Option<String>,
    pub brand: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub base_price: Option<i64>,
    /// `hidden` takes it off the shop; `on_sale` puts it back.
    pub status: Option<ProductStatus>,
    /// Replaces all images.
    pub images: Option<Vec<i64>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOption {
    pub label: Option<String>,
    pub price_delta: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStock {
    /// The new count, 0..=1000000.
    pub stock: i64,
    /// Why (kept in the audit trail), 1..=500 characters.
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustStock {
    /// Added (positive) or removed (negative); not 0. Stock never goes below 0.
    pub delta: i64,
    /// Why (kept in the audit trail), 1..=500 characters.
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddToCart {
    pub option_id: i64,
    /// 1..=99; added to the line if the option is already in the cart.
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    /// 1..=99.
    pub quantity: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProductParams {
    pub cursor: Option<String>,
    /// 1..=100, default 20.
    pub limit: Option<i64>,
    pub category: Option<String>,
    /// Exact brand, any case.
    pub brand: Option<String>,
    /// On the base price, in won.
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Only products on sale with an option in stock.
    pub in_stock: Option<bool>,
    /// Substring of name, brand or description, any script.
    pub q: Option<String>,
    /// `newest` (default), `price_asc`, `price_desc`, `popular` (most wishlisted).
    pub sort: Option<ProductSort>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1..=100, default 20.
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Entries with a smaller id than this (the last id of the previous page).
    pub before: Option<i64>,
    /// 1..=100, default 20.
    pub limit: Option<i64>,
}

fn is_admin(auth: &MaybeAuth) -> bool {
    auth.0.as_ref().is_some_and(|a| a.is_admin())
}

// ------------------------------------------------------------ public

/// Products in the shop, with filters, sorts and search; keyset paged.
#[utoipa::path(
    tag = "shop",
    params(ProductParams),
    responses(
        (status = 200, body = ProductList),
        BadParameter,
        Invalid,
    )
)]
#[get("/products")]
pub async fn list_products(
    state: web::Data<AppState>,
    auth: MaybeAuth,
    query: web::Query<ProductParams>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = state
        .catalog
        .products(
            ProductListRequest {
                cursor: q.cursor,
                limit: q.limit,
                category: q.category,
                brand: q.brand,
                min_price: q.min_price,
                max_price: q.max_price,
                in_stock: q.in_stock,
                q: q.q,
                sort: q.sort,
            },
            is_admin(&auth),
        )
        .await?;
    Ok(HttpResponse::Ok().json(ProductList {
        items: page.items.iter().map(ProductCard::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A product page: options with prices and stock state, images, rating.
#[utoipa::path(
    tag = "shop",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 200, body = ProductView),
        (status = 404, description = "`not_found` (also drafts, hidden and deleted products, except for admins)", body = ErrorBody),
    )
)]
#[get("/products/{id}")]
pub async fn get_product(
    state: web::Data<AppState>,
    auth: MaybeAuth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let admin = is_admin(&auth);
    let viewer = auth.0.as_ref().map(|a| a.uid());
    let d = state
        .catalog
        .product_detail(id.into_inner(), viewer, admin)
        .await?;
    Ok(HttpResponse::Ok().json(ProductView::of(&d, admin)))
}

/// Add to my wishlist (idempotent).
#[utoipa::path(
    tag = "shop",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 204, description = "In the wishlist"),
        Unauthenticated,
        NotFound,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[put("/products/{id}/wishlist")]
pub async fn add_wishlist(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .catalog
        .set_wishlisted(auth.0.uid(), id.into_inner(), true)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove from my wishlist (idempotent).
#[utoipa::path(
    tag = "shop",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 204, description = "Not in the wishlist"),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/products/{id}/wishlist")]
pub async fn remove_wishlist(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .catalog
        .set_wishlisted(auth.0.uid(), id.into_inner(), false)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// My wishlist, latest first.
#[utoipa::path(
    tag = "shop",
    params(PageParams),
    responses(
        (status = 200, body = WishlistPage),
        BadParameter,
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me/wishlist")]
pub async fn my_wishlist(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let (items, next_cursor) = state
        .catalog
        .wishlist(auth.0.uid(), query.cursor.as_deref(), query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(WishlistPage {
        items: items
            .iter()
            .map(|(at, item)| WishlistItem {
                added_at: *at,
                product: ProductCard::from(item),
            })
            .collect(),
        next_cursor,
    }))
}

// ------------------------------------------------------------ admin

/// Create a product with its options (administrators only).
#[utoipa::path(
    tag = "admin",
    request_body = CreateProduct,
    responses(
        (status = 201, body = ProductView),
        Unauthenticated,
        Forbidden,
        (status = 422, description = "`validation_failed` (also a SKU in use)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/admin/products")]
pub async fn create_product(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<CreateProduct>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let d = state
        .catalog
        .create_product(
            admin.0.uid(),
            ProductInput {
                name: Some(b.name),
                brand: Some(b.brand),
                description: b.description,
                category: Some(b.category),
                base_price: Some(b.base_price),
                status: b.status,
                images: b.images,
                options: Some(
                    b.options
                        .unwrap_or_default()
                        .into_iter()
                        .map(OptionInput::from)
                        .collect(),
                ),
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(ProductView::of(&d, true)))
}

/// Edit a product, or hide / show it with `status` (administrators only).
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Product id")),
    request_body = UpdateProduct,
    responses(
        (status = 200, body = ProductView),
        Forbidden,
        NotFound,
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[patch("/admin/products/{id}")]
pub async fn update_product(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<i64>,
    body: web::Json<UpdateProduct>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let d = state
        .catalog
        .update_product(
            admin.0.uid(),
            id.into_inner(),
            ProductInput {
                name: b.name,
                brand: b.brand,
                description: b.description,
                category: b.category,
                base_price: b.base_price,
                status: b.status,
                images: b.images,
                options: None,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ProductView::of(&d, true)))
}

/// Delete a product (soft: past orders keep their lines; administrators only).
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 204, description = "Deleted"),
        Forbidden,
        NotFound,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/admin/products/{id}")]
pub async fn delete_product(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state.catalog.delete_product(id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Add an option to a product (administrators only).
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Product id")),
    request_body = OptionRequest,
    responses(
        (status = 201, body = ProductView),
        Forbidden,
        NotFound,
        (status = 422, description = "`validation_failed` (also a SKU in use)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/admin/products/{id}/options")]
pub async fn add_option(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<i64>,
    body: web::Json<OptionRequest>,
) -> Result<HttpResponse, ApiError> {
    let d = state
        .catalog
        .add_option(id.into_inner(), body.into_inner().into())
        .await?;
    Ok(HttpResponse::Created().json(ProductView::of(&d, true)))
}

/// Edit an option's label or price delta (administrators only; stock has its own routes).
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Option id")),
    request_body = UpdateOption,
    responses(
        (status = 200, body = ProductView),
        Forbidden,
        NotFound,
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[patch("/admin/options/{id}")]
pub async fn update_option(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<i64>,
    body: web::Json<UpdateOption>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let d = state
        .catalog
        .update_option(id.into_inner(), b.label, b.price_delta)
        .await?;
    Ok(HttpResponse::Ok().json(ProductView::of(&d, true)))
}

/// Remove an option (soft; carts show its lines unavailable; administrators only).
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Option id")),
    responses(
        (status = 204, description = "Removed"),
        Forbidden,
        NotFound,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/admin/options/{id}")]
pub async fn delete_option(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state.catalog.delete_option(id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set an option's stock to a count (audited; administrators only).
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Option id")),
    request_body = SetStock,
    responses(
        (status = 200, body = OptionOut),
        Forbidden,
        NotFound,
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[put("/admin/options/{id}/stock")]
pub async fn set_stock(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<i64>,
    body: web::Json<SetStock>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    change_stock(
        &state,
        &admin,
        id.into_inner(),
        StockChange::Set(b.stock),
        &b.reason,
    )
    .await
}

/// A stock change of either kind, answered with the option.
async fn change_stock(
    state: &AppState,
    admin: &Admin,
    option: i64,
    change: StockChange,
    reason: &str,
) -> Result<HttpResponse, ApiError> {
    let o = state
        .catalog
        .change_stock(admin.0.uid(), option, change, reason)
        .await?;
    Ok(HttpResponse::Ok().json(option_out(&o, true)))
}

/// Add to or remove from an option's stock (audited; administrators only).
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Option id")),
    request_body = AdjustStock,
    responses(
        (status = 200, body = OptionOut),
        Forbidden,
        NotFound,
        (status = 409, description = "`invalid_state`: the stock would go below zero", body = ErrorBody),
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/admin/options/{id}/stock-adjustments")]
pub async fn adjust_stock(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<i64>,
    body: web::Json<AdjustStock>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    change_stock(
        &state,
        &admin,
        id.into_inner(),
        StockChange::Adjust(b.delta),
        &b.reason,
    )
    .await
}

/// An option's stock changes, newest first: who, when, why (administrators only).
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Option id"), HistoryParams),
    responses(
        (status = 200, body = Vec<StockAdjustmentView>),
        BadParameter,
        Forbidden,
        NotFound,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/admin/options/{id}/stock-adjustments")]
pub async fn stock_history(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<i64>,
    query: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let rows = state
        .catalog
        .stock_history(id.into_inner(), query.before, query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(
        rows.into_iter()
            .map(|a| StockAdjustmentView {
                id: a.id,
                option_id: a.option_id,
                admin_id: a.admin_id,
                delta: a.delta,
                stock_after: a.stock_after,
                reason: a.reason,
                created_at: a.created_at,
            })
            .collect::<Vec<_>>(),
    ))
}

// ------------------------------------------------------------ cart

/// My cart: every line with its current price and stock state.
#[utoipa::path(
    tag = "shop",
    responses(
        (status = 200, body = CartOut),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/cart")]
pub async fn get_cart(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let c = state.catalog.cart(auth.0.uid()).await?;
    Ok(HttpResponse::Ok().json(CartOut::from(&c)))
}

/// Put an option in the cart (or more of it).
#[utoipa::path(
    tag = "shop",
    request_body = AddToCart,
    responses(
        (status = 200, body = CartOut),
        Unauthenticated,
        NotFound,
        (status = 409, description = "`out_of_stock`; `limit_reached` (`cart_lines`: a cart holds at most 50 lines, as many as one order)", body = ErrorBody),
        (status = 422, description = "`validation_failed` (quantity 1..=99 per line)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/cart/items")]
pub async fn add_to_cart(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<AddToCart>,
) -> Result<HttpResponse, ApiError> {
    let c = state
        .catalog
        .cart_add(auth.0.uid(), body.option_id, body.quantity)
        .await?;
    Ok(HttpResponse::Ok().json(CartOut::from(&c)))
}

/// Change a line's quantity.
#[utoipa::path(
    tag = "shop",
    params(("option_id" = i64, Path, description = "Option id of the line")),
    request_body = SetQuantity,
    responses(
        (status = 200, body = CartOut),
        Unauthenticated,
        (status = 404, description = "`not_found`: no such line in your cart", body = ErrorBody),
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[patch("/cart/items/{option_id}")]
pub async fn set_cart_quantity(
    state: web::Data<AppState>,
    auth: Auth,
    option_id: web::Path<i64>,
    body: web::Json<SetQuantity>,
) -> Result<HttpResponse, ApiError> {
    let c = state
        .catalog
        .cart_set(auth.0.uid(), option_id.into_inner(), body.quantity)
        .await?;
    Ok(HttpResponse::Ok().json(CartOut::from(&c)))
}

/// Remove a line.
#[utoipa::path(
    tag = "shop",
    params(("option_id" = i64, Path, description = "Option id of the line")),
    responses(
        (status = 204, description = "Removed"),
        Unauthenticated,
        (status = 404, description = "`not_found`: no such line in your cart", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/cart/items/{option_id}")]
pub async fn remove_from_cart(
    state: web::Data<AppState>,
    auth: Auth,
    option_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .catalog
        .cart_remove(auth.0.uid(), option_id.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Empty the cart.
#[utoipa::path(
    tag = "shop",
    responses(
        (status = 204, description = "Empty"),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/cart")]
pub async fn clear_cart(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    state.catalog.cart_clear(auth.0.uid()).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ------------------------------------------------------------ reviews

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductReviewView {
    pub id: i64,
    pub author_id: i64,
    /// 1..=5.
    pub rating: i64,
    pub text: String,
    /// Media ids of the review's images.
    pub images: Vec<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&ProductReviewRecord> for ProductReviewView {
    fn from(r: &ProductReviewRecord) -> ProductReviewView {
        ProductReviewView {
            id: r.id,
            author_id: r.user_id,
            rating: r.rating,
            text: r.body.clone(),
            images: r.images.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteReview {
    /// The paid order line being reviewed (`lines[].line_id` of your order).
    pub line_id: i64,
    /// 1..=5.
    pub rating: i64,
    /// 1..=1000 characters.
    pub text: String,
    /// Up to 5 media ids you uploaded.
    pub images: Option<Vec<i64>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditReview {
    pub rating: Option<i64>,
    pub text: Option<String>,
    pub images: Option<Vec<i64>>,
}

/// Review a product you bought: one review per paid order line.
#[utoipa::path(
    tag = "shop",
    params(("id" = i64, Path, description = "Product id")),
    request_body = WriteReview,
    responses(
        (status = 201, body = ProductReviewView),
        Unauthenticated,
        (status = 404, description = "`not_found`: no such product, or not your order line", body = ErrorBody),
        (status = 409, description = "`already_reviewed`, or `invalid_state` (the order is not paid)", body = ErrorBody),
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/products/{id}/reviews")]
pub async fn review_product(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<WriteReview>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let r = state
        .catalog
        .review_product(
            auth.0.uid(),
            id.into_inner(),
            b.line_id,
            b.rating,
            &b.text,
            b.images.as_deref().unwrap_or(&[]),
        )
        .await?;
    Ok(HttpResponse::Created().json(ProductReviewView::from(&r)))
}

/// A product's reviews, newest first (its average and count are on the product page).
#[utoipa::path(
    tag = "shop",
    params(("id" = i64, Path, description = "Product id"), HistoryParams),
    responses(
        (status = 200, body = Vec<ProductReviewView>),
        BadParameter,
        NotFound,
    )
)]
#[get("/products/{id}/reviews")]
pub async fn product_reviews(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let rows = state
        .catalog
        .reviews(id.into_inner(), query.before, query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(ProductReviewView::from).collect::<Vec<_>>()))
}

/// Edit your review.
#[utoipa::path(
    tag = "shop",
    params(("id" = i64, Path, description = "Product id"), ("review_id" = i64, Path, description = "Review id")),
    request_body = EditReview,
    responses(
        (status = 200, body = ProductReviewView),
        Unauthenticated,
        (status = 403, description = "`forbidden`: not your review", body = ErrorBody),
        NotFound,
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[patch("/products/{id}/reviews/{review_id}")]
pub async fn edit_review(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(i64, i64)>,
    body: web::Json<EditReview>,
) -> Result<HttpResponse, ApiError> {
    let (product, review) = path.into_inner();
    let b = body.into_inner();
    let r = state
        .catalog
        .edit_review(auth.0.uid(), product, review, b.rating, b.text, b.images)
        .await?;
    Ok(HttpResponse::Ok().json(ProductReviewView::from(&r)))
}

/// Delete a review (its author, or an administrator).
#[utoipa::path(
    tag = "shop",
    params(("id" = i64, Path, description = "Product id"), ("review_id" = i64, Path, description = "Review id")),
    responses(
        (status = 204, description = "Deleted"),
        Unauthenticated,
        Forbidden,
        NotFound,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/products/{id}/reviews/{review_id}")]
pub async fn delete_review(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (product, review) = path.into_inner();
    state
        .catalog
        .delete_review(auth.0.uid(), auth.0.is_admin(), product, review)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
