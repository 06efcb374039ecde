"""A persona-driven stochastic shopper that browses the procedural shop and records sessions.

A persona (free text, plus the hidden structure it was written from: need, budget, size, browsing
style) drives a small decision process over the shop's pages. On each page the shopper scores what it
sees against its need and budget, picks an action by weighted chance and explains it in a short
first-person rationale that quotes the page (titles, prices, ratings, result counts). Each recorded
step is the page it saw, the action it took there, the rationale, the URL and a timestamp.

The action mix is tuned to the paper's Shop-CART statistics (Table A1: click 36.5%, type_and_submit
38.4%, terminate 25.1%), which means short sessions (about four steps) and many search-and-leave
visits. Sessions end with `terminate`, or with the click that buys (`cart.checkout`,
`product_form.buy_now`).
"""

from __future__ import annotations

import math
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from rich.progress import track

from shop_env.procedural_shop.catalog import Catalog, Product
from shop_env.procedural_shop.pages import (
    ADD_TO_CART,
    BACK_TO_RESULTS,
    BUY_NOW,
    CHECKOUT,
    CLEAR_FILTERS,
    CONTINUE_SHOPPING,
    HOME_ROW,
    NEXT_PAGE,
    PRICE_BANDS,
    SEARCH_INPUT,
    CartLine,
    Page,
    SearchState,
    brand_filter_name,
    department_name,
    option_name,
    price_filter_name,
    rating_filter_name,
    render_cart,
    render_home,
    render_product,
    render_search,
    sort_option_name,
    view_product_name,
)
from shop_env.procedural_shop.persona import (
    GOOD_FIT,
    OK_FIT,
    Persona,
    Query,
    article,
    capitalize,
    fit,
    make_persona,
    make_query,
)
from shop_env.session import ACTION_TYPES, Action, Session, Step, write_jsonl

SOURCE = "procedural-shop"
MAX_STEPS = 16
"""Hard cap on a session's length; the shopper's patience ends most sessions far earlier."""

def _say(rng: random.Random, templates: tuple[str, ...], **facts) -> str:
    return rng.choice(templates).format(**facts)


def _price(amount: float) -> str:
    return f"${amount:,.2f}".replace(".00", "")


@dataclass
class _Move:
    """One decision: the gold action, its rationale and how to build the next page (None: session ends)."""

    action: Action
    rationale: str
    next_page: Callable[[], Page] | None = None


def _click(name: str, rationale: str, next_page: Callable[[], Page] | None = None) -> _Move:
    return _Move(Action(type="click", name=name), rationale, next_page)


def _terminate(rationale: str) -> _Move:
    return _Move(Action(type="terminate"), rationale)


