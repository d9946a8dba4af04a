//! The Toss Payments and KakaoPay adapters against local fakes of the
//! providers (`fake_pay`): happy paths, idempotent repeats, declines,
//! outages, lost answers, slow answers and refused credentials.

use std::time::{Duration, Instant};

use jangteo::domain::money::Won;
use jangteo::domain::now_ms;
use jangteo::payments::kakaopay::{KakaoPay, KakaoPaySettings};
use jangteo::payments::toss::{Toss, TossSettings};
use jangteo::payments::{
    CancelRequest, ConfirmRequest, GatewayError, PaymentGateway, ProviderStatus, ReadyRequest,
};

use crate::fake_pay::{FakeKakaoPay, FakeToss};

const TOSS_KEY: &str = "test_sk_fake0000000000000000000";
const KAKAO_KEY: &str = "DEVFAKE00000000000000000000000000000000";
const CID: &str = "TC0ONETIME";
const ORDER: &str = "260101-ABCDEFGHJK";

fn toss_with(fake: &FakeToss, secret_key: &str, timeout: Duration) -> Toss {
    Toss::new(TossSettings {
        secret_key: secret_key.into(),
        base_url: fake.base_url(),
        timeout,
    })
    .expect("toss adapter")
}

fn toss(fake: &FakeToss) -> Toss {
    toss_with(fake, TOSS_KEY, Duration::from_secs(5))
}

fn kakao_with(fake: &FakeKakaoPay, secret_key: &str, cid: &str, timeout: Duration) -> KakaoPay {
    KakaoPay::new(KakaoPaySettings {
        secret_key: secret_key.into(),
        cid: cid.into(),
        base_url: fake.base_url(),
        timeout,
    })
    .expect("kakaopay adapter")
}

fn kakao(fake: &FakeKakaoPay) -> KakaoPay {
    kakao_with(fake, KAKAO_KEY, CID, Duration::from_secs(5))
}

fn confirm(payment_key: &str, amount: i64, idempotency_key: &str) -> ConfirmRequest {
    ConfirmRequest {
        payment_key: payment_key.into(),
        order_id: ORDER.into(),
        amount: Won(amount),
        idempotency_key: idempotency_key.into(),
        buyer_ref: "7".into(),
        pg_token: None,
    }
}

fn with_token(mut req: ConfirmRequest, pg_token: &str) -> ConfirmRequest {
    req.pg_token = Some(pg_token.into());
    req
}

fn cancel(payment_key: &str, amount: i64, before: i64, idempotency_key: &str) -> CancelRequest {
    CancelRequest {
        payment_key: payment_key.into(),
        order_id: ORDER.into(),
        amount: Won(amount),
        reason: "구매자 요청".into(),
        idempotency_key: idempotency_key.into(),
        cancelled_before: Won(before),
    }
}

fn unavailable<T: std::fmt::Debug>(r: &Result<T, GatewayError>) -> bool {
    matches!(r, Err(GatewayError::Unavailable(_)))
}

// ================================================================== Toss

#[actix_web::test]
async fn toss_confirm_is_idempotent_per_key() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let toss = toss(&fake);
    assert_eq!(toss.provider(), "toss");

    let first = toss
        .confirm(&confirm("tpk_1", 15_000, "idem-1"))
        .await
        .expect("approved");
    assert_eq!(first.payment_key, "tpk_1");
    assert_eq!(first.amount, Won(15_000));
    assert_eq!(first.method, "카드");
    assert!(
        (first.approved_at - now_ms()).abs() < 60_000,
        "approvedAt read from the answer: {}",
        first.approved_at
    );

    let again = toss.confirm(&confirm("tpk_1", 15_000, "idem-1")).await;
    assert_eq!(again.as_ref(), Ok(&first), "same key, same answer");
    let confirms = fake.calls_to("confirm");
    assert_eq!(confirms.len(), 2, "{confirms:?}");
    assert!(confirms
        .iter()
        .all(|c| c.method == "POST" && c.idempotency_key.as_deref() == Some("idem-1")));
    assert_eq!(fake.payment_count(), 1, "one approval at the provider");
    assert_eq!(fake.payment("tpk_1").expect("payment")["status"], "DONE");

    assert_eq!(
        toss.confirm(&confirm("tpk_1", 15_000, "idem-2")).await,
        Err(GatewayError::AlreadyProcessed)
    );
}

