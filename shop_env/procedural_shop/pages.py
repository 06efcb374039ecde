"""Pages of the procedural shop, rendered directly as compact simplified HTML.

The markup follows the OPeRA / Shop-CART simplified-HTML style: every interactive element (a, button,
input, select, option) carries a hierarchical dotted `name` such as `header.search_box.search_input`,
`search_results.<product_slug>.view_product` or `product_form.options.size.9`; containers carry the
prefix of their children's names (`<div name="search_results">`). Element names come from the
`*_name` helpers below, which the shopper uses too, so a gold action always names an element that is
on its page.

Pages stay compact on purpose (8 results per search page, 3 reviews, 3 related products): a 135M model
trained on CPU must see a whole page in roughly 600-1500 tokens.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from shop_env.procedural_shop.catalog import Catalog, Product, slugify
from shop_env.procedural_shop.words import CATEGORIES

SHOP_NAME = "Procedural Shop"
BASE_URL = "https://www.procedural-shop.example"
RESULTS_PER_PAGE = 8
HOME_ROW = 3
"""Products in each row of the home page (deals, then best sellers)."""
SEARCH_INPUT = "header.search_box.search_input"
SEARCH_BUTTON = "header.search_box.search_button"
CART_LINK = "header.cart"
LOGO_LINK = "header.logo"
BACK_TO_RESULTS = "breadcrumbs.back_to_results"
ADD_TO_CART = "product_form.add_to_cart"
BUY_NOW = "product_form.buy_now"
SEE_ALL_REVIEWS = "reviews.see_all"
CHECKOUT = "cart.checkout"
CONTINUE_SHOPPING = "cart.continue_shopping"
SORT_SELECT = "search_results.sort_by"
NEXT_PAGE = "search_results.pagination.next"
PREVIOUS_PAGE = "search_results.pagination.previous"
CLEAR_FILTERS = "search_results.filters.clear"

SORTS: dict[str, str] = {
    "featured": "Featured",
    "price_low_to_high": "Price: Low to High",
    "price_high_to_low": "Price: High to Low",
    "avg_customer_review": "Avg. Customer Review",
    "newest_arrivals": "Newest Arrivals",
}
"""Sort key (the last part of its option's name) -> label shown on the page."""

PRICE_BANDS: dict[str, tuple[str, float, float]] = {
    "under_25": ("Under $25", 0.0, 25.0),
    "25_to_50": ("$25 to $50", 25.0, 50.0),
    "50_to_100": ("$50 to $100", 50.0, 100.0),
    "100_to_200": ("$100 to $200", 100.0, 200.0),
    "200_and_above": ("$200 & above", 200.0, math.inf),
}
"""Price filter key -> (label, lowest price, highest price exclusive)."""

MIN_RATING_FILTER = 4
"""The "4 stars & up" filter."""


def view_product_name(section: str, product: Product) -> str:
    """Name of the link that opens `product` from a list (`search_results`, `related`, `home.deals`...)."""
    return f"{section}.{product.slug}.view_product"


def option_name(option: str, value: str) -> str:
    return f"product_form.options.{slugify(option)}.{slugify(value)}"


def brand_filter_name(brand: str) -> str:
    return f"search_results.filters.brand.{slugify(brand)}"


def price_filter_name(band: str) -> str:
    return f"search_results.filters.price.{band}"


def rating_filter_name() -> str:
    return f"search_results.filters.rating.{MIN_RATING_FILTER}_and_up"


def sort_option_name(sort: str) -> str:
    return f"{SORT_SELECT}.{sort}"


def department_name(category_slug: str) -> str:
    return f"home.departments.{category_slug}"


@dataclass(frozen=True)
class SearchState:
    """What a search results page shows: the query (or department), filters, sort and page number."""

    query: str = ""
    category: str | None = None
    page: int = 1
    sort: str = "featured"
    brand: str | None = None
    price_band: str | None = None
    min_rating: int | None = None

    def with_(self, **changes) -> SearchState:
        """A copy with `changes`; anything but a page change goes back to page 1."""
        if "page" not in changes:
            changes["page"] = 1
        return replace(self, **changes)

    @property
    def has_filters(self) -> bool:
        return any(value is not None for value in (self.brand, self.price_band, self.min_rating))

    def url(self) -> str:
        params: dict[str, str | int] = {}
        if self.query:
            params["k"] = self.query
        if self.category:
            params["dept"] = self.category
        if self.brand:
            params["brand"] = slugify(self.brand)
        if self.price_band:
            params["price"] = self.price_band
        if self.min_rating:
            params["rating"] = self.min_rating
        if self.sort != "featured":
            params["sort"] = self.sort
        if self.page > 1:
            params["page"] = self.page
        return f"{BASE_URL}/s?{urlencode(params)}"


@dataclass(frozen=True)
class Page:
    """A rendered page: its kind, URL, simplified HTML and the structured facts the shopper reads."""

    kind: str
    """"home", "search", "product" or "cart"."""
    url: str
    html: str
    products: tuple[Product, ...] = ()
    """Products listed on the page (results, deals, related items, or the one product shown)."""
    search: SearchState | None = None
    total_results: int = 0
    page_count: int = 0
    brands: tuple[str, ...] = ()
    """Brands offered as filters on a search page."""
    price_bands: tuple[str, ...] = ()
    """Price filter keys offered on a search page."""
    chosen: tuple[tuple[str, str], ...] = ()
    """(option, value) pairs already picked on a product page."""


def _e(text: object) -> str:
    """Escape element text (quotes stay readable: "It's fine", not "It&#x27;s fine")."""
    return html.escape(str(text), quote=False)


def _attr(value: str) -> str:
    """Escape a double-quoted attribute value."""
    return _e(value).replace('"', "&quot;")


def _money(amount: float) -> str:
    return f"${amount:,.2f}"


def _stars(product: Product) -> str:
    return f"{product.rating} stars, {product.review_count:,} ratings"


def _document(title: str, cart_count: int, body: list[str], query: str = "") -> str:
    value = f' value="{_attr(query)}"' if query else ""
    header = (
        f'<div name="header"><a name="{LOGO_LINK}">{SHOP_NAME}</a>'
        f'<div name="header.search_box"><input type="text" name="{SEARCH_INPUT}"{value} '
        f'placeholder="Search {SHOP_NAME}"/><button name="{SEARCH_BUTTON}">Search</button></div>'
        f'<a name="{CART_LINK}">Cart ({cart_count})</a></div>'
    )
    return (
        f"<html><head><title>{_e(title)}</title></head><body>\n{header}\n"
        + "\n".join(body)
        + "\n</body></html>"
    )


def _product_card(section: str, product: Product, *, title: str | None = None) -> str:
    was = f"<s>{_money(product.list_price)}</s>" if product.list_price else ""
    return (
        f'<div><a name="{view_product_name(section, product)}">{_e(title or product.title)}</a>'
        f"<span>{_money(product.price)}</span>{was}<span>{_stars(product)}</span></div>"
    )


def render_home(deals: list[Product], best_sellers: list[Product], cart_count: int) -> Page:
    """The front page: departments, then `deals` and `best_sellers` rows (`HOME_ROW` products each)."""
    departments = "".join(
        f'<a name="{department_name(c.slug)}">{_e(c.title)}</a>' for c in CATEGORIES
    )
    body = [
        f'<div name="home.departments"><h2>Shop by department</h2>{departments}</div>',
        '<div name="home.deals"><h2>Today\'s deals</h2>'
        + "".join(_product_card("home.deals", p, title=p.short_title) for p in deals)
        + "</div>",
        '<div name="home.best_sellers"><h2>Best sellers</h2>'
        + "".join(_product_card("home.best_sellers", p, title=p.short_title) for p in best_sellers)
        + "</div>",
    ]
    return Page(
        kind="home",
        url=f"{BASE_URL}/",
        html=_document(SHOP_NAME, cart_count, body),
        products=tuple(deals + best_sellers),
    )


def search_results(catalog: Catalog, state: SearchState) -> tuple[list[Product], list[Product]]:
    """(all matches before filters, matches after filters and sort) for a search state."""
    matches = catalog.search(state.query, category=state.category)
    shown = matches
    if state.brand:
        shown = [p for p in shown if p.brand == state.brand]
    if state.price_band:
        _, low, high = PRICE_BANDS[state.price_band]
        shown = [p for p in shown if low <= p.price < high]
    if state.min_rating:
        shown = [p for p in shown if p.rating >= state.min_rating]
    if state.sort == "price_low_to_high":
        shown = sorted(shown, key=lambda p: p.price)
    elif state.sort == "price_high_to_low":
        shown = sorted(shown, key=lambda p: -p.price)
    elif state.sort == "avg_customer_review":
        shown = sorted(shown, key=lambda p: (-p.rating, -p.review_count))
    elif state.sort == "newest_arrivals":
        shown = sorted(shown, key=lambda p: -p.released)
    return matches, shown


def _filter_link(name: str, label: str, active: bool) -> str:
    """A filter link; the active one is ticked."""
    return f'<a name="{name}">{"✓ " if active else ""}{_e(label)}</a>'


def render_search(catalog: Catalog, state: SearchState, cart_count: int) -> Page:
    matches, shown = search_results(catalog, state)
    page_count = max(1, math.ceil(len(shown) / RESULTS_PER_PAGE))
    page = min(state.page, page_count)
    shown_state = replace(state, page=page)
    visible = shown[(page - 1) * RESULTS_PER_PAGE : page * RESULTS_PER_PAGE]
    label = state.query
    if not label and state.category:
        label = catalog.categories[state.category].title

    brand_counts: dict[str, int] = {}
    for product in matches:
        brand_counts[product.brand] = brand_counts.get(product.brand, 0) + 1
    brands = sorted(brand_counts, key=lambda b: (-brand_counts[b], b))[:4]
    if state.brand and state.brand not in brands:
        brands.append(state.brand)
    bands = [k for k, (_, low, high) in PRICE_BANDS.items() if any(low <= p.price < high for p in matches)]

    body = []
    if not shown:
        body.append(
            f'<div name="search_results"><h1>No results for "{_e(label)}"</h1>'
            "<p>Check the spelling or try more general words.</p>"
            + (f'<a name="{CLEAR_FILTERS}">Clear filters</a>' if state.has_filters else "")
            + "</div>"
        )
    else:
        first = (page - 1) * RESULTS_PER_PAGE + 1
        filters = ["<span>Brand</span>"]
        filters += [_filter_link(brand_filter_name(b), b, b == state.brand) for b in brands]
        filters.append("<span>Price</span>")
        filters += [_filter_link(price_filter_name(k), PRICE_BANDS[k][0], k == state.price_band) for k in bands]
        filters.append("<span>Customer reviews</span>")
        filters.append(_filter_link(rating_filter_name(), f"{MIN_RATING_FILTER} stars & up", bool(state.min_rating)))
        if state.has_filters:
            filters.append(f'<a name="{CLEAR_FILTERS}">Clear filters</a>')
        options = "".join(
            f'<option name="{sort_option_name(key)}"{" selected" if key == state.sort else ""}>{_e(text)}</option>'
            for key, text in SORTS.items()
        )
        pagination = []
        if page > 1:
            pagination.append(f'<a name="{PREVIOUS_PAGE}">Previous</a>')
        pagination.append(f"<span>Page {page} of {page_count}</span>")
        if page < page_count:
            pagination.append(f'<a name="{NEXT_PAGE}">Next</a>')
        body.append(
            f'<div name="search_results"><h1>{first}-{first + len(visible) - 1} of {len(shown)} results '
            f'for "{_e(label)}"</h1>\n'
            f'<div name="search_results.filters">{"".join(filters)}</div>\n'
            f'<span>Sort by</span><select name="{SORT_SELECT}">{options}</select>\n'
            + "\n".join(_product_card("search_results", p) for p in visible)
            + f'\n<div name="search_results.pagination">{"".join(pagination)}</div></div>'
        )
    return Page(
        kind="search",
        url=shown_state.url(),
        html=_document(f"{SHOP_NAME}: {label}", cart_count, body, query=state.query),
        products=tuple(visible),
        search=shown_state,
        total_results=len(shown),
        page_count=page_count,
        brands=tuple(brands),
        price_bands=tuple(bands),
    )


def render_product(
    catalog: Catalog,
    product: Product,
    chosen: dict[str, str],
    related: list[Product],
    cart_count: int,
    from_search: SearchState | None,
) -> Page:
    """A product detail page; `chosen` maps option name -> value already picked on this page."""
    category = catalog.categories[product.category]
    crumbs = [f'<a name="breadcrumbs.department.{category.slug}">{_e(category.title)}</a>']
    if from_search is not None:
        crumbs.insert(0, f'<a name="{BACK_TO_RESULTS}">Back to results</a>')
    was = f"<s>List: {_money(product.list_price)}</s>" if product.list_price else ""
    details = [f"<li>Material: {_e(product.material)}</li>"] + [
        f"<li>{_e(feature.capitalize())}</li>" for feature in product.features
    ]
    if len(product.colors) == 1:
        details.append(f"<li>Color: {_e(product.colors[0])}</li>")
    option_blocks = []
    for option, values in product.options.items():
        buttons = "".join(f'<button name="{option_name(option, v)}">{_e(v)}</button>' for v in values)
        picked = chosen.get(option, "Select")
        option_blocks.append(
            f'<div name="product_form.options.{slugify(option)}"><span>{_e(option.capitalize())}: '
            f"{_e(picked)}</span>{buttons}</div>"
        )
    reviews = "".join(
        f"<div><span>{r.stars} out of 5 stars</span><b>{_e(r.title)}</b><p>{_e(r.text)}</p>"
        f"<span>{_e(r.author)}</span></div>"
        for r in catalog.reviews(product)
    )
    body = [
        f'<div name="breadcrumbs">{"".join(crumbs)}</div>',
        f'<div name="product"><h1>{_e(product.title)}</h1><span>Brand: {_e(product.brand)}</span>'
        f"<span>{_stars(product)}</span><span>{_money(product.price)}</span>{was}"
        f'<ul>{"".join(details)}</ul></div>',
        '<div name="product_form">'
        + "".join(option_blocks)
        + f'<button name="{ADD_TO_CART}">Add to Cart</button><button name="{BUY_NOW}">Buy Now</button></div>',
        f'<div name="reviews"><h2>Top reviews</h2>{reviews}'
        f'<a name="{SEE_ALL_REVIEWS}">See all {product.review_count:,} reviews</a></div>',
        '<div name="related"><h2>Related items</h2>'
        + "".join(_product_card("related", p, title=p.short_title) for p in related)
        + "</div>",
    ]
    query = "&".join(f"{slugify(k)}={slugify(v)}" for k, v in chosen.items())
    return Page(
        kind="product",
        url=f"{BASE_URL}/p/{product.slug}" + (f"?{query}" if query else ""),
        html=_document(
            f"{SHOP_NAME}: {product.title}", cart_count, body, query=from_search.query if from_search else ""
        ),
        products=(product,),
        search=from_search,
        chosen=tuple(chosen.items()),
    )


@dataclass(frozen=True)
class CartLine:
    product: Product
    options: tuple[tuple[str, str], ...]
    """(option name, chosen value) pairs."""


def render_cart(cart: list[CartLine], added: Product | None) -> Page:
    lines = []
    for line in cart:
        picked = ", ".join(f"{k.capitalize()}: {v}" for k, v in line.options)
        lines.append(
            f'<div><a name="cart.{line.product.slug}.view_product">{_e(line.product.title)}</a>'
            + (f"<span>{_e(picked)}</span>" if picked else "")
            + f"<span>{_money(line.product.price)}</span>"
            f'<button name="cart.{line.product.slug}.delete">Delete</button></div>'
        )
    subtotal = sum(line.product.price for line in cart)
    notice = f"<p>Added to cart: {_e(added.title)}</p>" if added else ""
    items = "item" if len(cart) == 1 else "items"
    body = [
        f'<div name="cart"><h1>Shopping Cart</h1>{notice}\n'
        + "\n".join(lines)
        + f"\n<span>Subtotal ({len(cart)} {items}): {_money(subtotal)}</span>"
        f'<button name="{CHECKOUT}">Proceed to checkout</button>'
        f'<a name="{CONTINUE_SHOPPING}">Continue shopping</a></div>'
    ]
    return Page(
        kind="cart",
        url=f"{BASE_URL}/cart",
        html=_document(f"{SHOP_NAME}: Shopping Cart", len(cart), body),
        products=tuple(line.product for line in cart),
    )
