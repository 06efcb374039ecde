"""Shop-R1 GRPO on the tiny random model: metrics per step, self-certainty inside the trainer, resume, ablations.

The tiny model's own samples are noise that never parses, so the rollouts are steered to valid responses
with a logits processor. That changes which token is sampled, never the logits the LM head produced, so
the self-certainty the trainer reads is still the policy's own, and the direct computation can be
checked against it on the same batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from shop_env.atomic_io import append_jsonl, read_jsonl_records
from shop_env.response_format import format_response
from shop_env.rewards import RewardConfig, score_response
from shop_env.self_certainty import rationale_mask_for, self_certainty
from shop_env.session import Action, read_jsonl
from agents.context_builder import PromptBudget
from training.data import rl_rows, select_steps, to_dataset
from training.grpo import GRPORunConfig, ShopR1Reward, build_trainer, run_grpo
from training.presets import reward_config
from training.run_dir import RunDir, run_callbacks

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"
COMPONENTS = (
    "reward/total", "reward/format", "reward/type", "reward/attribute", "reward/dars_value", "reward/action",
    "reward/self_certainty", "reward/rationale", "kl", "loss",
)
GOLD_CLICK = Action("click", name="search_results.trail_runner.view_product")
RESPONSES = (
    format_response("This pair looks light, so I will open it.", GOLD_CLICK),
    format_response("Nothing fits.", Action("terminate")),
)


class ForceResponses(LogitsProcessor):
    """Row i of a generate call emits RESPONSES[i % 2] then EOS; the raw logits are left as the model made them."""

    def __init__(self, tokenizer, prompt_length: int):
        self.targets = [tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for text in RESPONSES]
        self.prompt_length = prompt_length

    def __call__(self, input_ids, scores):
        position = input_ids.shape[1] - self.prompt_length
        forced = torch.full_like(scores, -float("inf"))
        for row in range(scores.shape[0]):
            target = self.targets[row % len(self.targets)]
            forced[row, target[min(position, len(target) - 1)]] = 0.0
        return forced


def steer_to_valid_responses(model, tokenizer, on_generate=None):
    """Patch `model.generate` (the instance TRL calls) to emit RESPONSES; `on_generate(inputs, output)` sees each call."""
    original = model.generate

    def generate(*args, **kwargs):
        processor = ForceResponses(tokenizer, kwargs["input_ids"].shape[1])
        output = original(*args, logits_processor=LogitsProcessorList([processor]), **kwargs)
        if on_generate is not None:
            on_generate(kwargs, output)
        return output

    model.generate = generate
    return model


@pytest.fixture(scope="module")
def tiny():
    from agents.models import load_model_and_tokenizer

    return load_model_and_tokenizer("tiny-random")


@pytest.fixture(scope="module")
def rows(tiny):
    _, tokenizer = tiny
    sessions = read_jsonl(FIXTURE)
    return rl_rows(select_steps(sessions, max_examples=4, seed=0), tokenizer, PromptBudget("whole", 1024, 64))


def small_config(out: Path, **overrides) -> GRPORunConfig:
    values = dict(
        model="tiny-random", sessions=str(FIXTURE), out=str(out), max_steps=2, num_generations=2, prompts_per_step=2,
        micro_batch_size=2, context_window=1024, max_new_tokens=64, max_examples=4, save_steps=1,
        learning_rate=1e-4, seed=0,
    )
    return GRPORunConfig(**{**values, **overrides})


def direct_certainty(model, tokenizer, prompt_ids: list[int], completion_ids: list[int], temperature: float) -> float | None:
    """Self-certainty of one completion from a separate forward over prompt + completion (not the LM head module,
    so the trainer's hook on it cannot see this pass)."""
    with torch.no_grad():
        hidden = model.model(input_ids=torch.tensor([prompt_ids + completion_ids])).last_hidden_state  # (1, P + T, H)
        logits = torch.nn.functional.linear(hidden, model.lm_head.weight)  # (1, P + T, V)
    completion_logits = logits[:, len(prompt_ids) - 1 : -1]  # (1, T, V): position t predicts completion token t
    text = tokenizer.decode(completion_ids, skip_special_tokens=True)
    mask = torch.tensor([rationale_mask_for(tokenizer, text, completion_ids)], dtype=torch.bool)
    return float(self_certainty(completion_logits, mask, temperature)[0]) if mask.any() else None


class ForceByStep(LogitsProcessor):
    """The fast decoder's counterpart of ForceResponses: row i emits RESPONSES[i % 2], counting decode steps."""

    def __init__(self, tokenizer):
        self.targets = [tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for text in RESPONSES]
        self.position = 0

    def __call__(self, input_ids, scores):
        forced = torch.full_like(scores, -float("inf"))
        for row in range(scores.shape[0]):
            target = self.targets[row % len(self.targets)]
            forced[row, target[min(self.position, len(target) - 1)]] = 0.0
        self.position += 1
        return forced


def _two_steps(tmp_path_factory, rows, *, shared_prefix: bool):
    """Two GRPO steps with steered responses; records, per rollout, the trainer's self-certainty and the direct one."""
    import training.grpo
    from agents.decoding import Sampling
    from agents.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer("tiny-random")  # a fresh copy: training changes its weights
    config = small_config(tmp_path_factory.mktemp("grpo"), shared_prefix=shared_prefix)
    run_dir = RunDir(config.out)
    direct: list[list[float | None]] = []

    def on_generate(inputs, output):  # TRL's plain path: left-padded prompts, then the completions
        prompt_length = inputs["input_ids"].shape[1]
        values = []
        for row in range(output.shape[0]):
            prompt = output[row, :prompt_length][inputs["attention_mask"][row].bool()].tolist()
            ids = output[row, prompt_length:].tolist()
            ids = ids[: ids.index(tokenizer.eos_token_id) + 1] if tokenizer.eos_token_id in ids else ids
            values.append(direct_certainty(model, tokenizer, prompt, ids, config.temperature))
        direct.append(values)

    with pytest.MonkeyPatch.context() as patch:
        if shared_prefix:
            generate = training.grpo.generate_completions

            def steered(model_, prompt_ids, sampling, **kwargs):
                decoded = generate(model_, prompt_ids, sampling, **kwargs)
                direct.append([direct_certainty(model, tokenizer, list(p), d.token_ids, config.temperature)
                               for p, d in zip(prompt_ids, decoded, strict=True)])
                return decoded

            patch.setattr(training.grpo, "generate_completions", steered)
            patch.setattr(Sampling, "warpers", lambda self: LogitsProcessorList([ForceByStep(tokenizer)]))
        else:
            steer_to_valid_responses(model, tokenizer, on_generate)
        metrics, callbacks = run_callbacks(run_dir)
        trainer = build_trainer(config, run_dir, model, tokenizer, to_dataset(rows), callbacks)
        in_trainer: list[list[float | None]] = []
        original = trainer.rationale_certainty

        def recording(completion_ids):
            values = original(completion_ids)
            in_trainer.append(values)
            return values

        trainer.rationale_certainty = recording
        trainer.train()
    return run_dir, direct, in_trainer


@pytest.fixture(scope="module", params=[True, False], ids=["shared_prefix", "plain_trl"])
def two_steps(request, rows, tmp_path_factory):
    return _two_steps(tmp_path_factory, rows, shared_prefix=request.param)


def test_two_grpo_steps_write_every_component(two_steps):
    run_dir, _, _ = two_steps
    records = [json.loads(line) for line in run_dir.metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        missing = [key for key in COMPONENTS if key not in record]
        assert not missing, f"step {record['step']} lacks {missing}"
        assert record["reward/format"] == pytest.approx(0.5)  # every steered response parses
        assert record["reward/self_certainty"] > 0
        assert record["reward/rationale"] == pytest.approx(0.005 * record["reward/self_certainty"], rel=1e-5)
    assert (run_dir.tensorboard).is_dir() and any(run_dir.tensorboard.iterdir())


def test_every_sampled_completion_is_logged_with_its_reward(two_steps):
    run_dir, _, _ = two_steps
    logged = read_jsonl_records(run_dir.completions)
    per_step = len(logged) // 2
    assert per_step >= 2 and [r["step"] for r in logged] == [1] * per_step + [2] * per_step
    metrics = {r["step"]: r for r in read_jsonl_records(run_dir.metrics)}
    for step in (1, 2):
        rows = [r for r in logged if r["step"] == step]
        assert all(r["session_id"] and isinstance(r["step_index"], int) and r["gold"]["type"] for r in rows)
        assert all(r["reward"] == pytest.approx(r["components"]["reward/total"]) for r in rows)
        mean = sum(r["reward"] for r in rows) / len(rows)
        assert mean == pytest.approx(metrics[step]["reward/total"], rel=1e-5)  # the same completions as the log


def test_trainer_self_certainty_equals_direct_computation(two_steps):
    _, direct, in_trainer = two_steps
    assert len(in_trainer) == len(direct) == 2
    for trainer_values, direct_values in zip(in_trainer, direct, strict=True):
        assert all(v is not None and v > 0 for v in trainer_values)
        assert trainer_values == pytest.approx(direct_values, rel=1e-4, abs=1e-4)


def test_reward_function_matches_score_response_and_logs_components():
    logged = {}
    reward = ShopR1Reward(RewardConfig())
    completions = [[{"role": "assistant", "content": text}] for text in (*RESPONSES, "not json")]
    totals = reward(
        prompts=[None] * 3, completions=completions, gold_action=[GOLD_CLICK.to_json()] * 3,
        self_certainty=[10.0, 5.0, None], log_metric=lambda name, value: logged.setdefault(name, value),
    )
    expected = [score_response(RESPONSES[0], GOLD_CLICK, RewardConfig(), 10.0).total,
                score_response(RESPONSES[1], GOLD_CLICK, RewardConfig(), 5.0).total, 0.0]
    assert totals == pytest.approx(expected)
    assert totals[0] == pytest.approx(0.5 + 0.3 + 0.2 + 1000.0 + 0.005 * 10.0)
    assert set(COMPONENTS[:8]) <= set(logged)


@pytest.mark.parametrize(
    ("switch", "expected_total"),
    [
        ({}, 0.5 + 0.3 + 0.2 + 1000.0 + 0.05),  # Shop-R1: format + type + attribute + DARS value + alpha * s
        ({"ablation": "no_dars"}, 0.5 + 0.3 + 0.2 + 1.0 + 0.05),
        ({"ablation": "no_format"}, 0.3 + 0.2 + 1000.0 + 0.05),
        ({"ablation": "no_rationale"}, 0.5 + 0.3 + 0.2 + 1000.0),
        ({"ablation": "binary"}, 0.5 + 1.0 + 0.05),
        ({"action_reward": "binary"}, 0.5 + 1.0 + 0.05),
        ({"baseline": "rl_binary"}, 1.0),
    ],
)
def test_ablation_switches_change_the_reward(switch, expected_total):
    config = reward_config(**switch)
    total = ShopR1Reward(config)(
        prompts=[None], completions=[RESPONSES[0]], gold_action=[GOLD_CLICK.to_json()], self_certainty=[10.0]
    )[0]
    assert total == pytest.approx(expected_total)


def test_no_rationale_hooks_nothing(tiny, rows, tmp_path):
    model, tokenizer = tiny
    config = small_config(tmp_path, reward=reward_config(ablation="no_rationale"), beta=0.0)
    trainer = build_trainer(config, RunDir(tmp_path), model, tokenizer, to_dataset(rows), [])
    assert trainer.certainty_weight == 0.0


def _examples_per_step(monkeypatch, tiny) -> list:
    """Patch model loading for run_grpo (steered tiny model) and record which examples each step scored."""
    import agents.hf_policy  # imported before the patch, so it keeps the real loader (the probe's HFPolicy)
    import agents.models

    seen: list[list[tuple[str, int]]] = []
    original_call = ShopR1Reward.__call__
    original_load = agents.models.load_model_and_tokenizer

    def recording_call(self, prompts, completions, gold_action, **kwargs):
        seen.append(list(zip(kwargs["session_id"], kwargs["step_index"], strict=True)))
        return original_call(self, prompts, completions, gold_action, **kwargs)

    def load(name, dtype=None):
        model, tokenizer = original_load(name, dtype=dtype)
        return steer_to_valid_responses(model, tokenizer), tokenizer

    monkeypatch.setattr(agents.models, "load_model_and_tokenizer", load)
    monkeypatch.setattr(ShopR1Reward, "__call__", recording_call)
    return seen


def test_resume_continues_at_the_right_step_with_the_same_data(monkeypatch, tiny, tmp_path):
    seen = _examples_per_step(monkeypatch, tiny)
    straight = small_config(tmp_path / "straight", max_steps=3)
    run_grpo(straight)
    straight_order = list(seen)
    seen.clear()

    interrupted = small_config(tmp_path / "resumed", max_steps=1)
    run_grpo(interrupted)  # stops after step 1 with checkpoint-1, like a run killed after its checkpoint
    run_dir = RunDir(interrupted.out)
    (run_dir.path / "summary.json").unlink()
    with pytest.raises(FileExistsError):
        run_grpo(small_config(tmp_path / "resumed", max_steps=3))  # no --resume: refuses to mix runs
    run_grpo(small_config(tmp_path / "resumed", max_steps=3), resume=True)

    records = [json.loads(line) for line in run_dir.metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert seen == straight_order  # the same examples at the same steps
    with pytest.raises(ValueError, match="learning_rate"):
        run_grpo(small_config(tmp_path / "resumed", max_steps=4, learning_rate=1.0), resume=True)


def test_probe_scores_the_same_held_out_steps_before_between_and_after_and_resumes(monkeypatch, tiny, tmp_path):
    _examples_per_step(monkeypatch, tiny)
    probe = dict(probe_sessions=str(FIXTURE), probe_limit=3, probe_every=2)
    run_grpo(small_config(tmp_path / "run", max_steps=1, **probe))
    run_dir = RunDir(tmp_path / "run")
    (run_dir.path / "summary.json").unlink()
    append_jsonl(run_dir.probe, {"step": 2, "exact_acc": 9.0})  # logged past the checkpoint by a killed run
    run_grpo(small_config(tmp_path / "run", max_steps=3, **probe), resume=True)
    records = read_jsonl_records(run_dir.probe)
    assert [r["step"] for r in records] == [0, 1, 2, 3]  # before, after the first leg's last step, every 2, the end
    assert all(r["n"] == 3 and 0 <= r["exact_acc"] <= r["type_acc"] <= 1 for r in records)
    assert (run_dir.plots / "probe_accuracy.png").stat().st_size > 0


def test_a_bad_gold_action_is_refused_before_training(tiny, rows, tmp_path):
    model, tokenizer = tiny
    broken = [dict(row) for row in rows]
    broken[1]["gold_action"] = json.dumps({"type": "hover", "name": "x"})
    with pytest.raises(ValueError, match="row 1: gold_action"):
        build_trainer(small_config(tmp_path), RunDir(tmp_path), model, tokenizer, to_dataset(broken), [])
