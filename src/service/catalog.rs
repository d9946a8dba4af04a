//! The curated shop's catalogue, wishlists and carts.
//!
//! Admins write the catalogue (products, options, stock, audited); everyone
//! reads the products that are on sale or sold out. A cart line refers to
//! an option and always shows the option's *current* price and stock; the
//! price is fixed only when an order is placed (`service::orders`).

use std::sync::Arc;

use serde_json::json;

use crate::bus::{Event, TOPIC_ALARMS};
use crate::domain::account::FieldErrors;
use crate::domain::ids::UserId;
use crate::domain::money::Won;
use crate::domain::now_ms;
use crate::domain::order;
use crate::domain::product::{
    self, ProductCursor, ProductSort, ProductStatus, StockState, PRODUCT_CATEGORIES,
};
use crate::error::{area_error, Code, Refuse};
use crate::service::events::publish_job;
use crate::store::sql::NewJob;
use crate::store::sql::{
    AdjustmentRecord, CartAdd, CartRow, MediaRecord, NewOption, OptionRecord, ProductFields,
    ProductQuery, ProductRecord, ProductReviewRecord, SkuWrite, SqlStore, StockChange,
    StockOutcome,
};

area_error! {
    /// What the shop catalogue (products, options, stock, cart) answers instead of a result.
    pub enum CatalogError {
        own {}
        from {}
    }
}

/// Shop settings (`config.shop`).
#[derive(Debug, Clone, Copy)]
pub struct ShopSettings {
    /// An option at or below this many is "low" (shown, and admins told).
    pub low_stock_threshold: i64,
    /// How long an order waits for its payment before it expires.
    pub payment_window: std::time::Duration,
    /// How long after payment the buyer is asked to review the products.
    pub review_request_delay: std::time::Duration,
    /// What one buyer may hold unpaid (hoarding stock and listings).
    pub buyer_limits: crate::domain::order::BuyerLimits,
}

/// One option's stock moved (by an admin or an order).
#[derive(Debug, Clone, Copy)]
pub struct StockMove<'a> {
    pub product_id: i64,
    pub option_id: i64,
    pub sku: &'a str,
    pub name: &'a str,
    pub label: &'a str,
    pub before: i64,
    pub after: i64,
}

#[derive(Clone)]
pub struct Catalog {
    sql: Arc<SqlStore>,
    settings: ShopSettings,
}

/// A new product as an admin sends it.
#[derive(Debug, Clone, Default)]
pub struct ProductInput {
    pub name: Option<String>,
    pub brand: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub base_price: Option<i64>,
    pub status: Option<ProductStatus>,
    pub images: Option<Vec<i64>>,
    pub options: Option<Vec<OptionInput>>,
}

#[derive(Debug, Clone)]
pub struct OptionInput {
    pub label: String,
    pub sku: String,
    pub price_delta: i64,
    pub stock: i64,
}

/// An option as a buyer sees it.
#[derive(Debug, Clone)]
pub struct OptionView {
    pub option: OptionRecord,
    pub price: Won,
    pub stock_state: StockState,
}

/// A product page.
#[derive(Debug, Clone)]
pub struct ProductDetail {
    pub product: ProductRecord,
    pub options: Vec<OptionView>,
    pub images: Vec<MediaRecord>,
    pub in_wishlist: bool,
}

/// One product in a list.
#[derive(Debug, Clone)]
pub struct ProductItem {
    pub product: ProductRecord,
    pub thumbnail: Option<MediaRecord>,
    pub in_stock: bool,
}

#[derive(Debug, Clone)]
pub struct ProductPage {
    pub items: Vec<ProductItem>,
    pub next_cursor: Option<String>,
}

/// A product list request as a client sends it.
#[derive(Debug, Clone, Default)]
pub struct ProductListRequest {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: Option<bool>,
    pub q: Option<String>,
    pub sort: Option<ProductSort>,
}

/// A cart line as shown.
#[derive(Debug, Clone)]
pub struct CartLine {
    pub row: CartRow,
    /// The option's price now.
    pub unit_price: Won,
    pub stock_state: StockState,
    /// False when the product or option is gone, hidden, not on sale or
    /// has fewer in stock than the line asks for; such lines stay in the
    /// cart (shown, not silently dropped) but cannot be ordered.
    pub available: bool,
}

#[derive(Debug, Clone)]
pub struct CartView {
    pub lines: Vec<CartLine>,
    /// Sum of the available lines at current prices.
    pub total: Won,
}

