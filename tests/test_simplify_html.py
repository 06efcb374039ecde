"""simplify_html, interactive_elements, page_title and slugify on raw pages, simplified pages and
generated ones (hypothesis)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from shop_env.simplify_html import (
    KEPT_ATTRIBUTES,
    MAX_SLUG_CHARS,
    interactive_elements,
    page_title,
    simplify_html,
    slugify,
)

FIXTURES = Path(__file__).parent / "fixtures"
RAW_PAGE = (FIXTURES / "raw_search_page.html").read_text(encoding="utf-8")

INTERACTIVE_TAGS = {"a", "button", "input", "select", "textarea", "option", "summary"}
CLICKABLE_ROLES = {"button", "link", "checkbox", "radio", "tab", "menuitem", "option", "switch", "combobox",
                   "searchbox", "textbox"}
"""The team's definition of interactive, written here independently of the module."""


def tree(page: str) -> etree._Element:
    return etree.fromstring(page, etree.HTMLParser())


def names_of_interactive(page: str) -> list[str | None]:
    return [
        element.get("name")
        for element in tree(page).iter(etree.Element)
        if element.tag in INTERACTIVE_TAGS
        or (element.get("role") or "").strip().lower() in CLICKABLE_ROLES
        or element.get("onclick") is not None
    ]


@pytest.fixture(scope="module")
def simplified() -> str:
    return simplify_html(RAW_PAGE)


# --- what is removed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gone",
    [
        "window.ue_t0",  # script
        "SearchResultsPage",  # ld+json script
        "padding: 4px",  # style element
        "navigation starts here",  # comment
        "M0 0h10v10z",  # svg
        "ads.example",  # iframe
        "template link",  # template
        "noscript pixel",  # noscript
        "Shop for running shoes",  # meta
        "site.css",  # link
        "Secret breadcrumb",  # hidden attribute
        "tracking pixel link",  # display:none
        "Invisible button",  # visibility: hidden, any case and spacing
        "csrf_token",  # hidden input
        "nav-sprite",  # class attributes
        "data-asin",  # data attributes
        "B07X1.jpg",  # src
        "onclick",  # handlers
        "<hr",  # purely visual
    ],
)
def test_drops_code_styling_hidden_and_visual_content(simplified, gone):
    assert gone not in simplified


def test_aria_hidden_visual_duplicates_go_and_screen_reader_text_stays(simplified):
    assert "nav-cart-icon" not in simplified
    assert "$89.99" in simplified  # the a-offscreen price, while the aria-hidden visual price goes
    assert "<span>$</span>" not in simplified


def test_keeps_text_and_the_attributes_that_matter(simplified):
    root = tree(simplified)
    assert {name for element in root.iter() for name in element.keys()} <= set(KEPT_ATTRIBUTES)
    assert root.xpath("//img/@alt") == ["Trail Runner 3 - Men's Running Shoe", "Road Glide Café Edition"]
    assert root.xpath("//a[@aria-label='Go to page 2']/@href") == ["/s?page=2"]
    assert root.xpath("//input[@type='text']/@placeholder") == ["Search Shop.com"]
    assert root.xpath("//option[@selected]/text()") == ["All Departments"]
    assert "1-16 of over 3,000 results for" in simplified
    assert "Line one<br>line two" in simplified  # line breaks carry layout the text depends on


def test_text_after_a_removed_element_is_kept():
    page = simplify_html('<p>before<script>x()</script> after<span hidden>no</span>, end</p>')
    assert "<p>before after, end</p>" in page


def test_empty_wrappers_and_icons_go_but_structure_around_interactive_elements_stays():
    page = simplify_html(
        '<div class="card"><div class="spacer"><span class="icon"></span></div>'
        '<div class="row"><div class="inner"><button>Buy</button></div></div></div>'
    )
    assert page == (
        '<html><body><div><div><div><button name="buy">Buy</button></div></div></div></body></html>'
    )


# --- names ----------------------------------------------------------------------------------------


def test_every_interactive_element_gets_a_unique_name(simplified):
    names = names_of_interactive(simplified)
    assert None not in names
    assert len(names) == len(set(names))
    assert interactive_elements(simplified) == names


