"""The launcher and scripts without verl: the commands they print, the variants' rewards, path handling.

That these commands load into verl's own config is tests/test_verl_config.py (needs verl).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from training.presets import reward_config
from training.verl.launch import CONFIG_DIR, REWARD_KWARGS_KEY, VARIANTS, grpo_overrides

SCRIPTS = CONFIG_DIR.parent / "scripts"
SFT_MODEL = "/ckpt/shop_r1/sft/global_step_1/huggingface"


def run_script(script: str, *args: str, cwd: Path) -> list[str]:
    """The command a launch script would run, from its --dry-run output."""
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(SCRIPTS / script), "--dry-run", *args], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return shlex.split(result.stdout.strip().splitlines()[-1])


def test_every_script_is_valid_bash():
    for script in SCRIPTS.glob("*.sh"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script.name


def test_each_variant_passes_the_presets_reward_in_full():
    assert {"shop_r1", "sft_rl_binary", "no_format", "no_rationale", "no_dars", "binary", "no_sft"} <= set(VARIANTS)
    for name, variant in VARIANTS.items():
        overrides = grpo_overrides(name, data_dir="/data", sft_model=SFT_MODEL)
        passed = dict(o.removeprefix(f"++{REWARD_KWARGS_KEY}.").split("=", 1) for o in overrides if REWARD_KWARGS_KEY in o)
        expected = asdict(reward_config(ablation=variant.ablation, baseline=variant.baseline))
        assert set(passed) == set(expected), name
        assert passed["alpha"] == repr(expected["alpha"]) and passed["use_format"] == str(expected["use_format"]).lower()


def test_variants_that_start_from_sft_need_the_sft_model():
    with pytest.raises(ValueError, match="--sft-model"):
        grpo_overrides("shop_r1", data_dir="/data")
    with pytest.raises(ValueError, match="unknown variant 'no_kl'"):
        grpo_overrides("no_kl", data_dir="/data", sft_model=SFT_MODEL)
    with pytest.raises(ValueError, match="nnodes >= 1"):
        grpo_overrides("shop_r1", data_dir="/data", sft_model=SFT_MODEL, nnodes=0)
    assert "actor_rollout_ref.model.path=Qwen/Qwen2.5-3B-Instruct" in grpo_overrides("no_sft", data_dir="/data")


def test_relative_paths_become_absolute_for_ray_workers(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "sft_model").mkdir()
    command = run_script("grpo.sh", "--data", "data", "--sft-model", "sft_model", cwd=tmp_path)
    assert f"data.train_files={tmp_path / 'data' / 'rl.parquet'}" in command
    assert f"actor_rollout_ref.model.path={tmp_path / 'sft_model'}" in command
    assert f"--config-path={CONFIG_DIR}" in command and "--config-name=shop_r1_grpo" in command


def test_missing_data_is_refused_before_launch(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "training.verl.launch", "grpo", "--data", str(tmp_path), "--sft-model", SFT_MODEL],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0 and "prepare-verl" in result.stderr


def test_sft_script_rendezvous(tmp_path):
    single = run_script("sft.sh", "--data", str(tmp_path), cwd=tmp_path)
    assert "--standalone" in single and "--nproc-per-node=8" in single and "data.val_files=null" in single
    multi = run_script("sft.sh", "--data", str(tmp_path), "--nnodes", "2", "--node-rank", "1",
                       "--master-addr", "10.1.2.3", cwd=tmp_path)
    assert {"--nnodes=2", "--node-rank=1", "--master-addr=10.1.2.3", "--master-port=29500"} <= set(multi)