#[actix_web::test]
async fn toss_decline_is_declined_and_not_retried() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let toss = toss(&fake);
    fake.decline("tpk_d");
    let r = toss.confirm(&confirm("tpk_d", 9_000, "idem-d")).await;
    assert!(
        matches!(&r, Err(GatewayError::Declined { code, .. }) if code == "REJECT_CARD_COMPANY"),
        "{r:?}"
    );
    assert_eq!(fake.calls_to("confirm").len(), 1);
    assert_eq!(fake.payment("tpk_d").expect("payment")["status"], "ABORTED");
    let seen = toss.lookup("tpk_d").await.expect("lookup");
    assert_eq!(seen.status, ProviderStatus::Failed);
}

#[actix_web::test]
async fn toss_outages_are_retried_with_the_same_key() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let toss = toss(&fake);

    // One 500, then the retry approves.
    fake.fail_next(1);
    let ok = toss.confirm(&confirm("tpk_r", 20_000, "idem-r")).await;
    assert!(matches!(&ok, Ok(a) if a.amount == Won(20_000)), "{ok:?}");
    let confirms = fake.calls_to("confirm");
    assert_eq!(confirms.len(), 2, "{confirms:?}");
    assert!(confirms
        .iter()
        .all(|c| c.idempotency_key.as_deref() == Some("idem-r")));

    // Approved, but the answer was lost: the retry gets the stored answer.
    fake.lose_next("confirm", 1);
    let ok = toss.confirm(&confirm("tpk_l", 21_000, "idem-l")).await;
    assert!(matches!(&ok, Ok(a) if a.amount == Won(21_000)), "{ok:?}");
    assert_eq!(fake.payment_count(), 2, "approved once");

    // Down for good: three attempts, then the outcome is unknown.
    fake.fail_next(10);
    let r = toss.confirm(&confirm("tpk_x", 22_000, "idem-x")).await;
    assert!(unavailable(&r), "{r:?}");
    let attempts: Vec<_> = fake
        .calls_to("confirm")
        .into_iter()
        .filter(|c| c.idempotency_key.as_deref() == Some("idem-x"))
        .collect();
    assert_eq!(attempts.len(), 3);
    assert!(fake.payment("tpk_x").is_none());
    fake.fail_next(0);
}

#[actix_web::test]
async fn toss_slow_answer_is_unavailable() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let toss = toss_with(&fake, TOSS_KEY, Duration::from_millis(300));
    fake.delay(Duration::from_millis(1_000));
    let started = Instant::now();
    let r = toss.confirm(&confirm("tpk_s", 5_000, "idem-s")).await;
    assert!(unavailable(&r), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout"
    );
    // The provider did approve: "unavailable" meant "outcome unknown".
    fake.delay(Duration::ZERO);
    let seen = toss.lookup("tpk_s").await.expect("lookup");
    assert_eq!(seen.status, ProviderStatus::Done);
    assert_eq!(
        toss.confirm(&confirm("tpk_s", 5_000, "idem-s"))
            .await
            .map(|a| a.amount),
        Ok(Won(5_000)),
        "the same key later gets the approval"
    );
}

#[actix_web::test]
async fn toss_wrong_secret_key_is_unavailable() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let toss = toss_with(&fake, "test_sk_wrong", Duration::from_secs(5));
    assert_eq!(
        toss.confirm(&confirm("tpk_k", 5_000, "idem-k")).await,
        Err(GatewayError::Unavailable(
            "toss: the secret key was refused".into()
        ))
    );
    assert_eq!(fake.calls().len(), 1, "a refused key is not retried");
    assert_eq!(fake.payment_count(), 0);
}

