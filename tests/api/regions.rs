//! Regions (동네): search by name and one region with its neighbours,
//! public and read-only.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_error, spawn_app, Parsed};

#[actix_web::test]
async fn regions_are_found_by_korean_name_without_signing_in() {
    let app = spawn_app().await;
    let found: Value = app
        .get("/api/regions?query=%EC%97%AD%EC%82%BC", None) // 역삼
        .await
        .parsed()
        .await;
    let items = found["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert!(items
        .iter()
        .all(|r| r["full_name"].as_str().is_some_and(|n| n.contains("역삼"))));
    let gangnam = items
        .iter()
        .find(|r| r["sigungu"] == "강남구")
        .expect("역삼동 in 강남구");
    assert_eq!(gangnam["name"], "역삼동");
    assert_eq!(gangnam["full_name"], "서울특별시 강남구 역삼동");
    assert!(gangnam["lat"]
        .as_f64()
        .is_some_and(|l| (37.4..37.6).contains(&l)));

    // Every word must match: "강남 역삼" is only the one in 강남구.
    let narrowed: Value = app
        .get(
            &format!("/api/regions?query={}", urlencode("강남 역삼")),
            None,
        )
        .await
        .parsed()
        .await;
    let names: Vec<&str> = narrowed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["full_name"].as_str())
        .collect();
    assert_eq!(names, ["서울특별시 강남구 역삼동"]);

    let limited: Value = app
        .get(
            &format!("/api/regions?query={}&limit=3", urlencode("동")),
            None,
        )
        .await
        .parsed()
        .await;
    assert_eq!(limited["items"].as_array().map(Vec::len), Some(3));
}

