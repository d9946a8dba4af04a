//! Emails of notifications against a real SMTP server started by the test
//! (tests/api/smtp_sink.rs): the receipt arrives with the right recipient,
//! subject and body, once; an SMTP outage delays a cancellation email and
//! then delivers it, once; a switched-off email is not sent; without
//! `smtp_url` emails are written as .eml files; a mail job in flight at
//! shutdown finishes before the stores close and the ones not started are
//! given back, so nothing is sent twice or held until a lease runs out.

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

#[actix_web::test]
async fn a_job_in_flight_at_shutdown_finishes_and_the_rest_are_given_back() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(&[("smtp_url", url.as_str()), ("outbox_poll_ms", "50")]).await;
    // A slow mail server: every verification email's job stays in flight
    // for 1.5 s after the server has read it.
    sink.set_hold(Duration::from_millis(1500));
    let addresses = ["stop-a@x.com", "stop-b@x.com", "stop-c@x.com"];
    for (i, email) in addresses.iter().enumerate() {
        let r = app
            .signup(email, "password-stop", &format!("stopper{i}"))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    eventually(Duration::from_secs(10), "a mail job in flight", || async {
        (!sink.verification_mails().is_empty()).then_some(())
    })
    .await;
    // Stop while that job waits for the mail server: the stop waits for it
    // (well within the grace period) and starts no other job.
    let mut app = app;
    app.stop().await;
    let sent_before_restart = sink.verification_mails().len();
    assert!(
        (1..=addresses.len()).contains(&sent_before_restart),
        "{sent_before_restart}"
    );
    // A job left claimed would wait for its 60 s lease; the jobs not
    // started were given back, so the restarted server sends them at once,
    // and the finished one is not sent again.
    sink.set_hold(Duration::ZERO);
    let app = app.restart().await;
    let mails = eventually(Duration::from_secs(15), "every address mailed", || async {
        let m = sink.verification_mails();
        (m.len() >= addresses.len()).then_some(m)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut to: Vec<String> = sink
        .verification_mails()
        .iter()
        .flat_map(|m| m.to.clone())
        .collect();
    to.sort();
    assert_eq!(to, addresses, "one mail per address: {mails:?}");
    // And each job is recorded done: none waits in a claim that lapses
    // only with its lease (a stop that closed the database under the job
    // in flight would leave it so, and send it again a minute later).
    let sql = app.app_state.engines().sql.clone();
    eventually(Duration::from_secs(10), "every mail job done", || async {
        let pending = sql.outbox().jobs("pending", None, 100).await.expect("jobs");
        (!pending.iter().any(|j| j.kind == "email_verify")).then_some(())
    })
    .await;
    let done = sql.outbox().jobs("done", None, 100).await.expect("jobs");
    assert_eq!(
        done.iter().filter(|j| j.kind == "email_verify").count(),
        addresses.len()
    );
}
