//! Cancels (refunds) of paid orders and the provider's side of them.
//!
//! [`SqlStore::cancel_paid_lines`] is one transaction: each line's cancelled
//! quantity goes up by a conditional update (never past what was bought,
//! never on a reviewed line), the stock of those quantities goes back (a
//! used listing goes back on sale), the payment's cancelled amount goes up
//! (never past what was paid), the order becomes `partially_cancelled` or
//! `cancelled`, and a `pending` refund row plus its `payment_refund` outbox
//! job are written. Stock therefore comes back exactly once, with the
//! cancel that caused it; the provider is told by the job (at least once,
//! under one idempotency key per refund).

use crate::store::sql::PaymentsSql;
use serde::{Deserialize, Serialize};

use super::outbox::enqueue;
use super::{retrying, NewJob};
use crate::store::StoreError;

/// The outbox kind that makes the provider refund a [`RefundRecord`].
pub const JOB_PAYMENT_REFUND: &str = "payment_refund";

/// How many of one line to cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    pub line: i64,
    pub quantity: i64,
}

/// A line of the cancel as the transaction applies it.
#[derive(Debug, Clone, Copy)]
pub struct CancelLine {
    pub line: i64,
    pub quantity: i64,
    /// Shop line: the option whose stock comes back.
    pub option_id: Option<i64>,
    /// Used-listing line: the listing that goes back on sale.
    pub listing_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    pub order_id: i64,
    pub payment_id: i64,
    pub lines: &'a [CancelLine],
    /// Sum of unit price x quantity of `lines` (or, for a provider-side
    /// cancel without lines, the amount the provider cancelled).
    pub amount: i64,
    pub reason: &'a str,
    /// `buyer`, `admin` or `provider`.
    pub source: &'a str,
    pub requested_by: Option<i64>,
    pub idempotency_key: &'a str,
    /// `pending` (the provider still has to refund) or `done` (it already
    /// did: a cancel made at the provider and learnt by webhook).
    pub status: &'a str,
    /// Who makes the first attempt at once (`claimer`, claim until): the
    /// job is written already claimed, so the outbox worker does not run
    /// it at the same time (one provider call at a time per refund).
    pub claim: Option<(&'a str, i64)>,
    /// More jobs to write with it (an event of a cancel already refunded).
    pub jobs: &'a [NewJob],
}

/// What [`SqlStore::cancel_paid_lines`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// Cancelled, with this refund to make (or made, `done`).
    Refund(Box<RefundRecord>),
    /// Cancelled lines worth 0 won: nothing to refund, no refund row.
    Free,
    /// A condition no longer held; nothing was written.
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    pub id: i64,
    pub order_id: i64,
    pub payment_id: i64,
    pub amount: i64,
    pub cancelled_before: i64,
    pub reason: String,
    pub lines: Vec<RefundLine>,
    pub source: String,
    pub status: String,
    pub idempotency_key: String,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub done_at: Option<i64>,
}

type RefundRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
);
const REFUND_COLUMNS: &str =
    "id, order_id, payment_id, amount, cancelled_before, reason, line_items, \
     source, status, idempotency_key, last_error, created_at, done_at";

fn refund(r: RefundRow) -> RefundRecord {
    RefundRecord {
        id: r.0,
        order_id: r.1,
        payment_id: r.2,
        amount: r.3,
        cancelled_before: r.4,
        reason: r.5,
        lines: serde_json::from_str(&r.6).unwrap_or_default(),
        source: r.7,
        status: r.8,
        idempotency_key: r.9,
        last_error: r.10,
        created_at: r.11,
        done_at: r.12,
    }
}

