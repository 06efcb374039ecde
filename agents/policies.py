"""Policies: map a batch of observations to responses in the paper's JSON format.

Every policy has `act(observations: list[dict]) -> list[PolicyOutput]`, one output per observation,
in order. The observations are those of `shop_env.replay_env.observation_at` / the replay env.

- Baselines that need no model, here: `OraclePolicy` (the human's own action: the upper bound),
  `TerminatePolicy` (always leave), `RandomValidPolicy` (a random element of the page, or leave) and
  `HeuristicPolicy` (search for what the persona needs, open the first result, add it to the cart,
  leave).

The LLM policies answer through the same protocol: `HFPolicy` (transformers, CPU or GPU;
`agents.hf_policy`) and `VLLMPolicy` (GPU, optional; `agents.vllm_policy`). `agents.make_policy`
builds any of them from what `--policy` names.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import lxml.html

from shop_env.response_format import format_response, parse_response
from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT, Action, Session
from shop_env.simplify_html import interactive_elements

if TYPE_CHECKING:
    from agents.context_builder import Dropped


@dataclass(frozen=True)
class PolicyOutput:
    """One response of a policy."""

    text: str
    """The raw response string (docs/contract.md, the task and the response), exactly as the reward will parse it."""
    action: Action | None
    """The parsed action; None when the response fails the format."""
    self_certainty: float | None = None
    """KL(U || p) of the rationale tokens in nats (LLM policies with `with_self_certainty=True`)."""
    prompt_tokens: int | None = None
    """Tokens in the prompt the model saw (LLM policies)."""
    completion_tokens: int | None = None
    """Tokens the model generated, end-of-turn included (LLM policies)."""
    dropped: Dropped | None = None
    """What the context builder cut to fit the token budget (LLM policies)."""
    error: str | None = None
    """Why the policy gave no answer (e.g. instructions + action history alone exceed the token
    budget); the step then scores 0 like any empty response, and evaluation counts it."""

    @classmethod
    def from_text(cls, text: str, **details: Any) -> PolicyOutput:
        return cls(text=text, action=parse_response(text).action, **details)


@runtime_checkable
class Policy(Protocol):
    """Anything that answers a batch of observations.

    A policy may also set `uses_last_action_error = False` to say its answers never depend on the env's
    feedback; evaluation then batches several steps of one session together (agents/evaluate.py).
    Without it, evaluation assumes the feedback matters and advances sessions in lockstep.
    """

    def act(self, observations: list[dict]) -> list[PolicyOutput]: ...


def _respond(rationale: str, action: Action) -> PolicyOutput:
    return PolicyOutput.from_text(format_response(rationale, action))


class OraclePolicy:
    """Answers with the human's own rationale and action: every metric's upper bound, and a check of the pipeline."""

    uses_last_action_error = False

    def __init__(self, sessions: Sequence[Session]):
        self._steps = {
            (session.session_id, index): step for session in sessions for index, step in enumerate(session.steps)
        }
        if not self._steps:
            raise ValueError("OraclePolicy needs the sessions it will be evaluated on; got none")

    def act(self, observations: list[dict]) -> list[PolicyOutput]:
        outputs = []
        for observation in observations:
            key = (observation["session_id"], int(observation["step_index"]))
            step = self._steps.get(key)
            if step is None:
                raise KeyError(
                    f"OraclePolicy has no step {key[1]} of session {key[0]!r}; build it with the sessions being replayed"
                )
            outputs.append(_respond(step.rationale or "", step.action))
        return outputs


class TerminatePolicy:
    """Always leaves the site: the majority-class-style floor."""

    uses_last_action_error = False

    def act(self, observations: list[dict]) -> list[PolicyOutput]:
        return [_respond("I've seen enough, so I'm leaving.", Action(TERMINATE)) for _ in observations]


TEXT_INPUT_TYPES = frozenset({"", "text", "search", "email", "tel", "url", "number"})
"""`<input type=...>` values a shopper types into (type_and_submit); other named elements are clicked."""


def _text_inputs(page: str) -> set[str]:
    """Names of the page's elements that take typed text."""
    if not page.strip():
        return set()
    document = lxml.html.fromstring(page)
    names = set()
    for element in document.iter("input", "textarea"):
        name = (element.get("name") or "").strip()
        if name and (element.tag == "textarea" or (element.get("type") or "").lower() in TEXT_INPUT_TYPES):
            names.add(name)
    return names


