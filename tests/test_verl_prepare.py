"""`shop-r1 prepare-verl`: the parquet schema, and rows that are exactly the TRL trainer's examples.

The last two tests read the files with verl's own datasets; they skip where verl is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shop_env.response_format import format_response
from shop_env.session import Action, read_jsonl
from agents.context_builder import PromptBudget
from training.data import step_example
from training.verl.prepare import (
    ABILITY,
    DATA_SOURCE,
    MANIFEST_FILE,
    RL_FILE,
    RL_VAL_FILE,
    SFT_FILE,
    SFT_VAL_FILE,
    PrepareConfig,
    _check_prompt_lengths,
    prepare_verl,
)

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"
WINDOW, RESPONSE = 1024, 128
"""A small context window, so the fixture's whole-session prompts must drop pages to fit."""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, PrepareConfig, dict]:
    out = tmp_path_factory.mktemp("verl_data")
    config = PrepareConfig(
        sessions=str(FIXTURE), out=str(out), model="tiny-random", val_sessions=str(FIXTURE),
        context_window=WINDOW, max_new_tokens=RESPONSE,
    )
    return out, config, prepare_verl(config)


@pytest.fixture(scope="module")
def sessions():
    return read_jsonl(FIXTURE)


def read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_rl_parquet_has_verls_layout(prepared):
    out, _, _ = prepared
    schema = pq.read_schema(out / RL_FILE)
    assert schema.names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert [field.name for field in schema.field("reward_model").type] == ["style", "ground_truth"]
    assert {field.name for field in schema.field("extra_info").type} >= {"session_id", "step_index", "action_type", "index"}
    for row in read_rows(out / RL_FILE):
        assert row["data_source"] == DATA_SOURCE and row["ability"] == ABILITY
        assert row["reward_model"]["style"] == "rule"
        assert [message["role"] for message in row["prompt"]] == ["system", "user"]


def test_rl_rows_are_every_step_with_its_gold_action_and_the_trainers_prompt(prepared, sessions, tiny_tokenizer):
    out, config, _ = prepared
    rows = read_rows(out / RL_FILE)
    steps = [(session, index) for session in sessions for index in range(len(session.steps))]
    assert len(rows) == len(steps)
    budget = PromptBudget(config.context, WINDOW, RESPONSE)
    for position, (row, (session, index)) in enumerate(zip(rows, steps, strict=True)):
        step = session.steps[index]
        assert Action.from_dict(json.loads(row["reward_model"]["ground_truth"])) == step.action
        info = row["extra_info"]
        assert (info["session_id"], info["step_index"], info["action_type"]) == (session.session_id, index, step.action.type)
        assert (info["index"], info["split"]) == (position, "train")
        expected = step_example(session, index, tiny_tokenizer, budget)
        assert row["prompt"] == expected["prompt"]
        assert info["prompt_tokens"] == expected["prompt_tokens"] <= WINDOW - RESPONSE


def test_small_window_drops_pages_and_says_so(prepared):
    out, _, manifest = prepared
    dropped = [row["extra_info"]["dropped_pages"] for row in read_rows(out / RL_FILE)]
    assert any(dropped)
    assert manifest["splits"]["train"]["prompts_with_dropped_pages"] == sum(count > 0 for count in dropped)


def test_sft_rows_are_the_prompt_then_the_canonical_response(prepared, sessions):
    out, _, manifest = prepared
    rows = read_rows(out / SFT_FILE)
    with_rationale = [(s, i) for s in sessions for i, step in enumerate(s.steps) if step.rationale]
    assert len(rows) == len(with_rationale) == manifest["splits"]["train"]["sft_rows"]
    assert manifest["splits"]["train"]["missing_rationale"] == sum(len(s.steps) for s in sessions) - len(rows)
    rl_prompts = {(r["extra_info"]["session_id"], r["extra_info"]["step_index"]): r["prompt"] for r in read_rows(out / RL_FILE)}
    for row, (session, index) in zip(rows, with_rationale, strict=True):
        step = session.steps[index]
        *prompt, answer = row["messages"]
        assert prompt == rl_prompts[(session.session_id, index)]
        assert answer == {"role": "assistant", "content": format_response(step.rationale, step.action)}


def test_manifest_and_validation_files(prepared):
    out, config, manifest = prepared
    assert json.loads((out / MANIFEST_FILE).read_text()) == manifest
    assert manifest["max_prompt_length"] == WINDOW - RESPONSE == config.max_prompt_length
    assert manifest["max_response_length"] == RESPONSE
    assert sum(manifest["splits"]["train"]["action_types"].values()) == manifest["splits"]["train"]["rl_rows"]
    assert {row["extra_info"]["split"] for row in read_rows(out / RL_VAL_FILE)} == {"val"}
    assert len(read_rows(out / SFT_VAL_FILE)) == manifest["splits"]["val"]["sft_rows"]


