"""SFT data and one SFT step on the tiny random model; train prompts are the agent's eval prompts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from shop_env.replay_env import observation_at
from shop_env.response_format import format_response
from shop_env.session import read_jsonl
from agents.context_builder import PromptBudget
from training.data import select_steps, sft_rows, step_example
from training.presets import sft_config
from training.sft import SFTRunConfig, run_sft

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"
BUDGET = PromptBudget("whole", 1024, 64)


@pytest.fixture(scope="module")
def tokenizer():
    from agents.models import load_tokenizer

    return load_tokenizer("tiny-random")


def test_train_prompts_are_the_agents_eval_prompts(tokenizer):
    from agents.models import load_model_and_tokenizer
    from agents.hf_policy import HFPolicy

    model, tok = load_model_and_tokenizer("tiny-random")
    policy = HFPolicy(model, tok, context_window=BUDGET.context_window, max_new_tokens=BUDGET.max_new_tokens, context="whole")
    session = read_jsonl(FIXTURE)[0]
    for index in range(len(session.steps)):
        row = step_example(session, index, tok, BUDGET)
        built = policy.build_prompts([observation_at(session, index, "whole")])[0]
        assert row["prompt"] == built.messages
        assert row["prompt_tokens"] == built.n_tokens <= BUDGET.context_window - BUDGET.max_new_tokens
        assert json.loads(row["gold_action"]) == session.steps[index].action.to_dict()


def test_sft_rows_answer_with_the_canonical_response_and_count_missing_rationales(tokenizer):
    sessions = read_jsonl(FIXTURE)
    sessions[0].steps[0] = dataclasses.replace(sessions[0].steps[0], rationale=None)
    pairs = select_steps(sessions)
    without = sum(1 for session, index in pairs if not session.steps[index].rationale)
    skipped, missing = sft_rows(pairs, tokenizer, BUDGET)
    assert missing == without >= 1 and len(skipped) == len(pairs) - without
    kept, _ = sft_rows(pairs, tokenizer, BUDGET, missing_rationale="empty")
    assert len(kept) == len(pairs)
    step = sessions[0].steps[0]
    assert kept[0]["completion"] == [{"role": "assistant", "content": format_response("", step.action)}]
    with pytest.raises(ValueError, match="missing_rationale"):
        sft_rows(pairs, tokenizer, BUDGET, missing_rationale="guess")


def test_seeded_subset_is_fixed_and_in_order():
    sessions = read_jsonl(FIXTURE)
    first = select_steps(sessions, max_examples=3, seed=1)
    assert first == select_steps(sessions, max_examples=3, seed=1)
    order = [(s.session_id, i) for s, i in select_steps(sessions)]
    picked = [(s.session_id, i) for s, i in first]
    assert picked == sorted(picked, key=order.index) and len(picked) == 3


def test_one_sft_step_writes_metrics_model_and_plots(tmp_path):
    config = SFTRunConfig(
        model="tiny-random", sessions=str(FIXTURE), out=str(tmp_path / "sft"), max_steps=1, batch_size=2,
        micro_batch_size=2, max_examples=4, context_window=1024, max_new_tokens=64, learning_rate=1e-4,
    )
    summary = run_sft(config)
    run = Path(config.out)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1]
    assert records[0]["loss"] > 0 and "sft/mean_token_accuracy" in records[0]
    assert (run / "model" / "config.json").exists() and (run / "plots" / "loss.png").exists()
    assert json.loads((run / "config.json").read_text())["learning_rate"] == 1e-4
    assert summary["examples"] + summary["steps_without_rationale"] == 4


def test_presets_and_flags_layer_in_order():
    config = sft_config("cpu", learning_rate=3e-5, max_steps=None)
    assert config.model == "smollm2" and config.learning_rate == 3e-5 and config.context_window == 1024
    assert SFTRunConfig().epochs == 4.0 and SFTRunConfig().learning_rate == 2e-5  # the paper's defaults
    with pytest.raises(ValueError, match="preset"):
        sft_config("laptop")
    with pytest.raises(ValueError, match="micro_batch_size"):
        SFTRunConfig(batch_size=64, micro_batch_size=3)
