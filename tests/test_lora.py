"""LoRA (peft) runs on the tiny random model: adapters saved in model/, loaded merged anywhere a model is named.

One SFT LoRA run (two steps, a checkpoint after each) is shared by the tests: its model/ must be a small
adapter whose merged load equals base + adapter, it must resume from its first checkpoint to the same
weights, GRPO must train a new adapter on top of it, and `shop-r1 eval --policy` must take it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from agents.models import (
    ModelNotFoundError,
    TINY_RANDOM_DIR,
    adapter_base,
    is_adapter_dir,
    load_model_and_tokenizer,
    models_dir,
    portable_name,
    resolve_model,
)
from shop_env.session import read_jsonl
from agents.context_builder import PromptBudget
from training.data import rl_rows, select_steps, to_dataset
from training.grpo import GRPORunConfig, build_trainer, run_grpo
from training.lora import check_reference_policy, lora_config
from training.presets import grpo_config, sft_config, train_config
from training.run_dir import RunDir
from training.sft import SFTRunConfig, run_sft

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"


def sft_lora_config(out: Path, **overrides) -> SFTRunConfig:
    values = dict(
        model="tiny-random", sessions=str(FIXTURE), out=str(out), max_steps=2, batch_size=2, micro_batch_size=2,
        max_examples=4, context_window=1024, max_new_tokens=64, learning_rate=1e-2, save_steps=1,
        lora_rank=4,
    )
    return SFTRunConfig(**{**values, **overrides})


def grpo_lora_config(out: Path, model: str, **overrides) -> GRPORunConfig:
    values = dict(
        model=model, sessions=str(FIXTURE), out=str(out), max_steps=1, num_generations=2, prompts_per_step=1,
        micro_batch_size=2, context_window=1024, max_new_tokens=16, max_examples=2, save_steps=1,
        learning_rate=1e-2, seed=0, lora_rank=4,
    )
    return GRPORunConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory) -> Path:
    """The run directory of a two-step SFT LoRA run (rank 4) on tiny-random."""
    config = sft_lora_config(tmp_path_factory.mktemp("lora") / "sft")
    run_sft(config)
    return Path(config.out)


def logits(model, tokenizer, text: str = "I will search for trail runners.") -> torch.Tensor:
    with torch.no_grad():
        return model(tokenizer(text, return_tensors="pt").input_ids).logits


def test_sft_lora_saves_a_small_adapter_naming_its_base_portably(sft_run):
    model_dir = sft_run / "model"
    assert is_adapter_dir(model_dir) and not (model_dir / "model.safetensors").exists()
    assert (model_dir / "tokenizer_config.json").exists() and not (sft_run / "model.partial").exists()
    config = json.loads((model_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-random"  # not this machine's cache path
    assert config["r"] == 4 and config["lora_alpha"] == 8  # alpha defaults to 2 x rank
    # every attention and MLP projection of both layers carries an adapter, the LM head does not
    weights = load_file(model_dir / "adapter_model.safetensors")
    adapted = {name.split(".lora_")[0].rsplit(".", 1)[1] for name in weights}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not any("lm_head" in name or "embed" in name for name in weights)
    base_bytes = (resolve_model("tiny-random") / "model.safetensors").stat().st_size
    assert (model_dir / "adapter_model.safetensors").stat().st_size < base_bytes / 20


def test_loading_the_adapter_merges_it_into_its_base(sft_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged, tokenizer = load_model_and_tokenizer(sft_run / "model")
    assert not isinstance(merged, PeftModel) and not merged.training
    assert not any("lora" in name for name, _ in merged.named_parameters())  # merged: plain weights, full speed
    base = AutoModelForCausalLM.from_pretrained(resolve_model("tiny-random")).eval()
    base_logits = logits(base, tokenizer)
    unmerged = PeftModel.from_pretrained(base, sft_run / "model").eval()
    assert torch.allclose(logits(merged, tokenizer), logits(unmerged, tokenizer), atol=1e-4)
    assert not torch.allclose(logits(merged, tokenizer), base_logits, atol=1e-2)  # the two steps changed the policy


def test_a_lora_checkpoint_resumes_to_the_same_adapter(sft_run, tmp_path):
    resumed = tmp_path / "sft"
    shutil.copytree(sft_run, resumed)
    for leftover in ("checkpoints/checkpoint-2", "model", "summary.json"):  # as if killed after checkpoint-1
        shutil.rmtree(resumed / leftover, ignore_errors=True)
        (resumed / leftover).unlink(missing_ok=True)
    recorded = json.loads((resumed / "config.json").read_text())
    (resumed / "config.json").write_text(json.dumps({**recorded, "out": str(resumed)}))  # the copy is the run now
    lines = (resumed / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text(lines[0] + "\n")
    assert is_adapter_dir(resumed / "checkpoints" / "checkpoint-1")
    run_sft(sft_lora_config(resumed), resume=True)
    assert [json.loads(line)["step"] for line in (resumed / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    straight = load_file(sft_run / "model" / "adapter_model.safetensors")
    again = load_file(resumed / "model" / "adapter_model.safetensors")
    assert straight.keys() == again.keys()
    for name in straight:
        assert torch.allclose(straight[name], again[name], atol=1e-6), name


def test_grpo_trains_a_new_adapter_on_the_merged_sft_adapter(sft_run, tmp_path):
    from peft import PeftModel

    config = grpo_lora_config(tmp_path / "grpo", str(sft_run / "model"))
    summary = run_grpo(config)
    model_dir = Path(summary["model"])
    records = [json.loads(line) for line in (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1] and "kl" in records[0]
    assert adapter_base(model_dir) == str((sft_run / "model").resolve())  # stacked: its base is the SFT adapter
    # loading applies both adapters in turn: base + SFT merged, then the GRPO adapter merged
    stacked, tokenizer = load_model_and_tokenizer(model_dir)
    sft_merged, _ = load_model_and_tokenizer(sft_run / "model")
    by_hand = PeftModel.from_pretrained(sft_merged, model_dir).eval()
    assert torch.allclose(logits(stacked, tokenizer), logits(by_hand, tokenizer), atol=1e-4)


def test_grpo_lora_reference_is_the_policy_with_its_adapter_disabled(tmp_path):
    from accelerate.utils import is_peft_model

    model, tokenizer = load_model_and_tokenizer("tiny-random")
    config = grpo_lora_config(tmp_path, "tiny-random")
    rows = rl_rows(select_steps(read_jsonl(FIXTURE), max_examples=2, seed=0), tokenizer, PromptBudget("whole", 1024, 16))
    trainer = build_trainer(config, RunDir(tmp_path), model, tokenizer, to_dataset(rows), [])
    assert is_peft_model(trainer.model) and trainer.ref_model is None  # no second copy of the weights
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in trainer.model.parameters()) / 10


def test_full_fine_tuning_grpo_from_an_adapter_is_refused(sft_run):
    with pytest.raises(ValueError, match="--lora-rank"):
        check_reference_policy(str(sft_run / "model"), lora_rank=0, beta=0.001)
    check_reference_policy(str(sft_run / "model"), lora_rank=0, beta=0.0)  # no reference, nothing to get wrong
    check_reference_policy(str(sft_run / "model"), lora_rank=4, beta=0.001)
    check_reference_policy("tiny-random", lora_rank=0, beta=0.001)


def test_eval_takes_an_adapter_directory_as_policy(sft_run, tmp_path):
    from agents.hf_policy import HFPolicy
    from agents.make_policy import make_policy
    from shop_r1.cli import app

    policy = make_policy(str(sft_run / "model"), greedy=True, max_new_tokens=4, context_window=1024)
    assert isinstance(policy, HFPolicy) and not any("lora" in name for name, _ in policy.model.named_parameters())
    result = CliRunner().invoke(app, [
        "eval", "--policy", str(sft_run / "model"), "--sessions", str(FIXTURE), "--out", str(tmp_path / "eval"),
        "--limit", "1", "--greedy", "--context-window", "1024", "--max-new-tokens", "8",
    ], terminal_width=200)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_steps"] == 1 and metrics["run"]["policy"] == str(sft_run / "model")


def test_lora_settings_are_checked_and_reach_every_stage():
    assert lora_config(SFTRunConfig()) is None  # rank 0: full fine-tuning
    peft = lora_config(SFTRunConfig(lora_rank=8, lora_alpha=4, lora_target_modules="q_proj, v_proj"))
    assert peft.r == 8 and peft.lora_alpha == 4 and set(peft.target_modules) == {"q_proj", "v_proj"}
    assert lora_config(GRPORunConfig(lora_rank=16)).target_modules == "all-linear"
    for bad, message in (({"lora_rank": -1}, "lora_rank"), ({"lora_rank": 1.5}, "lora_rank"),
                         ({"lora_alpha": 0}, "lora_alpha"), ({"lora_target_modules": " , "}, "lora_target_modules")):
        with pytest.raises(ValueError, match=message):
            SFTRunConfig(**bad)
        with pytest.raises(ValueError, match=message):
            GRPORunConfig(**bad)
    assert sft_config("cpu", lora_rank=16).lora_rank == grpo_config("cpu", lora_rank=16).lora_rank == 16
    train = train_config("cpu", lora_rank=8, lora_alpha=8)
    assert (train.sft.lora_rank, train.grpo.lora_rank, train.grpo.lora_alpha) == (8, 8, 8)


def test_cli_lora_flags_are_validated(tmp_path):
    from shop_r1.cli import app

    result = CliRunner().invoke(app, ["sft", "--lora-rank", "-2", "--out", str(tmp_path)], terminal_width=200)
    assert result.exit_code != 0 and "lora_rank" in result.output
    assert "--lora-rank" in CliRunner().invoke(app, ["grpo", "--help"], terminal_width=200).output
    assert "--lora-rank" in CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output


def test_adapter_bases_resolve_portably(tmp_path):
    assert portable_name(resolve_model("tiny-random")) == "tiny-random"
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-3B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert portable_name(snapshot) == "Qwen/Qwen2.5-3B-Instruct"
    assert portable_name(tmp_path) == str(tmp_path.resolve()) and portable_name("org/model") == "org/model"

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    cases = {
        f"/elsewhere/.cache/shop-r1/models/{TINY_RANDOM_DIR}": "tiny-random",  # another machine's cache
        "/elsewhere/.cache/shop-r1/models/smollm2-135m-instruct-0.1.2-f32": "smollm2",
        str(models_dir() / TINY_RANDOM_DIR): str(models_dir() / TINY_RANDOM_DIR),
        "Qwen/Qwen2.5-3B-Instruct": "Qwen/Qwen2.5-3B-Instruct",
    }
    for recorded, expected in cases.items():
        (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": recorded}))
        assert adapter_base(adapter) == expected
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/nowhere/base"}))
    with pytest.raises(ModelNotFoundError, match="/nowhere/base does not exist"):
        adapter_base(adapter)
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(ModelNotFoundError, match="names no base model"):
        load_model_and_tokenizer(adapter)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(adapter)}))
    with pytest.raises(ModelNotFoundError, match="stacked"):
        load_model_and_tokenizer(adapter)  # an adapter naming itself as its base


def test_shipped_policies_resolve_by_name_and_stack_on_each_other(sft_run, tmp_path, monkeypatch):
    """`--policy smollm2-sft` / `smollm2-shop-r1`: adapters in the package's data, the second naming the first
    as its base by name, so they load on any machine; a missing one says it is not in the installation."""
    import shutil

    import shop_env.loaders.bundled
    from agents.make_policy import make_policy
    from agents.models import ModelNotFoundError, adapter_base, portable_name, resolve_model

    monkeypatch.setattr(shop_env.loaders.bundled, "assets_dir", lambda: tmp_path / "assets")
    with pytest.raises(ModelNotFoundError, match="'smollm2-sft' is not in this installation"):
        resolve_model("smollm2-sft")
    sft = tmp_path / "assets" / "policies" / "smollm2-sft"
    shutil.copytree(sft_run / "model", sft)
    assert resolve_model("smollm2-sft") == sft and portable_name(sft) == "smollm2-sft"
    shop_r1 = tmp_path / "assets" / "policies" / "smollm2-shop-r1"
    shutil.copytree(sft_run / "model", shop_r1)
    config = json.loads((shop_r1 / "adapter_config.json").read_text())
    (shop_r1 / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "smollm2-sft"}))
    assert adapter_base(shop_r1) == "smollm2-sft"
    policy = make_policy("smollm2-shop-r1", greedy=True, max_new_tokens=4, context_window=1024)
    assert not any("lora" in name for name, _ in policy.model.named_parameters())  # both adapters merged