def test_names_are_dotted_from_the_nearest_named_ancestor_and_landmarks(simplified):
    names = interactive_elements(simplified)
    assert names[:6] == [
        "header.shop_com_home",  # aria-label wins over content
        "header.search.search_in",  # the search form is a landmark inside the header
        "header.search.search_in.all_departments",  # options sit under their select
        "header.search.search_in.clothing_shoes_jewelry",
        "header.search.search_shop_com",  # a text input is named by its placeholder, not its value
        "header.search.go",  # a submit button by its value
    ]
    assert "header.account.cart_0" in names  # nav with aria-label "Account"
    assert ["pagination.go_to_page_2", "pagination.next"] == names[-7:-5]
    assert names[-4:] == ["footer.help", "footer.conditions_of_use", "footer.more", "footer.about_us"]


def test_repeated_labels_get_numbered_suffixes_in_document_order(simplified):
    names = interactive_elements(simplified)
    assert names.index("add_to_cart") < names.index("add_to_cart_2")
    assert "trail_runner_3_men_s_running_shoe_2" in names  # image link and title link share a label


def test_click_handlers_become_clickable_role_and_are_listed(simplified):
    root = tree(simplified)
    assert root.xpath("//div[@role='button']/@name") == ["add_to_cart", "add_to_cart_2"]
    assert "pagination.show_more_results" in interactive_elements(simplified)  # role="button" span


def test_existing_names_are_kept_even_when_not_dotted_and_duplicates_are_numbered(simplified):
    names = interactive_elements(simplified)
    assert ["rating", "shipping", "shipping_2"] == [n for n in names if n.startswith(("rating", "shipping"))]


def test_unlabelled_elements_are_named_by_their_kind():
    page = simplify_html(
        '<div name="box"><a href="/x"></a><input type="checkbox"><button></button><textarea></textarea></div>'
    )
    assert interactive_elements(page) == ["box.link", "box.checkbox_input", "box.button", "box.textarea"]


def test_names_never_collide_with_names_already_on_the_page():
    page = simplify_html('<div><a name="buy">Buy now</a><button>Buy</button><button>Buy</button></div>')
    assert interactive_elements(page) == ["buy", "buy_2", "buy_3"]


def test_containers_may_carry_names_but_are_not_interactive():
    page = '<html><body><div name="search_results"><a name="search_results.x.view_product">X</a></div></body></html>'
    assert interactive_elements(page) == ["search_results.x.view_product"]


# --- already simplified pages ---------------------------------------------------------------------


def simplified_fixture_pages() -> list[str]:
    from shop_env.session import read_jsonl

    sessions = read_jsonl(FIXTURES / "real_format_sessions.jsonl")
    return [step.observation for session in sessions for step in session.steps]


def procedural_pages() -> list[str]:
    from shop_env.procedural_shop import make_sessions

    return [step.observation for session in make_sessions(3, seed=7, split_name="test") for step in session.steps]


@pytest.mark.parametrize("source", [simplified_fixture_pages, procedural_pages])
def test_simplified_pages_pass_through_with_names_and_structure_unchanged(source):
    for page in source():
        out = simplify_html(page)
        assert interactive_elements(out) == interactive_elements(page)
        assert [e.tag for e in tree(out).iter()] == [e.tag for e in tree(page).iter()]
        assert [e.get("name") for e in tree(out).iter()] == [e.get("name") for e in tree(page).iter()]
        assert simplify_html(out) == out


def test_opera_style_page_passes_through_unchanged():
    page = (
        '<html><head></head><body><div name="nav_bar" role="navigation" aria-label="Primary">'
        '<div name="nav_bar.homepage">Homepage</div><form role="search">'
        '<input type="text" name="nav_bar.search_input" placeholder="Search"></form></div>'
        '<div name="4_stars_and_above"><a name="4_stars_and_above.rice_cooker.product_title" '
        'href="/dp/B01">Tiger 10-Cup Rice Cooker</a></div></body></html>'
    )
    assert simplify_html(page) == page


# --- input handling ---------------------------------------------------------------------------------


def test_fragments_are_wrapped_in_a_document():
    assert simplify_html("<a href='/x'>Deals</a>") == '<html><body><a href="/x" name="deals">Deals</a></body></html>'


def test_bytes_are_decoded_by_their_declared_charset():
    raw = '<html><head><meta charset="iso-8859-1"><title>Café</title></head><body><a>Crème</a></body></html>'
    page = simplify_html(raw.encode("iso-8859-1"))
    assert page_title(page) == "Café"
    assert interactive_elements(page) == ["creme"]


def test_an_xml_declaration_is_tolerated():
    page = simplify_html('<?xml version="1.0" encoding="utf-8"?><html><body><button>OK</button></body></html>')
    assert interactive_elements(page) == ["ok"]


