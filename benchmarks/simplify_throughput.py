"""simplify_html throughput (MB/s) next to plain lxml parse + serialize of the same pages, one run.

Three page sets, each timed against its own baseline on one core:

- bundled: every observation of `bundled_sessions("train")` and `("test")` (already simplified pages,
  the common case: OPeRA and the procedural shop ship simplified HTML, so this is pass-through cost;
  the procedural pages are small, ~2.6k characters);
- large_simplified: the raw pages below after one simplification (~250 kB each, OPeRA-sized simplified
  pages with ~1.2k named elements), pass-through again;
- raw: synthetic raw search-result pages built here (scripts, styles, svg, iframes, comments, hidden
  blocks, long class lists, onclick handlers, ~9k elements and ~770 kB each), the full simplification.

The baseline is `lxml.html.tostring(lxml.html.document_fromstring(page))`; the two are timed page by
page in alternating order (see `paired`). Run it alone with
`python -m benchmarks.simplify_throughput [--quick]` (prints JSON), or with the others through
`python -m benchmarks --only simplify_throughput`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import lxml.html

from benchmarks import pinned_to_one_core
from shop_env.simplify_html import simplify_html

TARGET_RATIO = 0.5
"""simplify_html MB/s over lxml parse + serialize MB/s on the same pages (issue 2)."""

_WORDS = ("Nike", "Adidas", "Men's", "Trail", "Running", "Shoe", "Lightweight", "Breathable", "Blue", "Size 10")


def synthetic_raw_page(n_products: int = 300, seed: int = 0) -> str:
    """A raw search-results page shaped like a big retailer's: mostly markup that simplify removes."""
    rng = random.Random(seed)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Shop.com : running shoes</title>',
        "<style>.a{color:red} .b{display:none}</style><script>var x = '<div>' + 1;</script>",
        '<link rel="stylesheet" href="x.css"></head><body class="a-m-us">',
        '<!-- header --><header id="navbar" class="nav-sprite"><div class="nav-left">'
        '<a href="/" aria-label="Shop" class="nav-logo-link"><span class="nav-sprite nav-logo-base"></span></a></div>',
        '<form role="search" action="/s"><input type="text" id="search" placeholder="Search Shop" '
        'autocomplete="off"><input type="submit" value="Go" class="nav-input"></form>',
        '<div style="display: none"><a href="/hidden">Hidden link</a></div><svg width="10"><path d="M0 0"/></svg></header>\n',
    ]
    for i in range(n_products):
        title = " ".join(rng.choice(_WORDS) for _ in range(8))
        price = rng.randint(10, 200)
        parts.append(
            f"""
      <div data-asin="B0{i:06d}" data-index="{i}" class="s-result-item s-asin sg-col-0-of-12 sg-col-16-of-20 s-widget-spacing-small sg-col sg-col-12-of-16" data-component-type="s-search-result">
        <div class="sg-col-inner"><div class="s-widget-container s-spacing-small celwidget" data-csa-c-type="item">
          <div class="puis-card-container s-card-container s-overflow-hidden aok-relative puis-include-content-margin"><div class="a-section">
            <span class="rush-component" data-component-type="s-product-image"><a class="a-link-normal s-no-outline" href="/dp/B0{i:06d}/ref=sr_1_{i}?keywords=running+shoes&amp;sr=8-{i}">
              <div class="a-section aok-relative s-image-square-aspect"><img class="s-image" src="https://img.example/{i}.jpg" srcset="a.jpg 1x, b.jpg 2x" alt="{title}" data-image-index="{i}"></div></a></span>
            <h2 class="a-size-mini a-spacing-none a-color-base s-line-clamp-2"><a class="a-link-normal s-underline-text a-text-normal" href="/dp/B0{i:06d}"><span class="a-size-base-plus a-color-base a-text-normal">{title}</span></a></h2>
            <div class="a-row a-size-small"><span aria-label="4.{i % 10} out of 5 stars"><i class="a-icon a-icon-star-small a-star-small-4-5"><span class="a-icon-alt">4.{i % 10} out of 5 stars</span></i></span>
            <span aria-label="{rng.randint(1, 9999)} ratings"><a class="a-link-normal s-underline-text" href="/dp/B0{i:06d}#customerReviews"><span class="a-size-base">{rng.randint(1, 9999)}</span></a></span></div>
            <div class="a-row a-size-base a-color-base"><span class="a-price" data-a-size="xl"><span class="a-offscreen">${price}.99</span><span aria-hidden="true"><span class="a-price-symbol">$</span><span class="a-price-whole">{price}</span><span class="a-price-fraction">99</span></span></span></div>
            <div class="a-button" onclick="addToCart('{i}')"><span class="a-button-inner">Add to cart</span></div>
            <script type="application/json">{{"asin": "B0{i:06d}"}}</script>
          </div></div></div></div></div>"""
        )
    parts.append(
        '<footer><a href="/help">Help</a><iframe src="ad.html"></iframe>'
        '<noscript><img src="pixel.gif"></noscript></footer></body></html>'
    )
    return "".join(parts)