const MAX_PAGE: i64 = 100;
const DEFAULT_PAGE: i64 = 20;
const REASON_MAX_CHARS: usize = 500;

fn page_limit(limit: Option<i64>) -> Result<i64, CatalogError> {
    CatalogError::page_limit(limit, DEFAULT_PAGE, MAX_PAGE)
}

fn sku_taken() -> CatalogError {
    CatalogError::field("options.sku", "is already used by another option")
}

impl Catalog {
    pub fn new(sql: Arc<SqlStore>, settings: ShopSettings) -> Catalog {
        Catalog { sql, settings }
    }

    fn option_view(&self, product: &ProductRecord, option: OptionRecord) -> OptionView {
        OptionView {
            price: product::option_price(Won(product.base_price), option.price_delta)
                .unwrap_or(Won::ZERO),
            stock_state: product::stock_state(option.stock, self.settings.low_stock_threshold),
            option,
        }
    }

    fn check_options(
        base: Won,
        options: &[OptionInput],
        errors: &mut FieldErrors,
    ) -> Vec<NewOption> {
        if options.len() > product::MAX_OPTIONS {
            errors.insert(
                "options",
                format!("at most {} options", product::MAX_OPTIONS),
            );
        }
        let mut skus = std::collections::HashSet::new();
        for o in options {
            product::check_option(&o.label, &o.sku, base, o.price_delta, o.stock, errors);
            if !skus.insert(o.sku.as_str()) {
                errors.insert("options.sku", "each option needs its own SKU".into());
            }
        }
        options
            .iter()
            .map(|o| NewOption {
                label: o.label.trim().to_string(),
                sku: o.sku.clone(),
                price_delta: o.price_delta,
                stock: o.stock,
            })
            .collect()
    }

    async fn check_images(
        &self,
        admin: UserId,
        images: &[i64],
        errors: &mut FieldErrors,
    ) -> Result<(), CatalogError> {
        if images.len() > crate::domain::listing::MAX_IMAGES {
            errors.insert(
                "images",
                format!("at most {} images", crate::domain::listing::MAX_IMAGES),
            );
            return Ok(());
        }
        let found = self.sql.media().media(images).await?;
        let unique: std::collections::HashSet<_> = images.iter().collect();
        if unique.len() != images.len()
            || found.len() != images.len()
            || found.iter().any(|m| m.owner_id != admin.get())
        {
            errors.insert(
                "images",
                "must be distinct ids of images you uploaded".into(),
            );
        }
        Ok(())
    }

    fn check_category(category: Option<&str>, errors: &mut FieldErrors) {
        if category.is_some_and(|c| !PRODUCT_CATEGORIES.contains(&c)) {
            errors.insert(
                "category",
                format!("must be one of {}", PRODUCT_CATEGORIES.join(", ")),
            );
        }
    }

    pub async fn create_product(
        &self,
        admin: UserId,
        input: ProductInput,
    ) -> Result<ProductDetail, CatalogError> {
        let mut errors = FieldErrors::new();
        for (field, present) in [
            ("name", input.name.is_some()),
            ("brand", input.brand.is_some()),
            ("category", input.category.is_some()),
            ("base_price", input.base_price.is_some()),
        ] {
            if !present {
                errors.insert(field, "is required".into());
            }
        }
        Self::check_product_fields(&input, &mut errors);
        let base = Won(input.base_price.unwrap_or(0));
        let options =
            Self::check_options(base, input.options.as_deref().unwrap_or(&[]), &mut errors);
        let images = input.images.unwrap_or_default();
        self.check_images(admin, &images, &mut errors).await?;
        CatalogError::check_fields(errors)?;
        let (Some(name), Some(brand), Some(category), Some(base_price)) =
            (input.name, input.brand, input.category, input.base_price)
        else {
            return Err(CatalogError::internal("validated product fields missing"));
        };
        let description = input.description.unwrap_or_default();
        let fields = ProductFields {
            name: name.trim(),
            brand: brand.trim(),
            description: description.trim(),
            category: &category,
            base_price,
        };
        let status = input.status.unwrap_or(ProductStatus::Draft);
        match self
            .sql
            .catalog()
            .create_product(&fields, status, &options, &images, now_ms())
            .await?
        {
            SkuWrite::Done(id) => self.product_detail(id, Some(admin), true).await,
            SkuWrite::SkuTaken => Err(sku_taken()),
            SkuWrite::TooMany => Err(CatalogError::internal("a new product has no options yet")),
        }
    }

