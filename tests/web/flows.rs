//! End-to-end flows of the web client, as people use it.

use serde_json::{json, Value};

use crate::browser::{available, Browser, Driver, Proxy};
use crate::helpers::{spawn_app, TestApp};

const PHONE: (u32, u32) = (360, 740);
const DESKTOP: (u32, u32) = (1280, 800);

/// The node a browser should use: they take turns (two nodes: one each).
fn node(app: &TestApp, i: usize) -> String {
    app.nodes[i % app.nodes.len()].clone()
}

async fn sign_up(b: &mut Browser, base: &str, email: &str, nickname: &str) {
    b.open(base, "/#/signup").await;
    b.type_into("input[name=email]", email).await;
    b.type_into("input[name=nickname]", nickname).await;
    b.type_into("input[name=password]", "password-1234").await;
    b.click("form.auth button[type=submit]").await;
    b.find("section.feed").await;
}

/// Sign up, then follow the verification link from the email (written
/// as `.eml` by the embedded default) in the same browser, as a new member
/// does before selling or paying.
async fn join(b: &mut Browser, app: &TestApp, base: &str, email: &str, nickname: &str) {
    sign_up(b, base, email, nickname).await;
    let dirs = [app.data_dir.join("outbox-mail")];
    let token = crate::common::eventually(
        std::time::Duration::from_secs(10),
        "the verification email",
        || async { crate::common::verification_token_in(&dirs, email) },
    )
    .await;
    b.route(&format!("/verify-email?token={token}")).await;
    b.wait_text(".verify-result h1", "이메일 인증을 마쳤어요")
        .await;
    b.route("/").await;
    b.find("section.feed").await;
}

/// Log in through the login screen (the browser is on it, or `base` opens it).
async fn log_in(b: &mut Browser, base: Option<&str>, email: &str, password: &str) {
    if let Some(base) = base {
        b.open(base, "/#/login").await;
    }
    b.type_into("input[name=email]", email).await;
    b.type_into("input[name=password]", password).await;
    b.click("form.auth button[type=submit]").await;
    b.find("section.feed").await;
}

/// The JSON of a successful answer.
async fn ok_json(r: reqwest::Response) -> Value {
    assert!(r.status().is_success(), "{} {}", r.url(), r.status());
    r.json().await.expect("json")
}

async fn get_json(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    ok_json(app.get(path, token).await).await
}

/// POST that must create something (201); its JSON.
async fn post_json(app: &TestApp, path: &str, body: Value, token: &str) -> Value {
    let r = app.post_json(path, &body, Some(token)).await;
    assert_eq!(r.status(), 201, "POST {path}");
    r.json().await.expect("json")
}

/// A small PNG on disk, for the upload.
fn picture(dir: &std::path::Path) -> std::path::PathBuf {
    let img = image::RgbImage::from_fn(320, 320, |x, y| {
        image::Rgb([
            0xff,
            (0x6f + x * 0x60 / 320) as u8,
            (0x0f + y * 0xb0 / 320) as u8,
        ])
    });
    let path = dir.join("phone.png");
    img.save(&path).expect("write png");
    path
}

/// Bodies of the messages shown in the open room, in order.
async fn bodies(b: &Browser) -> Vec<String> {
    let v = b
        .exec(
            "return [...document.querySelectorAll('.messages .msg:not(.system) .body')].map(e => e.textContent)",
            json!([]),
        )
        .await;
    serde_json::from_value(v).expect("strings")
}

async fn send_chat(b: &Browser, text: &str) {
    b.type_into(".composer textarea", text).await;
    b.click(".composer button[type=submit]").await;
}

/// The message with this text is shown as sent (acknowledged) by its author.
async fn wait_sent(b: &Browser, text: &str) {
    b.wait_js(
        "return [...document.querySelectorAll('.msg.mine')].some(e => !e.classList.contains('pending') \
         && e.dataset.seq && e.querySelector('.body').textContent === arguments[0])",
        json!([text]),
    )
    .await;
}

