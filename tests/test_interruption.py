"""Interruption: a training run killed mid-step (SIGTERM or SIGKILL) resumes with `--resume` with no
step lost or repeated, and leaves no truncated result file behind.

The run is a child interpreter calling `run_sft` / `run_grpo` (what `shop-r1 sft|grpo` call) on the
tiny random model with a checkpoint every step. The parent waits until the metrics log shows step 2,
kills the child (it is then inside step 3 or saving checkpoint 2), checks every file it left, resumes
to step 4 and checks the log holds steps 1..4 exactly once. Whenever the kill lands, these must hold,
so nothing here depends on timing; the wait only has a generous upper bound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shop_env.atomic_io import read_jsonl_records
from training.run_dir import RunDir, is_complete_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"
KILL_AFTER_STEP = 2
RESUME_TO_STEP = 4

CHILD = """
import json, sys
kind, config, resume = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "resume"
if kind == "grpo":
    from training.grpo import GRPORunConfig as Config, run_grpo as run
else:
    from training.sft import SFTRunConfig as Config, run_sft as run
run(Config(**config), resume=resume)
"""

COMMON = {"model": "tiny-random", "sessions": str(FIXTURE), "context_window": 1024, "max_examples": 4,
          "save_steps": 1, "seed": 0, "learning_rate": 1e-4}
CONFIGS = {
    "sft": {**COMMON, "max_new_tokens": 64, "batch_size": 1, "micro_batch_size": 1, "epochs": 100.0},
    "grpo": {**COMMON, "max_new_tokens": 16, "num_generations": 2, "prompts_per_step": 1, "micro_batch_size": 2},
}


def start(kind: str, out: Path, max_steps: int, resume: bool = False) -> subprocess.Popen:
    config = {**CONFIGS[kind], "out": str(out), "max_steps": max_steps}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, json.dumps(config), "resume" if resume else "fresh"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def logged_steps(run_dir: RunDir) -> list[int]:
    return [record["step"] for record in read_jsonl_records(run_dir.metrics)]


def wait_for_step(child: subprocess.Popen, run_dir: RunDir, step: int, limit_s: float = 600) -> None:
    deadline = time.monotonic() + limit_s
    while not any(s >= step for s in logged_steps(run_dir)):
        if child.poll() is not None:
            raise AssertionError(f"the run ended (exit {child.returncode}) before step {step}:\n{child.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"no step {step} within {limit_s} s")
        time.sleep(0.2)


def check_no_truncated_files(run_dir: RunDir) -> None:
    """Every result file parses; checkpoints the resume would use are complete.

    The HF Trainer writes a checkpoint file by file, so a kill can leave the newest one torn; the
    resume passes it over (`RunDir.last_checkpoint`), so its files are not checked here.
    """
    torn = [c for c in run_dir.checkpoints.glob("checkpoint-*") if not is_complete_checkpoint(c)]
    for path in run_dir.path.rglob("*.json"):
        if any(c in path.parents for c in torn):
            continue
        json.loads(path.read_text())  # raises on a truncated file
    read_jsonl_records(run_dir.metrics)  # tolerates only a torn last line, which append_jsonl allows
    checkpoint = run_dir.last_checkpoint()
    assert checkpoint is not None, "no checkpoint survived"
    from safetensors import safe_open

    with safe_open(str(checkpoint / "model.safetensors"), "pt") as weights:
        assert list(weights.keys())


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "kill_signal"), [("sft", signal.SIGTERM), ("grpo", signal.SIGKILL)], ids=["sft-SIGTERM", "grpo-SIGKILL"])
def test_killed_run_resumes_without_lost_or_repeated_steps(kind, kill_signal, tmp_path):
    run_dir = RunDir(tmp_path / kind)
    child = start(kind, run_dir.path, max_steps=50)
    wait_for_step(child, run_dir, KILL_AFTER_STEP)
    child.send_signal(kill_signal)
    child.wait(timeout=120)
    assert child.returncode != 0, "the run finished before it could be interrupted"
    assert not (run_dir.path / "summary.json").exists()
    check_no_truncated_files(run_dir)

    resumed = start(kind, run_dir.path, max_steps=RESUME_TO_STEP, resume=True)
    _, stderr = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, stderr[-3000:]
    assert logged_steps(run_dir) == list(range(1, RESUME_TO_STEP + 1))
    check_no_truncated_files(run_dir)
    summary = json.loads((run_dir.path / "summary.json").read_text())
    assert summary["step"] == RESUME_TO_STEP


def test_resume_skips_a_checkpoint_whose_state_was_cut_short(tmp_path):
    from training.sft import SFTRunConfig

    run_dir = RunDir(tmp_path)
    for step, state in ((1, json.dumps({"global_step": 1, "max_steps": 4})), (2, '{"global_step": 2, "log_hist')):
        checkpoint = run_dir.checkpoints / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "trainer_state.json").write_text(state)
    start = run_dir.check_start(SFTRunConfig(max_steps=4), resume=True)
    assert start.checkpoint == run_dir.checkpoints / "checkpoint-1" and start.step == 1