    /// The rules of a product's own fields (those given) and its category.
    fn check_product_fields(input: &ProductInput, errors: &mut FieldErrors) {
        product::check_product(
            input.name.as_deref(),
            input.brand.as_deref(),
            input.description.as_deref(),
            input.base_price,
            errors,
        );
        Self::check_category(input.category.as_deref(), errors);
    }

    /// A product that exists and is not deleted (any status: admins).
    async fn live_product(&self, id: i64) -> Result<ProductRecord, CatalogError> {
        match self.sql.catalog().product(id).await? {
            Some(p) if !p.deleted => Ok(p),
            _ => Err(CatalogError::not_found("product")),
        }
    }

    pub async fn update_product(
        &self,
        admin: UserId,
        id: i64,
        input: ProductInput,
    ) -> Result<ProductDetail, CatalogError> {
        let current = self.live_product(id).await?;
        let mut errors = FieldErrors::new();
        Self::check_product_fields(&input, &mut errors);
        if input.options.is_some() {
            errors.insert(
                "options",
                "options have their own routes (/api/admin/products/{id}/options)".into(),
            );
        }
        if let Some(images) = &input.images {
            self.check_images(admin, images, &mut errors).await?;
        }
        // A new base price must keep every option's price within bounds.
        if let Some(base) = input.base_price {
            let options = self.sql.catalog().product_options(id).await?;
            if options
                .iter()
                .any(|o| product::option_price(Won(base), o.price_delta).is_none())
            {
                errors.insert("base_price", "would make an option's price negative".into());
            }
        }
        CatalogError::check_fields(errors)?;
        let name = input.name.as_deref().map(str::trim);
        let brand = input.brand.as_deref().map(str::trim);
        let description = input.description.as_deref().map(str::trim);
        let fields = ProductFields {
            name: name.unwrap_or(&current.name),
            brand: brand.unwrap_or(&current.brand),
            description: description.unwrap_or(&current.description),
            category: input.category.as_deref().unwrap_or(&current.category),
            base_price: input.base_price.unwrap_or(current.base_price),
        };
        let now = now_ms();
        self.sql
            .catalog()
            .update_product(id, &fields, input.images.as_deref(), now)
            .await?;
        if let Some(status) = input.status {
            if status != current.status {
                self.sql
                    .catalog()
                    .set_product_status(id, status, now)
                    .await?;
            }
        }
        self.product_detail(id, Some(admin), true).await
    }

    pub async fn delete_product(&self, id: i64) -> Result<(), CatalogError> {
        self.live_product(id).await?;
        self.sql.catalog().delete_product(id, now_ms()).await?;
        Ok(())
    }

    pub async fn add_option(
        &self,
        product_id: i64,
        input: OptionInput,
    ) -> Result<ProductDetail, CatalogError> {
        let p = self.live_product(product_id).await?;
        let mut errors = FieldErrors::new();
        let existing = self.sql.catalog().product_options(product_id).await?;
        if existing.len() >= product::MAX_OPTIONS {
            errors.insert(
                "options",
                format!("at most {} options", product::MAX_OPTIONS),
            );
        }
        let mut options = Self::check_options(Won(p.base_price), &[input], &mut errors);
        CatalogError::check_fields(errors)?;
        let Some(option) = options.pop() else {
            return Err(CatalogError::internal("checked option missing"));
        };
        match self
            .sql
            .catalog()
            .add_option(product_id, &option, product::MAX_OPTIONS)
            .await?
        {
            SkuWrite::Done(_) => self.product_detail(product_id, None, true).await,
            SkuWrite::SkuTaken => Err(sku_taken()),
            SkuWrite::TooMany => Err(CatalogError::field(
                "options",
                format!("at most {} options", product::MAX_OPTIONS),
            )),
        }
    }

    /// A live option of a live product.
    async fn live_option(
        &self,
        option_id: i64,
    ) -> Result<(OptionRecord, ProductRecord), CatalogError> {
        match self.sql.catalog().option_with_product(option_id).await? {
            Some((o, p)) if !o.deleted && !p.deleted => Ok((o, p)),
            _ => Err(CatalogError::not_found("option")),
        }
    }