#[actix_web::test]
async fn two_people_sell_and_buy_through_the_web_client() {
    if !available("two_people_sell_and_buy_through_the_web_client") {
        return;
    }
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let files = tempfile::tempdir().expect("dir");
    let (seller_base, buyer_node) = (node(&app, 0), node(&app, 1));
    // The buyer reaches the server through a proxy the test can cut.
    let net = Proxy::start(&buyer_node).await;
    let mut seller = driver.browser(PHONE.0, PHONE.1).await;
    let mut buyer = driver.browser(DESKTOP.0, DESKTOP.1).await;

    // Sign up (and the login screen, for the README).
    seller.open(&seller_base, "/#/login").await;
    seller.find("form.auth").await;
    seller.screenshot("phone-login").await;
    join(
        &mut seller,
        &app,
        &seller_base,
        "seller@example.com",
        "판매왕",
    )
    .await;
    join(&mut buyer, &app, &net.addr, "buyer@example.com", "구매자").await;

    // The seller posts a listing with a photo (previewed before posting).
    seller.route("/new").await;
    seller
        .upload("input[type=file]", &picture(files.path()))
        .await;
    seller
        .wait_js(
            "return document.querySelectorAll('.previews img').length === 1 && !document.querySelector('.uploading')",
            json!([]),
        )
        .await;
    seller
        .type_into("input[name=title]", "아이폰 15 프로 팝니다")
        .await;
    seller.select("select[name=category]", "digital").await;
    seller.type_into("input[name=price]", "900000").await;
    seller
        .type_into(
            "textarea[name=description]",
            "배터리 효율 95%, 케이스 같이 드려요.",
        )
        .await;
    seller.screenshot("phone-new-listing").await;
    seller.click("form.edit button[type=submit]").await;
    seller
        .wait_text(".listing h1", "아이폰 15 프로 팝니다")
        .await;
    seller.find(".listing .gallery img").await;
    seller.screenshot("phone-listing").await;

    // The buyer finds it by a Korean search, favourites it, opens the chat.
    buyer.type_into("form.search input[name=q]", "아이폰").await;
    buyer.click("form.search button[type=submit]").await;
    buyer
        .wait_text(".items .item-title", "아이폰 15 프로 팝니다")
        .await;
    buyer.screenshot("desktop-feed").await;
    buyer
        .click_text(".items .item-link", "아이폰 15 프로")
        .await;
    buyer.find(".listing .fav").await;
    buyer.click(".listing .fav").await;
    buyer
        .wait_js(
            "return document.querySelector('.fav').getAttribute('aria-pressed') === 'true'",
            json!([]),
        )
        .await;
    let buyer_token = app.login_token("buyer@example.com", "password-1234").await;
    let favs = get_json(&app, "/api/me/favourites", Some(&buyer_token)).await;
    assert_eq!(favs[0]["title"], "아이폰 15 프로 팝니다", "{favs}");
    buyer.screenshot("desktop-listing").await;
    buyer.click_text(".buybar button", "채팅하기").await;
    buyer.find("section.room .composer").await;
    send_chat(&buyer, "안녕하세요! 아직 판매 중인가요?").await;
    wait_sent(&buyer, "안녕하세요! 아직 판매 중인가요?").await;
    // Not read yet: the KakaoTalk-style "1".
    buyer.wait_text(".msg.mine .receipt", "1").await;

    // The seller's chat tab shows the unread badge live; the list the preview.
    seller
        .wait_js("const c = document.getElementById('chat-count'); return !c.hidden && c.textContent === '1'", json!([]))
        .await;
    seller.route("/chats").await;
    seller
        .wait_text(".room .room-preview", "아직 판매 중인가요?")
        .await;
    seller.wait_text(".room .unread", "1").await;
    seller.screenshot("phone-chats").await;
    seller.click(".room a").await;
    seller
        .wait_text(".messages .msg.theirs .body", "아직 판매 중인가요?")
        .await;
    // Reading clears the badge and shows the receipt to the buyer.
    buyer.wait_text(".msg.mine .receipt", "읽음").await;
    seller
        .wait_js(
            "return document.getElementById('chat-count').hidden",
            json!([]),
        )
        .await;

    // Typing, and a reply live.
    seller.type_into(".composer textarea", "네").await;
    buyer.wait_text(".typing", "판매왕님이 입력 중").await;
    seller.click(".composer button[type=submit]").await;
    wait_sent(&seller, "네").await;
    buyer.wait_text(".msg.theirs .body", "네").await;

    // The seller reserves it for this buyer from the chat: a system card
    // in both browsers.
    seller.click_text(".deal-actions button", "예약하기").await;
    seller.wait_text(".msg.system .card", "예약").await;
    buyer.wait_text(".msg.system .card", "예약").await;
    seller.wait_text(".listing-bar", "예약중").await;
    seller.screenshot("phone-chat-room").await;

    // The buyer's network drops. Meanwhile the seller writes and the buyer
    // types two messages; back online, nothing is lost or doubled.
    net.cut();
    buyer
        .wait_js("return document.body.dataset.live === 'offline'", json!([]))
        .await;
    buyer.wait_text("#net", "연결 끊김").await;
    send_chat(&seller, "토요일 오후 3시 어떠세요?").await;
    wait_sent(&seller, "토요일 오후 3시 어떠세요?").await;
    send_chat(&buyer, "오프라인에서 쓴 첫 번째").await;
    send_chat(&buyer, "오프라인에서 쓴 두 번째").await;
    buyer
        .wait_js(
            "return document.querySelectorAll('.msg.pending').length === 2",
            json!([]),
        )
        .await;
    buyer.screenshot("desktop-offline").await;
    net.restore();
    buyer
        .wait_js("return document.body.dataset.live === 'online'", json!([]))
        .await;
    wait_sent(&buyer, "오프라인에서 쓴 두 번째").await;
    buyer
        .wait_text(".msg.theirs .body", "토요일 오후 3시 어떠세요?")
        .await;
    seller
        .wait_text(".msg.theirs .body", "오프라인에서 쓴 두 번째")
        .await;
    let expected: Vec<String> = [
        "안녕하세요! 아직 판매 중인가요?",
        "네",
        "토요일 오후 3시 어떠세요?",
        "오프라인에서 쓴 첫 번째",
        "오프라인에서 쓴 두 번째",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(bodies(&buyer).await, expected, "buyer's screen");
    assert_eq!(bodies(&seller).await, expected, "seller's screen");
    // And the store agrees: each message once, seqs without gaps.
    let room: i64 = buyer
        .exec(
            "return Number(document.querySelector('section.room').dataset.room)",
            json!([]),
        )
        .await
        .as_i64()
        .expect("room id");
    let seller_token = app.login_token("seller@example.com", "password-1234").await;
    let history: Vec<Value> = serde_json::from_value(
        get_json(
            &app,
            &format!("/api/rooms/{room}/messages"),
            Some(&seller_token),
        )
        .await,
    )
    .expect("history");
    let seqs: Vec<i64> = history.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gap-free"
    );
    let texts: Vec<&str> = history
        .iter()
        .filter(|m| m["kind"] == "text")
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(
        texts,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );

    // Sold; the buyer leaves a review and the seller's manner score moves.
    seller.click_text(".deal-actions button", "거래완료").await;
    buyer.wait_text(".msg.system .card", "판매완료").await;
    buyer.click_text(".listing-bar a.button", "후기").await;
    buyer.find("form.review").await;
    buyer.click("form.review input[value=kind]").await;
    buyer
        .type_into("form.review textarea", "친절하게 거래해 주셨어요")
        .await;
    buyer.click("form.review button[type=submit]").await;
    buyer.wait_text("form.review", "후기를 보냈어요").await;
    seller.route("/me").await;
    seller.wait_text(".profile .manner", "36.7°C").await;
    seller
        .wait_text(".review-tags", "친절하고 매너가 좋아요")
        .await;
    seller.screenshot("phone-profile").await;

    seller.quit().await;
    buyer.quit().await;
}

