"""simplify_html throughput (MB/s) next to plain lxml parse + serialize of the same pages, one run.

Two page sets, each timed against its own baseline with interleaved rounds on one core:

- bundled: every observation of `bundled_sessions("train")` and `("test")` (already simplified pages,
  the common case: OPeRA and the procedural shop ship simplified HTML, so this is pass-through cost);
- raw: synthetic raw search-result pages built here (scripts, styles, svg, iframes, comments, hidden
  blocks, long class lists, onclick handlers, ~9k elements and ~770 kB each), the full simplification.

The baseline is `lxml.html.tostring(lxml.html.document_fromstring(page))`. Run it alone with
`python -m benchmarks.simplify_throughput [--quick]` (prints JSON), or with the others through
`python -m benchmarks --only simplify_throughput`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Sequence

import lxml.html

from benchmarks import interleaved_rates, pinned_to_one_core, ratio
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


def _bytes_workload(function: Callable[[str], object], pages: Sequence[str]) -> Callable[[], int]:
    size = sum(len(page.encode("utf-8")) for page in pages)

    def work() -> int:
        for page in pages:
            function(page)
        return size

    return work


def lxml_roundtrip(page: str) -> str:
    return lxml.html.tostring(lxml.html.document_fromstring(page), encoding="unicode")


def run(quick: bool = False) -> dict:
    pages = bundled_pages()
    if quick:
        pages = pages[: max(1, len(pages) // 10)]
    raw = [synthetic_raw_page(n_products=300, seed=seed) for seed in range(2 if quick else 6)]
    rounds = 3 if quick else 7
    with pinned_to_one_core() as core:
        rates = interleaved_rates(
            {
                "simplify_bundled": _bytes_workload(simplify_html, pages),
                "lxml_bundled": _bytes_workload(lxml_roundtrip, pages),
                "simplify_raw": _bytes_workload(simplify_html, raw),
                "lxml_raw": _bytes_workload(lxml_roundtrip, raw),
            },
            rounds=rounds,
        )
    mb_s = {name: round(rate.best / 1e6, 2) for name, rate in rates.items()}
    return {
        "benchmark": "simplify_throughput",
        "ratios": {
            "bundled_vs_lxml": ratio(rates["simplify_bundled"].best, rates["lxml_bundled"].best),
            "raw_vs_lxml": ratio(rates["simplify_raw"].best, rates["lxml_raw"].best),
        },
        "targets": {"bundled_vs_lxml": TARGET_RATIO, "raw_vs_lxml": TARGET_RATIO},
        "numbers": {
            **{f"{name}_mb_s": value for name, value in mb_s.items()},
            "bundled_pages": len(pages),
            "bundled_mb": round(rates["simplify_bundled"].items / 1e6, 2),
            "raw_pages": len(raw),
            "raw_mb": round(rates["simplify_raw"].items / 1e6, 2),
            "rounds": rounds,
        },
        "pinned_core": core,
        "notes": (
            "MB = 1e6 bytes of UTF-8 input; best of interleaved rounds. Baseline: "
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