    pub async fn update_option(
        &self,
        option_id: i64,
        label: Option<String>,
        price_delta: Option<i64>,
    ) -> Result<ProductDetail, CatalogError> {
        let (o, p) = self.live_option(option_id).await?;
        let label = label.map_or(o.label.clone(), |l| l.trim().to_string());
        let delta = price_delta.unwrap_or(o.price_delta);
        let mut errors = FieldErrors::new();
        product::check_option(
            &label,
            &o.sku,
            Won(p.base_price),
            delta,
            o.stock,
            &mut errors,
        );
        CatalogError::check_fields(errors)?;
        self.sql
            .catalog()
            .update_option(option_id, &label, delta)
            .await?;
        self.product_detail(p.id, None, true).await
    }

    pub async fn delete_option(&self, option_id: i64) -> Result<(), CatalogError> {
        self.live_option(option_id).await?;
        self.sql
            .catalog()
            .delete_option(option_id, now_ms())
            .await?;
        Ok(())
    }

    /// Set (absolute) or adjust (relative) an option's stock, with the
    /// admin and reason in the audit trail. Crossing into low stock tells
    /// the admins (a `stock.low` event on the alarms topic).
    pub async fn change_stock(
        &self,
        admin: UserId,
        option_id: i64,
        change: StockChange,
        reason: &str,
    ) -> Result<OptionView, CatalogError> {
        let reason = reason.trim();
        let mut errors = FieldErrors::new();
        let n = reason.chars().count();
        if n == 0 || n > REASON_MAX_CHARS {
            errors.insert(
                "reason",
                format!("must be 1..={REASON_MAX_CHARS} characters"),
            );
        }
        match change {
            StockChange::Set(s) if !(0..=product::MAX_STOCK).contains(&s) => {
                errors.insert("stock", format!("must be 0..={}", product::MAX_STOCK));
            }
            StockChange::Adjust(0) => {
                errors.insert("delta", "must not be 0".into());
            }
            StockChange::Adjust(d) if !(-product::MAX_STOCK..=product::MAX_STOCK).contains(&d) => {
                errors.insert("delta", format!("must be within ±{}", product::MAX_STOCK));
            }
            _ => {}
        }
        CatalogError::check_fields(errors)?;
        let (o, p) = self.live_option(option_id).await?;
        let low = |before, after| {
            self.low_stock_job(StockMove {
                product_id: p.id,
                option_id: o.id,
                sku: &o.sku,
                name: &p.name,
                label: &o.label,
                before,
                after,
            })
        };
        match self
            .sql
            .catalog()
            .change_stock(option_id, admin, change, reason, &low, now_ms())
            .await?
        {
            StockOutcome::NoOption => Err(CatalogError::not_found("option")),
            StockOutcome::WouldGoNegative { stock } => Err(CatalogError::new(
                Code::InvalidState,
                format!("only {stock} in stock; stock cannot go below zero"),
            )),
            StockOutcome::Changed { after, .. } => {
                let (o, _) = self.live_option(option_id).await?;
                if after > product::MAX_STOCK {
                    tracing::warn!(option_id, after, "stock above the sanity bound");
                }
                Ok(self.option_view(&p, o))
            }
        }
    }

    /// The alarm for the admins when an option crosses into low stock (the
    /// transaction that moves the stock writes it).
    pub fn low_stock_job(&self, m: StockMove<'_>) -> Option<NewJob> {
        product::became_low(m.before, m.after, self.settings.low_stock_threshold).then(|| {
            let event = Event::alarm(
                crate::domain::events::Alarm::StockLow,
                m.product_id,
                json!({
                    "product": m.product_id,
                    "option": m.option_id,
                    "sku": m.sku,
                    "name": m.name,
                    "label": m.label,
                    "stock": m.after,
                    "threshold": self.settings.low_stock_threshold,
                }),
            );
            publish_job(TOPIC_ALARMS, &event)
        })
    }