@dataclass
class _Visit:
    """The state of one shopping visit: the current page, cart, searches made and products opened."""

    rng: random.Random
    catalog: Catalog
    persona: Persona
    cart: list[CartLine] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    opened: list[Product] = field(default_factory=list)
    step: int = 0
    outcome: str = "left"

    # ---------------------------------------------------------------- helpers
    def weighted(self, options: list[tuple[float, Callable[[], _Move]]]) -> _Move:
        options = [(w, make) for w, make in options if w > 0]
        weights = [w for w, _ in options]
        return self.rng.choices([make for _, make in options], weights=weights)[0]()

    def tiredness(self) -> float:
        """Grows once the visit is longer than the shopper's patience."""
        return max(0.0, self.step + 1 - self.persona.patience) * 1.4

    def home(self) -> Page:
        deals = self.rng.sample(self.catalog.products, HOME_ROW)
        best = self.rng.sample(self.catalog.products, HOME_ROW)
        return render_home(deals, best, len(self.cart))

    def search_page(self, state: SearchState) -> Page:
        return render_search(self.catalog, state, len(self.cart))

    def product_page(self, product: Product, chosen: dict[str, str], from_search: SearchState | None) -> Page:
        pool = [p for p in self.catalog.search(product.product_type) if p.slug != product.slug][:12]
        related = random.Random(f"{self.catalog.seed}:related:{product.product_id}").sample(pool, min(3, len(pool)))
        return render_product(self.catalog, product, chosen, related, len(self.cart), from_search)

    def search(self, page: Page, reason: str) -> _Move:
        """Type a new or refined query into the search box; `reason` picks the rationale."""
        query = make_query(self.rng, self.persona, self.catalog, {q.intended for q in self.queries})
        previous = self.queries[-1] if self.queries else None
        self.queries.append(query)
        return _Move(
            Action(type="type_and_submit", name=SEARCH_INPUT, text=query.text),
            self.search_rationale(page, query, previous, reason),
            lambda: self.search_page(SearchState(query=query.text)),
        )

    def search_rationale(self, page: Page, query: Query, previous: Query | None, reason: str) -> str:
        p = self.persona
        facts = dict(
            need=article(p.product_type), q=query.intended, budget=_price(p.budget),
            old=previous.text if previous else "", want=p.wanted[0],
        )
        if previous is None or reason in ("start", "more"):
            return _say(self.rng, (
                "I need {need}, so I'll search for '{q}'.",
                "Let me look up '{q}' to see what's available.",
                "I'm shopping for {need} under about {budget}; searching '{q}'.",
                "Searching for '{q}' is the quickest way to find {need}.",
                "I'll type '{q}' into the search bar and see what comes up.",
            ), **facts)
        if reason == "no_results":
            return _say(self.rng, (
                "Nothing came up for '{old}', so I'll try '{q}' instead.",
                "No results for '{old}'; maybe '{q}' works better.",
            ), **facts)
        old_words, new_words = set(previous.intended.split()), set(query.intended.split())
        if reason == "poor_results" and page.kind == "search" and page.products:
            top = page.products[0]
            return _say(self.rng, (
                "The results for '{old}' aren't what I need (the first is the {top} at {price}); I'll try '{q}'.",
                "These don't match what I want, so I'll search for '{q}' instead.",
                "None of these look right for my {budget} budget. Let me search '{q}'.",
                "The {top} isn't quite it. I'll search for '{q}' to narrow things down.",
            ), top=top.short_title, price=_price(top.price), **facts)
        if old_words < new_words:
            added = " ".join(w for w in query.intended.split() if w not in old_words)
            return _say(self.rng, (
                "I'll add '{added}' to my search to narrow it down.",
                "Let me be more specific and search '{q}'.",
            ), added=added, **facts)
        if new_words < old_words:
            return _say(self.rng, (
                "That search was too narrow; I'll broaden it to '{q}'.",
                "Let me try a simpler search: '{q}'.",
            ), **facts)
        return _say(self.rng, (
            "Let me try a different search: '{q}'.",
            "I'll rephrase it as '{q}' and compare the results.",
            "Maybe searching '{q}' gives better options.",
        ), **facts)

    # ---------------------------------------------------------------- pages
    def on_home(self, page: Page) -> _Move:
        p = self.persona
        first = self.step == 0
        department = self.catalog.categories[p.category]

        def leave() -> _Move:
            if self.cart:
                return _terminate(_say(self.rng, (
                    "I've got what I came for in my cart; I'll check out another day.",
                    "That's enough shopping for now, my cart can wait.",
                )))
            return _terminate(_say(self.rng, (
                "I don't feel like shopping right now, so I'll close the site.",
                "Nothing on the front page grabs me; I'll come back later.",
                "I'm short on time, I'll look for {need} another day.",
            ), need=article(p.product_type)))

        def browse_department() -> _Move:
            state = SearchState(category=department.slug)
            return _click(
                department_name(department.slug),
                _say(self.rng, (
                    "I'll browse the {dept} department to see what they have.",
                    "Let me start with the {dept} section before searching.",
                ), dept=department.title),
                lambda: self.search_page(state),
            )

        def open_deal() -> _Move:
            product = max(page.products, key=lambda q: fit(p, q))
            section = "home.deals" if page.products.index(product) < HOME_ROW else "home.best_sellers"
            return self.open_product(page, section, product, _say(self.rng, (
                "The {title} on the front page caught my eye at {price}; let me take a look.",
                "That {title} for {price} looks interesting, I'll open it.",
            ), title=product.short_title, price=_price(product.price)))

        best = max(fit(p, q) for q in page.products)
        return self.weighted([
            (9.0 if first else 1.5, lambda: self.search(page, "start")),
            (0.6 if first else 0.3, browse_department),
            (0.8 if best >= GOOD_FIT else 0.0, open_deal),
            (0.35 if first else 1.0 + self.tiredness(), leave),
        ])

    def open_product(self, page: Page, section: str, product: Product, rationale: str) -> _Move:
        self.opened.append(product)
        from_search = page.search if page.kind == "search" else None
        # Like most shops, the first colour is preselected; sizes must be picked.
        preselected = {"color": product.colors[0]} if "color" in product.options else {}
        return _click(
            view_product_name(section, product),
            rationale,
            lambda: self.product_page(product, preselected, from_search),
        )

    def on_search(self, page: Page) -> _Move:
        p = self.persona
        state = page.search
        scored = [(fit(p, q), q) for q in page.products]
        unopened = [(f, q) for f, q in scored if q not in self.opened]
        best_fit = max((f for f, _ in unopened), default=0.0)
        rng = self.rng
        style = p.style
        label = state.query or self.catalog.categories[state.category].title

        if not page.products:
            def give_up() -> _Move:
                return _terminate(_say(rng, (
                    "Nothing came up for '{q}'. I'll give up for now.",
                    "No results again; this site doesn't seem to have what I want.",
                ), q=label))

            def clear() -> _Move:
                return _click(CLEAR_FILTERS, "The filters left nothing, so I'll clear them.",
                              lambda: self.search_page(state.with_(brand=None, price_band=None, min_rating=None)))

            return self.weighted([
                (2.0 if len(self.queries) < 4 else 0.3, lambda: self.search(page, "no_results")),
                (2.0 if state.has_filters else 0.0, clear),
                (0.8 + self.tiredness(), give_up),
            ])

        def open_best() -> _Move:
            ranked = sorted(unopened, key=lambda fq: -fq[0] + rng.random() * 0.8)
            product = ranked[0][1]
            position = page.products.index(product) + 1
            facts = dict(
                title=product.short_title, price=_price(product.price), rating=product.rating,
                reviews=f"{product.review_count:,}", pos=position, budget=_price(p.budget),
                want=rng.choice(p.wanted),
            )
            if product.price <= p.budget:
                templates = (
                    "The {title} at {price} is within my {budget} budget and rated {rating}; I'll open it.",
                    "The {title} has {rating} stars from {reviews} ratings. Let me look at the details.",
                    "Result {pos}, the {title} for {price}, looks like what I need. Opening it.",
                    "I want to check whether the {title} is really {want}; it's only {price}.",
                )
            else:
                templates = (
                    "The {title} is a bit over budget at {price}, but the {rating} rating makes me curious.",
                    "The {title} looks nice; let me see if it's worth {price}.",
                )
            return self.open_product(page, "search_results", product, _say(rng, templates, **facts))

        def refine() -> _Move:
            return self.search(page, "poor_results" if best_fit < OK_FIT else "refine")

        def filter_brand() -> _Move:
            brand = p.brand if p.brand in page.brands else rng.choice(page.brands)
            reason = (
                "I trust {brand}, so I'll filter to that brand." if brand == p.brand
                else "There are {n} results; I'll narrow them to {brand} and see."
            )
            return _click(brand_filter_name(brand), reason.format(brand=brand, n=page.total_results),
                          lambda: self.search_page(state.with_(brand=brand)))

        def filter_price() -> _Move:
            fitting = [b for b in page.price_bands if PRICE_BANDS[b][1] < p.budget]
            band = max(fitting, key=lambda b: PRICE_BANDS[b][1]) if fitting else page.price_bands[0]
            return _click(
                price_filter_name(band),
                _say(rng, ("My budget is {budget}, so I'll filter to {label}.",
                           "I'll only look at {label} to stay near {budget}."),
                     budget=_price(p.budget), label=PRICE_BANDS[band][0]),
                lambda: self.search_page(state.with_(price_band=band)),
            )

        def filter_rating() -> _Move:
            return _click(
                rating_filter_name(),
                _say(rng, ("I only want well-reviewed options, so I'll filter to 4 stars and up.",
                           "Some of these have mediocre ratings; showing only 4 stars and up.")),
                lambda: self.search_page(state.with_(min_rating=4)),
            )

        def sort() -> _Move:
            key = "price_low_to_high" if style == "bargain hunter" or rng.random() < 0.5 else rng.choice(
                ("avg_customer_review", "newest_arrivals", "price_high_to_low"))
            why = {
                "price_low_to_high": "I want the cheapest decent option, so I'll sort by price from low to high.",
                "avg_customer_review": "Sorting by customer reviews should put the best ones first.",
                "newest_arrivals": "I'd like to see the newest models first.",
                "price_high_to_low": "I'll sort by price high to low to see the premium options.",
            }[key]
            return _click(sort_option_name(key), why, lambda: self.search_page(state.with_(sort=key)))

        def next_page() -> _Move:
            return _click(
                NEXT_PAGE,
                _say(rng, ("Nothing on page {n} fits what I need; let me check the next page.",
                           "I'll look at page {m} for more options.",
                           "There are {total} results; maybe the next page has something under {budget}."),
                     n=page.search.page, m=page.search.page + 1, total=page.total_results, budget=_price(p.budget)),
                lambda: self.search_page(state.with_(page=state.page + 1)),
            )

        def leave() -> _Move:
            if best_fit >= OK_FIT:
                top = max(page.products, key=lambda q: fit(p, q))
                templates = (
                    "There are some options here, but I'm not ready to buy today. I'll come back later.",
                    "I've seen enough for now; I'll think about it before buying.",
                    "The {title} is tempting, but I'll wait and compare elsewhere.",
                )
            else:
                top = min(page.products, key=lambda q: q.price)
                templates = (
                    "Even the cheapest, the {title} at {price}, isn't what I want. I'm done for now.",
                    "None of these fit my {budget} budget and needs, so I'll leave.",
                    "These results don't match what I'm looking for; I'll try another store.",
                    "I'm not finding {need} I like here. I'll stop for today.",
                )
            return _terminate(_say(rng, templates, title=top.short_title, price=_price(top.price),
                                   budget=_price(p.budget), need=article(p.product_type)))

        open_weight = 1.4 if best_fit >= GOOD_FIT else 0.6 if best_fit >= OK_FIT else 0.2
        open_weight *= {"comparer": 1.3, "decisive": 1.2, "window shopper": 1.1, "searcher": 0.6}.get(style, 1.0)
        refine_weight = (1.3 if best_fit < OK_FIT else 0.75) * (2.0 if style == "searcher" else 1.0)
        refine_weight *= 0.4 if len(self.queries) >= 4 else 1.0
        filters_used = state.has_filters or state.sort != "featured"
        filter_weight = 0.0 if filters_used else 0.09 * (3.0 if style in ("comparer", "bargain hunter") else 1.0)
        leave_weight = (1.5 if best_fit < OK_FIT else 1.0) + self.tiredness()
        leave_weight *= 1.3 if style == "window shopper" else 1.0
        return self.weighted([
            (open_weight if unopened else 0.0, open_best),
            (refine_weight, refine),
            (filter_weight * (3.0 if p.brand in page.brands else 0.5), filter_brand),
            (filter_weight if page.price_bands else 0.0, filter_price),
            (filter_weight * 0.6 if not state.min_rating else 0.0, filter_rating),
            (filter_weight * (2.5 if style == "bargain hunter" else 1.0), sort),
            (0.08 + (0.2 if best_fit < OK_FIT else 0.0) if page.search.page < page.page_count else 0.0, next_page),
            (leave_weight, leave),
        ])

    def on_product(self, page: Page, chosen: dict[str, str]) -> _Move:
        p = self.persona
        rng = self.rng
        product = page.products[0]
        f = fit(p, product)
        reviews = sorted(self.catalog.reviews(product), key=lambda r: r.stars)
        worst, best = reviews[0], reviews[-1]
        facts = dict(
            title=product.short_title, price=_price(product.price), rating=product.rating,
            budget=_price(p.budget), want=rng.choice(p.wanted), reviews=f"{product.review_count:,}",
            praise=best.text.split(".")[0], complaint=worst.text.split(".")[0], stars=worst.stars,
        )
        missing = [o for o in product.options if o not in chosen]
        if p.color in product.options.get("color", ()) and chosen.get("color") != p.color:
            missing.append("color")
        traits = set(product.features) | {product.material} | set(product.colors)
        lacking = [w for w in p.wanted if w not in traits]
        if product.price > p.budget:
            objection = f"at {facts['price']} it's over my {facts['budget']} budget"
        elif worst.stars <= 2:
            objection = f"a {worst.stars}-star review says \"{facts['complaint']}\""
        elif product.product_type != p.product_type:
            objection = f"it's not really the {p.product_type} I need"
        elif lacking:
            objection = f"it doesn't mention {lacking[0]}"
        elif product.rating < 3.8:
            objection = f"it's only rated {product.rating} stars"
        else:
            objection = "I'm not fully convinced yet"
        facts["objection"] = objection
        facts["Objection"] = capitalize(objection)

        def pick_option() -> _Move:
            option = missing[0]
            values = product.options[option]
            preferred = p.size if option != "color" else p.color
            value = preferred if preferred in values else rng.choice(values)
            if value == preferred and option == "color":
                why = f"I'll pick {value}; it's the color I wanted."
            elif value == preferred:
                why = f"I need {option} {value}, so I'll select it."
            else:
                why = rng.choice((f"I'll go with {value} for the {option}.", f"{value} looks best, I'll choose that."))
            new_chosen = {**chosen, option: value}
            return _click(option_name(option, value), why, lambda: self.product_page(product, new_chosen, page.search))

        def add_to_cart() -> _Move:
            line = CartLine(product, tuple(chosen.items()))
            self.cart.append(line)
            return _click(ADD_TO_CART, _say(rng, (
                "At {price} with {rating} stars, the {title} fits my budget. Adding it to my cart.",
                "This is what I was looking for; I'll add it to the cart.",
                "A reviewer says \"{praise}\", good enough for me. Adding to cart.",
                "It's {want} and under {budget}, so into the cart it goes.",
            ), **facts), lambda: render_cart(self.cart, product))

        def buy_now() -> _Move:
            self.outcome = "purchased"
            return _click(BUY_NOW, _say(rng, (
                "The {title} is exactly what I need at {price}; I'll buy it now.",
                "No need to keep looking, buying it right away.",
            ), **facts))

        def back() -> _Move:
            return _click(BACK_TO_RESULTS, _say(rng, (
                "{Objection}, so I'll go back to the results.",
                "The {title} isn't right: {objection}. Back to the results.",
                "Not quite what I need; {objection}. Let me look at the other results.",
            ) if f < GOOD_FIT else (
                "This looks good, but I want to compare it with one or two others first.",
                "Before deciding on the {title}, I'll check the other results.",
            ), **facts), lambda: self.search_page(page.search))

        def new_search() -> _Move:
            return self.search(page, "poor_results" if f < OK_FIT else "refine")

        def leave() -> _Move:
            return _terminate(_say(rng, (
                "{Objection}. I'll stop here for today.",
                "The {title} isn't it: {objection}. I'm done for now.",
            ) if f < GOOD_FIT else (
                "The {title} looks fine, but I'll think about it before spending {price}.",
                "The {title} looks fine, but I'm not ready to buy yet.",
                "I'll save this one for later and close the tab.",
            ), **facts))

        good = f >= GOOD_FIT
        buy_mood = {"decisive": 1.6, "window shopper": 0.3, "bargain hunter": 0.9}.get(p.style, 1.0)
        if product.price > p.budget * 1.1:
            buy_mood *= 0.3
        if missing and good:
            return self.weighted([
                (4.0 * buy_mood, pick_option),
                (0.8 if page.search else 0.0, back),
                (0.8 + self.tiredness(), leave),
            ])
        return self.weighted([
            (1.6 * buy_mood if good and not missing else 0.0, add_to_cart),
            (0.35 * buy_mood if good and not missing else 0.0, buy_now),
            (0.2 * buy_mood if good and missing else 0.0, pick_option),
            ((0.4 if good else 0.8) if page.search else 0.0, back),
            (0.6 if good else 0.9, new_search),
            ((0.7 if good else 1.6) + self.tiredness(), leave),
        ])

    def on_cart(self, page: Page) -> _Move:
        p = self.persona
        rng = self.rng
        item = page.products[-1]
        facts = dict(title=item.short_title, price=_price(sum(q.price for q in page.products)))

        def checkout() -> _Move:
            self.outcome = "purchased"
            return _click(CHECKOUT, _say(rng, (
                "Everything I need is in the cart for {price}; proceeding to checkout.",
                "I'm happy with the {title}, so I'll check out now.",
            ), **facts))

        def keep_shopping() -> _Move:
            return _click(CONTINUE_SHOPPING, "I'll keep shopping a bit before I check out.", self.home)

        def search_more() -> _Move:
            return self.search(page, "more")

        def leave() -> _Move:
            self.outcome = "added_to_cart"
            return _terminate(_say(rng, (
                "The {title} is in my cart; I'll check out later after payday.",
                "I'll leave it in the cart for now and decide tomorrow.",
                "Good, it's saved in my cart. That's all for today.",
            ), **facts))

        buy_mood = {"decisive": 1.8, "window shopper": 0.4}.get(p.style, 1.0)
        return self.weighted([
            (1.1 * buy_mood, checkout),
            (0.2, keep_shopping),
            (0.5, search_more),
            (1.5 + self.tiredness(), leave),
        ])

    def decide(self, page: Page) -> _Move:
        if self.step >= MAX_STEPS - 1:
            return _terminate("I've spent long enough on this site; I'm done for today.")
        if page.kind == "home":
            return self.on_home(page)
        if page.kind == "search":
            return self.on_search(page)
        if page.kind == "product":
            return self.on_product(page, dict(page.chosen))
        return self.on_cart(page)


