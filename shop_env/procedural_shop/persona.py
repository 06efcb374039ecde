"""Shoppers: personas (free text plus the structure it was written from), how well a product fits
one, and the search queries they type (synonyms, features, brands, price caps, the odd typo).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from shop_env.procedural_shop.catalog import GENDERS, Catalog, Product
from shop_env.procedural_shop.words import CATEGORIES, Category, pick_features

GOOD_FIT = 3.2
"""Fit score from which a product is what the shopper wants (right type, in budget, a wanted feature)."""
OK_FIT = 2.2
"""Fit score from which a product is worth a closer look."""

STYLES: dict[str, float] = {
    "decisive": 0.2,
    "comparer": 0.25,
    "searcher": 0.25,
    "bargain hunter": 0.15,
    "window shopper": 0.15,
}
"""Browsing style -> share of personas. Styles change how often the shopper refines, opens, filters, buys."""

STYLE_SENTENCES: dict[str, tuple[str, ...]] = {
    "decisive": ("I usually buy the first thing that fits.", "I don't like spending long on shopping sites."),
    "comparer": ("I like to compare a few options and read reviews first.", "I always check the ratings before I buy."),
    "searcher": (
        "I tend to rephrase my search until the results look right.",
        "I search a lot before clicking anything.",
    ),
    "bargain hunter": ("I always look for the best deal.", "Price matters most to me."),
    "window shopper": ("Honestly I'm mostly browsing today.", "I'm not sure I'll buy anything yet."),
}

OCCUPATIONS = (
    "nurse", "software developer", "teacher", "graduate student", "civil engineer", "barista", "accountant",
    "freelance designer", "truck driver", "marketing manager", "nurse practitioner", "pharmacist",
    "electrician", "college student", "sales associate", "chef", "lawyer", "photographer", "mechanic",
    "data analyst", "librarian", "physical therapist", "small business owner", "warehouse worker",
    "real estate agent", "social worker", "musician", "dental hygienist", "project manager", "veterinarian",
)
PLACES = (
    "Ohio", "Texas", "Seattle", "a small town in Maine", "Chicago", "Atlanta", "Denver", "Phoenix",
    "Boston", "San Diego", "Minneapolis", "rural Kentucky", "Portland", "Miami", "Nashville", "Detroit",
)

TYPO_RATE = 0.08
"""Share of typed queries with one typo (swapped, dropped or doubled letter)."""


@dataclass(frozen=True)
class Persona:
    """Who the shopper is. `text` is what a session records; the fields are what the text says."""

    text: str
    """The first-person description a session records."""
    category: str
    """Department slug of what they need."""
    product_type: str
    """Product type name of what they need."""
    wanted: tuple[str, ...]
    """Features or materials the shopper hopes for."""
    budget: float
    """Dollars they mean to spend at most."""
    style: str
    """Browsing style, a key of `STYLES`."""
    gender: str | None = None
    """"Men's" or "Women's" for gendered departments."""
    size: str | None = None
    """The size they pick on product pages of sized types."""
    color: str | None = None
    """Preferred colour, picked when a product offers it."""
    brand: str | None = None
    """A brand they trust (filters to it, types it into queries)."""
    patience: int = 4
    """Steps after which the urge to leave grows quickly."""


def article(phrase: str) -> str:
    """ "a chef knife", "an air fryer"; plural phrases ("sandals") stay bare."""
    if phrase.endswith("s") and not phrase.endswith("ss"):
        return phrase
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def capitalize(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def make_persona(rng: random.Random) -> Persona:
    """A random shopper: who they are, what they need, their budget and how they browse."""
    category: Category = rng.choice(CATEGORIES)
    ptype = rng.choice(category.types)
    features = pick_features(rng, ptype.features, rng.choice((1, 1, 2)))
    material = rng.choice(ptype.materials) if rng.random() < 0.3 else None
    wanted = features + ((material,) if material else ())
    low, high = ptype.price_range
    typical = math.exp(rng.uniform(math.log(low), math.log(high)))
    budget = max(10.0, round(typical * rng.uniform(0.9, 1.6) / 5) * 5)
    style = rng.choices(list(STYLES), weights=list(STYLES.values()))[0]
    gender = rng.choice(GENDERS[:2]) if category.gendered else None
    size = rng.choice(category.size_options) if ptype.sized else None
    color = rng.choice(category.colors) if rng.random() < 0.4 else None
    brand = rng.choice(category.brands) if rng.random() < 0.2 else None
    patience = {"decisive": 3, "window shopper": 3, "comparer": 5, "searcher": 4, "bargain hunter": 4}[style]
    patience = max(2, patience + rng.choice((-1, 0, 0, 1)))

    age = rng.randint(19, 67)
    who = f"I'm a {age}-year-old {rng.choice(OCCUPATIONS)} from {rng.choice(PLACES)}."
    need = " and ".join(features) + (f", ideally {material}" if material else "")
    item = f"{gender.lower()} {ptype.name}" if gender and rng.random() < 0.5 else ptype.name
    sentences = [
        who,
        f"{capitalize(rng.choice(ptype.reasons))}, so I need {article(item)} ({need}).",
        rng.choice(
            (f"My budget is about ${budget:.0f}.", f"I don't want to spend more than ${budget:.0f}.",
             f"I'd like to keep it under ${budget:.0f}.")
        ),
        rng.choice(STYLE_SENTENCES[style]),
    ]
    if size:
        sentences.append(f"I need {category.size_label} {size}.")
    if color:
        sentences.append(f"I'd prefer {color}.")
    if brand:
        sentences.append(f"I've had good luck with {brand} before.")
    return Persona(
        text=" ".join(sentences),
        category=category.slug,
        product_type=ptype.name,
        wanted=wanted,
        budget=budget,
        style=style,
        gender=gender,
        size=size,
        color=color,
        brand=brand,
        patience=patience,
    )


def fit(persona: Persona, product: Product) -> float:
    """How well a product matches the persona's need: type, wanted features, budget, rating, brand."""
    if product.category != persona.category:
        return 0.0
    score = 2.0 if product.product_type == persona.product_type else 0.5
    traits = set(product.features) | {product.material} | set(product.colors)
    score += 0.7 * sum(1 for want in persona.wanted if want in traits)
    if product.price <= persona.budget:
        score += 1.0
    elif product.price <= persona.budget * 1.15:
        score += 0.3
    else:
        score -= 1.0
    if product.rating >= 4.3:
        score += 0.4
    elif product.rating < 3.6:
        score -= 0.7
    if persona.brand and product.brand == persona.brand:
        score += 0.5
    if persona.color and persona.color in product.colors:
        score += 0.3
    if persona.gender and product.gender and product.gender not in (persona.gender, "Unisex"):
        score -= 1.5
    return score