#[actix_web::test]
async fn an_open_room_with_three_browsers() {
    if !available("an_open_room_with_three_browsers") {
        return;
    }
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let mut owner = driver.browser(DESKTOP.0, DESKTOP.1).await;
    let mut minji = driver.browser(PHONE.0, PHONE.1).await;
    let mut junho = driver.browser(PHONE.0, PHONE.1).await;
    join(
        &mut owner,
        &app,
        &node(&app, 0),
        "owner@example.com",
        "방장",
    )
    .await;
    join(
        &mut minji,
        &app,
        &node(&app, 1),
        "minji@example.com",
        "민지",
    )
    .await;
    join(
        &mut junho,
        &app,
        &node(&app, 2),
        "junho@example.com",
        "준호",
    )
    .await;

    // The owner opens a room with a passcode.
    owner.route("/open/new").await;
    owner
        .type_into("input[name=name]", "강남 중고거래 모임")
        .await;
    owner
        .type_into(
            "textarea[name=description]",
            "강남역 근처 직거래 정보 나눠요",
        )
        .await;
    owner.type_into("input[name=passcode]", "gangnam").await;
    owner.click("form.card button[type=submit]").await;
    owner.find("section.room .composer").await;

    // Two others find it by name; a wrong passcode is refused, the right
    // one lets them in.
    for (b, name) in [(&minji, "민지"), (&junho, "준호")] {
        b.route("/open?q=강남").await;
        b.wait_text(".items .item-title", "강남 중고거래 모임")
            .await;
        if name == "민지" {
            b.screenshot("phone-open-rooms").await;
        }
        b.click_text(".items .item-link", "강남 중고거래").await;
        b.type_into("input[name=passcode]", "wrong-code").await;
        b.click("form.card button[type=submit]").await;
        b.wait_js(
            "return document.querySelector('.form-error').textContent.length > 0",
            json!([]),
        )
        .await;
        b.type_into("input[name=passcode]", "gangnam").await;
        b.click("form.card button[type=submit]").await;
        b.find("section.room .composer").await;
        owner
            .wait_text(".msg.system .card", &format!("{name}님이"))
            .await;
    }

    // Everyone talks; everyone sees everything once, in the same order.
    send_chat(&owner, "환영해요! 거래 글은 자유롭게 올려 주세요").await;
    wait_sent(&owner, "환영해요! 거래 글은 자유롭게 올려 주세요").await;
    minji.wait_text(".msg.theirs .body", "환영해요").await;
    send_chat(&minji, "안녕하세요, 유모차 필요하신 분 있나요?").await;
    wait_sent(&minji, "안녕하세요, 유모차 필요하신 분 있나요?").await;
    junho.wait_text(".msg.theirs .body", "유모차").await;
    send_chat(&junho, "저요! 채팅 드릴게요").await;
    wait_sent(&junho, "저요! 채팅 드릴게요").await;
    for b in [&owner, &minji, &junho] {
        b.wait_text(".msg .body", "저요! 채팅 드릴게요").await;
        assert_eq!(
            bodies(b).await,
            [
                "환영해요! 거래 글은 자유롭게 올려 주세요",
                "안녕하세요, 유모차 필요하신 분 있나요?",
                "저요! 채팅 드릴게요",
            ]
        );
    }
    // Senders' names in an open room.
    owner.wait_text(".msg.theirs .who", "민지").await;
    owner.screenshot("desktop-open-room").await;

    // The owner bans 준호: his screen leaves the room, and he cannot join again.
    owner.click_text(".room-head a.button", "정보").await;
    owner.wait_text(".members li", "준호").await;
    let junho_id = owner
        .exec(
            "return [...document.querySelectorAll('.members li')].find(li => li.textContent.includes('준호')).dataset.user",
            json!([]),
        )
        .await;
    owner
        .click(&format!(
            ".members li[data-user='{}'] button.danger",
            junho_id.as_str().expect("id")
        ))
        .await;
    junho.find("section.chats").await;
    owner
        .wait_js("return ![...document.querySelectorAll('.members li')].some(li => li.textContent.includes('준호'))", json!([]))
        .await;
    junho.route("/open?q=강남").await;
    junho.click_text(".items .item-link", "강남 중고거래").await;
    junho.type_into("input[name=passcode]", "gangnam").await;
    junho.click("form.card button[type=submit]").await;
    junho
        .wait_js(
            "return document.querySelector('.form-error').textContent.length > 0",
            json!([]),
        )
        .await;
    // 민지 stays and keeps receiving.
    owner.click_text("a.button", "대화하기").await;
    send_chat(&owner, "준호님은 내보냈어요").await;
    minji
        .wait_text(".msg.theirs .body", "준호님은 내보냈어요")
        .await;
    // 민지 leaves on her own: back at the list, and the room says so.
    minji.click_text(".room-head a.button", "정보").await;
    minji.click_text("button", "나가기").await;
    minji.find("section.open").await;
    owner
        .wait_text(".msg.system .card", "민지님이 나갔습니다")
        .await;
    owner.wait_text(".room-head .member-count", "1").await;

    for b in [owner, minji, junho] {
        b.quit().await;
    }
}