def test_worker_processes_write_the_same_files(prepared, tmp_path):
    out, config, _ = prepared
    parallel = prepare_verl(PrepareConfig(
        sessions=str(FIXTURE), out=str(tmp_path), model="tiny-random", context_window=WINDOW,
        max_new_tokens=RESPONSE, workers=2,
    ))
    assert parallel["splits"]["train"]["rl_rows"] == len(read_rows(out / RL_FILE))
    for name in (RL_FILE, SFT_FILE):
        assert read_rows(tmp_path / name) == read_rows(out / name)


def test_sessions_without_rationales_leave_sft_empty_and_say_so(tmp_path, caplog):
    from shop_env.session import write_jsonl

    sessions = read_jsonl(FIXTURE)  # a private copy: the module's fixture stays intact
    for session in sessions:
        for step in session.steps:
            step.rationale = None
    write_jsonl(sessions, tmp_path / "no_rationale.jsonl")
    config = PrepareConfig(sessions=str(tmp_path / "no_rationale.jsonl"), out=str(tmp_path / "out"),
                           model="tiny-random", context_window=WINDOW, max_new_tokens=RESPONSE)
    with caplog.at_level("WARNING", logger="training.verl.prepare"):
        manifest = prepare_verl(config)
    assert manifest["splits"]["train"]["sft_rows"] == 0 and read_rows(tmp_path / "out" / SFT_FILE) == []
    assert "--missing-rationale empty" in caplog.text


def test_config_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="missing_rationale"):
        PrepareConfig(sessions="bundled:train", out="x", missing_rationale="drop")
    with pytest.raises(ValueError, match="workers"):
        PrepareConfig(sessions="bundled:train", out="x", workers=0)
    with pytest.raises(ValueError, match="context"):
        PrepareConfig(sessions="bundled:train", out="x", context="everything")


def test_a_prompt_over_budget_is_refused_with_its_location():
    row = {"session_id": "s-9", "step_index": 3, "prompt_tokens": 901}
    with pytest.raises(RuntimeError, match="session 's-9' step 3.*901 tokens"):
        _check_prompt_lengths([row], 900)
    _check_prompt_lengths([row], 901)


def test_verls_rl_dataset_reads_the_file_within_its_prompt_length(prepared, tiny_tokenizer):
    pytest.importorskip("verl", reason="verl is not installed (pip install -e '.[gpu]'; see docs/scale-out.md)")
    from omegaconf import OmegaConf

    from verl.trainer.ppo.utils import create_rl_dataset

    out, config, _ = prepared
    data_config = OmegaConf.create({
        "prompt_key": "prompt", "max_prompt_length": config.max_prompt_length, "return_raw_chat": True,
        "truncation": "error", "filter_overlong_prompts": False, "cache_dir": str(out / "cache"),
    })
    dataset = create_rl_dataset(str(out / RL_FILE), data_config, tiny_tokenizer, None)
    assert len(dataset) == len(read_rows(out / RL_FILE))
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["data_source"] == DATA_SOURCE
        ids = tiny_tokenizer.apply_chat_template(list(item["raw_prompt"]), add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        assert len(ids) == item["extra_info"]["prompt_tokens"] <= config.max_prompt_length


def test_verls_sft_dataset_trains_on_the_answer_only(prepared, tiny_tokenizer):
    pytest.importorskip("verl", reason="verl is not installed (pip install -e '.[gpu]'; see docs/scale-out.md)")
    from omegaconf import OmegaConf

    from verl.trainer.sft_trainer import create_sft_dataset

    out, _, _ = prepared
    data_config = OmegaConf.create({
        "messages_key": "messages", "max_length": WINDOW, "truncation": "error", "pad_mode": "no_padding",
        "custom_cls": {"path": None, "name": None}, "apply_chat_template_kwargs": {}, "use_shm": False,
    })
    dataset = create_sft_dataset(str(out / SFT_FILE), data_config, tiny_tokenizer, None)
    rows = read_rows(out / SFT_FILE)
    assert len(dataset) == len(rows)
    item = dataset[0]
    trained = item["input_ids"][item["loss_mask"].bool()]
    answer = rows[0]["messages"][-1]["content"]
    assert answer in tiny_tokenizer.decode(trained)
    assert len(item["input_ids"]) <= WINDOW
