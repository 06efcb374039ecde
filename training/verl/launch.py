"""Launch the paper's verl runs: SFT (torchrun) and GRPO (Ray), with the baselines and ablations as variants.

The Hydra configs in `configs/` hold everything the paper fixes; this module adds what changes per
run (data, starting model, cluster size, the variant's reward weights) as Hydra overrides of keys that
exist in verl's own config, and either prints the command (`--dry-run`) or runs it. The scripts in
`scripts/` call it; the tests compose verl's config with exactly these overrides.

    python -m training.verl.launch sft  --data data/verl --nnodes 1 --gpus-per-node 8
    python -m training.verl.launch grpo --data data/verl --sft-model checkpoints/shop_r1/sft/global_step_N/huggingface
    python -m training.verl.launch grpo --variant no_dars --sft-model ... --data data/verl --nnodes 2
    python -m training.verl.launch grpo --variant shop_r1 --dry-run ... -- trainer.save_freq=25   # extra overrides

Variants (paper Tables 2 and 4): the reward of each comes from `training.presets.reward_config`, the
same function the single-machine `shop-r1 train --baseline/--ablation` uses.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

from training.verl.prepare import RL_FILE, RL_VAL_FILE, SFT_FILE, SFT_VAL_FILE

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
GRPO_CONFIG, SFT_CONFIG = "shop_r1_grpo", "shop_r1_sft"
EXTERNAL_MODULE = "training.verl.self_certainty"
"""Imported by verl in every process (VERL_USE_EXTERNAL_MODULES): the trainer and engine registrations."""
BASE_MODEL = "Qwen/Qwen2.5-3B-Instruct"
REWARD_KWARGS_KEY = "reward.custom_reward_function.reward_kwargs"


@dataclass(frozen=True)
class Variant:
    """One GRPO run of the paper's tables."""

    description: str
    """What the row is, as the paper names it."""
    from_sft: bool = True
    """Start from the SFT checkpoint (else from the base model: 'no SFT' rows)."""
    ablation: str | None = None
    """A Table 4 reward switch (`shop_env.rewards.ABLATIONS`)."""
    baseline: str | None = None
    """A Table 2 baseline reward (`training.presets.BASELINES`)."""

    def reward_kwargs(self) -> dict[str, object]:
        from training.presets import reward_config

        return asdict(reward_config(ablation=self.ablation, baseline=self.baseline))


VARIANTS: dict[str, Variant] = {
    "shop_r1": Variant("Shop-R1: SFT, then GRPO with format + hierarchical DARS action + self-certainty (Table 2)"),
    "sft_rl_binary": Variant("SFT + RL (binary): GRPO with the sparse exact-match reward only (Table 2)", baseline="rl_binary"),
    "rl_binary": Variant("RL (binary) without SFT (Table 2)", from_sft=False, baseline="rl_binary"),
    "no_format": Variant("Shop-R1 without the format reward (Table 4)", ablation="no_format"),
    "no_rationale": Variant("Shop-R1 without self-certainty, alpha = 0 (Table 4)", ablation="no_rationale"),
    "no_dars": Variant("Shop-R1 without difficulty-aware reward scaling, factor 1 (Table 4)", ablation="no_dars"),
    "binary": Variant("Shop-R1 with the binary action reward instead of the hierarchical one (Table 4)", ablation="binary"),
    "no_sft": Variant("Shop-R1 without the SFT warm start (Table 4)", from_sft=False),
}


def _hydra_value(value: object) -> str:
    """A Python scalar as Hydra override syntax (booleans lower-case, strings quoted when needed)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value if value.replace("_", "").isalnum() else f"'{value}'"
    return repr(value)


def _data_overrides(data_dir: Path, train: str, val: str, without_val: tuple[str, ...]) -> list[str]:
    """Train and val files, or `without_val` when prepare-verl wrote no validation file (no --val-sessions)."""
    overrides = [f"data.train_files={data_dir / train}"]
    if (data_dir / val).is_file():
        return [*overrides, f"data.val_files={data_dir / val}"]
    return [*overrides, *without_val]


def grpo_overrides(
    variant: str,
    *,
    data_dir: str | os.PathLike,
    sft_model: str | None = None,
    base_model: str = BASE_MODEL,
    nnodes: int = 1,
    gpus_per_node: int = 8,
) -> list[str]:
    """Hydra overrides for one GRPO run of `VARIANTS[variant]` on `nnodes` x `gpus_per_node` GPUs."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    chosen = VARIANTS[variant]
    if chosen.from_sft and not sft_model:
        raise ValueError(
            f"variant {variant!r} starts from the SFT model: pass --sft-model (the SFT run's "
            "checkpoints/shop_r1/sft/global_step_<N>/huggingface directory)"
        )
    _check_cluster(nnodes, gpus_per_node)
    model = sft_model if chosen.from_sft else base_model
    overrides = [
        # verl's PPO trainer builds a val loader whatever the schedule: give it the train file, never run it.
        *_data_overrides(Path(data_dir), RL_FILE, RL_VAL_FILE, (
            f"data.val_files={Path(data_dir) / RL_FILE}", "trainer.val_before_train=false", "trainer.test_freq=-1")),
        f"actor_rollout_ref.model.path={model}",
        f"trainer.nnodes={nnodes}",
        f"trainer.n_gpus_per_node={gpus_per_node}",
        f"trainer.experiment_name={variant}",
    ]
    # ++ adds the key: verl's reward.yaml has no reward_kwargs, its reward loader reads it with .get().
    overrides += [f"++{REWARD_KWARGS_KEY}.{key}={_hydra_value(value)}" for key, value in chosen.reward_kwargs().items()]
    return overrides