def bundled_pages() -> list[str]:
    from shop_env.loaders import bundled_sessions

    return [
        step.observation
        for split in ("train", "test")
        for session in bundled_sessions(split)
        for step in session.steps
    ]


def lxml_roundtrip(page: str) -> str:
    return lxml.html.tostring(lxml.html.document_fromstring(page), encoding="unicode")


@dataclass(frozen=True)
class Paired:
    """simplify_html and the lxml baseline timed page by page, in alternating order."""

    simplify_mb_s: float
    """Best round's simplify_html throughput, MB (1e6 bytes of UTF-8 input) per second."""
    lxml_mb_s: float
    """Best round's lxml parse + serialize throughput."""
    ratio: float
    """Median over rounds of (simplify MB/s) / (lxml MB/s) within the round."""
    megabytes: float
    """Input size of one round."""


def paired(pages: Sequence[str], rounds: int) -> Paired:
    """Time both functions on each page back to back, alternating which goes first.

    On a shared machine a burst of load lasts longer than one page, so it slows both sides of the
    ratio alike; interleaving whole passes over the pages (as `interleaved_rates` does) lets one side
    catch a quiet second and the other a busy one.
    """
    size = sum(len(page.encode("utf-8")) for page in pages)
    for page in pages[:50]:  # warm-up: imports, parser set-up, caches
        simplify_html(page)
        lxml_roundtrip(page)
    ratios, ours_rates, lxml_rates = [], [], []
    for round_index in range(rounds):
        ours = theirs = 0.0
        for page_index, page in enumerate(pages):
            ours_first = (page_index + round_index) % 2 == 1
            first, second = (simplify_html, lxml_roundtrip) if ours_first else (lxml_roundtrip, simplify_html)
            start = time.perf_counter()
            first(page)
            middle = time.perf_counter()
            second(page)
            end = time.perf_counter()
            if ours_first:
                ours, theirs = ours + (middle - start), theirs + (end - middle)
            else:
                ours, theirs = ours + (end - middle), theirs + (middle - start)
        ours_rates.append(size / ours)
        lxml_rates.append(size / theirs)
        ratios.append(theirs / ours)
    return Paired(
        simplify_mb_s=round(max(ours_rates) / 1e6, 2),
        lxml_mb_s=round(max(lxml_rates) / 1e6, 2),
        ratio=round(statistics.median(ratios), 4),
        megabytes=round(size / 1e6, 2),
    )


def run(quick: bool = False) -> dict:
    pages = bundled_pages()
    if quick:
        pages = pages[: max(1, len(pages) // 10)]
    raw = [synthetic_raw_page(n_products=300, seed=seed) for seed in range(2 if quick else 6)]
    page_sets = {"bundled": pages, "large_simplified": [simplify_html(page) for page in raw], "raw": raw}
    rounds = 3 if quick else 7
    with pinned_to_one_core() as core:
        results = {kind: paired(kind_pages, rounds) for kind, kind_pages in page_sets.items()}
    numbers: dict[str, float | int] = {}
    for kind, result in results.items():
        numbers[f"simplify_{kind}_mb_s"] = result.simplify_mb_s
        numbers[f"lxml_{kind}_mb_s"] = result.lxml_mb_s
        numbers[f"{kind}_pages"] = len(page_sets[kind])
        numbers[f"{kind}_mb"] = result.megabytes
    return {
        "benchmark": "simplify_throughput",
        "ratios": {f"{kind}_vs_lxml": result.ratio for kind, result in results.items()},
        "targets": {f"{kind}_vs_lxml": TARGET_RATIO for kind in results},
        "numbers": {**numbers, "rounds": rounds},
        "pinned_core": core,
        "notes": (
            "MB = 1e6 bytes of UTF-8 input. Ratio: median over rounds of simplify MB/s over lxml MB/s, the "
            "two timed page by page in alternating order; MB/s: best round. Baseline: "
            "lxml.html.document_fromstring + lxml.html.tostring of the same pages."
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the bundled pages, 3 rounds")
    args = parser.parse_args(argv)
    json.dump(run(quick=args.quick), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