    pub async fn stock_history(
        &self,
        option_id: i64,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Vec<AdjustmentRecord>, CatalogError> {
        let limit = page_limit(limit)?;
        if self
            .sql
            .catalog()
            .option_with_product(option_id)
            .await?
            .is_none()
        {
            return Err(CatalogError::not_found("option"));
        }
        Ok(self
            .sql
            .catalog()
            .stock_adjustments(option_id, before, limit)
            .await?)
    }

    /// A product page. Drafts and hidden products only for admins
    /// (`admin_view`); deleted ones for nobody.
    pub async fn product_detail(
        &self,
        id: i64,
        viewer: Option<UserId>,
        admin_view: bool,
    ) -> Result<ProductDetail, CatalogError> {
        let p = self.live_product(id).await?;
        if !admin_view && !p.status.is_public() {
            return Err(CatalogError::not_found("product"));
        }
        let options = self.sql.catalog().product_options(id).await?;
        let images = self.sql.catalog().product_images(id).await?;
        let in_wishlist = match viewer {
            Some(u) => self.sql.catalog().is_wishlisted(u, id).await?,
            None => false,
        };
        Ok(ProductDetail {
            options: options
                .into_iter()
                .map(|o| self.option_view(&p, o))
                .collect(),
            product: p,
            images,
            in_wishlist,
        })
    }

    pub async fn products(
        &self,
        req: ProductListRequest,
        admin_view: bool,
    ) -> Result<ProductPage, CatalogError> {
        let limit = page_limit(req.limit)?;
        let sort = req.sort.unwrap_or(ProductSort::Newest);
        let after = match &req.cursor {
            None => None,
            Some(c) => match ProductCursor::decode(c) {
                Some(c) if c.sort == sort => Some(c),
                _ => {
                    return Err(CatalogError::new(
                        Code::InvalidParameter,
                        "cursor is not valid for this sort; start again without it",
                    ))
                }
            },
        };
        let mut errors = FieldErrors::new();
        Self::check_category(req.category.as_deref(), &mut errors);
        for (field, v) in [("min_price", req.min_price), ("max_price", req.max_price)] {
            if v.is_some_and(|p| p < 0) {
                errors.insert(field, "must be >= 0".into());
            }
        }
        if let (Some(lo), Some(hi)) = (req.min_price, req.max_price) {
            if lo > hi {
                errors.insert("max_price", "must be >= min_price".into());
            }
        }
        let q = req
            .q
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty());
        if q.as_ref().is_some_and(|q| q.chars().count() > 100) {
            errors.insert("q", "must be at most 100 characters".into());
        }
        CatalogError::check_fields(errors)?;
        let query = ProductQuery {
            category: req.category,
            brand: req
                .brand
                .map(|b| b.trim().to_string())
                .filter(|b| !b.is_empty()),
            min_price: req.min_price,
            max_price: req.max_price,
            in_stock_only: req.in_stock.unwrap_or(false),
            q,
            sort,
            after,
            // One more than asked, to know whether a next page exists.
            limit: limit + 1,
            include_unlisted: admin_view,
        };
        let mut rows = self.sql.catalog().products(&query).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|p| {
                ProductCursor {
                    sort,
                    key: match sort {
                        ProductSort::Newest => 0,
                        ProductSort::PriceAsc | ProductSort::PriceDesc => p.base_price,
                        ProductSort::Popular => p.wishlist_count,
                    },
                    id: p.id,
                }
                .encode()
            })
        } else {
            None
        };
        Ok(ProductPage {
            items: self.items(rows).await?,
            next_cursor,
        })
    }

    async fn items(&self, rows: Vec<ProductRecord>) -> Result<Vec<ProductItem>, CatalogError> {
        let ids: Vec<i64> = rows.iter().map(|p| p.id).collect();
        let mut thumbs = self.sql.catalog().product_thumbnails(&ids).await?;
        let in_stock = self.sql.catalog().products_in_stock(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|p| ProductItem {
                thumbnail: thumbs.remove(&p.id),
                in_stock: p.status.is_buyable() && in_stock.contains(&p.id),
                product: p,
            })
            .collect())
    }

    pub async fn set_wishlisted(
        &self,
        user: UserId,
        product_id: i64,
        on: bool,
    ) -> Result<(), CatalogError> {
        if on {
            // Only what the public sees can be wished for; removing works
            // for anything (a product hidden since).
            self.product_detail(product_id, None, false).await?;
        }
        self.sql
            .catalog()
            .set_wishlisted(user, product_id, on, now_ms())
            .await?;
        Ok(())
    }

    /// Wishlist page: cursor is `"{added_at}:{product_id}"` of the last item.
    pub async fn wishlist(
        &self,
        user: UserId,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<(Vec<(i64, ProductItem)>, Option<String>), CatalogError> {
        let limit = page_limit(limit)?;
        let after = match cursor {
            None => None,
            Some(c) => Some(
                c.split_once(':')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .ok_or_else(|| CatalogError::new(Code::InvalidParameter, "bad cursor"))?,
            ),
        };
        let mut rows = self.sql.catalog().wishlist(user, after, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|(at, p)| format!("{at}:{}", p.id))
        } else {
            None
        };
        let (ats, products): (Vec<i64>, Vec<ProductRecord>) = rows.into_iter().unzip();
        let items = self.items(products).await?;
        Ok((ats.into_iter().zip(items).collect(), next))
    }

    // ------------------------------------------------------------ cart

    fn check_quantity(q: i64) -> Result<(), CatalogError> {
        if u32::try_from(q).is_ok_and(order::quantity_ok) {
            Ok(())
        } else {
            Err(CatalogError::field(
                "quantity",
                format!("must be {}..={}", order::MIN_QUANTITY, order::MAX_QUANTITY),
            ))
        }
    }

    /// Add an option to the cart (or more of it).
    pub async fn cart_add(
        &self,
        user: UserId,
        option_id: i64,
        quantity: i64,
    ) -> Result<CartView, CatalogError> {
        Self::check_quantity(quantity)?;
        let (o, p) = self.live_option(option_id).await?;
        if !p.status.is_public() {
            return Err(CatalogError::not_found("option"));
        }
        if !p.status.is_buyable() || o.stock <= 0 {
            return Err(
                CatalogError::new(Code::OutOfStock, "this option is sold out")
                    .with_details(json!({"options": [option_id]})),
            );
        }
        match self
            .sql
            .catalog().cart_add(
                user,
                option_id,
                quantity,
                (
                    i64::from(order::MAX_QUANTITY),
                    i64::try_from(order::MAX_LINES).unwrap_or(50),
                ),
                now_ms(),
            )
            .await?
        {
            CartAdd::Quantity(_) => self.cart(user).await,
            CartAdd::Full => Err(CatalogError::new(
                Code::LimitReached,
                format!(
                    "a cart holds at most {} lines (as many as one order); order or remove some first",
                    order::MAX_LINES
                ),
            )
            .with_details(json!({"limit": "cart_lines", "max": order::MAX_LINES}))),
            CartAdd::TooMany { current } => Err(CatalogError::field(
                "quantity",
                format!(
                    "the line has {current}; at most {} per line",
                    order::MAX_QUANTITY
                ),
            )),
        }
    }

    pub async fn cart_set(
        &self,
        user: UserId,
        option_id: i64,
        quantity: i64,
    ) -> Result<CartView, CatalogError> {
        Self::check_quantity(quantity)?;
        if !self
            .sql
            .catalog()
            .cart_set(user, option_id, quantity, now_ms())
            .await?
        {
            return Err(CatalogError::not_found("cart line"));
        }
        self.cart(user).await
    }

    pub async fn cart_remove(&self, user: UserId, option_id: i64) -> Result<(), CatalogError> {
        if self
            .sql
            .catalog()
            .cart_remove(user, Some(&[option_id]))
            .await?
            == 0
        {
            return Err(CatalogError::not_found("cart line"));
        }
        Ok(())
    }

    pub async fn cart_clear(&self, user: UserId) -> Result<(), CatalogError> {
        self.sql.catalog().cart_remove(user, None).await?;
        Ok(())
    }

    pub async fn cart(&self, user: UserId) -> Result<CartView, CatalogError> {
        let rows = self.sql.catalog().cart(user).await?;
        let lines: Vec<CartLine> = rows
            .into_iter()
            .map(|row| {
                let unit_price =
                    product::option_price(Won(row.product.base_price), row.option.price_delta)
                        .unwrap_or(Won::ZERO);
                let available = !row.product.deleted
                    && !row.option.deleted
                    && row.product.status.is_buyable()
                    && row.option.stock >= row.quantity;
                CartLine {
                    stock_state: if row.option.deleted || !row.product.status.is_buyable() {
                        StockState::SoldOut
                    } else {
                        product::stock_state(row.option.stock, self.settings.low_stock_threshold)
                    },
                    unit_price,
                    available,
                    row,
                }
            })
            .collect();
        let total = Won::sum(lines.iter().filter(|l| l.available).map(|l| {
            l.unit_price
                .checked_mul(u32::try_from(l.row.quantity).unwrap_or(0))
                .unwrap_or(Won::ZERO)
        }))
        .unwrap_or(Won::ZERO);
        Ok(CartView { lines, total })
    }
}