DWELL_SECONDS = {"home": (4.0, 0.6), "search": (14.0, 0.7), "product": (35.0, 0.7), "cart": (10.0, 0.5)}
"""Page kind -> (median, log-sd) of the lognormal time a shopper spends before acting."""


def simulate_session(catalog: Catalog, session_id: str, seed: int) -> Session:
    """One shopper's visit, fully determined by `seed` (and the catalog)."""
    rng = random.Random(seed)
    persona = make_persona(rng)
    visit = _Visit(rng=rng, catalog=catalog, persona=persona)
    clock = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 120 * 86400))
    page = visit.home()
    steps: list[Step] = []
    while True:
        move = visit.decide(page)
        median, sigma = DWELL_SECONDS[page.kind]
        clock += timedelta(seconds=round(median * math.exp(rng.gauss(0.0, sigma)), 3))
        steps.append(
            Step(
                observation=page.html,
                action=move.action,
                rationale=move.rationale,
                url=page.url,
                timestamp=clock.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            )
        )
        visit.step += 1
        if move.next_page is None:
            break
        page = move.next_page()
    if visit.outcome == "left" and visit.cart:
        visit.outcome = "added_to_cart"
    return Session(
        session_id=session_id,
        steps=steps,
        source=SOURCE,
        persona=persona.text,
        extra={"outcome": visit.outcome, "generator_seed": seed},
    )


