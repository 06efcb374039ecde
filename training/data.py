"""Training examples from recorded sessions, with prompts built exactly as the agent builds them at eval time.

Both stages start from one step of one session (paper section 4.1):

- RL (GRPO): `<context, gold action>` pairs. The prompt is `agents.context_builder.build_prompt` on
  `shop_env.replay_env.observation_at`, the same two calls the evaluated policy makes, so a policy is
  trained on exactly the prompts it is scored on. No rationale is used (the paper uses none in RL).
- SFT: the same prompt plus the assistant turn `format_response(rationale, action)`, the canonical
  response the reward and the parser agree on. TRL's SFTTrainer trains on the completion tokens only
  (prompt-completion datasets get `completion_only_loss`), so the loss is on the assistant turn.

`step_example` is the one place a step becomes a training example; the verl path imports it too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from shop_env.response_format import format_response
from shop_env.session import Session

from agents.context_builder import PromptBudget

logger = logging.getLogger(__name__)

MISSING_RATIONALE_POLICIES = ("skip", "empty")


def step_example(session: Session, index: int, tokenizer: Any, budget: PromptBudget) -> dict[str, Any]:
    """One step as a training row: chat `prompt` messages, the `gold_action` JSON and where it came from.

    The row layout is fixed (verl stores it in `extra_info`); `rationale` is the recorded one or "".
    """
    from shop_env.replay_env import observation_at

    built = budget.build(observation_at(session, index, budget.context), tokenizer)
    step = session.steps[index]
    return {
        "prompt": [dict(message) for message in built.messages],
        "gold_action": step.action.to_json(),
        "action_type": step.action.type,
        "rationale": step.rationale or "",
        "session_id": session.session_id,
        "step_index": int(index),
        "prompt_tokens": int(built.n_tokens),
        "dropped_pages": int(built.dropped.pages),
        "dropped_page_chars": int(built.dropped.page_chars),
    }


def iter_steps(sessions: Iterable[Session], max_steps_per_session: int | None = None) -> Iterator[tuple[Session, int]]:
    """Every (session, step index) pair in order; `max_steps_per_session` keeps the first N of each session."""
    for session in sessions:
        count = len(session.steps) if max_steps_per_session is None else min(len(session.steps), max_steps_per_session)
        for index in range(count):
            yield session, index


def select_steps(
    sessions: Sequence[Session], *, max_examples: int | None = None, seed: int = 0
) -> list[tuple[Session, int]]:
    """All steps, or a seeded sample of `max_examples` of them: a fixed, reproducible subset.

    Steps are ordered by (session id, step) first, so the same seed draws the same steps, in the same
    order, however the sessions are ordered in their file.
    """
    import random

    pairs = sorted(iter_steps(sessions), key=lambda pair: (pair[0].session_id, pair[1]))
    if max_examples is None or max_examples >= len(pairs):
        return pairs
    if max_examples < 1:
        raise ValueError(f"max_examples must be >= 1 or None, got {max_examples}")
    chosen = sorted(random.Random(seed).sample(range(len(pairs)), max_examples))
    return [pairs[i] for i in chosen]


def _fitting_examples(
    pairs: Iterable[tuple[Session, int]], tokenizer: Any, budget: PromptBudget, skip_too_long: bool
) -> Iterator[tuple[Session, int, dict[str, Any]]]:
    """`step_example` per pair; with `skip_too_long`, steps whose fixed prompt part exceeds the budget
    are left out with one warning that counts them (without it, the ContextBudgetError propagates)."""
    from agents.context_builder import ContextBudgetError

    too_long = 0
    for session, index in pairs:
        try:
            yield session, index, step_example(session, index, tokenizer, budget)
        except ContextBudgetError:
            if not skip_too_long:
                raise
            too_long += 1
    if too_long:
        logger.warning(
            "%d steps left out: instructions + persona + action history alone exceed the %d-token prompt budget "
            "(raise the context window to keep them)", too_long, budget.context_window - budget.max_new_tokens,
        )


def rl_rows(
    pairs: Iterable[tuple[Session, int]], tokenizer: Any, budget: PromptBudget, *, skip_too_long: bool = False
) -> list[dict[str, Any]]:
    """GRPO rows: `prompt` (chat messages), `gold_action` (JSON) plus provenance columns.

    With `skip_too_long`, steps that cannot fit the budget are left out (counted in a warning; the
    caller sees `len(pairs) - len(rows)`); otherwise they raise `ContextBudgetError`.
    """
    return [row for _, _, row in _fitting_examples(pairs, tokenizer, budget, skip_too_long)]


def sft_rows(
    pairs: Iterable[tuple[Session, int]],
    tokenizer: Any,
    budget: PromptBudget,
    *,
    missing_rationale: str = "skip",
    skip_too_long: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """SFT rows (`prompt` + assistant `completion`) and how many steps had no rationale.

    A step without a recorded rationale is skipped (`missing_rationale="skip"`) or trained with an
    empty rationale (`"empty"`); the count is returned so the caller can report it, never lose it silently.
    `skip_too_long` as in `rl_rows`.
    """
    if missing_rationale not in MISSING_RATIONALE_POLICIES:
        raise ValueError(f"missing_rationale must be one of {MISSING_RATIONALE_POLICIES}, got {missing_rationale!r}")
    rows, missing, kept = [], 0, []
    for session, index in pairs:
        if not session.steps[index].rationale:
            missing += 1
            if missing_rationale == "skip":
                continue
        kept.append((session, index))
    for session, index, row in _fitting_examples(kept, tokenizer, budget, skip_too_long):
        step = session.steps[index]
        row["completion"] = [{"role": "assistant", "content": format_response(step.rationale or "", step.action)}]
        rows.append(row)
    if missing:
        logger.warning(
            "%d of the selected steps have no rationale; %s", missing,
            "skipped them" if missing_rationale == "skip" else "trained them with an empty rationale",
        )
    return rows, missing


def to_dataset(rows: list[dict[str, Any]]):
    """A `datasets.Dataset` of the rows (TRL's trainers take one); an empty list is an error that says why."""
    from datasets import Dataset

    if not rows:
        raise ValueError("no training examples: the data spec selected no steps (check --sessions and --max-examples)")
    return Dataset.from_list(rows)


def grpo_dataset(
    sessions: str | Sequence[Session],
    tokenizer: Any,
    budget: PromptBudget | None = None,
    *,
    max_examples: int | None = None,
    seed: int = 0,
):
    """The dataset `shop-r1 grpo` trains on, for a GRPOTrainer of your own (docs/recipes.md).

    Columns: `prompt` (chat messages, cut to `budget`), `gold_action` (JSON, what `ShopR1Reward`
    scores against) and the provenance columns. Steps whose fixed parts alone exceed the budget are
    left out with a warning.
    """
    from shop_env.loaders import resolve_sessions

    loaded = resolve_sessions(sessions) if isinstance(sessions, str) else list(sessions)
    pairs = select_steps(loaded, max_examples=max_examples, seed=seed)
    return to_dataset(rl_rows(pairs, tokenizer, budget or PromptBudget(), skip_too_long=True))