#[actix_web::test]
async fn a_shop_checkout_through_the_sandbox_gateway() {
    if !available("a_shop_checkout_through_the_sandbox_gateway") {
        return;
    }
    let app = spawn_app().await;
    let admin = app.admin().await;
    let product = post_json(
        &app,
        "/api/admin/products",
        json!({
            "name": "레이디 디올 미니 백", "brand": "Dior", "category": "bags",
            "base_price": 120000, "status": "on_sale",
            "description": "까나주 패턴 램스킨, 골드 톤 참 장식",
            "options": [
                {"label": "블랙", "sku": "LD-BK", "stock": 5},
                {"label": "화이트", "sku": "LD-WH", "stock": 0},
            ],
        }),
        &admin.token,
    )
    .await;
    let black = product["options"][0]["id"].as_i64().expect("option");
    let driver = Driver::start().await;
    let mut buyer = driver.browser(PHONE.0, PHONE.1).await;
    join(
        &mut buyer,
        &app,
        &node(&app, 0),
        "shopper@example.com",
        "쇼핑러",
    )
    .await;

    // Find it in the shop, see the sold-out option, put two in the cart.
    buyer.click("a[data-tab=shop]").await;
    buyer.find("section.shop").await;
    buyer.type_into("form.search input[name=q]", "디올").await;
    buyer.click("form.search button[type=submit]").await;
    buyer
        .wait_text(".items .item-title", "레이디 디올 미니 백")
        .await;
    buyer.screenshot("phone-shop").await;
    buyer.click_text(".items .item-link", "레이디 디올").await;
    buyer.wait_text("select[name=option]", "품절").await;
    buyer.click("article.product .fav").await;
    buyer
        .wait_js(
            "return document.querySelector('.fav').getAttribute('aria-pressed') === 'true'",
            json!([]),
        )
        .await;
    buyer
        .select("select[name=option]", &black.to_string())
        .await;
    buyer.click_text("form.buy button", "장바구니 담기").await;
    buyer.wait_text("#toast", "장바구니에 담았어요").await;
    buyer.route("/cart").await;
    buyer.wait_text(".cart-line", "블랙").await;
    buyer.click("button[aria-label='하나 더']").await;
    buyer.wait_text(".cart-line .qty", "2").await;
    buyer.wait_text(".total", "240,000원").await;
    buyer.screenshot("phone-cart").await;

    // Order and pay with the sandbox; the payment notification rings the bell.
    buyer.click_text("button[type=submit]", "주문하기").await;
    buyer.wait_text(".order .order-status", "결제 대기").await;
    buyer.click(".pay button.sandbox").await;
    buyer.wait_text(".order .order-status", "결제 완료").await;
    buyer
        .wait_js("const c = document.querySelector('#bell .count'); return !c.hidden && Number(c.textContent) >= 1", json!([]))
        .await;
    buyer.screenshot("phone-order-paid").await;
    let stock = |v: &Value| v["options"][0]["stock"].as_i64();
    let after_pay = get_json(
        &app,
        &format!("/api/products/{}", product["id"]),
        Some(&admin.token),
    )
    .await;
    assert_eq!(stock(&after_pay), Some(3), "{after_pay}");

    // Cancel it: refunded, and the stock comes back.
    buyer.click_text("button.danger", "주문 취소").await;
    buyer.accept_dialog().await;
    buyer.wait_text(".order .order-status", "취소").await;
    buyer.wait_text(".order", "환불 240,000원").await;
    let after_cancel = get_json(
        &app,
        &format!("/api/products/{}", product["id"]),
        Some(&admin.token),
    )
    .await;
    assert_eq!(stock(&after_cancel), Some(5), "{after_cancel}");
    // The wishlist remembers the bag.
    buyer.route("/wishlist").await;
    buyer
        .wait_text(".items .item-title", "레이디 디올 미니 백")
        .await;
    buyer.quit().await;
}