@pytest.mark.parametrize("empty", ["", "   \n\t"])
def test_an_empty_page_is_a_clear_error(empty):
    with pytest.raises(ValueError, match="simplify_html: empty page"):
        simplify_html(empty)


def test_a_non_text_page_is_a_type_error():
    with pytest.raises(TypeError, match="expected the page as str or bytes, got int"):
        simplify_html(42)  # type: ignore[arg-type]


def test_interactive_elements_names_its_errors():
    with pytest.raises(ValueError, match="interactive_elements: empty page"):
        interactive_elements("")


# --- page_title and slugify ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "title"),
    [
        ("<html><head><title>Shop &amp; Save\n  today</title></head></html>", "Shop & Save today"),
        ("<html><body><h1 class='x'>Results for <b>shoes</b></h1></body></html>", "Results for shoes"),
        ("<TITLE>Upper</TITLE>", "Upper"),
        ("<html><body><p>no title</p></body></html>", ""),
    ],
)
def test_page_title(page, title):
    assert page_title(page) == title


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Add to Cart", "add_to_cart"),
        ("  Café  Crème ", "cafe_creme"),
        ("$200 & above", "200_above"),
        ("header.search", "header_search"),  # a dot would fake a level of the name
        ("日本語 ページ", "日本語_ページ"),
        ("!!!", ""),
    ],
)
def test_slugify(text, slug):
    assert slugify(text) == slug


def test_long_labels_are_cut_at_a_word_boundary():
    slug = slugify(
        "Tiger JBV-S18U 10-Cup Microcomputer Controlled 4-in-1 Rice Cooker and Warmer, Stainless Steel White"
    )
    assert len(slug) <= MAX_SLUG_CHARS
    assert slug.startswith("tiger_jbv_s18u_10_cup_microcomputer")
    assert not slug.endswith("_")
    assert "steel" not in slug


# --- generated pages (hypothesis) --------------------------------------------------------------------

TAGS = ["div", "span", "p", "a", "button", "input", "select", "textarea", "header", "nav", "form",
        "script", "style", "svg", "b", "img", "br", "ul", "li", "h2", "summary", "label", "option"]
ATTRIBUTES = [
    f' {key}="{html.escape(value)}"'
    for key, values in {
        "class": ["a", "b c"],
        "id": ["main"],
        "style": ["display:none", "color: red", "visibility : hidden", "DISPLAY: NONE"],
        "hidden": [""],
        "aria-hidden": ["true", "false"],
        "role": ["button", "link", "navigation", "search", "presentation", "Checkbox"],
        "onclick": ["go()"],
        "name": ["", "x", "header.search_box.search_input", "a.b"],
        "aria-label": ["Go", "Add to cart", "", "Café"],
        "placeholder": ["Search", ""],
        "alt": ["photo", ""],
        "href": ["/x", "/y?a=1&b=2"],
        "value": ["", "Go"],
        "type": ["text", "hidden", "submit", "checkbox"],
    }.items()
    for value in values
]
TEXTS = [html.escape(text) for text in ["", "", "a", " b ", "c&d", "<>", "é €", "\n\t ", "\xa0x", "Add to cart"]]
"""Pre-built pieces: hypothesis draws a few choices per element instead of generating strings."""


@st.composite
def elements(draw, depth: int = 0) -> str:
    tag = draw(st.sampled_from(TAGS))
    attributes = "".join(draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=3)))
    text, tail = draw(st.sampled_from(TEXTS)), draw(st.sampled_from(TEXTS))
    if tag in ("input", "img", "br"):
        return f"<{tag}{attributes}>{tail}"
    children = draw(st.lists(elements(depth + 1), max_size=0 if depth >= 3 else 3))
    return f"<{tag}{attributes}>{text}{''.join(children)}</{tag}>{tail}"


pages = st.lists(elements(), min_size=1, max_size=4).map(
    lambda parts: "<html><body>" + "".join(parts) + "</body></html>"
)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages)
def test_generated_pages_simplify_idempotently_with_every_interactive_element_named(page):
    out = simplify_html(page)
    assert simplify_html(out) == out
    names = names_of_interactive(out)
    assert None not in names and "" not in names
    assert len(names) == len(set(names))
    assert interactive_elements(out) == names
    root = tree(out)
    assert not root.xpath("//script | //style | //svg | //*[@hidden] | //*[@style] | //*[@onclick] | //comment()")
    assert {name for element in root.iter() for name in element.keys()} <= set(KEPT_ATTRIBUTES)
    assert not re.search(r"\s\s|>\s+<", out)
