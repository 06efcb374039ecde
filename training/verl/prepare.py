"""`shop-r1 prepare-verl`: recorded sessions -> the parquet files verl's SFT and GRPO trainers read.

    <out>/rl.parquet        GRPO prompts: one <context, gold action> pair per session step
    <out>/sft.parquet       SFT chats: the same prompt plus the assistant turn (rationale + action JSON)
    <out>/rl_val.parquet    the same two files for --val-sessions, when given
    <out>/sft_val.parquet
    <out>/manifest.json     counts, the prompt budget, the tokenizer, the longest prompt in tokens

Rows are built by `training.data` (`rl_rows`, `sft_rows`), the code the single-machine TRL trainer uses,
so a verl run trains on exactly the prompts `shop-r1 eval` scores. The RL row layout is verl's
(`verl/examples/data_preprocess`): `data_source` picks our reward function, `prompt` is the chat,
`reward_model.ground_truth` is the gold action JSON that `training/verl/reward.py` scores against, and
`extra_info` carries where the row came from. SFT rows have one `messages` column (verl's
MultiTurnSFTDataset; the loss is on the assistant turn only).

Prompt tokens are counted with `--model`'s tokenizer: use the tokenizer of the model you will train,
or verl's own count (same chat template) can differ from the budget.

    shop-r1 prepare-verl --sessions data/opera_train.jsonl --val-sessions data/opera_test.jsonl \\
        --model Qwen/Qwen2.5-3B-Instruct --out data/verl --workers 16
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from agents.context_builder import PromptBudget
from training.data import MISSING_RATIONALE_POLICIES, rl_rows, select_steps, sft_rows

logger = logging.getLogger(__name__)

DATA_SOURCE = "shop_r1"
"""verl routes a row's reward by `data_source`; `training/verl/reward.py` scores only these rows."""
ABILITY = "web_shopping"
"""verl's free-text task label (its metrics group by it)."""
RL_FILE, SFT_FILE, RL_VAL_FILE, SFT_VAL_FILE = "rl.parquet", "sft.parquet", "rl_val.parquet", "sft_val.parquet"
MANIFEST_FILE = "manifest.json"
CONTEXT_WINDOW = 32_768
"""Prompt + response tokens (paper: contexts padded/truncated to 32k, Qwen2.5's full window)."""
RESPONSE_TOKENS = 256
"""Response budget, the TRL trainer's `max_new_tokens`: one JSON object with a one-sentence
rationale is 60-120 Qwen tokens, so 256 leaves room without paying for rambling."""
ROWS_PER_BATCH = 64
"""Steps built per task and written per parquet row group: bounds memory at 32k-token prompts."""

EXTRA_INFO_FIELDS = ("session_id", "step_index", "action_type", "rationale", "prompt_tokens", "dropped_pages")
"""Columns of a `training.data.step_example` row kept in `extra_info` (the prompt and gold have their own)."""