def session_seeds(seed: int, n: int) -> list[int]:
    """Independent per-session seeds from one run seed (numpy SeedSequence), so sessions don't overlap."""
    states = np.random.SeedSequence(seed).generate_state(n, dtype=np.uint64)
    return [int(s) for s in states]


def check_split_name(split_name: str) -> str:
    """Session ids are `{split_name}-00000`; the name must be a short lowercase word."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", split_name):
        raise ValueError(
            f"split name must be lowercase letters, digits, '-' or '_' (like 'train'), got {split_name!r}"
        )
    return split_name


def iter_sessions(
    n: int, seed: int, *, split_name: str = "procedural", catalog: Catalog | None = None
) -> Iterator[Session]:
    """Yield `n` sessions with ids `{split_name}-00000`, ...; the same arguments give the same sessions.

    Arguments are checked at the call, not at the first `next()`.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0 sessions, got {n}")
    check_split_name(split_name)
    catalog = catalog or Catalog.generate()
    seeds = session_seeds(seed, n)
    return (simulate_session(catalog, f"{split_name}-{index:05d}", s) for index, s in enumerate(seeds))


def make_sessions(
    n: int, seed: int, *, split_name: str = "procedural", catalog: Catalog | None = None
) -> list[Session]:
    """`n` procedural-shop sessions for run seed `seed` (see `iter_sessions`)."""
    return list(iter_sessions(n, seed, split_name=split_name, catalog=catalog))