#[actix_web::test]
async fn toss_cancels_in_parts() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let toss = toss(&fake);
    toss.confirm(&confirm("tpk_c", 10_000, "idem-c"))
        .await
        .expect("approved");

    let part = toss
        .cancel(&cancel("tpk_c", 4_000, 0, "c-1"))
        .await
        .expect("partial cancel");
    assert_eq!((part.cancelled, part.remaining), (Won(4_000), Won(6_000)));
    assert_eq!(
        toss.cancel(&cancel("tpk_c", 4_000, 0, "c-1"))
            .await
            .as_ref(),
        Ok(&part),
        "replayed, not cancelled twice"
    );
    let seen = toss.lookup("tpk_c").await.expect("lookup");
    assert_eq!(seen.status, ProviderStatus::PartiallyCancelled);
    assert_eq!((seen.total, seen.cancelled), (Won(10_000), Won(4_000)));
    assert_eq!(seen.order_id, ORDER);
    let payment = fake.payment("tpk_c").expect("payment");
    assert_eq!(payment["status"], "PARTIAL_CANCELED");
    assert_eq!(payment["cancels"].as_array().map(Vec::len), Some(1));

    let r = toss.cancel(&cancel("tpk_c", 7_000, 4_000, "c-2")).await;
    assert!(matches!(r, Err(GatewayError::NotCancelable(_))), "{r:?}");

    let rest = toss
        .cancel(&cancel("tpk_c", 6_000, 4_000, "c-3"))
        .await
        .expect("cancel the rest");
    assert_eq!(rest.remaining, Won::ZERO);
    let seen = toss.lookup("tpk_c").await.expect("lookup");
    assert_eq!(seen.status, ProviderStatus::Cancelled);
    assert_eq!(seen.cancelled, Won(10_000));
    assert_eq!(
        fake.payment("tpk_c").expect("payment")["cancels"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let r = toss.cancel(&cancel("tpk_c", 1, 10_000, "c-4")).await;
    assert!(matches!(r, Err(GatewayError::NotCancelable(_))), "{r:?}");
    assert_eq!(
        toss.cancel(&cancel("nope", 1_000, 0, "c-5")).await,
        Err(GatewayError::NotFound)
    );
    assert_eq!(toss.lookup("nope").await, Err(GatewayError::NotFound));
}

#[actix_web::test]
async fn toss_lookup_sees_a_console_cancel() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let toss = toss(&fake);
    toss.confirm(&confirm("tpk_m", 8_000, "idem-m"))
        .await
        .expect("approved");
    fake.console_cancel("tpk_m");
    let seen = toss.lookup("tpk_m").await.expect("lookup");
    assert_eq!(seen.status, ProviderStatus::Cancelled);
    assert_eq!((seen.total, seen.cancelled), (Won(8_000), Won(8_000)));
    let lookups = fake.calls_to("tpk_m");
    assert!(lookups
        .iter()
        .all(|c| c.method == "GET" && c.idempotency_key.is_none()));
}

// ============================================================== KakaoPay

fn ready_request(amount: i64) -> ReadyRequest {
    ReadyRequest {
        order_id: ORDER.into(),
        buyer_ref: "7".into(),
        item_name: "빈티지 의자".into(),
        quantity: 1,
        amount: Won(amount),
        approval_url: "http://127.0.0.1/pay/kakaopay/approve".into(),
        cancel_url: "http://127.0.0.1/pay/kakaopay/cancel".into(),
        fail_url: "http://127.0.0.1/pay/kakaopay/fail".into(),
    }
}

/// Ready, and the buyer approves: (tid, pg_token).
async fn kakao_ready(fake: &FakeKakaoPay, kakao: &KakaoPay, amount: i64) -> (String, String) {
    let ready = kakao.ready(&ready_request(amount)).await.expect("ready");
    let token = fake.buyer_approves(&ready.payment_key);
    (ready.payment_key, token)
}