@dataclass
class PrepareConfig:
    """What `prepare-verl` reads and writes; defaults are the paper's setup (docs/contract.md, the paper's training setup)."""

    sessions: str
    """Training sessions: `bundled:train`, or a file or directory `load_sessions` reads."""
    out: str
    """Directory for the parquet files and manifest.json (created if missing)."""
    model: str = "Qwen/Qwen2.5-3B-Instruct"
    """Whose tokenizer counts prompt tokens: the model verl will train (an HF id, a path, `tiny-random`)."""
    val_sessions: str | None = None
    """Held-out sessions for verl's validation files (rl_val / sft_val); None writes none."""
    context: str = "whole"
    """'whole' (past pages + past actions, the paper's default) or 'latest' (Table 5)."""
    context_window: int = CONTEXT_WINDOW
    """Prompt + response tokens; prompts are cut to `context_window - max_new_tokens`."""
    max_new_tokens: int = RESPONSE_TOKENS
    """Tokens reserved for the response; the launch scripts pass the same number to verl."""
    max_examples: int | None = None
    """Keep a seeded subset of this many training steps (None: every step)."""
    seed: int = 0
    """Seeds the subset choice."""
    missing_rationale: str = "skip"
    """SFT steps without a recorded rationale: 'skip' them or train an empty rationale ('empty')."""
    workers: int = 1
    """Processes building prompts (each tokenizes a 32k prompt ~log2(pages) times; scale with cores)."""

    def __post_init__(self):
        self.budget  # validates context and the two token counts
        if self.missing_rationale not in MISSING_RATIONALE_POLICIES:
            raise ValueError(
                f"missing_rationale must be one of {MISSING_RATIONALE_POLICIES}, got {self.missing_rationale!r}"
            )
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    @property
    def budget(self) -> PromptBudget:
        return PromptBudget(self.context, self.context_window, self.max_new_tokens)

    @property
    def max_prompt_length(self) -> int:
        """verl's `data.max_prompt_length`: every prompt written fits in it."""
        return self.context_window - self.max_new_tokens


def rl_record(row: dict[str, Any], index: int, split: str) -> dict[str, Any]:
    """A `training.data.rl_rows` row in verl's RL layout."""
    return {
        "data_source": DATA_SOURCE,
        "prompt": row["prompt"],
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": row["gold_action"]},
        "extra_info": {**{key: row[key] for key in EXTRA_INFO_FIELDS}, "index": index, "split": split},
    }


def sft_record(row: dict[str, Any], index: int, split: str) -> dict[str, Any]:
    """A `training.data.sft_rows` row as one chat: the prompt messages then the assistant turn."""
    return {
        "messages": [*row["prompt"], *row["completion"]],
        "extra_info": {**{key: row[key] for key in EXTRA_INFO_FIELDS}, "index": index, "split": split},
    }


def _schemas():
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    extra_info = pa.struct(
        [
            ("session_id", pa.string()),
            ("step_index", pa.int64()),
            ("action_type", pa.string()),
            ("rationale", pa.string()),
            ("prompt_tokens", pa.int64()),
            ("dropped_pages", pa.int64()),
            ("index", pa.int64()),
            ("split", pa.string()),
        ]
    )
    rl = pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(message)),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", extra_info),
        ]
    )
    sft = pa.schema([("messages", pa.list_(message)), ("extra_info", extra_info)])
    return rl, sft


_worker_tokenizer: Any = None


def _load_worker_tokenizer(model: str) -> None:
    global _worker_tokenizer
    from agents.models import load_tokenizer

    _worker_tokenizer = load_tokenizer(model)


def _build_batch(
    batch: Sequence[tuple[Any, int]], budget: PromptBudget, missing_rationale: str
) -> tuple[list[dict], list[dict], int]:
    """RL rows, SFT rows and the count of steps without a rationale, for one batch of (session, step)."""
    rl = rl_rows(batch, _worker_tokenizer, budget)
    sft, missing = sft_rows(batch, _worker_tokenizer, budget, missing_rationale=missing_rationale)
    return rl, sft, missing


def _batches(pairs: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(pairs), size):
        yield pairs[start : start + size]


def _check_prompt_lengths(rows: Sequence[dict[str, Any]], max_prompt_length: int) -> None:
    """verl rejects a prompt over `data.max_prompt_length` mid-run; refuse to write one instead."""
    for row in rows:
        if row["prompt_tokens"] > max_prompt_length:
            raise RuntimeError(
                f"session {row['session_id']!r} step {row['step_index']}: the prompt has {row['prompt_tokens']} "
                f"tokens, over max_prompt_length={max_prompt_length}; the context builder broke its budget"
            )