/// Longest product review text.
pub const REVIEW_TEXT_MAX_CHARS: usize = 1000;
/// Images on one product review.
pub const REVIEW_MAX_IMAGES: usize = 5;

/// Product reviews: one per paid order line, by its buyer.
impl Catalog {
    async fn check_review(
        &self,
        author: UserId,
        rating: i64,
        text: &str,
        images: &[i64],
    ) -> Result<(), CatalogError> {
        let mut errors = FieldErrors::new();
        if !(1..=5).contains(&rating) {
            errors.insert("rating", "must be 1..=5".into());
        }
        let n = text.trim().chars().count();
        if n == 0 || n > REVIEW_TEXT_MAX_CHARS {
            errors.insert(
                "text",
                format!("must be 1..={REVIEW_TEXT_MAX_CHARS} characters"),
            );
        }
        if images.len() > REVIEW_MAX_IMAGES {
            errors.insert("images", format!("at most {REVIEW_MAX_IMAGES} images"));
        } else {
            self.check_images(author, images, &mut errors).await?;
        }
        CatalogError::check_fields(errors)
    }

    pub async fn review_product(
        &self,
        author: UserId,
        product_id: i64,
        line_id: i64,
        rating: i64,
        text: &str,
        images: &[i64],
    ) -> Result<ProductReviewRecord, CatalogError> {
        self.product_detail(product_id, None, false).await?;
        let line = match self.sql.catalog().reviewable_line(line_id).await? {
            Some(l) if l.buyer_id == author.get() => l,
            _ => return Err(CatalogError::not_found("order line")),
        };
        if line.product_id != Some(product_id) {
            return Err(CatalogError::field(
                "line_id",
                "is not a line of this product",
            ));
        }
        if !matches!(line.order_status.as_str(), "paid" | "partially_cancelled") {
            return Err(CatalogError::new(
                Code::InvalidState,
                "only a paid order line can be reviewed",
            ));
        }
        self.check_review(author, rating, text, images).await?;
        match self
            .sql
            .catalog()
            .insert_product_review(&line, product_id, rating, text.trim(), images, now_ms())
            .await?
        {
            Some(id) => self
                .sql
                .catalog()
                .product_review(id)
                .await?
                .ok_or_else(|| CatalogError::internal("review vanished")),
            None => Err(CatalogError::new(
                Code::AlreadyReviewed,
                "this order line is reviewed already; edit that review instead",
            )),
        }
    }

