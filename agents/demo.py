"""`make demo` (`shop-r1 demo`): what training does, on this CPU, in a few minutes.

The embedded SmolLM2-135M-Instruct zero-shot, the two policies this project trained from it on the CPU
and ships (`smollm2-sft`, `smollm2-shop-r1`; experiments/cpu_smollm2/) and the scripted heuristic each
play the same first steps of the bundled test sessions, teacher-forced, with the prompts the policies
were trained on (`agents.evaluate.CPU_DEMO`). The tables (`shop-r1 compare`) put them side by side with
95% bootstrap intervals; each policy's own report, predictions and figures are in its subdirectory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.compare import run_compare
from agents.evaluate import CPU_DEMO, EvalConfig, run_eval
from agents.models import SHIPPED_POLICIES, ModelNotFoundError, shipped_policy_dir

DEMO_POLICIES: tuple[tuple[str, str], ...] = (
    ("Zero-shot SmolLM2-135M", "smollm2"),
    ("SFT (shipped, smollm2-sft)", "smollm2-sft"),
    ("Shop-R1 (shipped, smollm2-shop-r1)", "smollm2-shop-r1"),
    ("Heuristic", "heuristic"),
)
"""(label, --policy) of each row, in the order of the paper's Table 2 plus the scripted baseline."""


def run_demo(out: Path, *, limit: int = CPU_DEMO["limit"], progress: bool = True) -> dict[str, Any]:
    """Evaluate every demo policy into `out/<policy>/`, then compare them in `out/compare.md`.

    A shipped policy missing from the installation is left out of the table with a note saying so.
    """
    rows, missing = [], []
    for label, policy in DEMO_POLICIES:
        if policy in SHIPPED_POLICIES:
            try:
                shipped_policy_dir(policy)
            except ModelNotFoundError as err:
                missing.append(f"{label}: {err}")
                continue
        run_eval(EvalConfig(**{**CPU_DEMO, "policy": policy, "limit": limit}, out=out / policy, progress=progress))
        rows.append(f"{label}={out / policy}")
    result = run_compare(rows, out, title="Shop-R1 demo: SmolLM2-135M before and after training, on this CPU",
                         notes=tuple(f"not shown: {line}" for line in missing))
    return {**result, "missing": missing}
