//! Reports of listings and users, and the admin queue.

use super::*;

impl Market {
    pub async fn report(
        &self,
        reporter: i64,
        kind: &str,
        target: i64,
        room: Option<i64>,
        reason: &str,
    ) -> Result<i64, MarketError> {
        let reason = reason.trim();
        let mut errors = FieldErrors::new();
        if reason.is_empty() || reason.chars().count() > listing::REPORT_REASON_MAX_CHARS {
            errors.insert(
                "reason",
                format!(
                    "must be 1..={} characters",
                    listing::REPORT_REASON_MAX_CHARS
                ),
            );
        }
        match kind {
            "listing" | "user" => {
                if room.is_some() {
                    errors.insert("room_id", "only for messages".into());
                }
            }
            "message" => {
                if room.is_none() {
                    errors.insert(
                        "room_id",
                        "is required for a message (target_id is its seq)".into(),
                    );
                }
            }
            _ => {
                errors.insert("target_kind", "must be listing, user or message".into());
            }
        }
        MarketError::check_fields(errors)?;
        let exists = match kind {
            // Only what the reporter could see: a deleted listing, or one
            // hidden by someone else, answers exactly like one that never
            // existed (its existence must not leak through reports).
            "listing" => self.sql.market().listing(target).await?.is_some_and(|l| {
                !l.deleted && (l.status != ListingStatus::Hidden || l.seller_id == reporter)
            }),
            "user" => self.sql.accounts().user_by_id(target).await?.is_some(),
            _ => {
                let room_id = room.unwrap_or(0);
                // One can only report what one could see.
                if self.sql.chat().member(room_id, reporter).await?.is_none() {
                    return Err(MarketError::new(
                        Code::NotMember,
                        "you are not a member of that room",
                    ));
                }
                self.messages.message(room_id, target).await?.is_some()
            }
        };
        if !exists {
            return Err(MarketError::not_found(kind));
        }
        Ok(self
            .sql
            .market()
            .insert_report(reporter, kind, target, room, reason, now_ms())
            .await?)
    }

    pub async fn reports(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ReportRecord>, MarketError> {
        Ok(self
            .sql
            .market()
            .reports(before.unwrap_or(i64::MAX), limit)
            .await?)
    }
}
