"""The session-replay env: replays a recorded human shopping session and scores each predicted action.

Registered as `ShopR1/SessionReplay-v0` when `shop_env` is imported. The replay is teacher-forced, as
in the paper: whatever the agent predicts, the next observation is the page the human saw next.
"""

from __future__ import annotations

import dataclasses
import operator
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np

from shop_env.rewards import RewardBreakdown, RewardConfig, score_action, score_response
from shop_env.session import Action, Session
from shop_env.spaces import UnicodeText, observation_space

ContextMode = Literal["whole", "latest"]
CONTEXT_MODES: tuple[ContextMode, ...] = ("whole", "latest")
"""whole-session: past pages' HTML + past actions; latest-step: past actions + current page (Table 5)."""


def check_context(context: object, *, allow_none: bool = False) -> None:
    """Refuse anything but a context mode (or None, where `allow_none`: use the observation as built)."""
    if not (context in CONTEXT_MODES or (allow_none and context is None)):
        expected = " or ".join(repr(mode) for mode in CONTEXT_MODES) + (" or None" if allow_none else "")
        raise ValueError(f"context must be {expected}, got {context!r}")


def score_agent_output(action: Any, gold: Action, config: RewardConfig) -> RewardBreakdown:
    """Score any agent output against the gold action, never raising: the response text, an `Action`,
    an action dict, or {"response": text, "self_certainty": s}. The replay and live envs both use it."""
    if type(action) is str:  # the common case first: this runs once per step of an RL loop
        return score_response(action, gold, config)
    if isinstance(action, Mapping) and "response" in action:
        return score_response(action["response"], gold, config, self_certainty=action.get("self_certainty"))
    if isinstance(action, (Action, Mapping)):
        return score_action(action, gold, config)
    return score_response(action, gold, config)


def observation_at(session: Session, index: int, context: str = "whole") -> dict[str, Any]:
    """The observation before step `index` of `session` (index == len(session) gives the final one).

    The env returns it and the training data prep builds prompts from it, so train and eval agree.
    """
    check_context(context)
    if not 0 <= index <= len(session.steps):
        raise IndexError(f"step index {index} outside 0..{len(session.steps)} of session {session.session_id!r}")
    return _observation(_History.of(session, context), index)


class _History(NamedTuple):
    """A session's observation parts, built once per session rather than once per step: the
    observation at step t is item t of each, with the first t pages and actions as its past."""

    session_id: str
    persona: str
    pages: tuple[str, ...]
    """Every page, then "" (the page after the last step)."""
    urls: tuple[str, ...]
    actions: tuple[str, ...]
    """Every gold action as JSON."""
    whole: bool
    """Show past pages (context="whole")."""

    @classmethod
    def of(cls, session: Session, context: str) -> _History:
        steps = session.steps
        return cls(
            session_id=session.session_id,
            persona=session.persona or "",
            pages=(*(step.observation for step in steps), ""),
            urls=(*(step.url or "" for step in steps), ""),
            actions=tuple(step.action.to_json() for step in steps),
            whole=context == "whole",
        )


def _observation(history: _History, index: int, error: str = "") -> dict[str, Any]:
    return {
        "session_id": history.session_id,
        "step_index": np.int64(index),
        "persona": history.persona,
        "page": history.pages[index],
        "url": history.urls[index],
        "past_pages": history.pages[:index] if history.whole else (),
        "past_actions": history.actions[:index],
        "last_action_error": error,
    }


