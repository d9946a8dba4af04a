//! Blocking another user: their listings and chats disappear for the blocker.

use super::*;

impl Market {
    pub async fn block(&self, user: UserId, target: UserId, on: bool) -> Result<(), MarketError> {
        let user = user.get();
        let target = target.get();
        if user == target {
            return MarketError::check_fields(FieldErrors::from([(
                "user",
                "you cannot block yourself".to_string(),
            )]));
        }
        self.sql
            .accounts()
            .user_by_id(target)
            .await?
            .ok_or_else(|| MarketError::not_found("user"))?;
        if on {
            self.sql.market().block(user, target, now_ms()).await?;
        } else {
            self.sql.market().unblock(user, target).await?;
        }
        // Chats between the two stop (or resume) at once.
        let blocked = self.sql.market().blocked_between(user, target).await?;
        for room in self.sql.market().direct_rooms_between(user, target).await? {
            self.hub.set_blocked(room, blocked);
        }
        self.invalidate_feed().await;
        Ok(())
    }

    pub async fn blocks(&self, user: UserId) -> Result<Vec<i64>, MarketError> {
        let user = user.get();
        Ok(self.sql.market().blocked_by(user).await?)
    }
}
