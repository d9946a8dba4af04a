//! The sandbox gateway: a built-in provider with the same behaviour as the
//! real ones, so a whole order can be paid and cancelled with no account
//! anywhere. Logged loudly at start; refused when `env=production`.
//!
//! Documented magic amounts (the last three digits of the amount in won):
//! - `...444`: declined (`REJECT_CARD_COMPANY`), nothing approved;
//! - `...555`: provider error (like a 5xx): outcome unknown, retry later;
//! - `...777`: slow: approved after [`SLOW`] (a provider that takes its
//!   time, e.g. while the order's payment window runs out);
//! - anything else: approved.
//!
//! Idempotency like Toss: a call repeated with the same idempotency key gets
//! the first call's answer; confirming the same payment key again with a
//! different key is `ALREADY_PROCESSED_PAYMENT`. Its ledger lives in our SQL
//! store (`sandbox_payments`, `sandbox_cancels`), so every node of a cluster
//! sees one provider, as with a real one.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    Approved, CancelRequest, Cancelled, ConfirmRequest, GatewayError, PaymentGateway,
    ProviderPayment, ProviderStatus,
};
use crate::domain::money::Won;
use crate::domain::now_ms;
use crate::store::sql::{SandboxCancel, SqlStore};

/// How long a `...777` confirm takes.
pub const SLOW: std::time::Duration = std::time::Duration::from_millis(1500);

/// The sandbox keeps its ledger in our SQL store (its own tables), so every
/// node of a cluster talks to the same "provider".
pub struct Sandbox {
    sql: Arc<SqlStore>,
}

impl Sandbox {
    pub fn new(sql: Arc<SqlStore>) -> Sandbox {
        Sandbox { sql }
    }
}

fn magic(amount: Won) -> i64 {
    amount.get() % 1000
}

fn unavailable(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Unavailable(format!("sandbox ledger: {e}"))
}

#[async_trait]
impl PaymentGateway for Sandbox {
    fn provider(&self) -> &'static str {
        "sandbox"
    }

    async fn confirm(&self, req: &ConfirmRequest) -> Result<Approved, GatewayError> {
        if magic(req.amount) == 777 {
            tokio::time::sleep(SLOW).await;
        }
        match magic(req.amount) {
            444 => {
                return Err(GatewayError::Declined {
                    code: "REJECT_CARD_COMPANY".into(),
                    message: "카드사에서 결제를 거절했습니다 (sandbox)".into(),
                })
            }
            // Unknown outcome: nothing recorded, so a retry may succeed.
            555 => return Err(GatewayError::Unavailable("sandbox: provider error".into())),
            _ => {}
        }
        let now = now_ms();
        match self
            .sql
            .payments()
            .sandbox_approve(
                &req.payment_key,
                &req.order_id,
                req.amount.get(),
                &req.idempotency_key,
                now,
            )
            .await
            .map_err(unavailable)?
        {
            Ok(()) => Ok(Approved {
                payment_key: req.payment_key.clone(),
                amount: req.amount,
                method: "카드".into(),
                approved_at: now,
            }),
            // The same confirm again: the first answer.
            Err((_, amount, _, confirm_key, approved_at)) if confirm_key == req.idempotency_key => {
                Ok(Approved {
                    payment_key: req.payment_key.clone(),
                    amount: Won(amount),
                    method: "카드".into(),
                    approved_at,
                })
            }
            Err(_) => Err(GatewayError::AlreadyProcessed),
        }
    }

    async fn lookup(&self, payment_key: &str) -> Result<ProviderPayment, GatewayError> {
        let (order_id, paid, cancelled, _, _) = self
            .sql
            .payments()
            .sandbox_payment(payment_key)
            .await
            .map_err(unavailable)?
            .ok_or(GatewayError::NotFound)?;
        let status = if cancelled == 0 {
            ProviderStatus::Done
        } else if cancelled < paid {
            ProviderStatus::PartiallyCancelled
        } else {
            ProviderStatus::Cancelled
        };
        Ok(ProviderPayment {
            payment_key: payment_key.to_string(),
            order_id,
            status,
            total: Won(paid),
            cancelled: Won(cancelled),
        })
    }

    async fn cancel(&self, req: &CancelRequest) -> Result<Cancelled, GatewayError> {
        match self
            .sql
            .payments()
            .sandbox_cancel(&req.payment_key, req.amount.get(), &req.idempotency_key)
            .await
            .map_err(unavailable)?
        {
            SandboxCancel::Done(amount, remaining) => Ok(Cancelled {
                payment_key: req.payment_key.clone(),
                cancelled: Won(amount),
                remaining: Won(remaining),
            }),
            SandboxCancel::NoSuchPayment => Err(GatewayError::NotFound),
            SandboxCancel::TooMuch(left) => Err(GatewayError::NotCancelable(format!(
                "{} is more than the {} left",
                req.amount,
                Won(left)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, amount: i64, idem: &str) -> ConfirmRequest {
        ConfirmRequest {
            payment_key: key.into(),
            order_id: "261127-ABCDEFGHJK".into(),
            amount: Won(amount),
            idempotency_key: idem.into(),
            buyer_ref: "1".into(),
            pg_token: None,
        }
    }

    fn cancel(key: &str, amount: i64, idem: &str) -> CancelRequest {
        CancelRequest {
            payment_key: key.into(),
            order_id: "261127-ABCDEFGHJK".into(),
            amount: Won(amount),
            reason: "x".into(),
            idempotency_key: idem.into(),
            cancelled_before: Won::ZERO,
        }
    }

    #[tokio::test]
    async fn approves_declines_and_replays_like_a_provider() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/s.db", dir.path().display());
        let sql = SqlStore::connect(&url).await.expect("connect");
        sql.migrate().await.expect("migrate");
        let s = Sandbox::new(Arc::new(sql));
        let ok = s.confirm(&req("pk1", 10_000, "i1")).await;
        assert!(matches!(ok, Ok(ref a) if a.amount == Won(10_000)));
        assert_eq!(
            s.confirm(&req("pk1", 10_000, "i1")).await,
            ok,
            "same key, same answer"
        );
        assert_eq!(
            s.confirm(&req("pk1", 10_000, "i2")).await,
            Err(GatewayError::AlreadyProcessed)
        );
        assert!(matches!(
            s.confirm(&req("pk2", 10_444, "i3")).await,
            Err(GatewayError::Declined { .. })
        ));
        assert!(matches!(
            s.confirm(&req("pk3", 10_555, "i4")).await,
            Err(GatewayError::Unavailable(_))
        ));
        let c = s.cancel(&cancel("pk1", 4_000, "c1")).await;
        assert!(matches!(c, Ok(ref c) if c.remaining == Won(6_000)));
        assert_eq!(
            s.cancel(&cancel("pk1", 4_000, "c1")).await,
            c,
            "replayed, not twice"
        );
        assert!(matches!(
            s.cancel(&cancel("pk1", 7_000, "c2")).await,
            Err(GatewayError::NotCancelable(_))
        ));
        assert_eq!(
            s.cancel(&cancel("nope", 1, "c3")).await,
            Err(GatewayError::NotFound)
        );
        let seen = s.lookup("pk1").await;
        assert!(
            matches!(seen, Ok(ref p) if p.status == ProviderStatus::PartiallyCancelled && p.cancelled == Won(4_000)),
            "{seen:?}"
        );
    }
}
