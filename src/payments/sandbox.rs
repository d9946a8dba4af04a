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
//! different key is `ALREADY_PROCESSED_PAYMENT`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Approved, CancelRequest, Cancelled, ConfirmRequest, GatewayError, PaymentGateway,
    ProviderPayment, ProviderStatus,
};
use crate::domain::money::Won;
use crate::domain::now_ms;

/// How long a `...777` confirm takes.
pub const SLOW: std::time::Duration = std::time::Duration::from_millis(1500);

#[derive(Default)]
struct State {
    /// payment key -> (order id, amount approved, amount cancelled so far).
    payments: HashMap<String, (String, Won, Won)>,
    /// idempotency key -> the answer given.
    confirms: HashMap<String, Result<Approved, GatewayError>>,
    cancels: HashMap<String, Result<Cancelled, GatewayError>>,
}

#[derive(Default)]
pub struct Sandbox {
    state: Mutex<State>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox::default()
    }
}

fn magic(amount: Won) -> i64 {
    amount.get() % 1000
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
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(answer) = s.confirms.get(&req.idempotency_key) {
            return answer.clone();
        }
        let answer = match magic(req.amount) {
            444 => Err(GatewayError::Declined {
                code: "REJECT_CARD_COMPANY".into(),
                message: "카드사에서 결제를 거절했습니다 (sandbox)".into(),
            }),
            // Unknown outcome: not remembered, so a retry may succeed.
            555 => return Err(GatewayError::Unavailable("sandbox: provider error".into())),
            _ if s.payments.contains_key(&req.payment_key) => Err(GatewayError::AlreadyProcessed),
            _ => {
                s.payments.insert(
                    req.payment_key.clone(),
                    (req.order_id.clone(), req.amount, Won::ZERO),
                );
                Ok(Approved {
                    payment_key: req.payment_key.clone(),
                    amount: req.amount,
                    method: "카드".into(),
                    approved_at: now_ms(),
                })
            }
        };
        s.confirms
            .insert(req.idempotency_key.clone(), answer.clone());
        answer
    }

    async fn lookup(&self, payment_key: &str) -> Result<ProviderPayment, GatewayError> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (order_id, paid, cancelled) =
            s.payments.get(payment_key).ok_or(GatewayError::NotFound)?;
        let status = if *cancelled == Won::ZERO {
            ProviderStatus::Done
        } else if cancelled < paid {
            ProviderStatus::PartiallyCancelled
        } else {
            ProviderStatus::Cancelled
        };
        Ok(ProviderPayment {
            payment_key: payment_key.to_string(),
            order_id: order_id.clone(),
            status,
            total: *paid,
            cancelled: *cancelled,
        })
    }

    async fn cancel(&self, req: &CancelRequest) -> Result<Cancelled, GatewayError> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(answer) = s.cancels.get(&req.idempotency_key) {
            return answer.clone();
        }
        let answer = match s.payments.get_mut(&req.payment_key) {
            None => Err(GatewayError::NotFound),
            Some((_, paid, cancelled)) => match cancelled.checked_add(req.amount) {
                Some(total) if total <= *paid => {
                    *cancelled = total;
                    Ok(Cancelled {
                        payment_key: req.payment_key.clone(),
                        cancelled: req.amount,
                        remaining: paid.checked_sub(total).unwrap_or(Won::ZERO),
                    })
                }
                _ => Err(GatewayError::NotCancelable(format!(
                    "{} is more than the {} left",
                    req.amount,
                    paid.checked_sub(*cancelled).unwrap_or(Won::ZERO)
                ))),
            },
        };
        s.cancels
            .insert(req.idempotency_key.clone(), answer.clone());
        answer
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
        let s = Sandbox::new();
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
