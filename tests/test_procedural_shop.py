"""The procedural shop: catalog, pages, shopper, `make-sessions`, and the bundled sessions built with it."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shop_r1.cli import app
from shop_env.procedural_shop import SOURCE, Catalog, make_persona, make_sessions
from shop_env.procedural_shop.pages import RESULTS_PER_PAGE, SearchState, render_search
from shop_env.procedural_shop.shopper import check_split_name, iter_sessions, session_stats
from shop_env.procedural_shop.words import CATEGORIES
from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT, read_jsonl
from shop_env.simplify_html import interactive_elements

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PAPER_MIX = {CLICK: 0.365, TYPE_AND_SUBMIT: 0.384, TERMINATE: 0.251}
"""Shop-CART train split, paper Table A1: 64,578 / 68,000 / 44,371 of 176,949."""
MAX_PAGE_CHARS = 4000
"""About 1,500 SmolLM2 tokens: the bundled pages measure 2.6 characters per token."""
PURCHASE_CLICKS = {"cart.checkout", "product_form.buy_now"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.generate()


@pytest.fixture(scope="module")
def sessions(catalog):
    return make_sessions(400, seed=123, split_name="unit", catalog=catalog)


def test_catalog_has_thousands_of_products_over_all_departments(catalog):
    assert len(catalog.products) >= 2000
    per_category = Counter(p.category for p in catalog.products)
    assert set(per_category) == {c.slug for c in CATEGORIES}
    assert len(per_category) >= 6
    assert min(per_category.values()) >= 200
    assert len({p.slug for p in catalog.products}) == len(catalog.products)
    assert all(re.fullmatch(r"[a-z0-9_]+", p.slug) for p in catalog.products)
    assert all(1.0 <= p.rating <= 5.0 and p.price > 0 and p.review_count > 0 for p in catalog.products)


def test_catalog_is_deterministic_per_seed(catalog):
    assert Catalog.generate().products == catalog.products
    assert Catalog.generate(seed=1).products != catalog.products


def test_search_tolerates_typos_and_honours_a_price_cap(catalog):
    exact = catalog.search("trail running shoes")
    assert exact and exact[0].product_type == "trail running shoes"
    assert catalog.search("trial runing shoes")[:5] == exact[:5]
    capped = catalog.search("hiking boots under $80")
    assert capped and all(p.price <= 80 for p in capped)
    assert catalog.search("qwxzv") == []


def test_search_page_names_filters_sort_and_pagination(catalog):
    page = render_search(catalog, SearchState(query="yoga mat"), cart_count=0)
    names = interactive_elements(page.html)
    assert len(page.products) == RESULTS_PER_PAGE
    assert "header.search_box.search_input" in names
    assert "search_results.sort_by.price_low_to_high" in names
    assert "search_results.pagination.next" in names
    assert any(name.startswith("search_results.filters.brand.") for name in names)
    assert [f"search_results.{p.slug}.view_product" for p in page.products] == [
        name for name in names if name.endswith(".view_product")
    ]
    cheapest_first = render_search(catalog, SearchState(query="yoga mat", sort="price_low_to_high"), 0)
    prices = [p.price for p in cheapest_first.products]
    assert prices == sorted(prices)
    beyond_the_end = render_search(catalog, SearchState(query="yoga mat", page=999), 0)
    assert beyond_the_end.search.page == beyond_the_end.page_count > 1
    assert beyond_the_end.url.endswith(f"page={beyond_the_end.page_count}")
    assert "search_results.pagination.next" not in interactive_elements(beyond_the_end.html)


def test_same_seed_same_sessions_and_different_seed_different_sessions(catalog):
    first = [s.to_dict() for s in make_sessions(8, seed=5, catalog=catalog)]
    assert [s.to_dict() for s in make_sessions(8, seed=5, catalog=catalog)] == first
    assert [s.to_dict() for s in make_sessions(8, seed=6, catalog=catalog)] != first
    # Session i depends only on (seed, i): asking for more sessions does not change the first ones.
    assert [s.to_dict() for s in make_sessions(12, seed=5, catalog=catalog)][:8] == first


def test_every_gold_name_is_an_element_of_its_page(sessions):
    checked = 0
    for session in sessions:
        for index, step in enumerate(session.steps):
            names = interactive_elements(step.observation)
            assert len(names) == len(set(names)), f"{session.session_id} step {index}: duplicate names"
            if step.action.name is not None:
                assert step.action.name in names, f"{session.session_id} step {index}: {step.action}"
                checked += 1
    assert checked > 800


def test_action_mix_is_near_the_papers(sessions):
    kinds = Counter(step.action.type for session in sessions for step in session.steps)
    total = sum(kinds.values())
    for kind, share in PAPER_MIX.items():
        assert abs(kinds[kind] / total - share) < 0.04, (kind, kinds[kind] / total)
    assert 2.5 < total / len(sessions) < 5.0


def test_sessions_are_well_formed(sessions):
    for session in sessions:
        assert session.source == SOURCE and session.persona
        assert re.fullmatch(r"unit-\d{5}", session.session_id)
        *middle, last = session.steps
        assert last.action.type == TERMINATE or last.action.name in PURCHASE_CLICKS
        assert all(step.action.type != TERMINATE and step.action.name not in PURCHASE_CLICKS for step in middle)
        assert all(step.rationale and step.url.startswith("https://") for step in session.steps)
        stamps = [step.timestamp for step in session.steps]
        assert stamps == sorted(stamps)
        for step in session.steps:
            assert len(step.observation) <= MAX_PAGE_CHARS
            if step.action.type == TYPE_AND_SUBMIT:
                assert step.action.name == "header.search_box.search_input" and step.action.text.strip()


def test_rationales_quote_the_product_they_open(sessions, catalog):
    opened = 0
    for session in sessions:
        for step in session.steps:
            name = step.action.name or ""
            if name.startswith("search_results.") and name.endswith(".view_product"):
                product = catalog.by_slug[name.split(".")[1]]
                assert f"{product.brand} {product.model}" in step.rationale, step.rationale
                opened += 1
    assert opened > 50


def test_queries_vary_like_people_type(sessions):
    queries = [s.action.text for session in sessions for s in session.steps if s.action.type == TYPE_AND_SUBMIT]
    assert len(set(queries)) > 0.6 * len(queries)
    refined = sum(
        1 for session in sessions if sum(step.action.type == TYPE_AND_SUBMIT for step in session.steps) > 1
    )
    assert refined > 0.1 * len(sessions)


def test_personas_state_need_and_budget():
    for seed in range(20):
        persona = make_persona(random.Random(seed))
        assert persona.product_type in persona.text
        assert f"${persona.budget:.0f}" in persona.text


def test_bad_arguments_fail_at_the_call():
    with pytest.raises(ValueError, match="lowercase"):
        iter_sessions(3, 0, split_name="Train Set")
    with pytest.raises(ValueError, match=">= 0"):
        iter_sessions(-1, 0)
    assert check_split_name("test") == "test"


def test_session_stats_counts_the_mix(sessions):
    stats = session_stats(sessions[:50], count_tokens=lambda text: len(text) // 4)
    steps = sum(len(s) for s in sessions[:50])
    assert stats["sessions"] == 50 and stats["steps"] == steps
    assert sum(stats["action_mix"].values()) == pytest.approx(1.0, abs=0.002)
    assert stats["page_tokens"]["max"] == stats["page_chars"]["max"] // 4
    assert stats["page_chars"]["mean"] <= stats["page_chars"]["p90"] <= stats["page_chars"]["max"]


def test_make_sessions_command_writes_a_loadable_file(tmp_path):
    out = tmp_path / "made.jsonl.gz"
    args = ["make-sessions", "--n", "4", "--seed", "9", "--out", str(out), "--split-name", "demo"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    loaded = read_jsonl(out)
    assert [s.session_id for s in loaded] == [f"demo-{i:05d}" for i in range(4)]
    assert [s.to_dict() for s in loaded] == [s.to_dict() for s in make_sessions(4, seed=9, split_name="demo")]
    assert "action mix" in result.output


def test_make_sessions_command_rejects_a_bad_split_name(tmp_path):
    out = tmp_path / "made.jsonl"
    result = CliRunner().invoke(app, ["make-sessions", "--n", "2", "--out", str(out), "--split-name", "Bad Name"])
    assert result.exit_code == 2
    assert "--split-name" in result.output
    assert not out.exists()


@pytest.mark.parametrize(("split", "seed", "minimum"), [("train", 0, 400), ("test", 1, 100)])
def test_bundled_sessions_load_and_match_the_generator(split, seed, minimum, catalog):
    bundled = read_jsonl(ASSETS / f"sessions_{split}.jsonl.gz")
    assert len(bundled) >= minimum
    assert all(s.source == SOURCE and re.fullmatch(rf"{split}-\d{{5}}", s.session_id) for s in bundled)
    # The files are exactly what `shop-r1 make-sessions --seed {seed} --split-name {split}` writes.
    regenerated = make_sessions(10, seed=seed, split_name=split, catalog=catalog)
    assert [s.to_dict() for s in bundled[:10]] == [s.to_dict() for s in regenerated]


def test_bundled_splits_are_disjoint_and_sized():
    train = read_jsonl(ASSETS / "sessions_train.jsonl.gz")
    test = read_jsonl(ASSETS / "sessions_test.jsonl.gz")
    assert not {s.persona for s in train} & {s.persona for s in test}
    assert not {s.extra["generator_seed"] for s in train} & {s.extra["generator_seed"] for s in test}
    total_bytes = sum(path.stat().st_size for path in ASSETS.glob("sessions_*.jsonl.gz"))
    assert total_bytes < 20 * 2**20


def test_bundled_sessions_api_serves_the_files():
    import shop_env

    assert len(shop_env.bundled_sessions("train")) == len(read_jsonl(ASSETS / "sessions_train.jsonl.gz"))
    assert len(shop_env.bundled_sessions("test")) == len(read_jsonl(ASSETS / "sessions_test.jsonl.gz"))