class SessionReplayEnv(gym.Env[dict, str]):
    """Replay recorded shopping sessions; reward = the Shop-R1 reward of the predicted next action.

    ## Description
    Each episode is one recorded session (docs/contract.md, the canonical session format). At step t the agent sees the page the human
    saw before their t-th action and the history, and predicts the human's next rationale and action
    as the JSON object of docs/contract.md ("the task and the response"). The env scores the prediction against the human's action with
    `shop_env.rewards`, then shows the human's next page whatever the agent did (teacher forcing).

    ## Action space
    `UnicodeText`: the model's raw response, e.g.
    `{"rationale": "...", "action": {"type": "click", "name": "product_form.add_to_cart"}}`.
    `step` also takes an `Action`, an action dict (`{"type": ..., "name": ...}`), or
    `{"response": text, "self_certainty": s}` to add the rationale reward alpha * s (an s that is not
    a number in [0, `MAX_SELF_CERTAINTY`] nats adds 0, with the reason in `info["reward"].error`).

    ## Observation space
    | key | space | meaning |
    |---|---|---|
    | session_id | UnicodeText | the session's id |
    | step_index | Discrete(max session length + 1) | index of the current step |
    | persona | UnicodeText | shopper persona, "" if unknown |
    | page | UnicodeText | simplified HTML of the current page ("" after the last step) |
    | url | UnicodeText | the page's URL, "" if unknown |
    | past_pages | Sequence(UnicodeText) | earlier pages, oldest first; empty when context="latest" |
    | past_actions | Sequence(UnicodeText) | earlier gold actions as JSON, oldest first |
    | last_action_error | UnicodeText | why the previous response failed to parse, "" if it did not |

    ## Rewards
    `score_response` (text) or `score_action` (Action / dict) with `reward_config`: format 0.5 +
    type 0.3 + attribute and DARS-scaled value rewards (paper Table 1), or the binary reward; always
    in [0, `reward_config.upper_bound`]. Anything unparseable scores 0 and the reason goes to
    `info["parse_error"]` and `last_action_error`; `step` never raises on agent output.

    ## Starting state
    `reset(seed=...)` draws a session with the env's RNG; `options={"session_id": id}` or
    `options={"index": i}` (an integer) picks one; other options, or both, are refused.

    ## Episode end
    Terminated after the session's last step. Truncation comes only from `max_episode_steps` given to
    `gym.make`. Stepping a finished episode raises `RuntimeError`: call `reset()`.

    ## Arguments
    `sessions`: "bundled:train" / "bundled:test", a path `load_sessions` reads, or a list of `Session`
    (the env replays its own copies, `Session.copy`: changing the list or its sessions afterwards, or
    handing the same list to other envs, changes nothing in this one).
    `context`: "whole" (default) or "latest". `reward_config`: a `RewardConfig` (paper defaults).
    `render_mode`: None or "ansi".

    ## Info
    `reward`: the `RewardBreakdown`, a named tuple of every term (`.total`, `.format`, `.type`,
    `.attribute`, `.value`, `.action`, `.self_certainty`, `.rationale`, `.error`; `.as_dict()` for
    logging); `gold_action` and `predicted_action`: `Action`s (the prediction None when the format
    failed; `.to_dict()` gives their JSON); `parse_error`, `session_id`, `step_index`. All immutable
    objects, passed as they are: the env builds no per-step copies of them.

    ## Version history
    v0: first release.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        sessions: str | Sequence[Session] = "bundled:test",
        context: str = "whole",
        reward_config: RewardConfig | None = None,
        render_mode: str | None = None,
    ):
        from shop_env.loaders import resolve_sessions

        check_context(context)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if reward_config is not None and not isinstance(reward_config, RewardConfig):
            raise TypeError(
                f"reward_config must be a shop_env.rewards.RewardConfig or None, got {type(reward_config).__name__} "
                f"{str(reward_config)[:60]}; pass RewardConfig(**...) (fields: "
                f"{', '.join(field.name for field in dataclasses.fields(RewardConfig))})"
            )
        resolved = resolve_sessions(sessions)
        # Sessions the caller holds are copied: the observation parts cached at reset must stay those
        # of the session being scored (a step appended later made the env step past its history).
        owned = isinstance(sessions, str | os.PathLike)
        self.sessions: list[Session] = resolved if owned else [session.copy() for session in resolved]
        if not self.sessions:
            raise ValueError(f"no sessions to replay in {sessions!r}")
        self._by_id = {session.session_id: i for i, session in enumerate(self.sessions)}
        self._id_order = sorted(range(len(self.sessions)), key=lambda i: (self.sessions[i].session_id, i))
        self.context = context
        self.reward_config = reward_config or RewardConfig()
        self.render_mode = render_mode

        self.action_space = UnicodeText()
        self.observation_space = observation_space(max(len(session) for session in self.sessions))
        self._session: Session | None = None
        self._history: _History | None = None
        self._histories: list[_History | None] = [None] * len(self.sessions)
        self._index = 0
        self._last: RewardBreakdown | None = None

    @property
    def session(self) -> Session | None:
        """The session being replayed (None before the first reset)."""
        return self._session

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        options = _reset_options(options)
        if "session_id" in options:
            if options["session_id"] not in self._by_id:
                raise KeyError(f"unknown session_id {options['session_id']!r}; {len(self.sessions)} sessions loaded")
            chosen = self._by_id[options["session_id"]]
        elif "index" in options:
            chosen = _session_index(options["index"])
            if not 0 <= chosen < len(self.sessions):
                raise IndexError(f"session index {chosen} outside 0..{len(self.sessions) - 1}")
        else:  # drawn by id order, so a seed picks the same session whatever the order of the file
            chosen = self._id_order[int(self.np_random.integers(len(self.sessions)))]
        session = self._session = self.sessions[chosen]
        history = self._histories[chosen]
        if history is None:
            history = self._histories[chosen] = _History.of(session, self.context)
        self._history = history
        self._index = 0
        self._last = None
        info = {"session_id": session.session_id, "step_index": 0, "num_steps": len(session.steps)}
        return _observation(history, 0), info

    def step(self, action: str | Action | Mapping[str, Any]):
        session = self._session
        if session is None:
            raise RuntimeError("call reset() before step()")
        index = self._index
        steps = session.steps
        if index >= len(steps):
            raise RuntimeError(f"session {session.session_id!r} is over after {len(steps)} steps; call reset()")
        gold = steps[index].action
        breakdown = self._last = score_agent_output(action, gold, self.reward_config)
        predicted = breakdown.predicted_action
        parse_error = breakdown.error if predicted is None else None
        self._index = index = index + 1
        info = {
            "reward": breakdown,
            "gold_action": gold,
            "predicted_action": predicted,
            "parse_error": parse_error,
            "session_id": session.session_id,
            "step_index": index - 1,
        }
        observation = _observation(self._history, index, parse_error or "")
        return observation, breakdown.total, index >= len(steps), False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        from shop_env.simplify_html import interactive_elements, page_title

        if self._session is None:
            return "(no episode: call reset())"
        if self._last is None:
            step = self._session.steps[0]
            return (
                f"session {self._session.session_id} step 0/{len(self._session)}: "
                f"{page_title(step.observation)!r}, {len(interactive_elements(step.observation))} interactive elements"
            )
        breakdown = self._last
        index = self._index - 1
        step = self._session.steps[index]
        lines = [
            f"session {self._session.session_id} step {index + 1}/{len(self._session)}: "
            f"{page_title(step.observation)!r}, {len(interactive_elements(step.observation))} interactive elements",
            f"  predicted: {breakdown.predicted_action or '(invalid) ' + str(breakdown.error)}",
            f"  gold:      {step.action}",
            "  reward:    "
            + ", ".join(f"{key.split('/', 1)[1]}={value:.4g}" for key, value in breakdown.as_dict().items() if value is not None),
        ]
        return "\n".join(lines)


RESET_OPTIONS = frozenset({"session_id", "index"})
_NO_OPTIONS: Mapping[str, Any] = {}


def _reset_options(options: Any) -> Mapping[str, Any]:
    """The options of `reset`, checked: a mapping with at most one of `RESET_OPTIONS`."""
    if options is None:
        return _NO_OPTIONS
    if type(options) is not dict and not isinstance(options, Mapping):
        raise TypeError(
            f"reset options must be a dict such as {{'index': 0}} or {{'session_id': 's-001'}}, "
            f"got {type(options).__name__} {str(options)[:40]}"
        )
    if not options.keys() <= RESET_OPTIONS:
        unknown = sorted(str(key) for key in options if key not in RESET_OPTIONS)
        raise ValueError(f"unknown reset option(s) {', '.join(unknown)}; expected one of index, session_id")
    if len(options) > 1:
        raise ValueError("pass either 'session_id' or 'index' to reset, not both")
    return options


def _session_index(value: Any) -> int:
    """A session index: an int (a numpy integer too), never a float or bool silently truncated."""
    if type(value) is int:
        return value
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"session index must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"session index must be an integer, got {type(value).__name__} {str(value)[:40]}"
            " (a float such as 1.9 is not rounded: pass int(...) yourself)"
        ) from None
