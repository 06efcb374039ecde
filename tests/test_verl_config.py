"""The launch scripts' configs load into verl's own config: Hydra composes verl's trainer config with our
YAML and overrides, and verl's validation accepts it, on a CPU, for every variant and cluster size.

Every test needs verl (and Hydra) importable; in an environment without them the module is skipped.
The override lists come from `training.verl.launch`, the module the scripts call.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="verl is not installed (pip install -e '.[gpu]'; see docs/scale-out.md)")
pytest.importorskip("transfer_queue", reason="verl's TransferQueue is not installed (pip install -e '.[gpu]')")

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import verl  # noqa: E402
from training.presets import reward_config  # noqa: E402
from training.verl.launch import (  # noqa: E402
    CONFIG_DIR,
    GRPO_CONFIG,
    SFT_CONFIG,
    VARIANTS,
    grpo_overrides,
    sft_overrides,
)
from training.verl.prepare import CONTEXT_WINDOW, RESPONSE_TOKENS  # noqa: E402
from training.verl.rationale_reward import certainty_weight  # noqa: E402
from verl.trainer.ppo.utils import need_critic, need_reference_policy  # noqa: E402
from verl.utils.config import omega_conf_to_dataclass, validate_config  # noqa: E402

VERL_CONFIG_DIR = Path(verl.__file__).parent / "trainer" / "config"
SCRIPTS = CONFIG_DIR.parent / "scripts"
SFT_MODEL = "/ckpt/shop_r1/sft/global_step_1/huggingface"
ADDED_KEYS = {
    # Ray's runtime_env takes env_vars; verl's YAML only lists py_executable.
    "ray_kwargs.ray_init.runtime_env.env_vars",
    "ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES",
}
"""Keys of our YAML that verl's base config does not list (all others must exist there); Hydra's own
`hydra` and `defaults` entries are not config keys."""


def compose_config(config_dir: Path, name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return compose(config_name=name, overrides=overrides)


def leaf_keys(node, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        path = f"{prefix}{key}"
        keys.add(path)
        if isinstance(value, dict):
            keys |= leaf_keys(value, path + ".")
    return keys


@pytest.mark.parametrize(("ours", "base"), [(GRPO_CONFIG, "ppo_trainer"), (SFT_CONFIG, "sft_trainer_engine")])
def test_every_key_of_our_yaml_exists_in_verls_config(ours, base):
    """A misspelt key in our YAML would be added silently by Hydra; verl would never read it."""
    raw = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{ours}.yaml"))
    del raw["hydra"], raw["defaults"]
    verl_keys = leaf_keys(OmegaConf.to_container(compose_config(VERL_CONFIG_DIR, base, [])))
    assert leaf_keys(raw) - ADDED_KEYS <= verl_keys, sorted(leaf_keys(raw) - ADDED_KEYS - verl_keys)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_grpo_variant_composes_and_passes_verls_validation(variant, tmp_path):
    config = compose_config(CONFIG_DIR, GRPO_CONFIG, grpo_overrides(variant, data_dir=tmp_path, sft_model=SFT_MODEL))
    validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    rollout = omega_conf_to_dataclass(config.actor_rollout_ref.rollout)
    expected_reward = asdict(reward_config(ablation=VARIANTS[variant].ablation, baseline=VARIANTS[variant].baseline))
    assert dict(config.reward.custom_reward_function.reward_kwargs) == expected_reward
    assert certainty_weight(config) == expected_reward["alpha"]
    model = SFT_MODEL if VARIANTS[variant].from_sft else "Qwen/Qwen2.5-3B-Instruct"
    assert config.actor_rollout_ref.model.path == model
    assert config.trainer.experiment_name == variant
    assert config.data.train_files == str(tmp_path / "rl.parquet")
    assert not config.trainer.val_before_train and config.trainer.test_freq == -1  # no rl_val.parquet here
    # the paper's numbers (docs/contract.md, the paper's training setup), as verl will read them
    assert rollout.n * config.data.train_batch_size == 64 == rollout.n * config.actor_rollout_ref.actor.ppo_mini_batch_size
    assert rollout.temperature == 0.6
    assert config.actor_rollout_ref.actor.optim.lr == 1e-7
    assert config.actor_rollout_ref.actor.use_kl_loss and config.actor_rollout_ref.actor.kl_loss_coef == 0.001
    assert config.trainer.total_training_steps == 500
    assert config.data.max_prompt_length + config.data.max_response_length == CONTEXT_WINDOW
    assert config.data.max_response_length == RESPONSE_TOKENS
    assert config.algorithm.adv_estimator == "grpo" and config.trainer.v1.trainer_mode == "shop_r1_sync"
    assert config.reward.custom_reward_function.path == "pkg://training.verl.reward"
    assert config.ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES == "training.verl.self_certainty"


def test_validation_file_is_used_when_prepare_wrote_one(tmp_path):
    (tmp_path / "rl_val.parquet").touch()
    config = compose_config(CONFIG_DIR, GRPO_CONFIG, grpo_overrides("shop_r1", data_dir=tmp_path, sft_model=SFT_MODEL))
    assert config.data.val_files == str(tmp_path / "rl_val.parquet")
    assert config.trainer.val_before_train and config.trainer.test_freq == 50


@pytest.mark.parametrize(("nnodes", "valid"), [(1, True), (2, True), (8, True), (3, False)])
def test_multi_node_sizes_go_through_verls_batch_check(nnodes, valid, tmp_path):
    config = compose_config(
        CONFIG_DIR, GRPO_CONFIG, grpo_overrides("shop_r1", data_dir=tmp_path, sft_model=SFT_MODEL, nnodes=nnodes)
    )
    assert config.trainer.nnodes * config.trainer.n_gpus_per_node == 8 * nnodes
    if valid:
        validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    else:  # 64 sequences do not split over 24 GPUs: verl refuses before starting Ray
        with pytest.raises(AssertionError, match="must be divisible"):
            validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))


def test_sft_config_composes_with_the_papers_numbers(tmp_path):
    config = compose_config(CONFIG_DIR, SFT_CONFIG, sft_overrides(data_dir=tmp_path, nnodes=2))
    optim = omega_conf_to_dataclass(config.optim)
    omega_conf_to_dataclass(config.checkpoint)
    omega_conf_to_dataclass(config.engine)
    assert optim.lr == 2e-5 and config.trainer.total_epochs == 4
    assert config.data.train_batch_size == 64 and config.data.micro_batch_size_per_gpu == 1
    assert config.data.max_length == CONTEXT_WINDOW and config.data.messages_key == "messages"
    assert config.data.val_files is None  # no sft_val.parquet here
    assert "hf_model" in config.checkpoint.save_contents  # GRPO loads <checkpoint>/huggingface
    assert config.trainer.nnodes == 2 and config.model.path == "Qwen/Qwen2.5-3B-Instruct"


def script_command(script: str, *args: str) -> list[str]:
    """The command a launch script would run, from its --dry-run output."""
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(SCRIPTS / script), "--dry-run", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return shlex.split(result.stdout.strip().splitlines()[-1])


def hydra_parts(command: list[str]) -> tuple[Path, str, list[str]]:
    config_path = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--config-path="))
    index = next(i for i, arg in enumerate(command) if arg.startswith("--config-name="))
    return Path(config_path), command[index].split("=", 1)[1], command[index + 1:]


def test_grpo_script_command_loads_into_verls_config(tmp_path):
    command = script_command(
        "grpo.sh", "--sessions", str(tmp_path), "--sft-model", SFT_MODEL, "--variant", "no_dars", "--nnodes", "2",
        "--", "trainer.save_freq=25",
    )
    assert command[:3] == [sys.executable, "-m", "verl.trainer.main_ppo"]
    config_dir, name, overrides = hydra_parts(command)
    config = compose_config(config_dir, name, overrides)
    validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    assert config.reward.custom_reward_function.reward_kwargs.dars_factor == 1.0
    assert config.trainer.nnodes == 2 and config.trainer.save_freq == 25


def test_sft_script_command_loads_into_verls_config(tmp_path):
    command = script_command("sft.sh", "--sessions", str(tmp_path), "--nnodes", "2", "--node-rank", "1",
                             "--master-addr", "10.1.2.3")
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert {"--nnodes=2", "--nproc-per-node=8", "--node-rank=1", "--master-addr=10.1.2.3"} <= set(command)
    config_dir, name, overrides = hydra_parts(command)
    config = compose_config(config_dir, name, overrides)
    assert config.data.train_files == str(tmp_path / "sft.parquet") and config.trainer.nnodes == 2


def test_a_misspelt_override_is_refused_by_hydra(tmp_path):
    overrides = [*grpo_overrides("shop_r1", data_dir=tmp_path, sft_model=SFT_MODEL), "actor_rollout_ref.actor.kl_los_coef=0.1"]
    with pytest.raises(Exception, match="kl_los_coef"):
        compose_config(CONFIG_DIR, GRPO_CONFIG, overrides)
