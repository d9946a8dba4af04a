//! What users are told: the notification kinds, their default channels,
//! and the pure mapping from a bus event to the notices it causes.
//!
//! Kept free of I/O: the notifications service resolves recipients (e.g.
//! every admin), preferences and listing titles, and stores one row per
//! (event, user).

use serde_json::Value;

use crate::domain::events::Alarm;
use crate::domain::money::Won;

/// A notification kind with its default channels and what it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: &'static str,
    pub in_app: bool,
    pub email: bool,
    /// Shown on the settings page.
    pub description: &'static str,
}

const fn k(kind: &'static str, in_app: bool, email: bool, description: &'static str) -> KindInfo {
    KindInfo {
        kind,
        in_app,
        email,
        description,
    }
}

/// Every kind a user can receive, with defaults: money matters are also
/// emailed (receipt, cancellation, expiry), the rest only in the app.
pub const KINDS: &[KindInfo] = &[
    k(
        "chat.message",
        true,
        false,
        "새 채팅 메시지 (접속 중이 아닐 때)",
    ),
    k("payment.approved", true, true, "결제 완료 (영수증)"),
    k("payment.cancelled", true, true, "결제 취소·부분 취소"),
    k("payment.failed", true, false, "결제 실패"),
    k("order.expired", true, true, "결제 기한이 지나 주문 만료"),
    k("reservation.created", true, false, "내 예약이 잡혔어요"),
    k("reservation.cancelled", true, false, "예약 취소"),
    k("reservation.expired", true, false, "예약 시간 만료"),
    k("listing.sold", true, false, "내 물건이 팔렸어요"),
    k("review.request", true, false, "거래 후기 요청"),
    k(
        "review.product_request",
        true,
        false,
        "구매한 상품 후기 요청",
    ),
    k("keyword.match", true, false, "관심 키워드 새 글"),
    k("price.drop", true, false, "찜한 물건 가격 인하"),
    k(
        "admin.payment_failure",
        true,
        true,
        "관리자: 환불·결제 보상 실패",
    ),
    k("admin.stock_low", true, false, "관리자: 재고 부족"),
    k("broadcast", true, false, "공지사항"),
];

pub fn kind_info(kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// Who a notice goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    User(i64),
    /// Every administrator.
    Admins,
    /// Every active user.
    Everyone,
    /// Users who favourited this listing (not its seller).
    Favourites(i64),
    /// Users with a saved keyword found in this text (not the listing's
    /// seller); `{keyword}` in the body stands for the one that matched.
    KeywordWatchers(String),
}

/// One notice an event causes, before recipients and preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub to: Audience,
    pub kind: &'static str,
    pub title: String,
    pub body: String,
    /// Where the client opens it (a path of the web client).
    pub link: String,
    /// The listing whose title the service fills into `{title}`.
    pub listing: Option<i64>,
}

fn notice(to: Audience, kind: &'static str, title: &str, body: String, link: String) -> Notice {
    Notice {
        to,
        kind,
        title: title.to_string(),
        body,
        link,
        listing: None,
    }
}

fn int(d: &Value, key: &str) -> Option<i64> {
    d.get(key).and_then(Value::as_i64)
}

fn text<'a>(d: &'a Value, key: &str) -> &'a str {
    d.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The notices an event causes (none for kinds nobody is told about).
