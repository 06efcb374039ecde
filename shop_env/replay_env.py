"""The session-replay env: replays a recorded human shopping session and scores each predicted action.

Registered as `ShopR1/SessionReplay-v0` when `shop_env` is imported. The replay is teacher-forced, as
in the paper: whatever the agent predicts, the next observation is the page the human saw next.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from shop_env.rewards import RewardBreakdown, RewardConfig, score_action, score_response
from shop_env.session import Action, Session

CONTEXT_MODES = ("whole", "latest")
"""whole-session: past pages' HTML + past actions; latest-step: past actions + current page (Table 5)."""


class UnicodeText(spaces.Space[str]):
    """Any Python string, e.g. a page of HTML or a model's response.

    gymnasium's `Text` space rejects characters outside its charset (`<`, `{`, newlines), so HTML and
    JSON would fail `contains`; this space checks the type only and samples printable strings.
    """

    def __init__(self, max_sample_length: int = 64, seed: int | np.random.Generator | None = None):
        self.max_sample_length = max_sample_length
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        length = int(self.np_random.integers(0, self.max_sample_length + 1))
        alphabet = string.printable
        return "".join(alphabet[i] for i in self.np_random.integers(0, len(alphabet), size=length))

    def contains(self, x: Any) -> bool:
        return isinstance(x, str)

    def __repr__(self) -> str:
        return "UnicodeText()"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, UnicodeText)


def observation_at(session: Session, index: int, context: str = "whole") -> dict[str, Any]:
    """The observation before step `index` of `session` (index == len(session) gives the final one).

    The env returns it and the training data prep builds prompts from it, so train and eval agree.
    """
    if context not in CONTEXT_MODES:
        raise ValueError(f"context must be one of {CONTEXT_MODES}, got {context!r}")
    if not 0 <= index <= len(session.steps):
        raise IndexError(f"step index {index} outside 0..{len(session.steps)} of session {session.session_id!r}")
    past = session.steps[:index]
    current = session.steps[index] if index < len(session.steps) else None
    return {
        "session_id": session.session_id,
        "step_index": np.int64(index),
        "persona": session.persona or "",
        "page": current.observation if current else "",
        "url": (current.url or "") if current else "",
        "past_pages": tuple(step.observation for step in past) if context == "whole" else (),
        "past_actions": tuple(step.action.to_json() for step in past),
        "last_action_error": "",
    }


