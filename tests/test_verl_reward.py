"""verl's reward function is `shop_env.rewards.score_response`, unchanged, with every component.

The last test loads it the way verl does (`pkg://training.verl.reward` + reward_kwargs); it skips
where verl is not installed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shop_env.response_format import EXAMPLE_RESPONSES
from shop_env.rewards import ABLATIONS, RewardBreakdown, RewardConfig, score_response
from training.presets import reward_config
from training.verl.prepare import DATA_SOURCE
from training.verl.reward import SCORE_KEY, compute_score, reward_config_from_kwargs

GOLDS = [
    {"type": "click", "name": "search_results.trail_runner_pro.view_product"},
    {"type": "type_and_submit", "name": "header.search_box.search_input", "text": "running shoes"},
    {"type": "terminate"},
]
RESPONSES = [
    *(json.dumps(example) for example in EXAMPLE_RESPONSES.values()),
    '{"rationale": "Close.", "action": {"type": "click", "name": "search_results.trail_runner.view_product"}}',
    '{"rationale": "x", "action": {"type": "type_and_submit", "name": "header.search_box.search_input", "text": "shoes"}}',
    '```json\n{"rationale": "fenced", "action": {"type": "terminate"}}\n```',
    '{"rationale": "no action"}',
    '{"rationale": "Hmm.", "action": {"type": "hover"}}',
    "I would click the first product.",
    "",
]
CONFIGS = {
    "default": {},
    **{name: asdict(RewardConfig.ablation(name)) for name in ABLATIONS},
    "rl_binary": asdict(reward_config(baseline="rl_binary")),
}
KEYS = {SCORE_KEY, *RewardBreakdown().as_dict()}


@pytest.mark.parametrize("config_name", CONFIGS)
def test_compute_score_is_score_response(config_name):
    kwargs = CONFIGS[config_name]
    config = RewardConfig(**kwargs)
    for gold in GOLDS:
        for response in RESPONSES:
            result = compute_score(DATA_SOURCE, response, json.dumps(gold), {"session_id": "s", "step_index": 0}, **kwargs)
            expected = score_response(response, gold, config)
            assert result == {SCORE_KEY: expected.total, **expected.as_dict()}
            assert set(result) == KEYS and all(isinstance(value, float) for value in result.values())


@settings(max_examples=60, deadline=None)
@given(response=st.text(max_size=200), gold=st.sampled_from(GOLDS))
def test_any_text_scores_without_raising_and_with_the_same_keys(response, gold):
    result = compute_score(DATA_SOURCE, response, json.dumps(gold))
    assert set(result) == KEYS
    assert result[SCORE_KEY] == score_response(response, gold).total


def test_gold_may_come_already_parsed():
    response = RESPONSES[0]
    assert compute_score(DATA_SOURCE, response, GOLDS[0]) == compute_score(DATA_SOURCE, response, json.dumps(GOLDS[0]))


def test_reward_kwargs_build_the_reward_config():
    assert reward_config_from_kwargs({}) == RewardConfig()
    assert reward_config_from_kwargs({"dars_factor": 1.0, "alpha": 0.0}) == RewardConfig(dars_factor=1.0, alpha=0.0)
    # verl's own call-time kwargs (reward-model routing) are not reward settings
    assert reward_config_from_kwargs({"reward_router_address": None, "reward_model_tokenizer": None}) == RewardConfig()


def test_a_misspelt_reward_kwarg_is_an_error_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['dars_facter'\].*dars_factor"):
        compute_score(DATA_SOURCE, RESPONSES[0], json.dumps(GOLDS[0]), dars_facter=1.0)
    with pytest.raises(ValueError, match="dars_factor"):
        compute_score(DATA_SOURCE, RESPONSES[0], json.dumps(GOLDS[0]), dars_factor=-1.0)


def test_rows_it_cannot_score_get_zero_and_a_warning_naming_the_row(caplog):
    zero = {SCORE_KEY: 0.0, **RewardBreakdown().as_dict()}
    where = {"session_id": "s-7", "step_index": 4}
    with caplog.at_level(logging.WARNING, logger="training.verl.reward"):
        assert compute_score("openai/gsm8k", RESPONSES[0], json.dumps(GOLDS[0]), where) == zero
        assert compute_score(DATA_SOURCE, RESPONSES[0], "{not json", where) == zero
        assert compute_score(DATA_SOURCE, RESPONSES[0], '{"type": "hover"}', where) == zero
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3 and all("session 's-7' step 4" in message for message in messages)
    assert "openai/gsm8k" in messages[0] and "hover" in messages[2]


def test_verl_loads_it_from_the_config_with_the_variants_reward_kwargs():
    pytest.importorskip("verl", reason="verl is not installed (pip install -e '.[gpu]'; see docs/scale-out.md)")
    from omegaconf import OmegaConf

    from training.verl.launch import VARIANTS
    from verl.trainer.ppo.reward import get_custom_reward_fn

    kwargs = VARIANTS["no_dars"].reward_kwargs()
    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": "pkg://training.verl.reward", "name": "compute_score", "reward_kwargs": kwargs}}})
    reward_fn = get_custom_reward_fn(config)
    gold = GOLDS[0]
    for response in RESPONSES:
        result = reward_fn(data_source=DATA_SOURCE, solution_str=response, ground_truth=json.dumps(gold), extra_info={})
        assert result[SCORE_KEY] == score_response(response, gold, RewardConfig(**kwargs)).total
