//! Regions (동네): search by name and one region with its neighbours,
//! public and read-only.

use reqwest::StatusCode;
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
