"""The procedural shop's catalog: a few thousand products generated from word lists, and its search.

Everything is derived from one seed with a private `random.Random`, so the same seed always gives the
same catalog (and so the same pages). Search is a small inverted index over title words, product-type
synonyms, brand, colours and attributes, tolerant to the typos the shopper makes (`difflib`), with the
price cap a human writes into a query ("under $50") honoured.
"""

from __future__ import annotations

import difflib
import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from shop_env.procedural_shop.words import (
    CATEGORIES,
    MODEL_NAMES,
    REVIEWERS,
    Category,
    ProductType,
    pick_features,
    title_case,
)

DEFAULT_CATALOG_SEED = 20250723
"""The catalog every bundled session was generated on (the paper's arXiv date)."""


GENDERS = ("Men's", "Women's", "Unisex")
GENDER_WORDS = {"men": "Men's", "mens": "Men's", "women": "Women's", "womens": "Women's"}
STOPWORDS = frozenset(
    "a an and the for with of in on to my me i best good cheap new pair set under below less than "
    "buy need want some womens mens men women unisex s".split()
)
"""Words that do not narrow a search (gender words are matched separately, as a bonus)."""

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)*")
_PRICE_CAP = re.compile(r"\b(?:under|below|less than)\s*\$?\s*(\d+(?:\.\d+)?)")


def slugify(text: str) -> str:
    """Lowercase words joined by underscores: "Alder & Co Edge 2" -> "alder_co_edge_2"."""
    return "_".join(re.findall(r"[a-z0-9]+", text.lower()))


def tokenize(text: str) -> list[str]:
    """Search words: lowercase, apostrophes dropped ("men's" -> "mens"), hyphens split."""
    return _WORD.findall(text.lower().replace("'", "").replace("-", " "))


@dataclass(frozen=True)
class Product:
    """One item for sale. `slug` is unique and is the middle part of every element name about it."""

    product_id: int
    slug: str
    category: str
    product_type: str
    brand: str
    model: str
    title: str
    gender: str | None
    material: str
    features: tuple[str, ...]
    price: float
    list_price: float | None
    """The crossed-out price when the product is on sale, else None."""
    rating: float
    review_count: int
    colors: tuple[str, ...]
    sizes: tuple[str, ...]
    size_label: str
    released: int
    """Month index of release (larger is newer); used by the "Newest arrivals" sort."""

    @property
    def short_title(self) -> str:
        """Brand, model and type: how a shopper refers to the product in a rationale."""
        return f"{self.brand} {self.model} {self.product_type}"

    @property
    def options(self) -> dict[str, tuple[str, ...]]:
        """Option name -> choices, in the order the product page shows them (only non-trivial ones)."""
        out = {}
        if len(self.sizes) > 1:
            out[self.size_label] = self.sizes
        if len(self.colors) > 1:
            out["color"] = self.colors
        return out


@dataclass(frozen=True)
class Review:
    stars: int
    title: str
    text: str
    author: str


REVIEW_TITLES: dict[int, tuple[str, ...]] = {
    5: ("Love it", "Excellent", "Highly recommend"),
    4: ("Great value", "Pretty good", "Does the job"),
    3: ("Okay", "It's fine", "Mixed feelings"),
    2: ("Disappointed", "Not for me"),
    1: ("Returned it", "Waste of money"),
}