class SessionReplayEnv(gym.Env[dict, str]):
    """Replay recorded shopping sessions; reward = the Shop-R1 reward of the predicted next action.

    ## Description
    Each episode is one recorded session (SPEC section 6). At step t the agent sees the page the human
    saw before their t-th action and the history, and predicts the human's next rationale and action
    as the JSON of SPEC section 1. The env scores the prediction against the human's action with
    `shop_env.rewards`, then shows the human's next page whatever the agent did (teacher forcing).

    ## Action space
    `UnicodeText`: the model's raw response, e.g.
    `{"rationale": "...", "action": {"type": "click", "name": "product_form.add_to_cart"}}`.
    `step` also takes an `Action`, an action dict (`{"type": ..., "name": ...}`), or
    `{"response": text, "self_certainty": s}` to add the rationale reward alpha * s.

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
    type 0.3 + attribute and DARS-scaled value rewards (paper Table 1), or the binary reward. Anything
    unparseable scores 0 and the reason goes to `info["parse_error"]` and `last_action_error`; `step`
    never raises on agent output.

    ## Starting state
    `reset(seed=...)` draws a session with the env's RNG; `options={"session_id": id}` or
    `options={"index": i}` picks one.

    ## Episode end
    Terminated after the session's last step. Truncation comes only from `max_episode_steps` given to
    `gym.make`. Stepping a finished episode raises `RuntimeError`: call `reset()`.

    ## Arguments
    `sessions`: "bundled:train" / "bundled:test", a path `load_sessions` reads, or a list of `Session`.
    `context`: "whole" (default) or "latest". `reward_config`: a `RewardConfig` (paper defaults).
    `render_mode`: None or "ansi".

    ## Info
    `reward` (the breakdown as a dict with namespaced keys), `breakdown` (`RewardBreakdown`),
    `gold_action` and `predicted_action` (dicts or None), `parse_error`, `session_id`, `step_index`.

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

        if context not in CONTEXT_MODES:
            raise ValueError(f"context must be one of {CONTEXT_MODES}, got {context!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.sessions: list[Session] = list(resolve_sessions(sessions))
        if not self.sessions:
            raise ValueError(f"no sessions to replay in {sessions!r}")
        self._by_id = {session.session_id: i for i, session in enumerate(self.sessions)}
        self.context = context
        self.reward_config = reward_config or RewardConfig()
        self.render_mode = render_mode

        text = UnicodeText()
        max_len = max(len(session) for session in self.sessions)
        self.action_space = UnicodeText()
        self.observation_space = spaces.Dict(
            {
                "session_id": text,
                "step_index": spaces.Discrete(max_len + 1),
                "persona": text,
                "page": text,
                "url": text,
                "past_pages": spaces.Sequence(text),
                "past_actions": spaces.Sequence(text),
                "last_action_error": text,
            }
        )
        self._session: Session | None = None
        self._index = 0
        self._last: dict[str, Any] | None = None

    @property
    def session(self) -> Session | None:
        """The session being replayed (None before the first reset)."""
        return self._session

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "session_id" in options:
            if options["session_id"] not in self._by_id:
                raise KeyError(f"unknown session_id {options['session_id']!r}; {len(self.sessions)} sessions loaded")
            chosen = self._by_id[options["session_id"]]
        elif "index" in options:
            chosen = int(options["index"])
            if not 0 <= chosen < len(self.sessions):
                raise IndexError(f"session index {chosen} outside 0..{len(self.sessions) - 1}")
        else:
            chosen = int(self.np_random.integers(len(self.sessions)))
        self._session = self.sessions[chosen]
        self._index = 0
        self._last = None
        observation = observation_at(self._session, 0, self.context)
        return observation, {"session_id": self._session.session_id, "step_index": 0, "num_steps": len(self._session)}

    def step(self, action: str | Action | Mapping[str, Any]):
        if self._session is None:
            raise RuntimeError("call reset() before step()")
        if self._index >= len(self._session):
            raise RuntimeError(
                f"session {self._session.session_id!r} is over after {len(self._session)} steps; call reset()"
            )
        gold = self._session.steps[self._index].action
        breakdown = self._score(action, gold)
        predicted = breakdown.predicted_action
        parse_error = breakdown.error if predicted is None else None
        self._last = {"breakdown": breakdown, "predicted": predicted, "gold": gold, "index": self._index}
        self._index += 1
        terminated = self._index >= len(self._session)
        observation = observation_at(self._session, self._index, self.context)
        observation["last_action_error"] = parse_error or ""
        info = {
            "reward": breakdown.as_dict(),
            "breakdown": breakdown,
            "gold_action": gold.to_dict(),
            "predicted_action": predicted.to_dict() if predicted else None,
            "parse_error": parse_error,
            "session_id": self._session.session_id,
            "step_index": self._index - 1,
        }
        return observation, float(breakdown.total), terminated, False, info

    def _score(self, action: Any, gold: Action) -> RewardBreakdown:
        """Score any agent output (text, Action, action dict, response dict); never raises."""
        if isinstance(action, Mapping) and "response" in action:
            return score_response(action["response"], gold, self.reward_config, self_certainty=action.get("self_certainty"))
        if isinstance(action, (Action, Mapping)):
            return score_action(action, gold, self.reward_config)
        return score_response(action, gold, self.reward_config)

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
        last = self._last
        page = self._session.steps[last["index"]].observation
        breakdown: RewardBreakdown = last["breakdown"]
        lines = [
            f"session {self._session.session_id} step {last['index'] + 1}/{len(self._session)}: "
            f"{page_title(page)!r}, {len(interactive_elements(page))} interactive elements",
            f"  predicted: {last['predicted'] or '(invalid) ' + str(breakdown.error)}",
            f"  gold:      {last['gold']}",
            "  reward:    "
            + ", ".join(f"{key.split('/', 1)[1]}={value:.4g}" for key, value in breakdown.as_dict().items() if value is not None),
        ]
        return "\n".join(lines)