/// `{title}` in a body stands for the listing's title.
pub fn notices(kind: Alarm, d: &Value) -> Vec<Notice> {
    let mut out = Vec::new();
    let order = text(d, "order");
    let order_link = format!("/orders/{order}");
    let won = |key: &str| Won(int(d, key).unwrap_or(0));
    match kind {
        Alarm::PaymentApproved => {
            if let Some(buyer) = int(d, "buyer") {
                out.push(notice(
                    Audience::User(buyer),
                    "payment.approved",
                    "결제가 완료되었어요",
                    format!("주문 {order}의 {} 결제가 완료되었어요.", won("amount")),
                    order_link,
                ));
            }
        }
        Alarm::PaymentCancelled => {
            if let Some(buyer) = int(d, "buyer") {
                let partial = d.get("partial").and_then(Value::as_bool) == Some(true);
                let (title, what) = if partial {
                    ("결제가 부분 취소되었어요", "부분 취소")
                } else {
                    ("결제가 취소되었어요", "취소")
                };
                out.push(notice(
                    Audience::User(buyer),
                    "payment.cancelled",
                    title,
                    format!(
                        "주문 {order}의 {} {what}가 완료되어 환불돼요.",
                        won("amount")
                    ),
                    order_link,
                ));
            }
        }
        Alarm::PaymentFailed => {
            if let Some(buyer) = int(d, "buyer") {
                out.push(notice(
                    Audience::User(buyer),
                    "payment.failed",
                    "결제에 실패했어요",
                    format!("주문 {order}의 결제가 승인되지 않았어요. 다른 결제 수단으로 다시 시도해 주세요."),
                    order_link,
                ));
            }
        }
        Alarm::OrderExpired => {
            if let Some(buyer) = int(d, "buyer") {
                out.push(notice(
                    Audience::User(buyer),
                    "order.expired",
                    "주문이 만료되었어요",
                    format!("주문 {order}의 결제 기한이 지나 주문이 취소되었어요."),
                    order_link,
                ));
            }
        }
        Alarm::OrderReviewRequest => {
            if let Some(buyer) = int(d, "buyer") {
                out.push(notice(
                    Audience::User(buyer),
                    "review.product_request",
                    "구매하신 상품은 어떠셨나요?",
                    format!("주문 {order}의 상품 후기를 남겨주세요. 다른 분들께 큰 도움이 돼요."),
                    order_link,
                ));
            }
        }
        Alarm::PaymentCancelFailed | Alarm::PaymentCompensationFailed => {
            out.push(notice(
                Audience::Admins,
                "admin.payment_failure",
                "환불 처리 실패",
                format!(
                    "{}의 {} 환불이 결제사에서 처리되지 않았어요. 확인이 필요해요.",
                    if order.is_empty() { "결제" } else { order },
                    won("amount")
                ),
                "/admin/payments/failures".into(),
            ));
        }
        Alarm::StockLow => {
            out.push(notice(
                Audience::Admins,
                "admin.stock_low",
                "재고가 얼마 남지 않았어요",
                format!(
                    "{} ({}) 재고 {}개",
                    text(d, "name"),
                    text(d, "label"),
                    int(d, "stock").unwrap_or(0)
                ),
                format!("/admin/products/{}", int(d, "product").unwrap_or(0)),
            ));
        }
        Alarm::ReservationCreated | Alarm::ReservationCancelled | Alarm::ReservationExpired => {
            let (Some(listing), buyer, seller) =
                (int(d, "listing"), int(d, "buyer"), int(d, "seller"))
            else {
                return out;
            };
            let link = format!("/listings/{listing}");
            let (kind, buyer_text, seller_text) = match kind {
                Alarm::ReservationCreated => (
                    "reservation.created",
                    "'{title}' 거래가 예약되었어요.",
                    None,
                ),
                Alarm::ReservationCancelled => (
                    "reservation.cancelled",
                    "'{title}' 예약이 취소되었어요.",
                    Some("'{title}' 예약이 취소되었어요."),
                ),
                _ => (
                    "reservation.expired",
                    "'{title}' 예약 시간이 지나 예약이 풀렸어요.",
                    Some("'{title}' 예약 시간이 지나 다시 판매중이에요."),
                ),
            };
            let title = match kind {
                "reservation.created" => "예약이 잡혔어요",
                "reservation.cancelled" => "예약이 취소되었어요",
                _ => "예약 시간이 끝났어요",
            };
            if let Some(buyer) = buyer {
                let mut n = notice(
                    Audience::User(buyer),
                    kind,
                    title,
                    buyer_text.into(),
                    link.clone(),
                );
                n.listing = Some(listing);
                out.push(n);
            }
            if let (Some(seller), Some(text)) = (seller, seller_text) {
                let mut n = notice(Audience::User(seller), kind, title, text.into(), link);
                n.listing = Some(listing);
                out.push(n);
            }
        }
        Alarm::ListingSold => {
            let Some(listing) = int(d, "listing") else {
                return out;
            };
            let link = format!("/listings/{listing}");
            if let Some(seller) = int(d, "seller") {
                let mut n = notice(
                    Audience::User(seller),
                    "listing.sold",
                    "판매 완료",
                    "'{title}' 거래가 완료되었어요.".into(),
                    link.clone(),
                );
                n.listing = Some(listing);
                out.push(n);
            }
            if let Some(buyer) = int(d, "buyer") {
                let mut n = notice(
                    Audience::User(buyer),
                    "review.request",
                    "거래 후기를 남겨주세요",
                    "'{title}' 거래는 어떠셨나요? 후기를 남겨주세요.".into(),
                    format!("/listings/{listing}/review"),
                );
                n.listing = Some(listing);
                out.push(n);
            }
        }
        Alarm::ListingPriceChanged => {
            let (Some(listing), Some(old), Some(new)) =
                (int(d, "listing"), int(d, "old_price"), int(d, "new_price"))
            else {
                return out;
            };
            if new < old {
                let mut n = notice(
                    Audience::Favourites(listing),
                    "price.drop",
                    "찜한 물건의 가격이 내렸어요",
                    format!("'{{title}}' {} → {}", Won(old), Won(new)),
                    format!("/listings/{listing}"),
                );
                n.listing = Some(listing);
                out.push(n);
            }
        }
        Alarm::ListingCreated => {
            let Some(listing) = int(d, "listing") else {
                return out;
            };
            let title = text(d, "title");
            out.push(Notice {
                to: Audience::KeywordWatchers(title.to_string()),
                kind: "keyword.match",
                title: "관심 키워드 새 글".to_string(),
                body: format!(
                    "'{{keyword}}' 키워드: {title} · {}",
                    Won(int(d, "price").unwrap_or(0))
                ),
                link: format!("/listings/{listing}"),
                listing: Some(listing),
            });
        }
        Alarm::AdminBroadcast => {
            out.push(notice(
                Audience::Everyone,
                "broadcast",
                text(d, "title"),
                text(d, "body").to_string(),
                text(d, "link").to_string(),
            ));
        }
        // Handled by the service itself (they need the store), or told
        // to nobody.
        Alarm::ReviewReceived | Alarm::ChatActivity | Alarm::NotificationBadge => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_notice_kind_is_a_known_kind() {
        let samples = [
            (
                "payment.approved",
                json!({"order": "o", "buyer": 1, "amount": 1000}),
            ),
            (
                "payment.cancelled",
                json!({"order": "o", "buyer": 1, "amount": 1000, "partial": true}),
            ),
            ("payment.failed", json!({"order": "o", "buyer": 1})),
            ("order.expired", json!({"order": "o", "buyer": 1})),
            ("order.review_request", json!({"order": "o", "buyer": 1})),
            ("payment.cancel_failed", json!({"order": "o", "amount": 1})),
            (
                "stock.low",
                json!({"product": 1, "name": "n", "label": "l", "stock": 2}),
            ),
            (
                "reservation.created",
                json!({"listing": 1, "buyer": 2, "seller": 3}),
            ),
            (
                "reservation.cancelled",
                json!({"listing": 1, "buyer": 2, "seller": 3}),
            ),
            (
                "reservation.expired",
                json!({"listing": 1, "buyer": 2, "seller": 3}),
            ),
            (
                "listing.sold",
                json!({"listing": 1, "buyer": 2, "seller": 3}),
            ),
            ("admin.broadcast", json!({"title": "t", "body": "b"})),
            (
                "listing.price_changed",
                json!({"listing": 1, "old_price": 2000, "new_price": 1000}),
            ),
            (
                "listing.created",
                json!({"listing": 1, "seller": 2, "title": "아이폰 15", "price": 900_000}),
            ),
        ];
        let mut seen = std::collections::HashSet::new();
        for (kind, data) in samples {
            let ns = notices(Alarm::parse(kind).expect("a known kind"), &data);
            assert!(!ns.is_empty(), "{kind} tells nobody");
            for n in ns {
                assert!(kind_info(n.kind).is_some(), "{} is not in KINDS", n.kind);
                seen.insert(n.kind);
            }
        }
        // chat.message is made by the service (it needs the room's members).
        assert_eq!(seen.len(), KINDS.len() - 1, "every kind is reachable");
        // Chat between nodes is not an alarm: the consumer skips it.
        assert_eq!(Alarm::parse("chat.presence"), None);
        // A price that went up tells nobody.
        assert!(notices(
            Alarm::parse("listing.price_changed").expect("kind"),
            &json!({"listing": 1, "old_price": 1000, "new_price": 2000})
        )
        .is_empty());
    }

    #[test]
    fn both_sides_hear_of_a_cancelled_reservation_and_the_buyer_is_asked_for_a_review() {
        let ns = notices(
            Alarm::parse("reservation.cancelled").expect("kind"),
            &json!({"listing": 7, "buyer": 2, "seller": 3}),
        );
        let to: Vec<_> = ns.iter().map(|n| n.to.clone()).collect();
        assert_eq!(to, vec![Audience::User(2), Audience::User(3)]);
        let ns = notices(
            Alarm::parse("listing.sold").expect("kind"),
            &json!({"listing": 7, "buyer": 2, "seller": 3}),
        );
        assert_eq!(ns[1].kind, "review.request");
        assert_eq!(ns[1].to, Audience::User(2));
        assert_eq!(ns[1].listing, Some(7));
        // A sale to nobody in particular: only the seller hears of it.
        assert_eq!(
            notices(
                Alarm::parse("listing.sold").expect("kind"),
                &json!({"listing": 7, "buyer": null, "seller": 3})
            )
            .len(),
            1
        );
    }
}

/// An email's subject and its plain-text and HTML bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The Korean email of a notification (receipt, cancellation, expiry have
/// their own subjects; the rest use the notification's title).
pub fn email_for(kind: &str, title: &str, body: &str, link: &str, nickname: &str) -> Email {
    let subject = match kind {
        "payment.approved" => "[장터] 결제 영수증".to_string(),
        "payment.cancelled" => "[장터] 결제 취소 안내".to_string(),
        "order.expired" => "[장터] 주문 만료 안내".to_string(),
        _ => format!("[장터] {title}"),
    };
    let closing = match kind {
        "payment.approved" => "이용해 주셔서 감사합니다. 주문 내역은 앱에서 확인할 수 있어요.",
        "payment.cancelled" => "환불은 결제 수단에 따라 영업일 기준 3~5일 안에 처리돼요.",
        "order.expired" => "다시 주문하시려면 상품 페이지에서 주문해 주세요.",
        _ => "",
    };
    let text = format!(
        "{nickname}님, 안녕하세요.\n\n{title}\n{body}\n{closing}\n\n바로가기: {link}\n\n장터 드림\n(이 메일은 발신 전용입니다. 알림 설정은 앱의 설정 > 알림에서 바꿀 수 있어요.)\n"
    );
    let html = format!(
        "<!doctype html><html lang=\"ko\"><body><p>{}님, 안녕하세요.</p><h1>{}</h1><p>{}</p><p>{}</p>\
         <p><a href=\"{}\">바로가기</a></p><p>장터 드림</p>\
         <p><small>이 메일은 발신 전용입니다. 알림 설정은 앱의 설정 &gt; 알림에서 바꿀 수 있어요.</small></p></body></html>",
        escape_html(nickname),
        escape_html(title),
        escape_html(body),
        escape_html(closing),
        escape_html(link),
    );
    Email {
        subject,
        text,
        html,
    }
}

/// The email with the verification link (Korean, plain text and HTML).
pub fn verification_email(nickname: &str, link: &str) -> Email {
    let text = format!(
        "{nickname}님, 장터에 오신 것을 환영해요.\n\n아래 링크를 누르면 이메일 주소 인증이 끝나요. \
         인증을 마치면 물건을 팔고 결제할 수 있어요.\n\n{link}\n\n\
         장터에 가입한 적이 없다면 이 메일은 무시해 주세요. 누군가 주소를 잘못 입력한 것일 수 있어요.\n\n장터 드림\n"
    );
    let html = format!(
        "<!doctype html><html lang=\"ko\"><body><p>{}님, 장터에 오신 것을 환영해요.</p>\
         <p>아래 버튼을 누르면 이메일 주소 인증이 끝나요. 인증을 마치면 물건을 팔고 결제할 수 있어요.</p>\
         <p><a href=\"{}\">이메일 인증하기</a></p>\
         <p><small>장터에 가입한 적이 없다면 이 메일은 무시해 주세요.</small></p><p>장터 드림</p></body></html>",
        escape_html(nickname),
        escape_html(link),
    );
    Email {
        subject: "[장터] 이메일 주소를 인증해 주세요".to_string(),
        text,
        html,
    }
}

/// The notice to an account's owner that someone signed up with its address.
pub fn signup_attempt_email(nickname: &str, link: &str) -> Email {
    let text = format!(
        "{nickname}님, 안녕하세요.\n\n누군가 이 이메일 주소로 장터에 가입하려고 했어요. \
         이미 가입된 주소라서 새 계정은 만들지 않았어요.\n\
         본인이었다면 아래에서 로그인해 주세요. 본인이 아니라면 이 메일은 무시해도 괜찮아요.\n\n{link}\n\n장터 드림\n"
    );
    let html = format!(
        "<!doctype html><html lang=\"ko\"><body><p>{}님, 안녕하세요.</p>\
         <p>누군가 이 이메일 주소로 장터에 가입하려고 했어요. 이미 가입된 주소라서 새 계정은 만들지 않았어요.</p>\
         <p>본인이었다면 <a href=\"{}\">로그인</a>해 주세요. 본인이 아니라면 이 메일은 무시해도 괜찮아요.</p>\
         <p>장터 드림</p></body></html>",
        escape_html(nickname),
        escape_html(link),
    );
    Email {
        subject: "[장터] 이 주소로 가입 시도가 있었어요".to_string(),
        text,
        html,
    }
}

#[cfg(test)]
mod email_tests {
    use super::*;

    #[test]
    fn receipts_have_their_subject_and_html_is_escaped() {
        let e = email_for(
            "payment.approved",
            "결제가 완료되었어요",
            "30,000원 <b>",
            "/orders/1",
            "김<당근>",
        );
        assert_eq!(e.subject, "[장터] 결제 영수증");
        assert!(e.text.contains("30,000원 <b>"));
        assert!(e.html.contains("30,000원 &lt;b&gt;"));
        assert!(e.html.contains("김&lt;당근&gt;님"));
        assert_eq!(
            email_for("broadcast", "점검", "b", "", "n").subject,
            "[장터] 점검"
        );
    }
}
