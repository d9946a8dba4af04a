//! The marketplace: listings, images, feed, search, favourites, blocks,
//! reports, listing chats, reservations with timers, sales, reviews.

use std::collections::HashSet;
use std::io::Cursor;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, eventually, spawn_app, spawn_app_with, Parsed, TestApp, User};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn image_bytes(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), format)
        .expect("encode");
    out
}

/// Incompressible pixels, to make a large file.
fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut state: u32 = 0x9E37_79B9;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let b = state.to_le_bytes();
        image::Rgb([b[0], b[1], b[2]])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode");
    out
}

pub async fn upload(app: &TestApp, user: &User, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    let form = reqwest::multipart::Form::new().part("file", part);
    app.client
        .post(app.url("/api/media"))
        .bearer_auth(&user.token)
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

pub async fn listing(app: &TestApp, seller: &User, title: &str, price: i64) -> i64 {
    let r = app
        .post_json(
            "/api/listings",
            &json!({"title": title, "description": format!("{title} 설명"), "price": price, "category": "digital"}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id")
}

async fn get_listing(app: &TestApp, user: Option<&User>, id: i64) -> reqwest::Response {
    app.get(
        &format!("/api/listings/{id}"),
        user.map(|u| u.token.as_str()),
    )
    .await
}

async fn feed_ids(app: &TestApp, user: Option<&User>, query: &str) -> (Vec<i64>, Option<String>) {
    let r = app
        .get(
            &format!("/api/listings{query}"),
            user.map(|u| u.token.as_str()),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "feed {query}");
    let page: Value = r.parsed().await;
    let ids = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_i64().expect("id"))
        .collect();
    (ids, page["next_cursor"].as_str().map(str::to_string))
}

fn files_under(dir: &std::path::Path) -> usize {
    walk(dir)
}

fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

pub async fn chat_about(app: &TestApp, buyer: &User, listing: i64) -> i64 {
    let r = app
        .post_json(
            &format!("/api/listings/{listing}/chat"),
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert!(r.status().is_success(), "chat: {}", r.status());
    r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("room")
}

#[actix_web::test]
async fn listings_are_created_edited_and_deleted_by_their_seller_only() {
    let app = spawn_app().await;
    let (seller, other) = (app.user("seller").await, app.user("other").await);
    let body = assert_error(
        app.post_json(
            "/api/listings",
            &json!({"title": "", "price": -5, "category": "cars"}),
            Some(&seller.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    for f in ["title", "price", "category"] {
        assert!(body["details"][f].is_string(), "{f}: {body}");
    }
    let create = |what, body: Value, token, status, code| {
        (
            what,
            Method::POST,
            "/api/listings".to_string(),
            Some(body),
            token,
            status,
            code,
        )
    };
    app.assert_refusals(vec![
        create(
            "a title over 100 characters",
            json!({"title": "x".repeat(101), "price": 1, "category": "digital"}),
            Some(seller.token.as_str()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        create(
            "no session",
            json!({"title": "t", "price": 1, "category": "digital"}),
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        create(
            "no price",
            json!({"title": "t", "category": "digital"}),
            Some(seller.token.as_str()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ])
    .await;

    let id = listing(&app, &seller, "아이폰13 팝니다", 550_000).await;
    let d: Value = get_listing(&app, Some(&other), id).await.parsed().await;
    assert_eq!(d["seller"]["nickname"], "seller");
    assert_eq!(d["seller"]["manner_score"], 36.5);
    assert_eq!(
        (
            d["status"].as_str(),
            d["view_count"].as_i64(),
            d["favourite_count"].as_i64(),
            d["chat_count"].as_i64()
        ),
        (Some("selling"), Some(1), Some(0), Some(0))
    );
    // The seller's own views are not counted; anonymous ones are.
    get_listing(&app, Some(&seller), id).await;
    let d: Value = get_listing(&app, None, id).await.parsed().await;
    assert_eq!(d["view_count"], 2);

    let r = app
        .patch_json(
            &format!("/api/listings/{id}"),
            &json!({"price": 500_000}),
            Some(&other.token),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "not_owner").await;
    let r = app
        .patch_json(
            &format!("/api/listings/{id}"),
            &json!({"price": 500_000, "title": "아이폰13 급처"}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.parsed().await;
    assert_eq!(
        (d["price"].as_i64(), d["title"].as_str()),
        (Some(500_000), Some("아이폰13 급처"))
    );
    let edit = |what, body: Value, code| {
        (
            what,
            Method::PATCH,
            format!("/api/listings/{id}"),
            Some(body),
            Some(seller.token.as_str()),
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
        )
    };
    app.assert_refusals(vec![
        edit(
            "status is not edited directly",
            json!({"status": "sold"}),
            "validation_failed",
        ),
        edit("an unknown field", json!({"colour": "red"}), "invalid_body"),
    ])
    .await;

    let r = app
        .delete(&format!("/api/listings/{id}"), Some(&other.token))
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "not_owner").await;
    let r = app
        .delete(&format!("/api/listings/{id}"), Some(&seller.token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        get_listing(&app, Some(&seller), id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(!feed_ids(&app, None, "").await.0.contains(&id));
    assert_error(
        app.get("/api/listings/abc", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
}

#[actix_web::test]
async fn hidden_listings_leave_the_feed_and_come_back() {
    let app = spawn_app().await;
    let (seller, other) = (app.user("hider").await, app.user("looker").await);
    let id = listing(&app, &seller, "숨김 테스트", 1000).await;
    let r = app
        .patch_json(
            &format!("/api/listings/{id}"),
            &json!({"status": "hidden"}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "hidden");
    assert!(!feed_ids(&app, None, "").await.0.contains(&id));
    assert_error(
        get_listing(&app, Some(&other), id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        get_listing(&app, Some(&seller), id).await.status(),
        StatusCode::OK
    );
    assert_error(
        app.post_json(
            &format!("/api/listings/{id}/chat"),
            &json!({}),
            Some(&other.token),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/api/listings?status=hidden", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    let r = app
        .patch_json(
            &format!("/api/listings/{id}"),
            &json!({"status": "selling"}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "selling");
    assert!(feed_ids(&app, None, "").await.0.contains(&id));
}

#[actix_web::test]
async fn images_are_checked_by_content_and_thumbnailed() {
    let app = spawn_app_with(&[("media_max_bytes", "300000")]).await;
    let (seller, other) = (app.user("photographer").await, app.user("thief").await);
    let media_dir = app.data_dir.join("media");

    let r = upload(
        &app,
        &seller,
        "photo.png",
        image_bytes(image::ImageFormat::Png, 800, 400),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let png: Value = r.parsed().await;
    assert_eq!(
        (
            png["content_type"].as_str(),
            png["width"].as_i64(),
            png["height"].as_i64()
        ),
        (Some("image/png"), Some(800), Some(400))
    );
    // A JPEG named .png is still a JPEG: the content decides.
    let r = upload(
        &app,
        &seller,
        "named-wrong.png",
        image_bytes(image::ImageFormat::Jpeg, 64, 64),
    )
    .await;
    let jpeg: Value = r.parsed().await;
    assert_eq!(jpeg["content_type"], "image/jpeg");
    let files_before = files_under(&media_dir);
    assert_eq!(files_before, 4, "two originals and two thumbnails");

    // Fakes are refused and leave nothing behind.
    for (name, bytes) in [
        (
            "fake.jpg",
            b"this is not an image at all, just text".to_vec(),
        ),
        ("script.png", b"<script>alert(1)</script>".to_vec()),
        (
            "broken.png",
            image_bytes(image::ImageFormat::Png, 100, 100)[..60].to_vec(),
        ),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00".to_vec()),
    ] {
        assert_error(
            upload(&app, &seller, name, bytes).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_image",
        )
        .await;
    }
    let big = noise_png(600, 600);
    assert!(big.len() > 300_000, "{}", big.len());
    assert_error(
        upload(&app, &seller, "big.png", big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_eq!(files_under(&media_dir), files_before);
    let r = app
        .client
        .post(app.url("/api/media"))
        .bearer_auth(&seller.token)
        .body("raw")
        .send()
        .await
        .expect("post");
    assert_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let form = reqwest::multipart::Form::new().text("note", "no file here");
    let r = app
        .client
        .post(app.url("/api/media"))
        .bearer_auth(&seller.token)
        .multipart(form)
        .send()
        .await
        .expect("post");
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(vec![1]));
    let r = app
        .client
        .post(app.url("/api/media"))
        .multipart(form)
        .send()
        .await
        .expect("post");
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // Attach: the first image is the thumbnail.
    let ids = [
        png["id"].as_i64().expect("id"),
        jpeg["id"].as_i64().expect("id"),
    ];
    let r = app
        .post_json("/api/listings", &json!({"title": "사진 있는 글", "price": 5000, "category": "furniture", "images": ids}), Some(&seller.token))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let l: Value = r.parsed().await;
    assert_eq!(l["images"].as_array().expect("images").len(), 2);
    let thumb_url = l["thumbnail_url"].as_str().expect("thumb").to_string();
    assert_eq!(thumb_url, png["thumbnail_url"].as_str().expect("thumb"));
    let r = app.get(&thumb_url, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let thumb =
        image::load_from_memory(&r.bytes().await.expect("bytes")).expect("thumbnail decodes");
    assert_eq!((thumb.width(), thumb.height()), (320, 160));
    let original = app.get(png["url"].as_str().expect("url"), None).await;
    assert_eq!(original.headers()["content-type"], "image/png");
    let (feed, _) = feed_ids(&app, None, "").await;
    assert_eq!(feed[0], l["id"].as_i64().expect("id"));
    assert_error(
        app.get("/media/o/nope.png", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/media/../jangteo.db", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Someone else's image, an unknown one, a used one, or too many: refused.
    let r = app
        .post_json(
            "/api/listings",
            &json!({"title": "도둑", "price": 1, "category": "other", "images": [ids[0]]}),
            Some(&other.token),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .post_json(
            "/api/listings",
            &json!({"title": "재사용", "price": 1, "category": "other", "images": [ids[1]]}),
            Some(&seller.token),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app.post_json("/api/listings", &json!({"title": "많다", "price": 1, "category": "other", "images": (1..=11).collect::<Vec<i64>>()}), Some(&seller.token)).await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[actix_web::test]
async fn feed_pages_have_no_duplicates_or_gaps_while_listings_are_added() {
    // One seller posts more than an hour's worth (`listings_per_hour`).
    let app = crate::helpers::spawn_app_with(&[("listings_per_hour", "1000")]).await;
    let seller = app.user("bulk").await;
    let mut original = HashSet::new();
    for i in 0..30 {
        original.insert(listing(&app, &seller, &format!("물건 {i}"), 1000 * (i % 7)).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut added = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=7&cursor={c}"),
            None => "?limit=7".to_string(),
        };
        let (ids, next) = feed_ids(&app, None, &q).await;
        seen.extend(ids);
        // Someone posts between every two pages.
        listing(&app, &seller, &format!("새 물건 {added}"), 500).await;
        added += 1;
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert_eq!(
        unique, original,
        "every listing that existed at the start, none skipped"
    );

    // Price order with a cursor, and cursors are bound to their sort order.
    let (asc, next) = feed_ids(&app, None, "?sort=price_asc&limit=10").await;
    let prices: Vec<i64> = {
        let mut out = Vec::new();
        for id in &asc {
            let d: Value = get_listing(&app, Some(&seller), *id).await.parsed().await;
            out.push(d["price"].as_i64().expect("price"));
        }
        out
    };
    let mut sorted = prices.clone();
    sorted.sort();
    assert_eq!(prices, sorted);
    let next = next.expect("more pages");
    let (more, _) = feed_ids(
        &app,
        None,
        &format!("?sort=price_asc&limit=10&cursor={next}"),
    )
    .await;
    assert!(more.iter().all(|id| !asc.contains(id)));
    assert_error(
        app.get(&format!("/api/listings?sort=recent&cursor={next}"), None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    assert_error(
        app.get("/api/listings?cursor=garbage", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    assert_error(
        app.get("/api/listings?limit=101", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    assert_error(
        app.get("/api/listings?sort=cheapest", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    assert_error(
        app.get("/api/listings?category=cars", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
}

#[actix_web::test]
async fn search_finds_korean_substrings_and_english_words_with_filters() {
    let app = spawn_app().await;
    let s = app.user("searcher-seller").await;
    let iphone = listing(&app, &s, "아이폰13 팝니다", 500_000).await;
    let english = listing(&app, &s, "Apple iPhone 12 mini", 300_000).await;
    let sofa = app
        .post_json("/api/listings", &json!({"title": "3인용 소파", "description": "아이폰 거치대 증정", "price": 80_000, "category": "furniture"}), Some(&s.token))
        .await
        .json::<Value>()
        .await
        .expect("json")["id"]
        .as_i64()
        .expect("id");
    let (ids, _) = feed_ids(&app, None, "?q=%EC%95%84%EC%9D%B4%ED%8F%B0").await; // 아이폰
    assert_eq!(
        ids.iter().copied().collect::<HashSet<_>>(),
        HashSet::from([iphone, sofa])
    );
    let (ids, _) = feed_ids(&app, None, "?q=IPHONE").await;
    assert_eq!(ids, vec![english]);
    let (ids, _) = feed_ids(
        &app,
        None,
        "?q=%EC%95%84%EC%9D%B4%ED%8F%B0&category=furniture",
    )
    .await;
    assert_eq!(ids, vec![sofa]);
    let (ids, _) = feed_ids(&app, None, "?min_price=100000&max_price=400000").await;
    assert_eq!(ids, vec![english]);
    let (ids, _) = feed_ids(&app, None, "?q=%25").await; // a literal %
    assert!(ids.is_empty());
}

#[actix_web::test]
async fn the_cached_first_page_is_invalidated_by_changes() {
    let app = spawn_app().await;
    let s = app.user("cache-seller").await;
    let first = listing(&app, &s, "첫 글", 100).await;
    assert_eq!(feed_ids(&app, None, "").await.0, vec![first]);
    assert_eq!(
        feed_ids(&app, None, "").await.0,
        vec![first],
        "served again (from the cache)"
    );
    let second = listing(&app, &s, "둘째 글", 200).await;
    assert_eq!(
        feed_ids(&app, None, "").await.0,
        vec![second, first],
        "a new listing shows at once"
    );
    app.patch_json(
        &format!("/api/listings/{first}"),
        &json!({"status": "hidden"}),
        Some(&s.token),
    )
    .await;
    assert_eq!(feed_ids(&app, None, "").await.0, vec![second]);
}

#[actix_web::test]
async fn favourites() {
    let app = spawn_app().await;
    let (s, fan) = (app.user("fav-seller").await, app.user("fan").await);
    let a = listing(&app, &s, "a", 1).await;
    let b = listing(&app, &s, "b", 2).await;
    for id in [a, b, a] {
        let r = app
            .put(&format!("/api/listings/{id}/favourite"), Some(&fan.token))
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let d: Value = get_listing(&app, Some(&fan), a).await.parsed().await;
    assert_eq!(
        (d["favourite_count"].as_i64(), d["is_favourite"].as_bool()),
        (Some(1), Some(true))
    );
    let favs: Vec<Value> = app
        .get("/api/me/favourites", Some(&fan.token))
        .await
        .parsed()
        .await;
    assert_eq!(
        favs.iter()
            .map(|f| f["id"].as_i64().expect("id"))
            .collect::<Vec<_>>(),
        vec![b, a]
    );
    let r = app
        .delete(&format!("/api/listings/{a}/favourite"), Some(&fan.token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let d: Value = get_listing(&app, Some(&fan), a).await.parsed().await;
    assert_eq!(
        (d["favourite_count"].as_i64(), d["is_favourite"].as_bool()),
        (Some(0), Some(false))
    );
    let r = app
        .put("/api/listings/9999/favourite", Some(&fan.token))
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app.put(&format!("/api/listings/{a}/favourite"), None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn blocking_hides_listings_and_stops_chats() {
    let app = spawn_app().await;
    let (me, pest) = (app.user("blocker").await, app.user("pest").await);
    let mine = listing(&app, &me, "내 물건", 1000).await;
    let theirs = listing(&app, &pest, "그 사람 물건", 1000).await;
    let room = chat_about(&app, &pest, mine).await;
    let mut wp = app.ws(&pest.token).await;
    wp.say(room, "before", "안녕하세요").await;

    let r = app
        .put(&format!("/api/users/{}/block", pest.id), Some(&me.token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        !feed_ids(&app, Some(&me), "").await.0.contains(&theirs),
        "blocked seller's listings leave my feed"
    );
    assert!(
        feed_ids(&app, None, "").await.0.contains(&theirs),
        "others still see them"
    );
    let blocks: Vec<i64> = app
        .get("/api/me/blocks", Some(&me.token))
        .await
        .parsed()
        .await;
    assert_eq!(blocks, vec![pest.id]);
    // Neither can continue the chat, and no new chat starts either way.
    wp.send(json!({"type": "send", "room": room, "client_msg_id": "after", "body": "왜요?"}))
        .await;
    let e = wp.expect_where(|v| v["client_msg_id"] == "after").await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("blocked"))
    );
    let mut wm = app.ws(&me.token).await;
    wm.send(json!({"type": "send", "room": room, "client_msg_id": "mine", "body": "잘가요"}))
        .await;
    assert_eq!(
        wm.expect_where(|v| v["client_msg_id"] == "mine").await["code"],
        "blocked"
    );
    let another = listing(&app, &me, "다른 물건", 10).await;
    assert_error(
        app.post_json(
            &format!("/api/listings/{another}/chat"),
            &json!({}),
            Some(&pest.token),
        )
        .await,
        StatusCode::FORBIDDEN,
        "blocked",
    )
    .await;
    assert_error(
        app.post_json(
            &format!("/api/listings/{theirs}/chat"),
            &json!({}),
            Some(&me.token),
        )
        .await,
        StatusCode::FORBIDDEN,
        "blocked",
    )
    .await;
    // Unblock: talking works again.
    let r = app
        .delete(&format!("/api/users/{}/block", pest.id), Some(&me.token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    wp.say(room, "again", "다시 안녕하세요").await;
    assert!(feed_ids(&app, Some(&me), "").await.0.contains(&theirs));
    let r = app
        .put(&format!("/api/users/{}/block", me.id), Some(&me.token))
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app.put("/api/users/99999/block", Some(&me.token)).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[actix_web::test]
async fn reports_are_stored_for_admins() {
    let app = spawn_app().await;
    let (a, b) = (app.user("reporter").await, app.user("reported").await);
    let l = listing(&app, &b, "수상한 물건", 1).await;
    let room = chat_about(&app, &a, l).await;
    let mut wb = app.ws(&b.token).await;
    let seq = wb.say(room, "spam", "입금 먼저 해주세요").await["seq"]
        .as_i64()
        .expect("seq");
    for body in [
        json!({"target_kind": "listing", "target_id": l, "reason": "사기 의심"}),
        json!({"target_kind": "user", "target_id": b.id, "reason": "욕설"}),
        json!({"target_kind": "message", "target_id": seq, "room_id": room, "reason": "선입금 요구"}),
    ] {
        assert_eq!(
            app.post_json("/api/reports", &body, Some(&a.token))
                .await
                .status(),
            StatusCode::CREATED,
            "{body}"
        );
    }
    let outsider = app.user("nosy").await;
    let refusals = [
        (
            json!({"target_kind": "message", "target_id": seq, "room_id": room, "reason": "x"}),
            &outsider,
            StatusCode::FORBIDDEN,
            "not_member",
        ),
        (
            json!({"target_kind": "planet", "target_id": 1, "reason": "x"}),
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"target_kind": "listing", "target_id": 424242, "reason": "x"}),
            &a,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"target_kind": "user", "target_id": b.id, "reason": " "}),
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ];
    for (body, who, status, code) in refusals {
        assert_error(
            app.post_json("/api/reports", &body, Some(&who.token)).await,
            status,
            code,
        )
        .await;
    }
    assert_error(
        app.get("/api/admin/reports", Some(&a.token)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let admin = app.admin().await;
    let reports: Vec<Value> = app
        .get("/api/admin/reports", Some(&admin.token))
        .await
        .parsed()
        .await;
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0]["target_kind"], "message");
    assert_eq!(reports[0]["room_id"], room);
}

#[actix_web::test]
async fn one_chat_per_listing_and_buyer_with_a_listing_card() {
    let app = spawn_app().await;
    let (seller, buyer, other) = (
        app.user("card-seller").await,
        app.user("card-buyer").await,
        app.user("card-other").await,
    );
    let l = listing(&app, &seller, "자전거", 120_000).await;
    let r = app
        .post_json(
            &format!("/api/listings/{l}/chat"),
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let room: Value = r.parsed().await;
    assert_eq!(room["listing_id"], l);
    let r = app
        .post_json(
            &format!("/api/listings/{l}/chat"),
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["id"], room["id"]);
    // A plain direct room between the same two people is a different room.
    let plain = app.direct_room(&buyer, &seller).await;
    assert_ne!(Some(plain), room["id"].as_i64());
    assert_error(
        app.post_json(
            &format!("/api/listings/{l}/chat"),
            &json!({}),
            Some(&seller.token),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_error(
        app.post_json("/api/listings/9999/chat", &json!({}), Some(&buyer.token))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let d: Value = get_listing(&app, None, l).await.parsed().await;
    assert_eq!(d["chat_count"], 1);
    let rooms = app.my_rooms(&seller).await;
    let card = rooms["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["id"] == room["id"])
        .expect("listed")["listing"]
        .clone();
    assert_eq!(
        (
            card["title"].as_str(),
            card["price"].as_i64(),
            card["status"].as_str()
        ),
        (Some("자전거"), Some(120_000), Some("selling"))
    );
    let chats: Vec<Value> = app
        .get(&format!("/api/listings/{l}/chats"), Some(&seller.token))
        .await
        .parsed()
        .await;
    assert_eq!(
        (chats.len(), chats[0]["buyer_id"].as_i64()),
        (1, Some(buyer.id))
    );
    assert_error(
        app.get(&format!("/api/listings/{l}/chats"), Some(&other.token))
            .await,
        StatusCode::FORBIDDEN,
        "not_owner",
    )
    .await;
    // Price changes are announced in the chat.
    let mut wb = app.ws(&buyer.token).await;
    app.patch_json(
        &format!("/api/listings/{l}"),
        &json!({"price": 100_000}),
        Some(&seller.token),
    )
    .await;
    let m = wb
        .expect_where(|v| v["type"] == "message" && v["kind"] == "system")
        .await;
    assert_eq!(
        (
            m["payload"]["event"].as_str(),
            m["payload"]["old_price"].as_i64(),
            m["payload"]["new_price"].as_i64()
        ),
        (Some("price_changed"), Some(120_000), Some(100_000))
    );
    assert!(m["body"].as_str().expect("body").contains("100,000"));
}

#[actix_web::test]
async fn reservations_cancel_sell_and_deny() {
    let app = spawn_app().await;
    let (seller, buyer, other) = (
        app.user("r-seller").await,
        app.user("r-buyer").await,
        app.user("r-other").await,
    );
    let l = listing(&app, &seller, "책상", 30_000).await;
    let room = chat_about(&app, &buyer, l).await;
    let mut wb = app.ws(&buyer.token).await;
    let path = format!("/api/listings/{l}/reservation");
    assert_error(
        app.post_json(&path, &json!({"buyer_id": buyer.id}), Some(&other.token))
            .await,
        StatusCode::FORBIDDEN,
        "not_owner",
    )
    .await;
    assert_error(
        app.post_json(&path, &json!({"buyer_id": other.id}), Some(&seller.token))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    assert_error(
        app.post_json(
            &path,
            &json!({"buyer_id": buyer.id, "until": now_ms() - 1000}),
            Some(&seller.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let r = app
        .post_json(&path, &json!({"buyer_id": buyer.id}), Some(&seller.token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.parsed().await;
    assert_eq!(
        (d["status"].as_str(), d["reserved_for"].as_i64()),
        (Some("reserved"), Some(buyer.id))
    );
    let m = wb
        .expect_where(|v| v["type"] == "message" && v["room"] == room && v["kind"] == "system")
        .await;
    assert_eq!(
        (
            m["payload"]["event"].as_str(),
            m["payload"]["buyer"].as_i64()
        ),
        (Some("reserved"), Some(buyer.id))
    );
    // Others cannot cancel; the buyer can.
    let r = app.delete(&path, Some(&other.token)).await;
    assert_error(r, StatusCode::FORBIDDEN, "not_owner").await;
    let r = app.delete(&path, Some(&buyer.token)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let m = wb
        .expect_where(|v| {
            v["type"] == "message" && v["payload"]["event"] == "reservation_cancelled"
        })
        .await;
    assert_eq!(m["room"], room);
    let d: Value = get_listing(&app, Some(&seller), l).await.parsed().await;
    assert_eq!(d["status"], "selling");
    let r = app.delete(&path, Some(&seller.token)).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;

    // Sold, to a chat partner only; then it is final.
    assert_error(
        app.post_json(
            &format!("/api/listings/{l}/sold"),
            &json!({"buyer_id": other.id}),
            Some(&seller.token),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    assert_error(
        app.post_json(
            &format!("/api/listings/{l}/sold"),
            &json!({}),
            Some(&buyer.token),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_owner",
    )
    .await;
    app.post_json(&path, &json!({"buyer_id": buyer.id}), Some(&seller.token))
        .await;
    let r = app
        .post_json(
            &format!("/api/listings/{l}/sold"),
            &json!({"buyer_id": buyer.id}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.parsed().await;
    assert_eq!(
        (
            d["status"].as_str(),
            d["buyer_id"].as_i64(),
            d["reserved_until"].is_null()
        ),
        (Some("sold"), Some(buyer.id), true)
    );
    wb.expect_where(|v| v["type"] == "message" && v["payload"]["event"] == "sold")
        .await;
    assert_error(
        app.post_json(
            &format!("/api/listings/{l}/sold"),
            &json!({}),
            Some(&seller.token),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    assert_error(
        app.post_json(&path, &json!({"buyer_id": buyer.id}), Some(&seller.token))
            .await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    assert!(feed_ids(&app, None, "?status=sold").await.0.contains(&l));
    assert!(
        !feed_ids(&app, None, "").await.0.contains(&l),
        "the default feed shows selling and reserved"
    );
}

#[actix_web::test]
async fn timed_reservations_expire_once_and_cancelled_ones_never() {
    let app = spawn_app().await;
    let mut events = app
        .app_state
        .engines()
        .bus
        .subscribe(jangteo::bus::TOPIC_ALARMS);
    let (seller, buyer, buyer2) = (
        app.user("t-seller").await,
        app.user("t-buyer").await,
        app.user("t-buyer2").await,
    );
    let expiring = listing(&app, &seller, "만료될 물건", 1).await;
    let cancelled = listing(&app, &seller, "취소될 물건", 1).await;
    let replaced = listing(&app, &seller, "교체될 물건", 1).await;
    for l in [expiring, cancelled, replaced] {
        chat_about(&app, &buyer, l).await;
    }
    chat_about(&app, &buyer2, replaced).await;
    let until = now_ms() + 1200;
    for l in [expiring, cancelled, replaced] {
        let r = app
            .post_json(
                &format!("/api/listings/{l}/reservation"),
                &json!({"buyer_id": buyer.id, "until": until}),
                Some(&seller.token),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = app
        .delete(
            &format!("/api/listings/{cancelled}/reservation"),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Replaced by an untimed reservation for someone else: the old timer must not fire.
    app.post_json(
        &format!("/api/listings/{replaced}/reservation"),
        &json!({"buyer_id": buyer2.id}),
        Some(&seller.token),
    )
    .await;
    let status = |d: Value| d["status"].as_str().unwrap_or("").to_string();
    // All three were due at the same moment: once one expired, any timer
    // that was left armed by mistake has fired too.
    eventually(
        Duration::from_secs(10),
        "the reservation expires",
        || async {
            let d: Value = get_listing(&app, Some(&seller), expiring)
                .await
                .json()
                .await
                .ok()?;
            (d["status"] == "selling").then_some(())
        },
    )
    .await;
    assert_eq!(
        status(
            get_listing(&app, Some(&seller), expiring)
                .await
                .parsed()
                .await
        ),
        "selling"
    );
    assert_eq!(
        status(
            get_listing(&app, Some(&seller), cancelled)
                .await
                .parsed()
                .await
        ),
        "selling"
    );
    let d: Value = get_listing(&app, Some(&seller), replaced)
        .await
        .parsed()
        .await;
    assert_eq!(
        (d["status"].as_str(), d["reserved_for"].as_i64()),
        (Some("reserved"), Some(buyer2.id))
    );
    // The events go out through the outbox, a moment after the change:
    // wait for the expiry, then give a wrong one time to show up.
    let mut expired = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while expired.is_empty() && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(100), events.recv()).await {
            if e.kind == "reservation.expired" {
                expired.push(e);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    while let Ok(e) = events.try_recv() {
        if e.kind == "reservation.expired" {
            expired.push(e);
        }
    }
    let expired: Vec<i64> = expired
        .iter()
        .map(|e| {
            assert_eq!(e.schema, 1);
            assert_eq!(
                (e.data["seller"].as_i64(), e.data["buyer"].as_i64()),
                (Some(seller.id), Some(buyer.id))
            );
            e.data["listing"].as_i64().expect("listing")
        })
        .collect();
    assert_eq!(
        expired,
        vec![expiring],
        "exactly one expiry, for the listing whose reservation stood"
    );
    let hist = app
        .history(&buyer, chat_about(&app, &buyer, expiring).await, "")
        .await;
    assert_eq!(
        hist.iter()
            .filter(|m| m["payload"]["event"] == "reservation_expired")
            .count(),
        1
    );
    let hist = app
        .history(&buyer, chat_about(&app, &buyer, cancelled).await, "")
        .await;
    assert_eq!(
        hist.iter()
            .filter(|m| m["payload"]["event"] == "reservation_expired")
            .count(),
        0
    );
}

#[actix_web::test]
async fn reservation_timers_survive_restarts_and_fire_after_downtime() {
    let mut app = spawn_app().await;
    let (seller, buyer) = (
        app.user("restart-seller").await,
        app.user("restart-buyer").await,
    );
    let later = listing(&app, &seller, "재시작 후 만료", 1).await;
    let during = listing(&app, &seller, "꺼진 동안 만료", 1).await;
    chat_about(&app, &buyer, later).await;
    chat_about(&app, &buyer, during).await;
    let now = now_ms();
    let during_until = now + 600;
    for (l, until) in [(during, during_until), (later, now + 4000)] {
        let r = app
            .post_json(
                &format!("/api/listings/{l}/reservation"),
                &json!({"buyer_id": buyer.id, "until": until}),
                Some(&seller.token),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Really down (timers of the old instance stopped with it) while
    // `during` comes due: only the restore path can end it.
    app.stop().await;
    let left = u64::try_from(during_until + 200 - now_ms()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(left)).await;
    let app = app.restart().await;
    let status = |id: i64| {
        let app = &app;
        let seller = &seller;
        async move {
            let d: Value = get_listing(app, Some(seller), id).await.parsed().await;
            d["status"].as_str().unwrap_or("").to_string()
        }
    };
    eventually(Duration::from_secs(10), "fired on start", || async {
        (status(during).await == "selling").then_some(())
    })
    .await;
    assert_eq!(status(later).await, "reserved", "not due yet");
    eventually(
        Duration::from_secs(10),
        "the re-armed timer fires",
        || async { (status(later).await == "selling").then_some(()) },
    )
    .await;
}

#[actix_web::test]
async fn reviews_once_each_and_the_manner_score() {
    let app = spawn_app().await;
    let (seller, buyer, other) = (
        app.user("rv-seller").await,
        app.user("rv-buyer").await,
        app.user("rv-other").await,
    );
    let l = listing(&app, &seller, "의자", 10_000).await;
    chat_about(&app, &buyer, l).await;
    let path = format!("/api/listings/{l}/reviews");
    assert_error(
        app.post_json(&path, &json!({"rating": "good"}), Some(&buyer.token))
            .await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    app.post_json(
        &format!("/api/listings/{l}/sold"),
        &json!({"buyer_id": buyer.id}),
        Some(&seller.token),
    )
    .await;
    assert_error(
        app.post_json(&path, &json!({"rating": "great"}), Some(&buyer.token))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_error(
        app.post_json(
            &path,
            &json!({"rating": "good", "tags": ["telepathic"]}),
            Some(&buyer.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_error(
        app.post_json(&path, &json!({"rating": "good"}), Some(&other.token))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let r = app
        .post_json(
            &path,
            &json!({"rating": "good", "tags": ["kind", "punctual"], "text": "친절하셨어요"}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_error(
        app.post_json(&path, &json!({"rating": "bad"}), Some(&buyer.token))
            .await,
        StatusCode::CONFLICT,
        "already_reviewed",
    )
    .await;
    let r = app
        .post_json(
            &path,
            &json!({"rating": "bad", "tags": ["late"]}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let p: Value = app
        .get(&format!("/api/users/{}", seller.id), None)
        .await
        .parsed()
        .await;
    assert_eq!(
        (p["manner_score"].as_f64(), p["reviews_good"].as_i64()),
        (Some(36.7), Some(1))
    );
    assert_eq!(
        (
            p["review_tags"]["kind"].as_i64(),
            p["review_tags"]["punctual"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let p: Value = app
        .get(&format!("/api/users/{}", buyer.id), None)
        .await
        .parsed()
        .await;
    assert_eq!(
        (p["manner_score"].as_f64(), p["reviews_bad"].as_i64()),
        (Some(35.5), Some(1))
    );
    let d: Value = get_listing(&app, None, l).await.parsed().await;
    assert_eq!(d["seller"]["manner_score"], 36.7);
    // A sale without a known buyer cannot be reviewed.
    let l2 = listing(&app, &seller, "테이블", 1).await;
    app.post_json(
        &format!("/api/listings/{l2}/sold"),
        &json!({}),
        Some(&seller.token),
    )
    .await;
    assert_error(
        app.post_json(
            &format!("/api/listings/{l2}/reviews"),
            &json!({"rating": "good"}),
            Some(&seller.token),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
}

#[actix_web::test]
async fn open_rooms_may_require_a_manner_score() {
    let app = spawn_app().await;
    let (owner, newbie) = (app.user("picky").await, app.user("newbie").await);
    let r = app
        .post_json(
            "/api/rooms",
            &json!({"kind": "open", "name": "매너 좋은 분만", "min_manner_score": 37.0}),
            Some(&owner.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let room = r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    assert_error(
        app.post_json(
            &format!("/api/rooms/{room}/join"),
            &json!({}),
            Some(&newbie.token),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.post_json(
            "/api/rooms",
            &json!({"kind": "open", "name": "x", "min_manner_score": 120.0}),
            Some(&owner.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[actix_web::test]
async fn reservation_ends_must_be_in_the_future_and_within_the_maximum() {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let app = spawn_app().await;
    let (seller, buyer) = (app.user("rm-seller").await, app.user("rm-buyer").await);
    let l = listing(&app, &seller, "자전거", 120_000).await;
    chat_about(&app, &buyer, l).await;
    let path = format!("/api/listings/{l}/reservation");
    for (what, until) in [
        ("in the past", now_ms() - 1_000),
        ("beyond 7 days", now_ms() + 7 * DAY_MS + 3_600_000),
        ("a year ahead", now_ms() + 365 * DAY_MS),
        ("the end of time", i64::MAX),
    ] {
        let body = assert_error(
            app.post_json(
                &path,
                &json!({"buyer_id": buyer.id, "until": until}),
                Some(&seller.token),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert!(body["details"]["until"].is_string(), "{what}: {body}");
        let d: Value = get_listing(&app, Some(&seller), l).await.parsed().await;
        assert_eq!(
            (d["status"].as_str(), d["reserved_until"].as_i64()),
            (Some("selling"), None),
            "{what}: nothing changed"
        );
    }
    assert_eq!(app.app_state.market.pending_timers().await, Some(0));
    // Six days ahead is fine.
    let until = now_ms() + 6 * DAY_MS;
    let r = app
        .post_json(
            &path,
            &json!({"buyer_id": buyer.id, "until": until}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.parsed().await;
    assert_eq!(d["reserved_until"].as_i64(), Some(until));

    // The maximum is a setting.
    let app = spawn_app_with(&[("reservation_max_secs", "60")]).await;
    let (seller, buyer) = (app.user("rm-seller2").await, app.user("rm-buyer2").await);
    let l = listing(&app, &seller, "자전거", 120_000).await;
    chat_about(&app, &buyer, l).await;
    let path = format!("/api/listings/{l}/reservation");
    let body = assert_error(
        app.post_json(
            &path,
            &json!({"buyer_id": buyer.id, "until": now_ms() + 120_000}),
            Some(&seller.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["details"]["until"].is_string(), "{body}");
    let r = app
        .post_json(
            &path,
            &json!({"buyer_id": buyer.id, "until": now_ms() + 30_000}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[actix_web::test]
async fn reporting_a_hidden_or_deleted_listing_is_like_reporting_none() {
    let app = spawn_app().await;
    let (seller, reporter) = (app.user("rh-seller").await, app.user("rh-reporter").await);
    let hidden = listing(&app, &seller, "숨긴 물건", 1_000).await;
    let r = app
        .patch_json(
            &format!("/api/listings/{hidden}"),
            &json!({"status": "hidden"}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let deleted = listing(&app, &seller, "지운 물건", 1_000).await;
    let r = app
        .delete(&format!("/api/listings/{deleted}"), Some(&seller.token))
        .await;
    assert!(r.status().is_success(), "delete: {}", r.status());
    let never = deleted + 424_242;
    let mut answers = Vec::new();
    for (what, id) in [
        ("never existed", never),
        ("hidden", hidden),
        ("deleted", deleted),
    ] {
        let r = app
            .post_json(
                "/api/reports",
                &json!({"target_kind": "listing", "target_id": id, "reason": "사기 의심"}),
                Some(&reporter.token),
            )
            .await;
        let status = r.status();
        let body: Value = r.parsed().await;
        answers.push((what, status, body["code"].clone(), body["message"].clone()));
    }
    for (what, status, code, message) in &answers {
        assert_eq!(
            (*status, code, message),
            (StatusCode::NOT_FOUND, &answers[0].2, &answers[0].3),
            "{what}: {answers:?}"
        );
        assert_eq!(code, "not_found", "{what}");
    }
    // Nothing was stored.
    let admin = app.admin().await;
    let reports: Vec<Value> = app
        .get("/api/admin/reports", Some(&admin.token))
        .await
        .parsed()
        .await;
    assert!(reports.is_empty(), "{reports:?}");
    // Once unhidden, it can be reported.
    let r = app
        .patch_json(
            &format!("/api/listings/{hidden}"),
            &json!({"status": "selling"}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post_json(
            "/api/reports",
            &json!({"target_kind": "listing", "target_id": hidden, "reason": "사기 의심"}),
            Some(&reporter.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
