"""Shared fixtures: the recorded-format sessions and the tiny random model, loaded once per test session.

The tiny model is built into the shop-r1 cache on first use (about 10 s: its tokenizer is SmolLM2's,
read from the embedded GGUF) and reused afterwards, so tests that generate text stay fast and offline.
"""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports torch: OpenMP threads that spin while waiting make every torch process on a
# busy shared machine several times slower (a tiny-model test step measured 7.2 s spinning, 0.54 s
# passive, with 2 threads on 2 loaded cores). An explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

from shop_env.session import Session, read_jsonl

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixture_sessions() -> list[Session]:
    """Two short sessions in the canonical format, pages shaped like OPeRA's simplified HTML."""
    return read_jsonl(FIXTURES / "real_format_sessions.jsonl")


@pytest.fixture(scope="session")
def tiny_model_and_tokenizer():
    """(model, tokenizer) of `tiny-random`: 2 layers, hidden 64, SmolLM2's tokenizer; eval mode, float32."""
    from agents.models import load_model_and_tokenizer

    return load_model_and_tokenizer("tiny-random")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The tiny model's prepared tokenizer alone (SmolLM2's): tests of prompts need no model weights."""
    from agents.models import load_tokenizer

    return load_tokenizer("tiny-random")