impl PaymentsSql<'_> {
    /// Apply a cancel (see the module doc). [`Cancelled::Changed`]: a
    /// condition no longer holds (a line was reviewed or cancelled
    /// meanwhile, the payment or the order changed): nothing was written.
    pub async fn cancel_paid_lines(
        &self,
        r: &NewRefund<'_>,
        now: i64,
    ) -> Result<Cancelled, StoreError> {
        let id = retrying("cancel_paid_lines", || async {
            let mut tx = self.begin_write().await?;
            for l in r.lines {
                let done = sqlx::query(
                    "UPDATE order_lines SET cancelled_quantity = cancelled_quantity + ? \
                     WHERE id = ? AND order_id = ? AND cancelled_quantity + ? <= quantity \
                     AND NOT EXISTS (SELECT 1 FROM product_reviews pr WHERE pr.order_line_id = order_lines.id)",
                )
                .bind(l.quantity)
                .bind(l.line)
                .bind(r.order_id)
                .bind(l.quantity)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(None);
                }
                if let Some(option) = l.option_id {
                    sqlx::query("UPDATE product_options SET stock = stock + ? WHERE id = ?")
                        .bind(l.quantity)
                        .bind(option)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(listing) = l.listing_id {
                    sqlx::query(
                        "UPDATE listings SET status = 'selling', buyer_id = NULL, sold_at = NULL, updated_at = ? \
                         WHERE id = ? AND status = 'sold' AND deleted_at IS NULL",
                    )
                    .bind(now)
                    .bind(listing)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            // Free lines only (0 won): nothing to give back, so no payment
            // change, no refund row (`refunds.amount > 0`) and no provider
            // call; the lines, the stock and the order change as usual.
            let free = r.amount == 0;
            let (cancelled_after, paid_amount) = if free {
                (0, 0)
            } else {
                // `status` first: MySQL evaluates SET left to right with
                // the new values, SQLite with the old ones; this order
                // reads the old `cancelled_amount` on both.
                let paid = sqlx::query(
                    "UPDATE payments SET \
                     status = CASE WHEN cancelled_amount + ? >= amount THEN 'cancelled' ELSE 'partially_cancelled' END, \
                     cancelled_amount = cancelled_amount + ?, updated_at = ? \
                     WHERE id = ? AND order_id = ? AND cancelled_amount + ? <= amount",
                )
                .bind(r.amount)
                .bind(r.amount)
                .bind(now)
                .bind(r.payment_id)
                .bind(r.order_id)
                .bind(r.amount)
                .execute(&mut *tx)
                .await?;
                if paid.rows_affected() != 1 {
                    return Ok(None);
                }
                sqlx::query_as::<_, (i64, i64)>(
                    "SELECT cancelled_amount, amount FROM payments WHERE id = ?",
                )
                .bind(r.payment_id)
                .fetch_one(&mut *tx)
                .await?
            };
            let (left,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM order_lines WHERE order_id = ? AND cancelled_quantity < quantity",
            )
            .bind(r.order_id)
            .fetch_one(&mut *tx)
            .await?;
            // A free line left over does not keep the order open once all
            // the money is back, but a 0-won payment says nothing.
            let all = left == 0 || (paid_amount > 0 && cancelled_after >= paid_amount);
            let status = if all { "cancelled" } else { "partially_cancelled" };
            let moved = sqlx::query(
                "UPDATE orders SET status = ?, ended_at = CASE WHEN ? = 1 THEN ? ELSE ended_at END, updated_at = ? \
                 WHERE id = ? AND status IN ('paid', 'partially_cancelled')",
            )
            .bind(status)
            .bind(i64::from(all))
            .bind(now)
            .bind(now)
            .bind(r.order_id)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                return Ok(None);
            }
            if free {
                for job in r.jobs {
                    enqueue(&mut tx, job, now).await?;
                }
                self.outbox().commit_with_jobs(tx).await?;
                return Ok(Some(None));
            }
            let items: Vec<RefundLine> = r
                .lines
                .iter()
                .map(|l| RefundLine {
                    line: l.line,
                    quantity: l.quantity,
                })
                .collect();
            let reason: String = r.reason.chars().take(200).collect();
            sqlx::query(
                "INSERT INTO refunds (order_id, payment_id, amount, cancelled_before, reason, line_items, source, \
                 requested_by, status, idempotency_key, created_at, done_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.order_id)
            .bind(r.payment_id)
            .bind(r.amount)
            .bind(cancelled_after - r.amount)
            .bind(reason)
            .bind(serde_json::to_string(&items).unwrap_or_else(|_| "[]".into()))
            .bind(r.source)
            .bind(r.requested_by)
            .bind(r.status)
            .bind(r.idempotency_key)
            .bind(now)
            .bind((r.status == "done").then_some(now))
            .execute(&mut *tx)
            .await?;
            let (id,): (i64,) = sqlx::query_as("SELECT id FROM refunds WHERE idempotency_key = ?")
                .bind(r.idempotency_key)
                .fetch_one(&mut *tx)
                .await?;
            for job in r.jobs {
                enqueue(&mut tx, job, now).await?;
            }
            if r.status == "pending" {
                enqueue(
                    &mut tx,
                    &NewJob {
                        kind: JOB_PAYMENT_REFUND,
                        payload: serde_json::json!({ "refund": id }),
                        dedup_key: format!("{JOB_PAYMENT_REFUND}:{id}"),
                        due_at: now,
                    },
                    now,
                )
                .await?;
                if let Some((claimer, until)) = r.claim {
                    sqlx::query(
                        "UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = 1 \
                         WHERE dedup_key = ? AND status = 'pending'",
                    )
                    .bind(claimer)
                    .bind(until)
                    .bind(format!("{JOB_PAYMENT_REFUND}:{id}"))
                    .execute(&mut *tx)
                    .await?;
                }
            }
            self.outbox().commit_with_jobs(tx).await?;
            Ok(Some(Some(id)))
        })
        .await?;
        match id {
            Some(Some(id)) => Ok(self
                .refund(id)
                .await?
                .map_or(Cancelled::Changed, |r| Cancelled::Refund(Box::new(r)))),
            Some(None) => Ok(Cancelled::Free),
            None => Ok(Cancelled::Changed),
        }
    }

    pub async fn refund(&self, id: i64) -> Result<Option<RefundRecord>, StoreError> {
        let row: Option<RefundRow> = sqlx::query_as(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(self.writer())
        .await?;
        Ok(row.map(refund))
    }

    pub async fn refunds_of_order(&self, order_id: i64) -> Result<Vec<RefundRecord>, StoreError> {
        let rows: Vec<RefundRow> = sqlx::query_as(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE order_id = ? ORDER BY id"
        ))
        .bind(order_id)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(refund).collect())
    }

    /// Settle a pending refund: `done` (the provider refunded) or `failed`
    /// (it never will; admins are told). False if it was not pending.
    /// `jobs` (e.g. the event that tells the buyer) are written only if
    /// this call settles it.
    pub async fn settle_refund(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<bool, StoreError> {
        retrying("settle_refund", || async {
            let mut tx = self.begin_write().await?;
            let r = sqlx::query(
                "UPDATE refunds SET status = ?, last_error = ?, done_at = ? WHERE id = ? AND status = 'pending'",
            )
            .bind(status)
            .bind(error.map(|e| e.chars().take(900).collect::<String>()))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            for job in jobs {
                enqueue(&mut tx, job, now).await?;
            }
            self.outbox().commit_with_jobs(tx).await?;
            Ok(true)
        })
        .await
    }

    /// The first attempt of a refund's job (made by `claimer`) is over:
    /// done, or due again at `retry_at`.
    pub async fn release_refund_job(
        &self,
        refund_id: i64,
        claimer: &str,
        retry_at: Option<i64>,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let key = format!("{JOB_PAYMENT_REFUND}:{refund_id}");
        let q = match retry_at {
            None => sqlx::query(
                "UPDATE outbox SET status = 'done', done_at = ?, claimed_until = NULL \
                 WHERE dedup_key = ? AND claimed_by = ? AND status = 'pending'",
            )
            .bind(now),
            Some(at) => sqlx::query(
                "UPDATE outbox SET due_at = ?, claimed_until = NULL, last_error = ? \
                 WHERE dedup_key = ? AND claimed_by = ? AND status = 'pending'",
            )
            .bind(at)
            .bind(error.chars().take(900).collect::<String>()),
        };
        q.bind(key).bind(claimer).execute(self.writer()).await?;
        Ok(())
    }
}

impl PaymentsSql<'_> {
    /// Refunds of the same payment before `id` that the provider has not
    /// made yet: a refund waits for them (one provider cancel at a time per
    /// payment, in order, so `cancelled_before` is exact).
    pub async fn earlier_pending_refunds(
        &self,
        payment_id: i64,
        id: i64,
    ) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM refunds WHERE payment_id = ? AND id < ? AND status = 'pending'",
        )
        .bind(payment_id)
        .bind(id)
        .fetch_one(self.writer())
        .await?;
        Ok(n)
    }

    /// The lines of an order that have a product review.
    pub async fn reviewed_lines(&self, order_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT pr.order_line_id FROM product_reviews pr \
             JOIN order_lines l ON l.id = pr.order_line_id WHERE l.order_id = ?",
        )
        .bind(order_id)
        .fetch_all(self.writer())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