def _page_words(page: str) -> list[str]:
    if not page.strip():
        return []
    return re.findall(r"[A-Za-z][A-Za-z'-]{2,}", lxml.html.fromstring(page).text_content())


class RandomValidPolicy:
    """A uniformly random choice among the page's interactive elements and terminate.

    Text inputs get a type_and_submit with one to three words from the page. The draw is seeded per
    (seed, session, step), so results do not depend on batching or order.
    """

    uses_last_action_error = False

    def __init__(self, seed: int = 0):
        self.seed = seed

    def act(self, observations: list[dict]) -> list[PolicyOutput]:
        outputs = []
        for observation in observations:
            rng = random.Random(f"{self.seed}:{observation['session_id']}:{int(observation['step_index'])}")
            page = observation["page"]
            names = interactive_elements(page) if page.strip() else []
            choice = rng.randrange(len(names) + 1)
            if choice == len(names):
                outputs.append(_respond("Nothing here catches my eye, so I'm done.", Action(TERMINATE)))
            elif names[choice] in _text_inputs(page):
                words = _page_words(page) or ["deals"]
                text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3))).lower()
                outputs.append(_respond("Let me search for this.", Action(TYPE_AND_SUBMIT, name=names[choice], text=text)))
            else:
                outputs.append(_respond("This looks worth a click.", Action(CLICK, name=names[choice])))
        return outputs


_NEED = re.compile(
    r"\b(?:need|needs|want|wants|looking for|shopping for|searching for)\s+(?P<what>[^.,;()$]+)", re.IGNORECASE
)
_NEED_TAIL = re.compile(r"\s+(?:under|below|for|with|that|which|to|because|so|and)\b.*$", re.IGNORECASE)
_ARTICLES = re.compile(r"\b(?:a|an|the|some|new|good|nice|pair of)\b\s*", re.IGNORECASE)


def persona_query(persona: str, page: str = "") -> str:
    """A search query from what the persona says they need, else from the page title, else "deals".

    >>> persona_query("A teacher who wants cushioned shoes under $150.")
    'cushioned shoes'
    """
    match = _NEED.search(persona or "")
    if match:
        query = _ARTICLES.sub("", _NEED_TAIL.sub("", match.group("what"))).strip()
        if query:
            return query.lower()
    from shop_env.simplify_html import page_title

    title_words = re.findall(r"[A-Za-z][A-Za-z'-]+", page_title(page) if page else "")
    return " ".join(title_words[:4]).lower() or "deals"


def _past(observation: Mapping[str, Any]) -> list[dict]:
    return [json.loads(action) for action in observation["past_actions"]]


class HeuristicPolicy:
    """A scripted shopper: search for the persona's need, open the first result, add it to the cart, leave.

    Per step, the first rule that applies: after adding to the cart, leave; on a page with an add-to-cart
    button outside a result list, add; before any search, search; on a results page, open the first
    result; otherwise leave.
    """

    uses_last_action_error = False

    def act(self, observations: list[dict]) -> list[PolicyOutput]:
        return [self._decide(observation) for observation in observations]

    def _decide(self, observation: Mapping[str, Any]) -> PolicyOutput:
        page = observation["page"]
        past = _past(observation)
        names = interactive_elements(page) if page.strip() else []
        if any(a["type"] == CLICK and a.get("name", "").endswith("add_to_cart") for a in past):
            return _respond("It's in my cart, so I'm done here.", Action(TERMINATE))
        add = next((n for n in names if n.endswith("add_to_cart") and not n.startswith(("search_results", "cart"))), None)
        if add:
            return _respond("This is what I was looking for, so I'll add it to my cart.", Action(CLICK, name=add))
        search_inputs = [n for n in names if n in _text_inputs(page)] if names else []
        if search_inputs and not any(a["type"] == TYPE_AND_SUBMIT for a in past):
            query = persona_query(observation.get("persona", ""), page)
            return _respond(f"I'll search for {query}.", Action(TYPE_AND_SUBMIT, name=search_inputs[0], text=query))
        result = next((n for n in names if n.startswith("search_results.") and n.endswith("view_product")), None)
        if result:
            return _respond("The first result looks promising, so I'll open it.", Action(CLICK, name=result))
        return _respond("I don't see anything useful here, so I'm leaving.", Action(TERMINATE))


BASELINES = ("oracle", "terminate", "random", "heuristic")