#[actix_web::test]
async fn a_region_comes_with_its_neighbours_nearest_first() {
    let app = spawn_app().await;
    let found: Value = app
        .get(
            &format!("/api/regions?query={}", urlencode("강남구 역삼동")),
            None,
        )
        .await
        .parsed()
        .await;
    let code = found["items"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let r = app.get(&format!("/api/regions/{code}"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let detail: Value = r.parsed().await;
    assert_eq!(detail["code"], code.as_str());
    assert_eq!(detail["name"], "역삼동");
    let near = detail["near"].as_array().expect("near");
    assert!(near.len() >= 10, "{}", near.len());
    let distances: Vec<u64> = near
        .iter()
        .map(|n| n["distance_m"].as_u64().expect("distance"))
        .collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert!(distances.iter().all(|d| *d <= 10_000));
    assert!(near.iter().all(|n| n["code"] != code.as_str()));
    // Neighbouring 도곡동 and 삼성동 are within a few kilometres.
    for name in ["도곡동", "삼성동"] {
        let n = near
            .iter()
            .find(|n| n["name"] == name && n["sigungu"] == "강남구")
            .unwrap_or_else(|| panic!("{name} near 역삼동"));
        assert!(n["distance_m"].as_u64().is_some_and(|d| d < 4_000), "{n}");
    }
}

#[actix_web::test]
async fn bad_region_queries_are_refused() {
    let app = spawn_app().await;
    for path in [
        "/api/regions".to_string(),
        "/api/regions?query=".to_string(),
        "/api/regions?query=%20%20".to_string(),
        format!("/api/regions?query={}", "가".repeat(41)),
        "/api/regions?query=x&limit=0".to_string(),
        "/api/regions?query=x&limit=51".to_string(),
        "/api/regions?query=x&colour=red".to_string(),
    ] {
        assert_error(
            app.get(&path, None).await,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        )
        .await;
    }
    for code in ["99999999", "nowhere", "11680101x"] {
        assert_error(
            app.get(&format!("/api/regions/{code}"), None).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// 역삼역 (서울 강남구 역삼동), Busan city hall (부산 연제구 연산동), and
/// Jeju airport (제주 용담이동).
const YEOKSAM: (f64, f64) = (37.5006, 127.0364);
const BUSAN: (f64, f64) = (35.1798, 129.0750);
const JEJU: (f64, f64) = (33.5067, 126.4930);

fn at((lat, lng): (f64, f64)) -> Value {
    serde_json::json!({"lat": lat, "lng": lng})
}

#[actix_web::test]
async fn a_user_verifies_two_neighbourhoods_and_switches_between_them() {
    let app = spawn_app().await;
    let u = app.user("dong").await;
    let r = app
        .post_json("/api/me/neighbourhoods", &at(YEOKSAM), Some(&u.token))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let home: Value = r.parsed().await;
    assert_eq!(home["region"]["name"], "역삼동");
    assert_eq!(home["region"]["sigungu"], "강남구");
    assert_eq!(
        (home["active"].as_bool(), home["range"].as_str()),
        (Some(true), Some("near"))
    );
    let days = (home["verified_until"].as_i64().expect("until")
        - home["verified_at"].as_i64().expect("at"))
        / 86_400_000;
    assert_eq!(days, 30, "neighbourhood_verify_days");
    let home_code = home["region"]["code"].as_str().expect("code").to_string();

    // Verifying again where one already is: 200, renewed, still one.
    let again = app
        .post_json("/api/me/neighbourhoods", &at(YEOKSAM), Some(&u.token))
        .await;
    assert_eq!(again.status(), StatusCode::OK);

    let r = app
        .post_json("/api/me/neighbourhoods", &at(BUSAN), Some(&u.token))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let second: Value = r.parsed().await;
    assert_eq!(second["active"], false, "the first stays active");
    let second_code = second["region"]["code"].as_str().expect("code").to_string();

    let mine: Vec<Value> = app
        .get("/api/me/neighbourhoods", Some(&u.token))
        .await
        .parsed()
        .await;
    let codes: Vec<&str> = mine
        .iter()
        .filter_map(|n| n["region"]["code"].as_str())
        .collect();
    assert_eq!(codes, [home_code.as_str(), second_code.as_str()]);

    // Switch, and set the range.
    let r = app
        .put_json(
            &format!("/api/me/neighbourhoods/{second_code}"),
            &serde_json::json!({"active": true, "range": "far"}),
            Some(&u.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let switched: Value = r.parsed().await;
    assert_eq!(
        (switched["active"].as_bool(), switched["range"].as_str()),
        (Some(true), Some("far"))
    );
    let mine: Vec<Value> = app
        .get("/api/me/neighbourhoods", Some(&u.token))
        .await
        .parsed()
        .await;
    assert_eq!(
        mine[0]["region"]["code"],
        second_code.as_str(),
        "the active one first"
    );
    assert_eq!(mine[1]["active"], false);

    // Removing the active one makes the other active.
    let r = app
        .delete(
            &format!("/api/me/neighbourhoods/{second_code}"),
            Some(&u.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mine: Vec<Value> = app
        .get("/api/me/neighbourhoods", Some(&u.token))
        .await
        .parsed()
        .await;
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (
            mine[0]["region"]["code"].as_str(),
            mine[0]["active"].as_bool()
        ),
        (Some(home_code.as_str()), Some(true))
    );
}

#[actix_web::test]
async fn neighbourhood_refusals_change_nothing() {
    let app = spawn_app().await;
    let u = app.user("dong-refused").await;
    let other = app.user("dong-other").await;
    for pos in [YEOKSAM, BUSAN] {
        let r = app
            .post_json("/api/me/neighbourhoods", &at(pos), Some(&u.token))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let before: Value = app
        .get("/api/me/neighbourhoods", Some(&u.token))
        .await
        .parsed()
        .await;
    let code = before[0]["region"]["code"]
        .as_str()
        .expect("code")
        .to_string();

    // A third: the limit.
    let body = assert_error(
        app.post_json("/api/me/neighbourhoods", &at(JEJU), Some(&u.token))
            .await,
        StatusCode::CONFLICT,
        "neighbourhood_limit",
    )
    .await;
    assert_eq!(body["details"]["max"], 2);
    // At sea, outside Korea.
    for pos in [(36.0, 124.0), (35.68, 139.76)] {
        assert_error(
            app.post_json("/api/me/neighbourhoods", &at(pos), Some(&other.token))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "outside_service_area",
        )
        .await;
    }
    // Coordinates out of range, not numbers, missing.
    for (body, field) in [
        (serde_json::json!({"lat": 91.0, "lng": 127.0}), "lat"),
        (serde_json::json!({"lat": 37.5, "lng": -181.0}), "lng"),
        (serde_json::json!({"lat": "37.5", "lng": 127.0}), "lat"),
        (serde_json::json!({"lat": 37.5}), "lng"),
    ] {
        let e = assert_error(
            app.post_json("/api/me/neighbourhoods", &body, Some(&other.token))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert!(e["details"][field].is_string(), "{body}: {e}");
    }
    // Not signed in.
    assert_error(
        app.post_json("/api/me/neighbourhoods", &at(YEOKSAM), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // Someone else's, or none: 404; bad changes: 422.
    assert_error(
        app.put_json(
            &format!("/api/me/neighbourhoods/{code}"),
            &serde_json::json!({"active": true}),
            Some(&other.token),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.delete(
            &format!("/api/me/neighbourhoods/{code}"),
            Some(&other.token),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for body in [
        serde_json::json!({"range": "galaxy"}),
        serde_json::json!({"active": false}),
        serde_json::json!({}),
    ] {
        assert_error(
            app.put_json(
                &format!("/api/me/neighbourhoods/{code}"),
                &body,
                Some(&u.token),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    // Nothing of that was written.
    let after: Value = app
        .get("/api/me/neighbourhoods", Some(&u.token))
        .await
        .parsed()
        .await;
    assert_eq!(after, before);
    let none: Vec<Value> = app
        .get("/api/me/neighbourhoods", Some(&other.token))
        .await
        .parsed()
        .await;
    assert!(none.is_empty());
}

/// 도곡동, next to 역삼동 (about 1.5 km).
const DOGOK: (f64, f64) = (37.4905, 127.0540);

async fn post_listing(app: &crate::helpers::TestApp, token: &str, title: &str) -> Value {
    let r = app
        .post_json(
            "/api/listings",
            &serde_json::json!({"title": title, "price": 10_000, "category": "digital"}),
            Some(token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.parsed().await
}

async fn feed_titles(
    app: &crate::helpers::TestApp,
    query: &str,
    token: Option<&str>,
) -> Vec<String> {
    let page: Value = app
        .get(&format!("/api/listings{query}"), token)
        .await
        .parsed()
        .await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["title"].as_str().map(str::to_string))
        .collect()
}

#[actix_web::test]
async fn listings_belong_to_a_place_and_the_feed_follows_the_range() {
    let app = spawn_app().await;
    let (seoul, neighbour, busan, nowhere) = (
        app.user("seoul-seller").await,
        app.user("dogok").await,
        app.user("busan").await,
        app.user("nowhere").await,
    );
    for (u, pos) in [(&seoul, YEOKSAM), (&neighbour, DOGOK), (&busan, BUSAN)] {
        let r = app
            .post_json("/api/me/neighbourhoods", &at(pos), Some(&u.token))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let chair = post_listing(&app, &seoul.token, "역삼 의자").await;
    assert_eq!(chair["region"], "역삼동");
    let yeoksam = chair["region_code"].as_str().expect("code").to_string();
    let table = post_listing(&app, &busan.token, "부산 탁자").await;
    assert_eq!(table["region"], "연산동");
    let lamp = post_listing(&app, &nowhere.token, "어딘가 램프").await;
    assert!(lamp["region"].is_null(), "no neighbourhood: no region");

    // Signed in with a neighbourhood: its range (near by default).
    let near = feed_titles(&app, "", Some(&neighbour.token)).await;
    assert!(near.contains(&"역삼 의자".to_string()), "{near:?}");
    assert!(!near.contains(&"부산 탁자".to_string()), "{near:?}");
    let far_busan = feed_titles(&app, "?range=far", Some(&busan.token)).await;
    assert_eq!(
        far_busan,
        ["부산 탁자"],
        "Seoul is not within 10 km of Busan"
    );
    // Items say where.
    let page: Value = app
        .get("/api/listings", Some(&neighbour.token))
        .await
        .parsed()
        .await;
    assert_eq!(page["items"][0]["region"], "역삼동");
    // The neighbour narrows to their own 동: the chair is in 역삼동, not 도곡동.
    let r = app
        .put_json(
            &format!(
                "/api/me/neighbourhoods/{}",
                near_code(&app, &neighbour.token).await
            ),
            &serde_json::json!({"range": "dong"}),
            Some(&neighbour.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(feed_titles(&app, "", Some(&neighbour.token))
        .await
        .is_empty());

    // A visitor browses by region; without one, the whole country.
    let visitor = feed_titles(&app, &format!("?region={yeoksam}&range=dong"), None).await;
    assert_eq!(visitor, ["역삼 의자"]);
    let all = feed_titles(&app, "", None).await;
    for t in ["역삼 의자", "부산 탁자", "어딘가 램프"] {
        assert!(all.contains(&t.to_string()), "{all:?}");
    }
    assert_eq!(feed_titles(&app, "", Some(&nowhere.token)).await.len(), 3);

    for query in ["?range=galaxy", "?region=99999999", "?range=far"] {
        assert_error(
            app.get(&format!("/api/listings{query}"), None).await,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        )
        .await;
    }
}

async fn near_code(app: &crate::helpers::TestApp, token: &str) -> String {
    let mine: Vec<Value> = app
        .get("/api/me/neighbourhoods", Some(token))
        .await
        .parsed()
        .await;
    mine[0]["region"]["code"]
        .as_str()
        .expect("code")
        .to_string()
}

#[actix_web::test]
async fn an_expired_verification_stops_posting_until_verified_again() {
    // About 1.7 s of verification.
    let app = crate::helpers::spawn_app_with(&[("neighbourhood_verify_days", "0.00002")]).await;
    let u = app.user("expiring").await;
    let r = app
        .post_json("/api/me/neighbourhoods", &at(YEOKSAM), Some(&u.token))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    let e = assert_error(
        app.post_json(
            "/api/listings",
            &serde_json::json!({"title": "만료", "price": 1_000, "category": "digital"}),
            Some(&u.token),
        )
        .await,
        StatusCode::FORBIDDEN,
        "neighbourhood_expired",
    )
    .await;
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("역삼동")),
        "{e}"
    );
    let mine = feed_titles(&app, &format!("?seller={}", u.id), None).await;
    assert!(mine.is_empty(), "nothing was posted");
    // Browsing goes on; verifying again where they are lets them post.
    assert_eq!(
        app.get("/api/listings", Some(&u.token)).await.status(),
        StatusCode::OK
    );
    let again = app
        .post_json("/api/me/neighbourhoods", &at(YEOKSAM), Some(&u.token))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let posted = post_listing(&app, &u.token, "다시 인증").await;
    assert_eq!(posted["region"], "역삼동");
}

#[actix_web::test]
async fn open_rooms_of_a_neighbourhood_admit_its_neighbours() {
    let app = spawn_app().await;
    let (host, neighbour, busan, stranger) = (
        app.user("room-host").await,
        app.user("room-neighbour").await,
        app.user("room-busan").await,
        app.user("room-stranger").await,
    );
    for (u, pos) in [(&host, YEOKSAM), (&neighbour, DOGOK), (&busan, BUSAN)] {
        let r = app
            .post_json("/api/me/neighbourhoods", &at(pos), Some(&u.token))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let yeoksam = near_code(&app, &host.token).await;
    let open = |name: &str, region: &str| serde_json::json!({"kind": "open", "name": name, "region": region});

    // Creating needs a verified neighbourhood in that region.
    let e = assert_error(
        app.post_json(
            "/api/rooms",
            &open("역삼 번개", &yeoksam),
            Some(&busan.token),
        )
        .await,
        StatusCode::FORBIDDEN,
        "neighbourhood_required",
    )
    .await;
    assert_eq!(e["details"]["region"], yeoksam.as_str());
    app.assert_refusals(vec![(
        "an unknown region",
        Method::POST,
        "/api/rooms".to_string(),
        Some(open("어딘가", "99999999")),
        Some(host.token.as_str()),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )])
    .await;
    let r = app
        .post_json(
            "/api/rooms",
            &open("역삼 번개", &yeoksam),
            Some(&host.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let room: Value = r.parsed().await;
    assert_eq!(room["region"], "역삼동");
    let id = room["id"].as_i64().expect("id");

    // Joining needs a verified neighbourhood whose range takes it in.
    let join = format!("/api/rooms/{id}/join");
    app.assert_refusals(
        [
            ("from Busan", &busan),
            ("without a neighbourhood", &stranger),
        ]
        .into_iter()
        .map(|(what, u)| {
            (
                what,
                Method::POST,
                join.clone(),
                Some(serde_json::json!({})),
                Some(u.token.as_str()),
                StatusCode::FORBIDDEN,
                "neighbourhood_required",
            )
        })
        .collect(),
    )
    .await;
    let r = app
        .post_json(
            &format!("/api/rooms/{id}/join"),
            &serde_json::json!({}),
            Some(&neighbour.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let joined: Value = r.parsed().await;
    assert_eq!(joined["member_count"], 2, "the refused joins added nobody");

    // The rooms near me: the 역삼 room for the neighbour, not from Busan.
    let names = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect()
    };
    let near: Value = app
        .get("/api/rooms?near=true", Some(&neighbour.token))
        .await
        .parsed()
        .await;
    assert_eq!(names(near), ["역삼 번개"]);
    let far: Value = app
        .get("/api/rooms?near=true", Some(&busan.token))
        .await
        .parsed()
        .await;
    assert!(names(far).is_empty());
    assert_error(
        app.get("/api/rooms?near=true", Some(&stranger.token)).await,
        StatusCode::FORBIDDEN,
        "neighbourhood_required",
    )
    .await;
    // Without `near`, every open room as before.
    let all: Value = app
        .get("/api/rooms", Some(&stranger.token))
        .await
        .parsed()
        .await;
    assert_eq!(names(all), ["역삼 번개"]);
}