def _write_split(
    pairs: Sequence[tuple[Any, int]], config: PrepareConfig, split: str, rl_path: Path, sft_path: Path
) -> dict[str, Any]:
    """Build and stream one split into its two parquet files (atomically); returns its manifest entry."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shop_env.atomic_io import atomic_write

    rl_schema, sft_schema = _schemas()
    counts = {"rl_rows": 0, "sft_rows": 0, "missing_rationale": 0}
    action_types: Counter[str] = Counter()
    longest = 0
    dropped = 0
    batches = list(_batches(pairs, ROWS_PER_BATCH))
    build = partial(_build_batch, budget=config.budget, missing_rationale=config.missing_rationale)
    executor = None
    if config.workers == 1:
        _load_worker_tokenizer(config.model)
        results = map(build, batches)
    else:
        executor = ProcessPoolExecutor(config.workers, initializer=_load_worker_tokenizer, initargs=(config.model,))
        results = executor.map(build, batches)
    try:
        with atomic_write(rl_path, "wb") as rl_handle, atomic_write(sft_path, "wb") as sft_handle:
            with pq.ParquetWriter(rl_handle, rl_schema) as rl_writer, pq.ParquetWriter(sft_handle, sft_schema) as sft_writer:
                for rl, sft, missing in results:
                    _check_prompt_lengths(rl, config.max_prompt_length)
                    rl_records = [rl_record(row, counts["rl_rows"] + i, split) for i, row in enumerate(rl)]
                    sft_records = [sft_record(row, counts["sft_rows"] + i, split) for i, row in enumerate(sft)]
                    rl_writer.write_table(pa.Table.from_pylist(rl_records, schema=rl_schema))
                    if sft_records:
                        sft_writer.write_table(pa.Table.from_pylist(sft_records, schema=sft_schema))
                    counts["rl_rows"] += len(rl_records)
                    counts["sft_rows"] += len(sft_records)
                    counts["missing_rationale"] += missing
                    action_types.update(row["action_type"] for row in rl)
                    longest = max([longest, *(row["prompt_tokens"] for row in rl)])
                    dropped += sum(row["dropped_pages"] > 0 for row in rl)
    finally:
        if executor is not None:
            executor.shutdown()
    return {
        **counts,
        "rl_file": rl_path.name,
        "sft_file": sft_path.name,
        "action_types": dict(sorted(action_types.items())),
        "longest_prompt_tokens": longest,
        "prompts_with_dropped_pages": dropped,
    }


def prepare_verl(config: PrepareConfig) -> dict[str, Any]:
    """Write the parquet files and manifest.json into `config.out`; returns the manifest."""
    from shop_env.atomic_io import write_json
    from shop_env.loaders import resolve_sessions

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = select_steps(resolve_sessions(config.sessions), max_examples=config.max_examples, seed=config.seed)
    if not pairs:
        raise ValueError(f"--sessions {config.sessions!r} holds no steps; nothing to train on")
    splits = {"train": _write_split(pairs, config, "train", out / RL_FILE, out / SFT_FILE)}
    if config.val_sessions is not None:
        val_pairs = select_steps(resolve_sessions(config.val_sessions))
        splits["val"] = _write_split(val_pairs, config, "val", out / RL_VAL_FILE, out / SFT_VAL_FILE)
    manifest = {
        "config": asdict(config),
        "data_source": DATA_SOURCE,
        "max_prompt_length": config.max_prompt_length,
        "max_response_length": config.max_new_tokens,
        "splits": splits,
    }
    write_json(out / MANIFEST_FILE, manifest)
    for name, split in splits.items():
        logger.info(
            "%s: %d RL rows, %d SFT rows (%d steps without a rationale), longest prompt %d tokens",
            name, split["rl_rows"], split["sft_rows"], split["missing_rationale"], split["longest_prompt_tokens"],
        )
        if not split["sft_rows"]:
            logger.warning(
                "%s: no step has a recorded rationale, so %s is empty and verl's SFT cannot train on it; pass "
                "--missing-rationale empty, or skip SFT (GRPO variant no_sft)", name, split["sft_file"],
            )
    return manifest