def _typo(rng: random.Random, query: str) -> str:
    words = query.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return query
    i = rng.choice(candidates)
    word = words[i]
    j = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    elif kind == "drop":
        word = word[:j] + word[j + 1 :]
    else:
        word = word[:j] + word[j] + word[j:]
    words[i] = word
    return " ".join(words)


@dataclass(frozen=True)
class Query:
    """A search as typed (`text`, maybe with a typo) and as meant (`intended`), for the rationale."""

    text: str
    intended: str


GENDER_SPELLINGS = {"Men's": ("mens", "men's", "men"), "Women's": ("womens", "women's", "women")}


def make_query(rng: random.Random, persona: Persona, catalog: Catalog, avoid: set[str]) -> Query:
    """A query the way people type them: a synonym of the need, sometimes a feature, brand or price cap.

    Tries a few times to avoid repeating an earlier query of the visit (`avoid`, lowercase).
    """
    ptype = catalog.product_types[persona.product_type]
    words: list[str] = []
    for _ in range(8):
        words = [rng.choice((ptype.name, *ptype.synonyms))]
        if rng.random() < 0.45:
            words.insert(0, rng.choice(persona.wanted))
        if persona.color and rng.random() < 0.15:
            words.insert(0, persona.color)
        if persona.gender and rng.random() < 0.3:
            words.insert(0, rng.choice(GENDER_SPELLINGS[persona.gender]))
        if persona.brand and rng.random() < 0.5:
            words.insert(0, persona.brand.lower())
        if rng.random() < (0.25 if persona.style == "bargain hunter" else 0.06):
            words.append(f"under {persona.budget:.0f}")
        if " ".join(words) not in avoid:
            break
    intended = " ".join(words)
    text = _typo(rng, intended) if rng.random() < TYPO_RATE else intended
    if rng.random() < 0.1:
        text = text.capitalize()
    return Query(text=text, intended=intended)