#[actix_web::test]
async fn signing_in_with_kakao_and_a_declined_consent() {
    use crate::fake_oauth::{FakeKakao, KakaoUser};
    if !available("signing_in_with_kakao_and_a_declined_consent") {
        return;
    }
    // The redirect URL registered with "Kakao" must be the server's public
    // address, known before the server starts: a proxy stands in front.
    let front = Proxy::reserve().await;
    let redirect = format!("{}/api/auth/kakao/callback", front.addr);
    let kakao = FakeKakao::start("web-kakao-key", Some("web-kakao-secret"), &redirect).await;
    let base = kakao.base_url();
    let app = crate::helpers::spawn_app_with(&[
        ("kakao_client_id", "web-kakao-key"),
        ("kakao_client_secret", "web-kakao-secret"),
        ("kakao_redirect_url", redirect.as_str()),
        ("kakao_auth_url", base.as_str()),
        ("kakao_api_url", base.as_str()),
    ])
    .await;
    front.point_to(&node(&app, 0));
    kakao.sign_in_as(&KakaoUser {
        id: 4_242_001,
        nickname: "카카오친구".into(),
        email: Some("friend@kakao.test".into()),
        verified: true,
    });
    let driver = Driver::start().await;
    let mut b = driver.browser(PHONE.0, PHONE.1).await;
    b.open(&front.addr, "/#/login").await;
    b.wait_text(".providers a", "카카오로 시작하기").await;
    b.screenshot("phone-login-kakao").await;
    b.click_text(".providers a", "카카오").await;
    // Back from "Kakao" signed in, on the home screen, as the new account.
    b.find("section.feed").await;
    b.route("/me").await;
    b.wait_text(".profile h1", "카카오친구").await;
    // Log out; this time the user declines on Kakao's consent screen.
    b.click_text("button", "로그아웃").await;
    b.find("form.auth").await;
    kakao.deny_next();
    b.click_text(".providers a", "카카오").await;
    b.wait_text(".oauth-error", "로그인을 취소했어요").await;
    b.quit().await;
}

#[actix_web::test]
async fn an_administrator_sees_reports_and_keeps_the_stock() {
    if !available("an_administrator_sees_reports_and_keeps_the_stock") {
        return;
    }
    let app = spawn_app().await;
    let admin = app.admin().await;
    let seller = app.user("suspicious").await;
    let reporter = app.user("careful").await;
    let listing = post_json(
        &app,
        "/api/listings",
        json!({"title": "명품 가방 정품 급처", "price": 5000, "category": "other"}),
        &seller.token,
    )
    .await;
    post_json(
        &app,
        "/api/reports",
        json!({"target_kind": "listing", "target_id": listing["id"], "reason": "가품 의심"}),
        &reporter.token,
    )
    .await;
    let driver = Driver::start().await;
    let mut b = driver.browser(DESKTOP.0, DESKTOP.1).await;

    // A signed-in user who is not an admin is turned away (and the API
    // refuses anyway).
    log_in(
        &mut b,
        Some(&node(&app, 0)),
        &reporter.email,
        &reporter.password,
    )
    .await;
    b.route("/admin").await;
    b.wait_text("main", "관리자만 볼 수 있어요").await;
    b.route("/me").await;
    b.click_text("button", "로그아웃").await;
    b.find("form.auth").await;

    // The admin logs in: the report is there.
    log_in(&mut b, None, &admin.email, &admin.password).await;
    b.route("/me").await;
    b.click_text("a.button", "관리자").await;
    b.wait_text(".admin .inbox", "가품 의심").await;
    b.screenshot("desktop-admin-reports").await;

    // A product from the form, then stock in by an audited adjustment.
    b.click_text(".subtabs a", "상품").await;
    b.type_into("input[name=name]", "트윌리 스카프").await;
    b.type_into("input[name=brand]", "Hermès").await;
    b.select("select[name=category]", "accessories").await;
    b.type_into("input[name=base_price]", "390000").await;
    b.type_into("input[name=sku]", "TW-01").await;
    b.type_into("input[name=stock]", "3").await;
    b.click_text("form.card button[type=submit]", "올리기")
        .await;
    b.wait_text(".cart-line", "트윌리 스카프").await;
    b.wait_text(".cart-line .stock", "3").await;
    b.type_into(".stock-form input[name=delta]", "5").await;
    b.click(".stock-form button[type=submit]").await;
    b.wait_text(".cart-line .stock", "8").await;
    b.screenshot("desktop-admin-stock").await;
    let products = get_json(&app, "/api/products?q=트윌리", None).await;
    let id = products["items"][0]["id"].as_i64().expect("product id");
    let p = get_json(&app, &format!("/api/products/{id}"), Some(&admin.token)).await;
    assert_eq!(p["options"][0]["stock"], 8, "{p}");
    let option = p["options"][0]["id"].as_i64().expect("option");
    let audit = get_json(
        &app,
        &format!("/api/admin/options/{option}/stock-adjustments"),
        Some(&admin.token),
    )
    .await;
    assert!(audit.to_string().contains("입고"), "{audit}");
    b.quit().await;
}

