"""Self-certainty on verl: the engine-side per-token KL(U || p), the rationale mean, alpha x s on the score.

The first half tests the math in `training/verl/rationale_reward.py` (no verl needed). The second half
runs verl's FSDP engine output step and the trainer step on a fake batch of logits, with TransferQueue
replaced by a dict, and checks the registrations; it skips where verl is not installed.
"""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from shop_env.response_format import format_response
from shop_env.self_certainty import rationale_mask_for, self_certainty
from shop_env.session import Action
from training.verl.rationale_reward import (
    add_at_last_token,
    certainty_weight,
    rationale_certainties,
    rationale_rewards,
    token_self_certainty,
)

VERL_REASON = "verl is not installed (pip install -e '.[gpu]'; see docs/scale-out.md)"


def kl_uniform(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(U || softmax(z / T)) straight from the definition, in float64: sum_j (1/V) log((1/V) / p_j)."""
    log_p = torch.log_softmax(logits.double() / temperature, dim=-1)
    vocab = logits.shape[-1]
    return (-math.log(vocab) - log_p).mean(dim=-1)


def test_token_self_certainty_is_the_definition_per_position():
    torch.manual_seed(0)
    logits = torch.randn(7, 50) * 3  # (N, V)
    temperatures = torch.tensor([0.6, 0.6, 1.0, 0.6, 1.0, 0.7, 0.6])  # mixed: padding positions carry 1.0
    values = token_self_certainty(logits, temperatures)
    assert values.shape == (7,) and values.dtype == torch.float32
    expected = torch.stack([kl_uniform(row, float(t)) for row, t in zip(logits, temperatures, strict=True)])
    torch.testing.assert_close(values.double(), expected, rtol=1e-5, atol=1e-6)


def test_token_self_certainty_is_the_shared_function_row_by_row():
    torch.manual_seed(1)
    logits = torch.randn(5, 64, dtype=torch.bfloat16)
    values = token_self_certainty(logits, torch.full((5,), 0.6))
    shared = self_certainty(logits.unsqueeze(1), torch.ones(5, 1, dtype=torch.bool), 0.6)
    torch.testing.assert_close(values, shared)
    assert (values >= 0).all()


def test_token_self_certainty_rejects_misshapen_input():
    with pytest.raises(ValueError, match="positions, vocab"):
        token_self_certainty(torch.zeros(2, 3, 4), torch.ones(2))
    with pytest.raises(ValueError, match="one per position"):
        token_self_certainty(torch.zeros(2, 4), torch.ones(3))


def sampled(tokenizer, text: str) -> list[int]:
    """Token ids as a policy would sample them: the response then EOS."""
    return [*tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]


RESPONSE = format_response("The blue pair is cheaper, so I'll open it.", Action("click", name="search_results.blue.view_product"))


def test_rationale_certainty_averages_the_rationale_tokens_only(tiny_tokenizer):
    ids = sampled(tiny_tokenizer, RESPONSE)
    per_token = torch.arange(len(ids), dtype=torch.float32)  # a distinct value per position
    mask = torch.tensor(rationale_mask_for(tiny_tokenizer, tiny_tokenizer.decode(ids, skip_special_tokens=True), ids))
    assert 0 < mask.sum() < len(ids)
    [certainty] = rationale_certainties([per_token], [ids], tiny_tokenizer)
    assert certainty == pytest.approx(float(per_token[mask].mean()))


def test_a_response_without_a_rationale_gets_none_and_no_reward(tiny_tokenizer):
    ids = sampled(tiny_tokenizer, "I'd click the blue one.")
    assert rationale_certainties([torch.ones(len(ids))], [ids], tiny_tokenizer) == [None]
    assert rationale_rewards([None], 0.005) == [0.0]


def test_rationale_certainties_checks_lengths(tiny_tokenizer):
    ids = sampled(tiny_tokenizer, RESPONSE)
    with pytest.raises(ValueError, match="self-certainty rows"):
        rationale_certainties([], [ids], tiny_tokenizer)
    with pytest.raises(ValueError, match=f"response 0: 3 self-certainty values for {len(ids)} tokens"):
        rationale_certainties([torch.ones(3)], [ids], tiny_tokenizer)


def test_rationale_rewards_pay_alpha_times_s_and_nothing_for_bad_values():
    assert rationale_rewards([26.0, None, float("nan"), float("inf"), -1.0, 0.0], 0.005) == pytest.approx(
        [0.13, 0.0, 0.0, 0.0, 0.0, 0.0]
    )


def test_add_at_last_token_moves_only_the_sequence_reward():
    scores = [torch.tensor([0.0, 0.0, 1.3]), torch.tensor([]), torch.tensor([0.8])]
    updated = add_at_last_token(scores, [0.1, 0.5, 0.0])
    torch.testing.assert_close(updated[0], torch.tensor([0.0, 0.0, 1.4]))
    assert updated[1].numel() == 0
    torch.testing.assert_close(updated[2], torch.tensor([0.8]))
    torch.testing.assert_close(scores[0], torch.tensor([0.0, 0.0, 1.3]))  # inputs untouched
    with pytest.raises(ValueError, match="2 additions for 3 responses"):
        add_at_last_token(scores, [0.1, 0.2])


def verl_like_config(**reward_kwargs) -> dict:
    return {
        "reward": {"custom_reward_function": {"reward_kwargs": reward_kwargs}},
        "actor_rollout_ref": {"actor": {"strategy": "fsdp"}, "model": {"use_fused_kernels": False}},
        "algorithm": {"rollout_correction": {"bypass_mode": False}},
    }


def test_certainty_weight_reads_alpha_and_refuses_setups_without_logits():
    assert certainty_weight(verl_like_config()) == 0.005  # RewardConfig's default, as compute_score uses
    assert certainty_weight(verl_like_config(alpha=0.01)) == 0.01
    no_rationale = verl_like_config(alpha=0.0)
    no_rationale["actor_rollout_ref"]["actor"]["strategy"] = "megatron"
    assert certainty_weight(no_rationale) == 0.0  # nothing to compute, nothing to refuse
    megatron = verl_like_config()
    megatron["actor_rollout_ref"]["actor"]["strategy"] = "megatron"
    with pytest.raises(ValueError, match="strategy=megatron.*alpha=0"):
        certainty_weight(megatron)
    fused = verl_like_config()
    fused["actor_rollout_ref"]["model"]["use_fused_kernels"] = True
    with pytest.raises(ValueError, match="use_fused_kernels"):
        certainty_weight(fused)
    bypass = verl_like_config()
    bypass["algorithm"]["rollout_correction"]["bypass_mode"] = True
    with pytest.raises(ValueError, match="bypass_mode"):
        certainty_weight(bypass)
    with pytest.raises(ValueError, match="unknown key"):
        certainty_weight(verl_like_config(alpah=0.1))


# ---- with verl: the engine step, the trainer step and the registrations ---------------------------


@pytest.fixture(scope="module")
def verl_extension():
    pytest.importorskip("verl", reason=VERL_REASON)
    pytest.importorskip("transfer_queue", reason=VERL_REASON)
    import training.verl.self_certainty as extension

    return extension


def fake_engine(extension):
    """The engine object without FSDP: only what its output step reads (no process group, no model)."""
    import verl.utils.torch_functional as verl_F

    engine = object.__new__(extension.ShopR1FSDPEngine)
    engine.engine_config = SimpleNamespace(
        entropy_checkpointing=False, entropy_from_logits_with_chunking=False, entropy_from_logits_chunk_size=2048
    )
    engine.compute_entropy_from_logits = verl_F.entropy_from_logits
    engine.use_ulysses_sp = False
    return engine


def micro_batch(extension, sequences: list[torch.Tensor], *, remove_padding: bool, flag: bool = True):
    from tensordict import TensorDict

    from verl.utils import tensordict_utils as tu

    input_ids = torch.nested.as_nested_tensor(sequences, layout=torch.jagged)
    batch = TensorDict({"input_ids": input_ids}, batch_size=[len(sequences)])
    tu.assign_non_tensor(batch, use_remove_padding=remove_padding, calculate_entropy=True, use_fused_kernels=False)
    if flag:
        tu.assign_non_tensor(batch, **{extension.CERTAINTY_FLAG: True})
    return batch


@pytest.mark.parametrize("remove_padding", [True, False])
def test_engine_returns_per_token_self_certainty_from_scaled_logits(verl_extension, remove_padding):
    torch.manual_seed(2)
    vocab, temperature, lengths = 33, 0.6, [6, 3, 4]
    sequences = [torch.randint(0, vocab, (n,)) for n in lengths]
    batch = micro_batch(verl_extension, sequences, remove_padding=remove_padding)
    if remove_padding:  # verl packs the batch into one row: (1, total tokens, V)
        packed = torch.randn(1, sum(lengths), vocab) * 2
        output_args = {
            "input_ids_rmpad_rolled": torch.roll(torch.cat(sequences), -1),
            "temperature_rmpad": torch.full((sum(lengths),), temperature),
            "pad_size": 0,
            "temperature_is_one": False,
        }
        rows = list(packed[0].split(lengths))
        logits = packed
    else:  # right-padded (bsz, max len, V)
        logits = torch.randn(len(lengths), max(lengths), vocab) * 2
        output_args = {
            "input_ids_rmpad_rolled": torch.roll(torch.cat(sequences), -1),
            "temperature": torch.full((len(lengths),), temperature),
            "temperature_is_one": False,
        }
        rows = [logits[i, :n] for i, n in enumerate(lengths)]
    outputs = fake_engine(verl_extension).prepare_model_outputs(SimpleNamespace(logits=logits), output_args, batch, None)
    values = outputs[verl_extension.CERTAINTY_FIELD]
    assert values.is_nested and values.offsets().diff().tolist() == lengths  # laid out like entropy
    for got, row in zip(values.unbind(), rows, strict=True):
        torch.testing.assert_close(got.double(), kl_uniform(row, temperature), rtol=1e-5, atol=1e-6)
    assert {"log_probs", "entropy"} <= set(outputs)  # verl's own outputs are still there


def test_engine_without_the_flag_is_verls(verl_extension):
    sequences = [torch.tensor([1, 2, 3])]
    batch = micro_batch(verl_extension, sequences, remove_padding=True, flag=False)
    output_args = {"input_ids_rmpad_rolled": torch.tensor([2, 3, 1]), "temperature_rmpad": torch.ones(3),
                   "pad_size": 0, "temperature_is_one": True}
    outputs = fake_engine(verl_extension).prepare_model_outputs(
        SimpleNamespace(logits=torch.randn(1, 3, 8)), output_args, batch, None
    )
    assert verl_extension.CERTAINTY_FIELD not in outputs


class FakeTransferQueue:
    """kv_batch_get / kv_batch_put over a dict of fields: the two calls the trainer step makes."""

    def __init__(self, fields):
        self.fields = dict(fields)

    def kv_batch_get(self, keys, partition_id, select_fields):
        """Like TransferQueue, fields never written are left out of the result, without an error."""
        from tensordict import TensorDict

        present = {name: self.fields[name] for name in select_fields if name in self.fields}
        return TensorDict(present, batch_size=[len(keys)])

    def kv_batch_put(self, keys, partition_id, fields):
        self.fields.update(dict(fields.items()))


def test_trainer_step_adds_alpha_times_rationale_certainty_to_the_rule_score(verl_extension, tiny_tokenizer, monkeypatch):
    """The whole path on a fake batch: engine values -> response shift -> rationale mean -> rm_scores."""
    torch.manual_seed(3)
    alpha, temperature, vocab = 0.005, 0.6, len(tiny_tokenizer)
    responses = [
        sampled(tiny_tokenizer, RESPONSE),
        sampled(tiny_tokenizer, "not JSON, no rationale"),
        sampled(tiny_tokenizer, format_response("Done here.", Action("terminate"))),
    ]
    prompts = [torch.randint(0, vocab, (n,)) for n in (5, 2, 4)]
    sequences = [torch.cat([prompt, torch.tensor(ids)]) for prompt, ids in zip(prompts, responses, strict=True)]
    logits = torch.randn(1, sum(len(s) for s in sequences), vocab) * 4  # one packed row, like verl
    batch = micro_batch(verl_extension, sequences, remove_padding=True)
    output_args = {"input_ids_rmpad_rolled": torch.roll(torch.cat(sequences), -1),
                   "temperature_rmpad": torch.full((logits.shape[1],), temperature), "pad_size": 0,
                   "temperature_is_one": False}
    engine_out = fake_engine(verl_extension).prepare_model_outputs(SimpleNamespace(logits=logits), output_args, batch, None)

    def nested(rows):
        return torch.nested.as_nested_tensor(rows, layout=torch.jagged)

    rule = [torch.zeros(len(ids)) for ids in responses]
    for row, score in zip(rule, (1.5, 0.0, 0.8), strict=True):
        row[-1] = score
    queue = FakeTransferQueue({
        verl_extension.CERTAINTY_FIELD: engine_out[verl_extension.CERTAINTY_FIELD],
        "response_mask": nested([torch.ones(len(ids), dtype=torch.int64) for ids in responses]),
        "responses": nested([torch.tensor(ids) for ids in responses]),
        "rm_scores": nested(rule),
    })
    monkeypatch.setattr(verl_extension, "tq", queue)
    trainer = object.__new__(verl_extension.ShopR1SyncTrainer)
    trainer.tokenizer, trainer.certainty_weight = tiny_tokenizer, alpha
    step = SimpleNamespace(keys=["a", "b", "c"], partition_id="train", tags=[{}, {}, {"is_padding": True}])
    metrics: dict = {}
    trainer._add_rationale_reward(step, metrics)

    # Expected, from the logits directly: the distribution of response token j sits at packed position
    # (start of the sequence + prompt length + j - 1); average KL(U || p) over the rationale tokens.
    starts = torch.tensor([0, *[len(s) for s in sequences[:-1]]]).cumsum(0)
    expected = []
    for start, prompt, ids in zip(starts, prompts, responses, strict=True):
        mask = torch.tensor(rationale_mask_for(tiny_tokenizer, tiny_tokenizer.decode(ids, skip_special_tokens=True), ids))
        positions = start + len(prompt) - 1 + torch.nonzero(mask).flatten()
        expected.append(float(kl_uniform(logits[0, positions], temperature).mean()) if mask.any() else None)
    assert expected[0] is not None and expected[1] is None and expected[2] is not None
    new_scores = queue.fields["rm_scores"].unbind()
    for row, before, s in zip(new_scores, rule, expected, strict=True):
        torch.testing.assert_close(row[:-1], before[:-1])
        assert float(row[-1]) == pytest.approx(float(before[-1]) + (alpha * s if s is not None else 0.0), rel=1e-5)
    # metrics skip verl's padding row (the third) and the response without a rationale
    assert metrics["reward/self_certainty"] == pytest.approx(expected[0], rel=1e-5)
    assert metrics["reward/rationale"] == pytest.approx(alpha * expected[0] / 2, rel=1e-5)
    assert metrics["reward/rationale_coverage"] == 0.5


def test_trainer_step_says_how_to_load_the_engine_when_workers_lack_it(verl_extension, tiny_tokenizer, monkeypatch):
    rule = torch.nested.as_nested_tensor([torch.tensor([0.0, 1.0])], layout=torch.jagged)
    monkeypatch.setattr(verl_extension, "tq", FakeTransferQueue({"rm_scores": rule, "responses": rule, "response_mask": rule}))
    trainer = object.__new__(verl_extension.ShopR1SyncTrainer)
    trainer.tokenizer, trainer.certainty_weight = tiny_tokenizer, 0.005
    step = SimpleNamespace(keys=["a"], partition_id="train", tags=[{}])
    with pytest.raises(RuntimeError, match="VERL_USE_EXTERNAL_MODULES=training.verl.self_certainty"):
        trainer._add_rationale_reward(step, {})


def test_verls_registries_find_the_trainer_and_engine(verl_extension, monkeypatch):
    from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls
    from verl.workers.engine.base import EngineRegistry

    assert get_trainer_cls(verl_extension.TRAINER_MODE) is verl_extension.ShopR1SyncTrainer
    assert issubclass(verl_extension.ShopR1SyncTrainer, PPOTrainerSync)
    monkeypatch.setenv("VERL_ENGINE_DEVICE", "cuda")  # what get_engine_cls sees on an NVIDIA GPU node
    monkeypatch.setenv("VERL_ENGINE_VENDOR", "nvidia")
    for backend in ("fsdp", "fsdp2"):
        assert EngineRegistry.get_engine_cls("language_model", backend) is verl_extension.ShopR1FSDPEngine


def test_verls_external_module_variable_registers_them_on_import(verl_extension):
    """What every Ray worker does: `import verl` with VERL_USE_EXTERNAL_MODULES set, nothing else."""
    code = (
        "import verl\n"
        "from verl.trainer.ppo.v1 import get_trainer_cls\n"
        "from verl.workers.engine.base import EngineRegistry\n"
        "print(get_trainer_cls('shop_r1_sync').__name__, EngineRegistry.get_engine_cls('language_model', 'fsdp').__name__)\n"
    )
    env = {"VERL_USE_EXTERNAL_MODULES": "training.verl.self_certainty", "VERL_ENGINE_DEVICE": "cuda",
           "VERL_ENGINE_VENDOR": "nvidia", "PATH": "/usr/bin:/bin", "HOME": str(__import__("pathlib").Path.home())}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["ShopR1SyncTrainer", "ShopR1FSDPEngine"]


def test_only_the_old_log_prob_pass_asks_for_self_certainty(verl_extension, monkeypatch):
    """The flag is set for the actor's old-log-prob pass and gone before the reference and update passes."""
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    seen = []

    def old_log_prob(self, batch, metrics):
        seen.append(batch.extra_info.get(verl_extension.CERTAINTY_FLAG))
        return SimpleNamespace(extra_info=dict(batch.extra_info))  # verl may hand back a new batch object

    monkeypatch.setattr(PPOTrainerSync, "_compute_old_log_prob", old_log_prob)
    trainer = object.__new__(verl_extension.ShopR1SyncTrainer)
    trainer.certainty_weight = 0.005
    monkeypatch.setattr(trainer, "_add_rationale_reward", lambda batch, metrics: batch, raising=False)
    original = SimpleNamespace(extra_info={"temperature": 0.6})
    returned = trainer._compute_old_log_prob(original, {})
    assert seen == [True]
    assert verl_extension.CERTAINTY_FLAG not in original.extra_info | returned.extra_info
    trainer.certainty_weight = 0.0  # alpha = 0: verl's pass unchanged
    trainer._compute_old_log_prob(SimpleNamespace(extra_info={}), {})
    assert seen == [True, None]