#[actix_web::test]
async fn kakaopay_pays_and_cancels_in_parts() {
    let fake = FakeKakaoPay::start(KAKAO_KEY, CID).await;
    let kakao = kakao(&fake);
    assert_eq!(kakao.provider(), "kakaopay");

    let ready = kakao.ready(&ready_request(10_000)).await.expect("ready");
    assert!(ready.payment_key.starts_with('T'), "{ready:?}");
    assert!(ready.redirect_pc_url.starts_with("https://"), "{ready:?}");
    assert!(!ready.redirect_mobile_url.is_empty() && !ready.redirect_app_url.is_empty());
    let tid = ready.payment_key;
    assert_eq!(
        kakao.lookup(&tid).await.map(|p| p.status),
        Ok(ProviderStatus::Pending)
    );

    // No pg_token: refused here, KakaoPay is not asked.
    let r = kakao.confirm(&confirm(&tid, 10_000, "k-1")).await;
    assert!(
        matches!(&r, Err(GatewayError::Declined { code, .. }) if code == "INVALID_PG_TOKEN"),
        "{r:?}"
    );
    assert!(fake.calls_to("approve").is_empty());

    let token = fake.buyer_approves(&tid);
    let r = kakao
        .confirm(&with_token(confirm(&tid, 10_000, "k-2"), "not-the-token"))
        .await;
    assert!(
        matches!(&r, Err(GatewayError::Declined { code, .. }) if code == "INVALID_PG_TOKEN"),
        "{r:?}"
    );

    let approved = kakao
        .confirm(&with_token(confirm(&tid, 10_000, "k-3"), &token))
        .await
        .expect("approved");
    assert_eq!(approved.payment_key, tid);
    assert_eq!(approved.amount, Won(10_000));
    assert_eq!(approved.method, "카카오페이머니");
    assert!(
        (approved.approved_at - now_ms()).abs() < 60_000,
        "KST approved_at read: {}",
        approved.approved_at
    );
    // Repeated (the token is spent, KakaoPay refuses a second approve): the
    // payment is approved, and that is the answer.
    assert_eq!(
        kakao
            .confirm(&with_token(confirm(&tid, 10_000, "k-3"), &token))
            .await
            .map(|a| a.amount),
        Ok(Won(10_000))
    );
    assert_eq!(fake.calls_to("approve").len(), 3);

    let seen = kakao.lookup(&tid).await.expect("lookup");
    assert_eq!(seen.status, ProviderStatus::Done);
    assert_eq!((seen.total, seen.cancelled), (Won(10_000), Won::ZERO));
    assert_eq!(seen.order_id, ORDER);

    let part = kakao
        .cancel(&cancel(&tid, 3_000, 0, "kc-1"))
        .await
        .expect("partial cancel");
    assert_eq!((part.cancelled, part.remaining), (Won(3_000), Won(7_000)));
    let seen = kakao.lookup(&tid).await.expect("lookup");
    assert_eq!(seen.status, ProviderStatus::PartiallyCancelled);
    assert_eq!(seen.cancelled, Won(3_000));

    let rest = kakao
        .cancel(&cancel(&tid, 7_000, 3_000, "kc-2"))
        .await
        .expect("cancel the rest");
    assert_eq!(rest.remaining, Won::ZERO);
    let seen = kakao.lookup(&tid).await.expect("lookup");
    assert_eq!(seen.status, ProviderStatus::Cancelled);
    assert_eq!(seen.cancelled, Won(10_000));
    assert_eq!(
        fake.payment(&tid).expect("payment")["status"],
        "CANCEL_PAYMENT"
    );

    let r = kakao.cancel(&cancel(&tid, 1, 10_000, "kc-3")).await;
    assert!(matches!(r, Err(GatewayError::NotCancelable(_))), "{r:?}");
}

#[actix_web::test]
async fn kakaopay_too_large_a_cancel_is_not_cancelable() {
    let fake = FakeKakaoPay::start(KAKAO_KEY, CID).await;
    let kakao = kakao(&fake);
    let (tid, token) = kakao_ready(&fake, &kakao, 5_000).await;
    kakao
        .confirm(&with_token(confirm(&tid, 5_000, "k"), &token))
        .await
        .expect("approved");
    let r = kakao.cancel(&cancel(&tid, 6_000, 0, "kc")).await;
    assert!(matches!(r, Err(GatewayError::NotCancelable(_))), "{r:?}");
    assert_eq!(
        fake.payment(&tid).expect("payment")["canceled_amount"]["total"],
        0
    );
}

#[actix_web::test]
async fn kakaopay_lost_approve_is_recovered_by_lookup() {
    let fake = FakeKakaoPay::start(KAKAO_KEY, CID).await;
    let kakao = kakao(&fake);
    let (tid, token) = kakao_ready(&fake, &kakao, 12_000).await;
    fake.lose_next("approve", 1);
    let approved = kakao
        .confirm(&with_token(confirm(&tid, 12_000, "k"), &token))
        .await
        .expect("approved after all");
    assert_eq!(approved.amount, Won(12_000));
    assert_eq!(approved.method, "카카오페이머니");
    assert_eq!(fake.calls_to("approve").len(), 1, "approve is not repeated");
    assert_eq!(fake.calls_to("order").len(), 1, "looked up instead");
    assert_eq!(
        fake.payment(&tid).expect("payment")["status"],
        "SUCCESS_PAYMENT"
    );
}