#[actix_web::test]
async fn history_pages_up_and_a_price_drop_reaches_the_chat_and_the_bell() {
    if !available("history_pages_up_and_a_price_drop_reaches_the_chat_and_the_bell") {
        return;
    }
    let app = crate::helpers::spawn_app_with(&[
        ("chat_direct_send_rate", "1000"),
        ("chat_direct_send_burst", "1000"),
    ])
    .await;
    let seller = app.user("longseller").await;
    let buyer = app.user("longbuyer").await;
    let listing = post_json(
        &app,
        "/api/listings",
        json!({"title": "캠핑 의자 2개", "price": 50000, "category": "sports"}),
        &seller.token,
    )
    .await;
    let lid = listing["id"].as_i64().expect("id");
    let fav = app
        .client
        .put(app.url(&format!("/api/listings/{lid}/favourite")))
        .bearer_auth(&buyer.token)
        .send()
        .await
        .expect("favourite");
    assert!(fav.status().is_success());
    let room = post_json(
        &app,
        &format!("/api/listings/{lid}/chat"),
        json!({}),
        &buyer.token,
    )
    .await;
    let room = room["id"].as_i64().expect("room id");
    // A long conversation written before the browser opens it.
    let mut ws = app.ws(&buyer.token).await;
    for i in 1..=120 {
        ws.say(room, &format!("old-{i}"), &format!("이전 메시지 {i}"))
            .await;
    }
    let driver = Driver::start().await;
    let mut b = driver.browser(PHONE.0, PHONE.1).await;
    let mut s = driver.browser(PHONE.0, PHONE.1).await;
    for (br, u, n) in [(&mut b, &buyer, 0), (&mut s, &seller, 1)] {
        log_in(br, Some(&node(&app, n)), &u.email, &u.password).await;
    }
    b.route(&format!("/chats/{room}")).await;
    b.wait_text(".msg.mine .body", "이전 메시지 120").await;
    let shown =
        "return [...document.querySelectorAll('.messages .msg')].map(e => Number(e.dataset.seq))";
    let first: Vec<i64> = serde_json::from_value(b.exec(shown, json!([])).await).expect("seqs");
    assert_eq!(first, (71..=120).collect::<Vec<_>>(), "the latest page");
    // Scrolling to the top loads older pages, in order, without gaps.
    for _ in 0..3 {
        b.exec(
            "document.querySelector('.messages').scrollTop = 0; return true",
            json!([]),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    b.wait_js(
        "return document.querySelector('.messages .msg').dataset.seq === '1'",
        json!([]),
    )
    .await;
    let all: Vec<i64> = serde_json::from_value(b.exec(shown, json!([])).await).expect("seqs");
    assert_eq!(all, (1..=120).collect::<Vec<_>>());

    // The seller lowers the price in the edit form: the chat shows the
    // change live and the buyer's bell rings (a favourite got cheaper).
    s.route(&format!("/listings/{lid}/edit")).await;
    s.type_into("input[name=price]", "40000").await;
    s.click("form.edit button[type=submit]").await;
    s.wait_text(".buybar .price", "40,000원").await;
    b.wait_text(".msg.system .card", "40,000원").await;
    b.wait_text(".listing-bar", "40,000원").await;
    b.wait_js(
        "const c = document.querySelector('#bell .count'); return !c.hidden && c.textContent === '1'",
        json!([]),
    )
    .await;
    b.click("#bell").await;
    b.wait_text(".inbox li.unread", "찜한 물건의 가격이 내렸어요")
        .await;
    b.screenshot("phone-notifications").await;
    b.click_text(".inbox a", "가격이 내렸어요").await;
    b.wait_text(".listing h1", "캠핑 의자 2개").await;
    b.wait_js(
        "return document.querySelector('#bell .count').hidden",
        json!([]),
    )
    .await;
    drop(ws);
    b.quit().await;
    s.quit().await;
}

/// A stand-in for Toss's widget script (`https://js.tosspayments.com/v2/standard`),
/// following its documented contract: `TossPayments(clientKey).widgets({customerKey})`
/// with `setAmount`, `renderPaymentMethods`, `renderAgreement` and
/// `requestPayment`, which sends the buyer to `successUrl` with `paymentKey`,
/// `orderId`, `amount` and `paymentType` added.
const FAKE_TOSS_SDK: &str = r#"
window.TossPayments = function (clientKey) {
  if (clientKey !== 'test_ck_jangteo_fake') throw new Error('unknown client key ' + clientKey);
  return {
    widgets: function (opts) {
      if (!opts || !opts.customerKey) throw new Error('customerKey is required');
      var amount = null;
      return {
        setAmount: function (a) { amount = a; return Promise.resolve(); },
        renderPaymentMethods: function (o) {
          var el = document.querySelector(o.selector);
          var label = document.createElement('label');
          var radio = document.createElement('input');
          radio.type = 'radio'; radio.name = 'toss-method'; radio.checked = true;
          label.append(radio, ' 신용·체크카드 (토스 테스트)');
          el.append(label);
          return Promise.resolve({});
        },
        renderAgreement: function (o) {
          document.querySelector(o.selector).append('[필수] 결제 서비스 이용 약관 동의');
          return Promise.resolve({});
        },
        requestPayment: function (p) {
          if (!amount || amount.currency !== 'KRW') return Promise.reject(new Error('setAmount first'));
          var u = new URL(p.successUrl);
          u.searchParams.set('paymentType', 'NORMAL');
          u.searchParams.set('orderId', p.orderId);
          u.searchParams.set('paymentKey', 'tgen_' + Date.now().toString(36) + Math.random().toString(36).slice(2, 8));
          u.searchParams.set('amount', String(amount.value));
          location.href = u.toString();
          return new Promise(function () {});
        },
      };
    },
  };
};
"#;

/// Serve one JavaScript file on a random port (any path); its base URL.
async fn serve_script(js: &'static str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0_u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/javascript\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    js.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(js.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[actix_web::test]
async fn paying_with_tosss_widget_and_with_kakaopay() {
    use crate::fake_pay::{FakeKakaoPay, FakeToss};
    if !available("paying_with_tosss_widget_and_with_kakaopay") {
        return;
    }
    let front = Proxy::reserve().await;
    let toss = FakeToss::start("test_sk_jangteo_fake").await;
    let kakao = FakeKakaoPay::start("DEVjangteo_fake_secret", "TC0ONETIME").await;
    let sdk = serve_script(FAKE_TOSS_SDK).await;
    let (toss_base, kakao_base) = (toss.base_url(), kakao.base_url());
    let sdk_url = format!("{sdk}/v2/standard");
    let return_url = format!("{}/pay/return", front.addr);
    let app = crate::helpers::spawn_app_with(&[
        ("toss_secret_key", "test_sk_jangteo_fake"),
        ("toss_base_url", toss_base.as_str()),
        ("toss_client_key", "test_ck_jangteo_fake"),
        ("toss_sdk_url", sdk_url.as_str()),
        ("kakaopay_secret_key", "DEVjangteo_fake_secret"),
        ("kakaopay_cid", "TC0ONETIME"),
        ("kakaopay_base_url", kakao_base.as_str()),
        ("payment_return_url", return_url.as_str()),
    ])
    .await;
    front.point_to(&node(&app, 0));
    let admin = app.admin().await;
    let product = post_json(
        &app,
        "/api/admin/products",
        json!({
            "name": "까레 스카프", "brand": "Hermès", "category": "accessories",
            "base_price": 65000, "status": "on_sale",
            "options": [{"label": "오렌지", "sku": "CR-OR", "stock": 10}],
        }),
        &admin.token,
    )
    .await;
    let driver = Driver::start().await;
    let mut b = driver.browser(DESKTOP.0, DESKTOP.1).await;
    join(&mut b, &app, &front.addr, "payer@example.com", "결제왕").await;

    // Toss: the widget draws its methods; paying returns through
    // /pay/return, and the app confirms the payment with the server.
    b.route(&format!("/products/{}", product["id"])).await;
    b.click_text("form.buy button", "바로 구매").await;
    b.wait_text(".order .order-status", "결제 대기").await;
    b.wait_text("#toss-methods", "신용·체크카드").await;
    b.screenshot("desktop-checkout").await;
    b.click_text(".pay .toss button", "토스페이먼츠로").await;
    b.wait_text(".order .order-status", "결제 완료").await;
    b.wait_text(".order .paid-with", "toss").await;
    assert!(
        b.current_url().await.contains("/#/orders/"),
        "back on the order"
    );
    assert_eq!(toss.payment_count(), 1, "one payment at Toss");

    // KakaoPay: ready, off to KakaoPay's page (the fake's address does not
    // load here), approved there, back with a pg_token.
    b.route(&format!("/products/{}", product["id"])).await;
    b.click_text("form.buy button", "바로 구매").await;
    b.wait_text(".order .order-status", "결제 대기").await;
    let order = b.current_url().await;
    let order = order.rsplit('/').next().expect("order number").to_string();
    b.click_text(".pay button.kakaopay", "카카오페이").await;
    let mut at = String::new();
    for _ in 0..100 {
        at = b.current_url().await;
        if at.contains("kakao.com") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let tid = at
        .split("/mockup/v1/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("not at KakaoPay's page: {at}"))
        .to_string();
    let pg_token = kakao.buyer_approves(&tid);
    b.open(
        &front.addr,
        &format!("/pay/return?provider=kakaopay&order={order}&result=approve&pg_token={pg_token}"),
    )
    .await;
    b.wait_text(".order .order-status", "결제 완료").await;
    b.wait_text(".order .paid-with", "kakaopay").await;
    assert!(b
        .current_url()
        .await
        .ends_with(&format!("/#/orders/{order}")));
    b.quit().await;
}

#[actix_web::test]
async fn a_new_member_verifies_the_email_through_the_mailed_link() {
    if !available("a_new_member_verifies_the_email_through_the_mailed_link") {
        return;
    }
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let mut b = driver.browser(PHONE.0, PHONE.1).await;
    let base = node(&app, 0);
    sign_up(&mut b, &base, "new-member@example.com", "새이웃").await;
    // Until the link is followed, a banner asks for it.
    b.wait_js(
        "return !document.getElementById('verify-banner').hidden",
        json!([]),
    )
    .await;
    b.wait_text("#verify-banner", "이메일 인증이 필요해요")
        .await;
    b.screenshot("phone-verify-banner").await;
    // The link from the email (written as .eml by the embedded default).
    let dirs = [app.data_dir.join("outbox-mail")];
    let token = crate::common::eventually(
        std::time::Duration::from_secs(10),
        "the verification email",
        || async { crate::common::verification_token_in(&dirs, "new-member@example.com") },
    )
    .await;
    b.route(&format!("/verify-email?token={token}")).await;
    b.wait_text(".verify-result h1", "이메일 인증을 마쳤어요")
        .await;
    b.wait_js(
        "return document.getElementById('verify-banner').hidden",
        json!([]),
    )
    .await;
    // The same link again: refused, and said so.
    b.route(&format!("/verify-email?token={token}")).await;
    b.wait_text(".verify-result h1", "유효하지 않아요").await;
    b.quit().await;
}

#[actix_web::test]
async fn setting_the_neighbourhood_from_the_browsers_position() {
    if !available("setting_the_neighbourhood_from_the_browsers_position") {
        return;
    }
    let app = spawn_app().await;
    let base = node(&app, 0);
    let driver = Driver::start().await;
    let mut b = driver.browser(PHONE.0, PHONE.1).await;
    join(&mut b, &app, &base, "dong@example.com", "동네주민").await;
    b.route("/me").await;
    b.click_text("a.button", "내 동네 설정").await;
    b.wait_text(".neighbourhoods .empty", "아직 설정한 동네가 없어요")
        .await;

    // At 역삼역: 역삼동 becomes my neighbourhood.
    b.set_position(37.5006, 127.0364).await;
    b.click_text("button", "현재 위치로 동네 인증").await;
    b.wait_text(".neighbourhood strong", "역삼동").await;
    assert!(b.text(".neighbourhood").await.contains("내 동네"));
    b.screenshot("phone-neighbourhood").await;

    // At sea: a clear refusal, nothing added.
    b.set_position(36.0, 124.0).await;
    b.click_text("button", "현재 위치로 동네 인증").await;
    b.wait_text(".verify .form-error", "동네를 찾을 수 없어요")
        .await;
    let count = b
        .exec(
            "return document.querySelectorAll('.neighbourhood').length",
            json!([]),
        )
        .await;
    assert_eq!(count, json!(1));

    // The range, from the list; the server has it.
    b.select(".neighbourhood select", "far").await;
    let token = app.login_token("dong@example.com", "password-1234").await;
    let mine = crate::common::eventually(
        std::time::Duration::from_secs(10),
        "the range to reach the server",
        || async {
            let mine = get_json(&app, "/api/me/neighbourhoods", Some(&token)).await;
            (mine[0]["range"] == "far").then_some(mine)
        },
    )
    .await;
    assert_eq!(mine[0]["region"]["name"], "역삼동");

    // The search lists regions by name.
    b.type_into(".places input[type=search]", "해운대").await;
    b.click_text(".places button", "찾기").await;
    b.wait_text(".regions li", "해운대").await;
    // A listing posted now belongs to 역삼동, and the feed says so.
    post_json(
        &app,
        "/api/listings",
        json!({"title": "동네 의자", "price": 5000, "category": "furniture"}),
        &token,
    )
    .await;
    b.route("/").await;
    b.wait_text(".item-meta", "역삼동").await;

    // A neighbourhood room, from the create form; listed near me.
    b.route("/open/new").await;
    b.type_into("input[name=name]", "역삼 동네 모임").await;
    b.click("input[name=local]").await;
    b.click("form.card button[type=submit]").await;
    b.find("section.room .composer").await;
    b.route("/open?near=1").await;
    b.wait_text(".items .item-meta", "역삼동").await;
    b.quit().await;
}
