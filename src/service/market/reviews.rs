//! Reviews after a sale and the manner score.

use super::*;

impl Market {
    pub async fn review(
        &self,
        user: UserId,
        id: ListingId,
        rating: &str,
        tags: Vec<String>,
        text: Option<String>,
    ) -> Result<(), MarketError> {
        let user = user.get();
        let id = id.get();
        let l = self.live_listing(id).await?;
        let mut errors = FieldErrors::new();
        if rating != "good" && rating != "bad" {
            errors.insert("rating", "must be `good` or `bad`".into());
        }
        if tags.len() > listing::REVIEW_TAGS.len()
            || tags
                .iter()
                .any(|t| !listing::REVIEW_TAGS.contains(&t.as_str()))
        {
            errors.insert(
                "tags",
                format!("must be some of {}", listing::REVIEW_TAGS.join(", ")),
            );
        }
        let text = text.unwrap_or_default().trim().to_string();
        if text.chars().count() > listing::REVIEW_TEXT_MAX_CHARS {
            errors.insert(
                "text",
                format!(
                    "must be at most {} characters",
                    listing::REVIEW_TEXT_MAX_CHARS
                ),
            );
        }
        MarketError::check_fields(errors)?;
        let (Some(buyer), ListingStatus::Sold) = (l.buyer_id, l.status) else {
            return Err(invalid_state(
                "reviews open once the listing is sold to a buyer",
            ));
        };
        let reviewee = if user == l.seller_id {
            buyer
        } else if user == buyer {
            l.seller_id
        } else {
            return Err(MarketError::forbidden(
                "only the buyer and the seller of this deal may review it",
            ));
        };
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        let received = [alarm_job(
            crate::domain::events::Alarm::ReviewReceived,
            reviewee,
            json!({"listing": id, "reviewer": user, "reviewee": reviewee, "rating": rating}),
        )];
        match self
            .sql
            .market()
            .insert_review(
                &NewReview {
                    listing: ListingId(id),
                    reviewer: UserId(user),
                    reviewee: UserId(reviewee),
                    rating,
                    tags: &tags,
                    body: &text,
                },
                &received,
                now_ms(),
            )
            .await?
        {
            ReviewInsert::Added => {
                // The reviewee's manner score shows on their listing pages.
                self.cache.clear(LISTING_CACHE).await;
                Ok(())
            }
            ReviewInsert::AlreadyReviewed => Err(MarketError::new(
                Code::AlreadyReviewed,
                "you already reviewed this deal",
            )),
        }
    }

    pub async fn profile(
        &self,
        id: UserId,
    ) -> Result<(UserRecord, f64, ReviewSummary), MarketError> {
        let id = id.get();
        let user = self
            .sql
            .accounts()
            .user_by_id(id)
            .await?
            .ok_or_else(|| MarketError::not_found("user"))?;
        let summary = self.sql.market().review_summary(id).await?;
        Ok((
            user,
            listing::manner_score(summary.good, summary.bad),
            summary,
        ))
    }
}