def session_stats(sessions: list[Session], count_tokens: Callable[[str], int] | None = None) -> dict:
    """Action-type mix, session lengths, outcomes and page sizes (characters, and tokens when
    `count_tokens` is given, e.g. a tokenizer's `lambda text: len(tok(text).input_ids)`)."""
    actions = [step.action.type for session in sessions for step in session.steps]
    pages = [step.observation for session in sessions for step in session.steps]

    def spread(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "mean": round(sum(ordered) / len(ordered), 1),
            "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "max": ordered[-1],
        }

    stats: dict = {
        "sessions": len(sessions),
        "steps": len(actions),
        "mean_steps": round(len(actions) / max(1, len(sessions)), 2),
        "action_mix": {kind: round(actions.count(kind) / max(1, len(actions)), 3) for kind in ACTION_TYPES},
        "outcomes": dict(Counter(str(s.extra.get("outcome")) for s in sessions).most_common()),
    }
    if pages:
        stats["page_chars"] = spread([len(page) for page in pages])
        if count_tokens is not None:
            stats["page_tokens"] = spread([count_tokens(page) for page in pages])
    return stats


def write_sessions(
    path: str | os.PathLike, n: int, seed: int, *, split_name: str = "procedural", progress: bool = True
) -> dict:
    """Generate `n` sessions into a canonical JSON Lines file (.gz compresses) and return their stats.

    The file is written atomically, so an interrupted run leaves no partial file behind.
    """
    sessions_iter = iter_sessions(n, seed, split_name=split_name)
    if progress:
        sessions_iter = track(sessions_iter, total=n, description=f"Shopping ({split_name})", transient=True)
    sessions = list(sessions_iter)
    write_jsonl(sessions, path)
    return session_stats(sessions)