@dataclass
class Catalog:
    """All products of the shop plus a search index; build with `Catalog.generate(seed)`."""

    seed: int
    products: list[Product]
    _index: dict[str, set[int]] = field(default_factory=dict, repr=False)
    _idf: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        index: dict[str, set[int]] = defaultdict(set)
        for product in self.products:
            for token in self._product_tokens(product):
                index[token].add(product.product_id)
        self._index = dict(index)
        total = len(self.products)
        self._idf = {token: math.log(1 + total / len(ids)) for token, ids in self._index.items()}

    @classmethod
    def generate(cls, seed: int = DEFAULT_CATALOG_SEED, products_per_type: int = 60) -> Catalog:
        """Assemble `products_per_type` products for every product type of every category."""
        if products_per_type < 1:
            raise ValueError(f"products_per_type must be >= 1, got {products_per_type}")
        rng = random.Random(seed)
        products: list[Product] = []
        used_slugs: set[str] = set()
        for category in CATEGORIES:
            for ptype in category.types:
                for _ in range(products_per_type):
                    products.append(_make_product(rng, len(products), category, ptype, used_slugs))
        return cls(seed=seed, products=products)

    @cached_property
    def by_slug(self) -> dict[str, Product]:
        return {product.slug: product for product in self.products}

    @cached_property
    def categories(self) -> dict[str, Category]:
        return {category.slug: category for category in CATEGORIES}

    @cached_property
    def product_types(self) -> dict[str, ProductType]:
        return {ptype.name: ptype for category in CATEGORIES for ptype in category.types}

    def _product_tokens(self, product: Product) -> set[str]:
        ptype = self.product_types[product.product_type]
        category = self.categories[product.category]
        words = [product.title, product.brand, product.material, *product.features, *product.colors]
        words += [ptype.name, *ptype.synonyms, category.title]
        return {token for text in words for token in tokenize(text)} - STOPWORDS

    def correct(self, token: str) -> str | None:
        """The indexed word a (possibly misspelt) query word means, or None when nothing is close."""
        if token in self._index:
            return token
        if token.endswith("s") and token[:-1] in self._index:
            return token[:-1]
        if token + "s" in self._index:
            return token + "s"
        close = difflib.get_close_matches(token, self._index.keys(), n=1, cutoff=0.8)
        return close[0] if close else None

    def search(self, query: str, category: str | None = None) -> list[Product]:
        """Products matching the query, best first (IDF-weighted word overlap, then rating x reviews).

        A query needs at least half of its meaningful words matched; "under $40" caps the price.
        An empty query with a category lists that department.
        """
        text = query.lower()
        cap_match = _PRICE_CAP.search(text)
        price_cap = float(cap_match.group(1)) if cap_match else None
        if cap_match:
            text = text[: cap_match.start()] + text[cap_match.end() :]
        tokens = tokenize(text)
        gender = next((GENDER_WORDS[t] for t in tokens if t in GENDER_WORDS), None)
        words = [self.correct(t) for t in tokens if t not in STOPWORDS]
        known = [w for w in words if w is not None]
        if not words:
            candidates = {p.product_id for p in self.products if category in (None, p.category)}
            scores = dict.fromkeys(candidates, 0.0) if category else {}
        else:
            scores: dict[int, float] = defaultdict(float)
            hits: dict[int, int] = defaultdict(int)
            for word in dict.fromkeys(known):
                for pid in self._index[word]:
                    scores[pid] += self._idf[word]
                    hits[pid] += 1
            needed = max(1, math.ceil(len(words) / 2))
            scores = {pid: s for pid, s in scores.items() if hits[pid] >= needed}
        results = []
        for pid, score in scores.items():
            product = self.products[pid]
            if category is not None and product.category != category:
                continue
            if price_cap is not None and product.price > price_cap:
                continue
            if gender is not None and product.gender == gender:
                score += 0.5
            popularity = product.rating * math.log1p(product.review_count)
            results.append((-score, -popularity, pid))
        return [self.products[pid] for _, _, pid in sorted(results)]

    def reviews(self, product: Product, count: int = 3) -> list[Review]:
        """The top reviews shown on a product page; deterministic per catalog seed and product."""
        category = self.categories[product.category]
        rng = random.Random(f"{self.seed}:reviews:{product.product_id}")
        reviews = []
        for _ in range(count):
            stars = max(1, min(5, round(rng.gauss(product.rating, 1.0))))
            pool = category.praise if stars >= 4 else category.complaints if stars <= 2 else (
                category.praise + category.complaints
            )
            text = rng.choice(pool)
            if stars >= 4 and rng.random() < 0.4:
                text += f" As described: {rng.choice(product.features)}."
            title = rng.choice(REVIEW_TITLES[stars])
            reviews.append(Review(stars=stars, title=title, text=text, author=rng.choice(REVIEWERS)))
        return reviews


def _make_product(
    rng: random.Random, product_id: int, category: Category, ptype: ProductType, used_slugs: set[str]
) -> Product:
    brand = rng.choice(category.brands)
    while True:
        model = f"{rng.choice(MODEL_NAMES)} {rng.randint(1, 9)}"
        slug = slugify(f"{brand} {model}")
        if slug not in used_slugs:
            used_slugs.add(slug)
            break
    gender = rng.choice(GENDERS) if category.gendered else None
    material = rng.choice(ptype.materials)
    features = pick_features(rng, ptype.features, rng.choice((1, 2, 2, 3)))
    low, high = ptype.price_range
    price = round(math.exp(rng.uniform(math.log(low), math.log(high)))) - 0.01
    list_price = round(price * rng.uniform(1.15, 1.5)) - 0.01 if rng.random() < 0.2 else None
    rating = round(min(5.0, max(2.0, rng.gauss(4.2, 0.45))), 1)
    review_count = int(math.exp(rng.uniform(math.log(3), math.log(25000))))
    colors = tuple(rng.sample(category.colors, rng.choice((1, 2, 3, 4))))
    sizes = category.size_options if ptype.sized and rng.random() < 0.8 else ()
    words = [brand, model]
    if gender and gender != "Unisex":
        words.append(gender)
    lead = next((f for f in features if not f[0].isdigit()), features[0])  # "Glide 3 2 Person Tent" reads badly
    words += [title_case(lead), title_case(ptype.name)]
    extras = [title_case(f) for f in features if f != lead] + [title_case(material)]
    if len(colors) == 1:
        extras.append(title_case(colors[0]))
    return Product(
        product_id=product_id,
        slug=slug,
        category=category.slug,
        product_type=ptype.name,
        brand=brand,
        model=model,
        title=f"{' '.join(words)}, {', '.join(extras)}",
        gender=gender,
        material=material,
        features=features,
        price=price,
        list_price=list_price,
        rating=rating,
        review_count=review_count,
        colors=colors,
        sizes=sizes,
        size_label=category.size_label,
        released=rng.randint(0, 48),
    )
