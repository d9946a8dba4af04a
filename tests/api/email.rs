//! Emails of notifications against a real SMTP server started by the test
//! (tests/api/smtp_sink.rs): the receipt arrives with the right recipient,
//! subject and body, once; an SMTP outage delays a cancellation email and
//! then delivers it, once; a switched-off email is not sent; without
//! `smtp_url` emails are written as .eml files.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{eventually, spawn_app, spawn_app_with};
use crate::refunds::{cancel, paid_order};
use crate::shop::{on_sale, put};
use crate::smtp_sink::SmtpSink;

#[actix_web::test]
async fn receipts_are_mailed_once_and_an_smtp_outage_only_delays_them() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(&[
        ("smtp_url", url.as_str()),
        ("outbox_poll_ms", "50"),
        ("public_url", "https://jangteo.test/"),
    ])
    .await;
    let admin = app.admin().await;
    let buyer = app.user("mail-buyer").await;
    let p = on_sale(
        &app,
        &admin,
        "Diorama",
        "Dior",
        25_000,
        &[("DA", 5), ("DB", 5)],
    )
    .await;
    let o = paid_order(&app, &buyer, &p, 1, 1, "pk-mail").await;
    let mails = eventually(Duration::from_secs(10), "the receipt is mailed", || async {
        let m = sink.mails();
        (!m.is_empty()).then_some(m)
    })
    .await;
    let receipt = &mails[0];
    assert_eq!(receipt.from, "no-reply@jangteo.local");
    assert_eq!(receipt.to, vec![buyer.email.clone()]);
    assert_eq!(receipt.subject(), "[장터] 결제 영수증");
    let text = receipt.text();
    assert!(text.contains("50,000원"), "{text}");
    assert!(
        text.contains(o["order_number"].as_str().expect("n")),
        "{text}"
    );
    assert!(
        receipt.data.contains("multipart/alternative"),
        "plain text and HTML"
    );

    // The mail server goes down; the cancellation waits, then arrives once.
    sink.set_down(true);
    let n = o["order_number"].as_str().expect("n");
    assert_eq!(cancel(&app, &buyer, n, None).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sink.mails().len(),
        1,
        "nothing gets through while it is down"
    );
    sink.set_down(false);
    let mails = eventually(
        Duration::from_secs(20),
        "the cancellation is mailed",
        || async {
            let m = sink.mails();
            (m.len() >= 2).then_some(m)
        },
    )
    .await;
    assert_eq!(mails[1].subject(), "[장터] 결제 취소 안내");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.mails().len(), 2, "each email once");

    // Email switched off for receipts: the next payment is not mailed.
    let r = put(
        &app,
        "/api/me/notification_settings",
        &json!({"items": [{"kind": "payment.approved", "email": false}]}),
        &buyer.token,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    paid_order(&app, &buyer, &p, 1, 1, "pk-mail-2").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.mails().len(), 2);
}

#[actix_web::test]
async fn without_smtp_emails_are_written_as_eml_files() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let buyer = app.user("eml-buyer").await;
    let p = on_sale(&app, &admin, "Caro", "Dior", 8_000, &[("CA", 5), ("CB", 5)]).await;
    paid_order(&app, &buyer, &p, 1, 1, "pk-eml").await;
    let dir = app.data_dir.join("outbox-mail");
    let file = eventually(Duration::from_secs(10), "an .eml file", || async {
        std::fs::read_dir(&dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.extension().is_some_and(|x| x == "eml")
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("notification-"))
            })
    })
    .await;
    let text = std::fs::read_to_string(&file).expect("read the .eml");
    assert!(
        text.contains(&format!("To: \"eml-buyer\" <{}>", buyer.email))
            || text.contains(&buyer.email),
        "{text}"
    );
    assert!(text.contains("Subject: "), "{text}");
}