def sft_overrides(
    *, data_dir: str | os.PathLike, base_model: str = BASE_MODEL, nnodes: int = 1, gpus_per_node: int = 8
) -> list[str]:
    """Hydra overrides for the SFT run on `nnodes` x `gpus_per_node` GPUs."""
    _check_cluster(nnodes, gpus_per_node)
    return [
        *_data_overrides(Path(data_dir), SFT_FILE, SFT_VAL_FILE, ("data.val_files=null",)),
        f"model.path={base_model}",
        f"trainer.nnodes={nnodes}",
        f"trainer.n_gpus_per_node={gpus_per_node}",
    ]


def _check_cluster(nnodes: int, gpus_per_node: int) -> None:
    """Sizes must be positive; whether they divide the batch is verl's `validate_config` check, after extras."""
    if nnodes < 1 or gpus_per_node < 1:
        raise ValueError(f"need nnodes >= 1 and gpus_per_node >= 1, got {nnodes} and {gpus_per_node}")


def grpo_command(overrides: list[str]) -> list[str]:
    """verl's PPO entry point (Ray) on our config: it starts or joins the Ray cluster itself."""
    return [
        sys.executable, "-m", "verl.trainer.main_ppo", f"--config-path={CONFIG_DIR}", f"--config-name={GRPO_CONFIG}",
        *overrides,
    ]


def sft_command(
    overrides: list[str], *, nnodes: int, gpus_per_node: int, node_rank: int, master_addr: str, master_port: int
) -> list[str]:
    """verl's SFT trainer under torchrun: run it on every node with that node's rank."""
    if nnodes == 1:
        rendezvous = ["--standalone"]
    else:
        rendezvous = [f"--node-rank={node_rank}", f"--master-addr={master_addr}", f"--master-port={master_port}"]
    return [
        sys.executable, "-m", "torch.distributed.run", f"--nnodes={nnodes}", f"--nproc-per-node={gpus_per_node}",
        *rendezvous, "-m", "verl.trainer.sft_trainer", f"--config-path={CONFIG_DIR}", f"--config-name={SFT_CONFIG}",
        *overrides,
    ]


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Launch Shop-R1's SFT and GRPO runs on verl (see docs/scale-out.md).")


def _run(command: list[str], dry_run: bool) -> None:
    print(shlex.join(command), flush=True)
    if dry_run:
        return
    env = {**os.environ, "VERL_USE_EXTERNAL_MODULES": EXTERNAL_MODULE}
    os.execvpe(command[0], command, env)


def _absolute_if_local(model: str | None) -> str | None:
    """A model directory as an absolute path (Ray runs the driver and workers in other directories); HF ids as is."""
    if model is None or not Path(model).expanduser().exists():
        return model
    return str(Path(model).expanduser().resolve())


def _check_data(data_dir: Path, name: str, dry_run: bool) -> None:
    if not dry_run and not (data_dir / name).is_file():
        raise typer.BadParameter(f"{data_dir / name} is missing; run `shop-r1 prepare-verl --out {data_dir}` first")


@app.command()
def grpo(
    data: Path = typer.Option(..., help="Directory written by `shop-r1 prepare-verl` (rl.parquet, rl_val.parquet)."),
    variant: str = typer.Option("shop_r1", help=f"One of: {', '.join(VARIANTS)}."),
    sft_model: str | None = typer.Option(None, help="HF directory of the SFT model (variants that start from SFT)."),
    base_model: str = typer.Option(BASE_MODEL, help="Base model for the variants without SFT."),
    nnodes: int = typer.Option(1, help="Nodes in the Ray cluster (start it first: scripts/ray_cluster.sh)."),
    gpus_per_node: int = typer.Option(8, help="GPUs per node."),
    dry_run: bool = typer.Option(False, help="Print the command and exit."),
    extra: list[str] | None = typer.Argument(None, help="More Hydra overrides, after `--`."),
) -> None:
    """GRPO with the Shop-R1 reward (and self-certainty) for one variant of the paper's tables."""
    _check_data(data, RL_FILE, dry_run)
    overrides = grpo_overrides(variant, data_dir=data.resolve(), sft_model=_absolute_if_local(sft_model),
                               base_model=_absolute_if_local(base_model), nnodes=nnodes, gpus_per_node=gpus_per_node)
    _run(grpo_command([*overrides, *(extra or [])]), dry_run)


@app.command()
def sft(
    data: Path = typer.Option(..., help="Directory written by `shop-r1 prepare-verl` (sft.parquet, sft_val.parquet)."),
    base_model: str = typer.Option(BASE_MODEL, help="Model to fine-tune."),
    nnodes: int = typer.Option(1, help="Nodes; run this command on each with its --node-rank."),
    gpus_per_node: int = typer.Option(8, help="GPUs per node."),
    node_rank: int = typer.Option(0, help="This node's rank (multi-node)."),
    master_addr: str = typer.Option("127.0.0.1", help="Address of node 0 (multi-node)."),
    master_port: int = typer.Option(29500, help="Port on node 0 for torch's rendezvous (multi-node)."),
    dry_run: bool = typer.Option(False, help="Print the command and exit."),
    extra: list[str] | None = typer.Argument(None, help="More Hydra overrides, after `--`."),
) -> None:
    """SFT of the base model on whole-session prompts -> rationale + action (4 epochs, lr 2e-5)."""
    _check_data(data, SFT_FILE, dry_run)
    overrides = sft_overrides(data_dir=data.resolve(), base_model=_absolute_if_local(base_model), nnodes=nnodes,
                              gpus_per_node=gpus_per_node)
    command = sft_command([*overrides, *(extra or [])], nnodes=nnodes, gpus_per_node=gpus_per_node,
                          node_rank=node_rank, master_addr=master_addr, master_port=master_port)
    _run(command, dry_run)


if __name__ == "__main__":
    app()
