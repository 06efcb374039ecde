"""The procedural shop: a deterministic catalog, its pages as simplified HTML, and a persona-driven
shopper whose recorded visits are the project's bundled sessions (`assets/sessions_*.jsonl.gz`).

    from shop_env.procedural_shop import make_sessions
    sessions = make_sessions(100, seed=0, split_name="train")

Or from the shell: `shop-r1 make-sessions --n 100 --seed 0 --out sessions.jsonl.gz`.
"""

from shop_env.procedural_shop.catalog import DEFAULT_CATALOG_SEED, Catalog, Product
from shop_env.procedural_shop.pages import Page, SearchState
from shop_env.procedural_shop.shopper import (
    SOURCE,
    Persona,
    iter_sessions,
    make_persona,
    make_sessions,
    simulate_session,
)
from shop_env.procedural_shop.words import CATEGORIES

__all__ = [
    "CATEGORIES",
    "DEFAULT_CATALOG_SEED",
    "SOURCE",
    "Catalog",
    "Page",
    "Persona",
    "Product",
    "SearchState",
    "iter_sessions",
    "make_persona",
    "make_sessions",
    "simulate_session",
]
