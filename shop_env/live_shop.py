"""The live procedural shop: the agent's own actions navigate, for multi-turn RL and outcome metrics.

Registered as `ShopR1/LiveShop-v0`. Replay is teacher-forced (the next page is the human's whatever
the agent did); here the agent's click / type_and_submit / terminate changes the shop's state and the
next page is rendered from it: results for its own query, the product it opened, its filters, its cart.

An episode is one shopper of the procedural shop: `reset(seed=s)` draws the persona exactly as the
bundled sessions were drawn (`simulate_session(catalog, id, s)`), and `options={"generator_seed": n}`
replays the shopper of a bundled session (`session.extra["generator_seed"]`). Per step the agent is
scored with the Shop-R1 reward (format + hierarchical action reward with DARS) against what the
scripted shopper with that persona would do in the same state (`reference_action()`); a name that is
not on the page is reported in `last_action_error`, changes nothing and scores as the replay env scores
it. When the agent does what the shopper would, the shop moves exactly as the shopper's own visit does,
so the scripted shopper playing live reproduces its recorded session step for step. At the end the
outcome (left, added_to_cart, purchased) and whether the purchase fits the persona (need, budget, size,
colour) are in `info`, with the scripted shopper's outcome for the same persona; `outcome_reward` is
paid on the last step for a purchase that fits.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from shop_env.procedural_shop.catalog import Catalog, Product
from shop_env.procedural_shop.pages import (
    ADD_TO_CART,
    BACK_TO_RESULTS,
    BUY_NOW,
    CART_LINK,
    CHECKOUT,
    CLEAR_FILTERS,
    CONTINUE_SHOPPING,
    LOGO_LINK,
    NEXT_PAGE,
    PREVIOUS_PAGE,
    SEARCH_INPUT,
    SORTS,
    CartLine,
    Page,
    SearchState,
    brand_filter_name,
    option_name,
    price_filter_name,
    rating_filter_name,
    render_cart,
    sort_option_name,
)
from shop_env.procedural_shop.persona import GOOD_FIT, Query, fit, make_persona
from shop_env.procedural_shop.shopper import DWELL_SECONDS, MAX_STEPS, _Move, _Visit, simulate_session
from shop_env.replay_env import check_context, score_agent_output
from shop_env.rewards import RewardBreakdown, RewardConfig
from shop_env.session import Action
from shop_env.simplify_html import interactive_elements
from shop_env.spaces import UnicodeText, observation_space

OUTCOMES = ("left", "added_to_cart", "purchased")


@dataclasses.dataclass
class _Ending:
    """What an action that ends the visit leaves behind."""

    outcome: str
    bought: list[CartLine]


class LiveShopEnv(gym.Env[dict, str]):
    """The procedural shop as a live site (see the module docstring).

    Observations are those of `ShopR1/SessionReplay-v0` (session_id, step_index, persona, page, url,
    past_pages, past_actions, last_action_error), built from the agent's own visit, so the same
    policies and prompts work. Actions: the model's response text, an `Action`, or an action dict.
    `info` per step: `reward` (the `RewardBreakdown` against the shopper's choice), `reference_action`,
    `predicted_action`, `parse_error`, `page_kind`; at the end also `outcome`, `purchase_fits`,
    `shopper_outcome`, `outcome_reward`.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        context: str = "whole",
        reward_config: RewardConfig | None = None,
        outcome_reward: float = 1.0,
        render_mode: str | None = None,
    ):
        check_context(context)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if not np.isfinite(outcome_reward):
            raise ValueError(f"outcome_reward must be a finite number, got {outcome_reward}")
        self.context = context
        self.reward_config = reward_config or RewardConfig()
        self.outcome_reward = float(outcome_reward)
        self.render_mode = render_mode
        self.catalog = Catalog.generate()
        self._by_slug = {product.slug: product for product in self.catalog.products}
        self.action_space = UnicodeText()
        self.observation_space = observation_space(MAX_STEPS)
        self._visit: _Visit | None = None
        self._session_id: str | None = None
        self._page: Page | None = None
        self._reference: _Move | None = None
        self._reference_visit: _Visit | None = None

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        if "generator_seed" in options:
            shopper_seed = int(options["generator_seed"])
        elif seed is not None:
            shopper_seed = int(seed)
        else:
            shopper_seed = int(self.np_random.integers(0, 2**63 - 1))
        rng = random.Random(shopper_seed)
        persona = make_persona(rng)
        self._visit = _Visit(rng=rng, catalog=self.catalog, persona=persona)
        rng.randrange(0, 120 * 86400)  # simulate_session's clock draw: the shopper's random stream stays the recorded one
        self._shopper_seed = shopper_seed
        self._session_id = f"live-{shopper_seed}"
        self._page = self._visit.home()
        self._pages: list[str] = []
        self._actions: list[str] = []
        self._decide()
        info = {"session_id": self._session_id, "step_index": 0, "page_kind": self._page.kind}
        return self._observation(""), info

    def step(self, action: str | Action | Mapping[str, Any]):
        if self._visit is None or self._page is None:
            raise RuntimeError("call reset() before step()")
        if self._reference is None:
            raise RuntimeError(f"the visit {self._session_id!r} is over; call reset()")
        reference, page = self._reference, self._page
        breakdown: RewardBreakdown = score_agent_output(action, reference.action, self.reward_config)
        predicted = breakdown.predicted_action
        error = breakdown.error if predicted is None else ""
        self._visit = self._reference_visit if predicted == reference.action else self._agent_visit()
        self._dwell(page)
        index = self._visit.step
        self._visit.step += 1
        ending: _Ending | None = None
        if predicted is None:
            next_page: Page | None = page  # unreadable: nothing happens, as a click on nothing
        elif predicted == reference.action:
            next_page = reference.next_page() if reference.next_page is not None else None
            ending = None if next_page is not None else self._ending(predicted, page)
        else:
            next_page, ending, error = self._apply(predicted, page)
        self._pages.append(page.html)
        self._actions.append(predicted.to_json() if predicted is not None else "null")
        info = {
            "reward": breakdown,
            "reference_action": reference.action,
            "predicted_action": predicted,
            "parse_error": breakdown.error if predicted is None else None,
            "session_id": self._session_id,
            "step_index": index,
            "page_kind": page.kind,
        }
        reward = breakdown.total
        terminated = next_page is None
        truncated = not terminated and self._visit.step >= MAX_STEPS
        if terminated or truncated:
            reward += self._finish(ending or self._ending(None, page), info)
            self._page = next_page or page
            self._reference = None
            return self._observation(error), reward, terminated, truncated, info
        self._page = next_page
        self._decide()
        return self._observation(error), reward, False, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._page is None:
            return None
        names = interactive_elements(self._page.html)
        lines = [f"{self._session_id} step {len(self._actions)} · {self._page.kind} page · {self._page.url}",
                 f"persona: {self._visit.persona.text}", f"{len(names)} elements: " + ", ".join(names[:12])]
        if self._reference is not None:
            lines.append(f"the shopper would: {self._reference.action.to_json()}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ the shopper's view
    @property
    def session_id(self) -> str | None:
        """The visit's id, `live-<shopper seed>` (None before the first reset)."""
        return self._session_id

    def reference_action(self) -> Action | None:
        """What the scripted shopper with this persona does on the current page (None once the visit is over)."""
        return None if self._reference is None else self._reference.action

    def _decide(self) -> None:
        """The shopper's choice here, made on a copy of the visit so the agent's own visit is untouched."""
        visit = self._copy(self._visit)
        page = self._page
        if page.kind == "cart" and not page.products:  # only the agent reaches an empty cart
            self._reference = _Move(Action("click", name=CONTINUE_SHOPPING), "Nothing in the cart yet.", visit.home)
        else:
            self._reference = visit.decide(page)
        self._reference_visit = visit

    @staticmethod
    def _copy(visit: _Visit) -> _Visit:
        return dataclasses.replace(visit, rng=copy.deepcopy(visit.rng), cart=list(visit.cart),
                                   queries=list(visit.queries), opened=list(visit.opened))

    def _agent_visit(self) -> _Visit:
        """The agent's visit after a step of its own: its cart and history, the shopper's random stream
        advanced as the decision advanced it (so later choices stay determined by the seed)."""
        visit = self._copy(self._visit)
        visit.rng = self._reference_visit.rng
        return visit

    def _dwell(self, page: Page) -> None:
        """The dwell-time draw `simulate_session` makes after each decision (keeps the random stream aligned)."""
        self._visit.rng.gauss(0.0, DWELL_SECONDS[page.kind][1])

    # ------------------------------------------------------------------ the shop's transitions
    def _apply(self, action: Action, page: Page) -> tuple[Page | None, _Ending | None, str]:
        """The page after the agent's own action (None: the visit ends), what it ended with, and the error."""
        visit = self._visit
        if action.type == "terminate":
            return None, self._ending(action, page), ""
        names = set(interactive_elements(page.html))
        if action.name not in names:
            return page, None, f"no element named {action.name!r} on this page; nothing happened"
        if action.type == "type_and_submit":
            if action.name != SEARCH_INPUT:
                return page, None, f"{action.name!r} takes no text here; only {SEARCH_INPUT} searches"
            visit.queries.append(Query(text=action.text, intended=action.text))
            return visit.search_page(SearchState(query=action.text)), None, ""
        moves = self._clicks(page)
        move = moves.get(action.name)
        if move is None:
            return page, None, ""  # on the page, but it changes nothing in this shop (a label, a select box)
        return move()

    def _clicks(self, page: Page) -> dict[str, Callable[[], tuple[Page | None, _Ending | None, str]]]:
        """What each clickable element of `page` does."""
        visit = self._visit
        stay = lambda next_page: (next_page, None, "")  # noqa: E731
        moves: dict[str, Callable[[], tuple[Page | None, _Ending | None, str]]] = {
            LOGO_LINK: lambda: stay(visit.home()),
            CART_LINK: lambda: stay(render_cart(visit.cart, None)),
        }
        for category in self.catalog.categories.values():
            for name in (f"home.departments.{category.slug}", f"breadcrumbs.department.{category.slug}"):
                moves[name] = lambda slug=category.slug: stay(visit.search_page(SearchState(category=slug)))
        for name in interactive_elements(page.html):
            parts = name.split(".")
            if len(parts) >= 3 and parts[-1] == "view_product" and parts[-2] in self._by_slug:
                moves[name] = lambda product=self._by_slug[parts[-2]]: stay(self._open(page, product))
            elif parts[0] == "cart" and parts[-1] == "delete" and len(parts) == 3:
                moves[name] = lambda slug=parts[1]: stay(self._delete(slug))
        if page.kind == "search" and page.search is not None:
            state = page.search
            moves[NEXT_PAGE] = lambda: stay(visit.search_page(state.with_(page=state.page + 1)))
            moves[PREVIOUS_PAGE] = lambda: stay(visit.search_page(state.with_(page=max(1, state.page - 1))))
            moves[CLEAR_FILTERS] = lambda: stay(visit.search_page(state.with_(brand=None, price_band=None, min_rating=None)))
            moves[rating_filter_name()] = lambda: stay(visit.search_page(state.with_(min_rating=4)))
            for brand in page.brands:
                moves[brand_filter_name(brand)] = lambda brand=brand: stay(visit.search_page(state.with_(brand=brand)))
            for band in page.price_bands:
                moves[price_filter_name(band)] = lambda band=band: stay(visit.search_page(state.with_(price_band=band)))
            for key in SORTS:
                moves[sort_option_name(key)] = lambda key=key: stay(visit.search_page(state.with_(sort=key)))
        if page.kind == "product":
            product, chosen = page.products[0], dict(page.chosen)
            for option, values in product.options.items():
                for value in values:
                    moves[option_name(option, value)] = lambda option=option, value=value: stay(
                        visit.product_page(product, {**chosen, option: value}, page.search))
            moves[ADD_TO_CART] = lambda: stay(self._add(product, chosen))
            moves[BUY_NOW] = lambda: (None, self._ending(Action("click", name=BUY_NOW), page), "")
            if page.search is not None:
                moves[BACK_TO_RESULTS] = lambda: stay(visit.search_page(page.search))
        if page.kind == "cart":
            moves[CHECKOUT] = lambda: (None, self._ending(Action("click", name=CHECKOUT), page), "") if visit.cart else (
                page, None, "the cart is empty: nothing to check out")
            moves[CONTINUE_SHOPPING] = lambda: stay(visit.home())
        return moves

    def _open(self, page: Page, product: Product) -> Page:
        """The product page as the shopper opens one (it notes the product; the first colour is preselected)."""
        return self._visit.open_product(page, "", product, "").next_page()

    def _add(self, product: Product, chosen: dict[str, str]) -> Page:
        self._visit.cart.append(CartLine(product, tuple(chosen.items())))
        return render_cart(self._visit.cart, product)

    def _delete(self, slug: str) -> Page:
        self._visit.cart = [line for line in self._visit.cart if line.product.slug != slug]
        return render_cart(self._visit.cart, None)

    # ------------------------------------------------------------------ the end of a visit
    def _ending(self, action: Action | None, page: Page) -> _Ending:
        """How the visit ends with `action` on `page` (None: cut at the step limit), the shopper's or the agent's."""
        if action is not None and action.name == BUY_NOW:
            return _Ending("purchased", [CartLine(page.products[0], page.chosen)])
        if action is not None and action.name == CHECKOUT:
            return _Ending("purchased", list(self._visit.cart))
        return _Ending("added_to_cart" if self._visit.cart else "left", [])

    def _finish(self, ending: _Ending, info: dict[str, Any]) -> float:
        """Outcome metrics into `info`; returns the outcome reward."""
        persona = self._visit.persona
        fits = bool(ending.bought) and all(_fits(persona, line) for line in ending.bought)
        outcome = ending.outcome
        shopper = simulate_session(self.catalog, self._session_id, self._shopper_seed)
        info.update(
            outcome=outcome,
            purchase_fits=fits,
            shopper_outcome=shopper.extra["outcome"],
            shopper_steps=len(shopper.steps),
            outcome_reward=self.outcome_reward if fits else 0.0,
        )
        return info["outcome_reward"]

    def _observation(self, error: str) -> dict[str, Any]:
        page = self._page
        return {
            "session_id": self._session_id,
            "step_index": np.int64(len(self._actions)),
            "persona": self._visit.persona.text,
            "page": page.html,
            "url": page.url,
            "past_pages": tuple(self._pages) if self.context == "whole" else (),
            "past_actions": tuple(self._actions),
            "last_action_error": error,
        }


def visit_score(step_rewards: Sequence[float], outcome_reward: float) -> float:
    """A whole visit's reward for multi-turn RL (the TRL tools, the verl interaction): the mean per-step
    Shop-R1 reward (`info["reward"].total`) plus the outcome reward; 0 for a visit with no step."""
    return sum(step_rewards) / len(step_rewards) + outcome_reward if step_rewards else 0.0


def _fits(persona: Any, line: CartLine) -> bool:
    """A bought item fits the persona: what it needs (fit score), within budget, its size and colour."""
    product, chosen = line.product, dict(line.options)
    if fit(persona, product) < GOOD_FIT or product.price > persona.budget:
        return False
    if "size" in product.options and persona.size in product.options["size"] and chosen.get("size") != persona.size:
        return False
    if persona.color in product.options.get("color", ()) and chosen.get("color") != persona.color:
        return False
    return True

