"""The env's text spaces, and what gymnasium's vector envs need to batch them.

Pages, responses and action histories are arbitrary Python strings of any length, which gymnasium's
own spaces cannot hold: `Text` rejects `<`, `{` and newlines and has a fixed maximum length, and a
`Sequence` has no shared memory. `gymnasium.make_vec(..., vectorization_mode="async")` puts every
observation field in shared memory by default; for these spaces the shared memory is a list held by
one `multiprocessing` manager process per start method, which the workers write and the parent reads
on every step, so nothing is cut to a fixed length and no observation is read stale.
"""

from __future__ import annotations

import copy
import multiprocessing
import string
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space, create_shared_memory, iterate, read_from_shared_memory, write_to_shared_memory


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


class TextSequence(spaces.Sequence):
    """A tuple of strings of any length (past pages, past actions)."""

    def __init__(self, seed: int | np.random.Generator | None = None):
        super().__init__(UnicodeText(), seed=seed)


def observation_space(max_steps: int) -> spaces.Dict:
    """The observation the replay and live envs return (docs/architecture.md, the observation)."""
    text = UnicodeText()
    return spaces.Dict(
        {
            "session_id": text,
            "step_index": spaces.Discrete(max_steps + 1),
            "persona": text,
            "page": text,
            "url": text,
            "past_pages": TextSequence(),
            "past_actions": TextSequence(),
            "last_action_error": text,
        }
    )


class UnicodeTextBatch(spaces.Tuple):
    """`UnicodeText` batched for a vector env: one string per env.

    gymnasium batches a custom space as a Tuple and iterates whatever it is given, so a single
    string would be split into characters, one per env; this batch refuses anything but a
    sequence of exactly one string per env.
    """


@batch_space.register(UnicodeText)
def _batch_unicode_text(space: UnicodeText, n: int = 1) -> UnicodeTextBatch:
    # Seeded as gymnasium seeds the Tuple it would build: n copies, each from a seed drawn from the space.
    batched = UnicodeTextBatch([copy.deepcopy(space) for _ in range(n)], seed=copy.deepcopy(space.np_random))
    batched.seed([int(seed) for seed in copy.deepcopy(space.np_random).integers(0, 10**8, n)])
    return batched


@iterate.register(UnicodeTextBatch)
def _iterate_unicode_text(space: UnicodeTextBatch, items: Any) -> Iterator[Any]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence | np.ndarray):
        raise TypeError(
            f"a vector env of {len(space)} envs takes one action per env, a tuple or list of {len(space)} "
            f"responses; got {type(items).__name__} {str(items)[:40]!r} (for the same response in every env "
            f"pass (text,) * {len(space)})"
        )
    if len(items) != len(space):
        raise ValueError(f"{len(items)} actions for a vector env of {len(space)} envs; pass one per env")
    return iter(items)


_MANAGERS: dict[str, Any] = {}


def _manager(ctx: Any) -> Any:
    """One manager process per multiprocessing start method, started on first use, stopped at exit."""
    method = ctx.get_start_method() if hasattr(ctx, "get_start_method") else multiprocessing.get_start_method()
    if method not in _MANAGERS:
        _MANAGERS[method] = ctx.Manager()
    return _MANAGERS[method]


class SharedTexts(Sequence):
    """The batched value of a text field in shared memory: item i is env i's latest value.

    Reading goes to the manager each time, so it is never stale; a deep copy (what an async vector env
    returns by default) is a plain tuple of the values at that moment, as the sync vector env returns.
    """

    def __init__(self, slots: Any):
        self.slots = slots

    def __getitem__(self, index: Any) -> Any:
        return self.slots[index]

    def __len__(self) -> int:
        return len(self.slots)

    def __deepcopy__(self, memo: dict) -> tuple:
        return tuple(self.slots[:])

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self.slots[:])!r})"


@create_shared_memory.register(UnicodeText)
@create_shared_memory.register(TextSequence)
def _create_text_slots(space: spaces.Space, n: int = 1, ctx: Any = multiprocessing) -> Any:
    return _manager(ctx).list(["" if isinstance(space, UnicodeText) else ()] * n)


@read_from_shared_memory.register(UnicodeText)
@read_from_shared_memory.register(TextSequence)
def _read_text_slots(space: spaces.Space, shared_memory: Any, n: int = 1) -> SharedTexts:
    return SharedTexts(shared_memory)


@write_to_shared_memory.register(UnicodeText)
@write_to_shared_memory.register(TextSequence)
def _write_text_slot(space: spaces.Space, index: int, value: Any, shared_memory: Any) -> None:
    shared_memory[index] = value if isinstance(space, UnicodeText) else tuple(value)