    /// A review of this product, or 404.
    async fn review_of(
        &self,
        product_id: i64,
        review_id: i64,
    ) -> Result<ProductReviewRecord, CatalogError> {
        match self.sql.catalog().product_review(review_id).await? {
            Some(r) if r.product_id == product_id => Ok(r),
            _ => Err(CatalogError::not_found("review")),
        }
    }

    pub async fn edit_review(
        &self,
        author: UserId,
        product_id: i64,
        review_id: i64,
        rating: Option<i64>,
        text: Option<String>,
        images: Option<Vec<i64>>,
    ) -> Result<ProductReviewRecord, CatalogError> {
        let r = self.review_of(product_id, review_id).await?;
        if r.user_id != author.get() {
            return Err(CatalogError::forbidden("only its author may edit a review"));
        }
        let rating = rating.unwrap_or(r.rating);
        let text = text.unwrap_or_else(|| r.body.clone());
        let images = images.unwrap_or_else(|| r.images.clone());
        self.check_review(author, rating, &text, &images).await?;
        self.sql
            .catalog()
            .update_product_review(review_id, author, rating, text.trim(), &images, now_ms())
            .await?;
        self.review_of(product_id, review_id).await
    }

    pub async fn delete_review(
        &self,
        user: UserId,
        admin: bool,
        product_id: i64,
        review_id: i64,
    ) -> Result<(), CatalogError> {
        let r = self.review_of(product_id, review_id).await?;
        if r.user_id != user.get() && !admin {
            return Err(CatalogError::forbidden(
                "only its author or an administrator may delete a review",
            ));
        }
        self.sql.catalog().delete_product_review(review_id).await?;
        Ok(())
    }

    pub async fn reviews(
        &self,
        product_id: i64,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Vec<ProductReviewRecord>, CatalogError> {
        let limit = page_limit(limit)?;
        self.product_detail(product_id, None, false).await?;
        Ok(self
            .sql
            .catalog()
            .product_reviews(product_id, before, limit)
            .await?)
    }
}
