//! Reviews and manner-score summaries.

use super::*;
use crate::store::sql::MarketSql;

impl MarketSql<'_> {
    /// Insert a review; `jobs` (the reviewee's event) only with it.
    pub async fn insert_review(
        &self,
        r: &NewReview<'_>,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<ReviewInsert, StoreError> {
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(
            "INSERT INTO reviews (listing_id, reviewer_id, reviewee_id, rating, tags, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.listing.get())
        .bind(r.reviewer.get())
        .bind(r.reviewee.get())
        .bind(r.rating)
        .bind(r.tags.join(","))
        .bind(r.body)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if !inserted(result)? {
            return Ok(ReviewInsert::AlreadyReviewed);
        }
        enqueue_all(&mut tx, jobs, now).await?;
        self.outbox().commit_with_jobs(tx).await?;
        Ok(ReviewInsert::Added)
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
}