#[actix_web::test]
async fn kakaopay_cancel_is_never_doubled() {
    let fake = FakeKakaoPay::start(KAKAO_KEY, CID).await;
    let kakao = kakao(&fake);
    let (tid, token) = kakao_ready(&fake, &kakao, 10_000).await;
    kakao
        .confirm(&with_token(confirm(&tid, 10_000, "k"), &token))
        .await
        .expect("approved");

    // Cancelled, but the answer is lost: the adapter looks, sees it done.
    fake.lose_next("cancel", 1);
    let done = kakao
        .cancel(&cancel(&tid, 4_000, 0, "kc-1"))
        .await
        .expect("cancelled after all");
    assert_eq!((done.cancelled, done.remaining), (Won(4_000), Won(6_000)));
    assert_eq!(fake.calls_to("cancel").len(), 1);

    // The caller repeats the same cancel (it knew of nothing cancelled
    // before it): already made, KakaoPay is not asked to cancel again.
    let again = kakao
        .cancel(&cancel(&tid, 4_000, 0, "kc-1"))
        .await
        .expect("already made");
    assert_eq!(again, done);
    assert_eq!(fake.calls_to("cancel").len(), 1, "not cancelled twice");
    assert_eq!(
        fake.payment(&tid).expect("payment")["canceled_amount"]["total"],
        4_000
    );

    // The next cancel (with what was cancelled before it) is made.
    let more = kakao
        .cancel(&cancel(&tid, 1_000, 4_000, "kc-2"))
        .await
        .expect("cancel more");
    assert_eq!(more.remaining, Won(5_000));
    assert_eq!(fake.calls_to("cancel").len(), 2);

    // KakaoPay down before the cancel is sent: the lookup is retried.
    fake.fail_next(1);
    let last = kakao
        .cancel(&cancel(&tid, 5_000, 5_000, "kc-3"))
        .await
        .expect("cancel the rest");
    assert_eq!(last.remaining, Won::ZERO);
    assert_eq!(fake.calls_to("cancel").len(), 3);
}

#[actix_web::test]
async fn kakaopay_slow_approve_is_unavailable_then_found() {
    let fake = FakeKakaoPay::start(KAKAO_KEY, CID).await;
    let kakao = kakao_with(&fake, KAKAO_KEY, CID, Duration::from_millis(300));
    let (tid, token) = kakao_ready(&fake, &kakao, 7_000).await;
    fake.delay(Duration::from_millis(1_000));
    let started = Instant::now();
    let r = kakao
        .confirm(&with_token(confirm(&tid, 7_000, "k"), &token))
        .await;
    assert!(unavailable(&r), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    fake.delay(Duration::ZERO);
    assert_eq!(
        kakao.lookup(&tid).await.map(|p| p.status),
        Ok(ProviderStatus::Done)
    );
}

#[actix_web::test]
async fn kakaopay_refusals() {
    let fake = FakeKakaoPay::start(KAKAO_KEY, CID).await;
    let kakao = kakao(&fake);

    for wrong in [
        kakao_with(&fake, "DEVWRONG", CID, Duration::from_secs(5)),
        kakao_with(&fake, KAKAO_KEY, "TCWRONG000", Duration::from_secs(5)),
    ] {
        let before = fake.calls().len();
        let r = wrong.ready(&ready_request(1_000)).await;
        assert_eq!(
            r,
            Err(GatewayError::Unavailable(
                "kakaopay: the secret key or cid was refused".into()
            ))
        );
        assert_eq!(fake.calls().len(), before + 1);
    }

    let (tid, token) = kakao_ready(&fake, &kakao, 3_000).await;
    fake.decline(&tid);
    let r = kakao
        .confirm(&with_token(confirm(&tid, 3_000, "k"), &token))
        .await;
    assert!(
        matches!(&r, Err(GatewayError::Declined { code, .. }) if code == "8008"),
        "{r:?}"
    );
    assert_eq!(
        kakao.lookup(&tid).await.map(|p| p.status),
        Ok(ProviderStatus::Failed)
    );

    assert_eq!(
        kakao.lookup("T0000000000000000000").await,
        Err(GatewayError::NotFound)
    );
    assert_eq!(
        kakao
            .cancel(&cancel("T0000000000000000000", 1_000, 0, "kc"))
            .await,
        Err(GatewayError::NotFound)
    );
    assert_eq!(
        kakao
            .confirm(&with_token(
                confirm("T0000000000000000000", 1_000, "k"),
                "x"
            ))
            .await,
        Err(GatewayError::NotFound)
    );

    // Lookups are retried through a short outage, and give up on a long one.
    fake.fail_next(1);
    assert!(kakao.lookup(&tid).await.is_ok());
    fake.fail_next(10);
    let r = kakao.lookup(&tid).await;
    assert!(unavailable(&r), "{r:?}");
    fake.fail_next(0);
}
