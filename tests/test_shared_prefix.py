"""Shared-prefix GRPO against TRL's plain path: same samples, log-probs, loss and gradients.

Both trainers run one optimizer step from the same float64 weights and seed, with plain SGD so that
the weight change is -lr x gradient and comparing updates compares gradients. TRL's fused LM head
computes log-softmax in float32 whatever the model's dtype, in tiles whose shapes differ between the
two paths, so log-probs agree to float32 rounding of logits (the tiny model's reach ~1e3), not to
float64's: a wrong position, mask or prefix would be off by whole nats.
"""

from __future__ import annotations

import pytest
import torch

from agents.decoding import Prefilled, Sampling, decode, prefill
from agents.models import load_model_and_tokenizer
from shop_env.loaders import bundled_sessions
from training.data import rl_rows, select_steps, to_dataset
from training.grpo import GRPORunConfig, ShopR1GRPOTrainer, ShopR1Reward, completion_text, grpo_args
from training.run_dir import RunDir
from training.shared_prefix import group_shuffle, shared_prefix_logps


LOGP_TOLERANCE = {"rtol": 1e-4, "atol": 1e-3}


def _close_gradients(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=1e-3, atol=1e-4 * scale + 1e-12, msg=name)


def varied_reward(prompts, completions, **kwargs) -> list[float]:
    """A reward that differs between the completions of a group (the tiny model's text scores 0 under Shop-R1)."""
    return [float(len(set(completion_text(c))) % 5) for c in completions]


def _one_step(tmp_path, shared: bool, *, prompts: int = 2):
    import transformers

    config = GRPORunConfig(
        model="tiny-random", max_steps=1, num_generations=4, prompts_per_step=prompts, micro_batch_size=4,
        context_window=768, max_new_tokens=12, learning_rate=0.5, context="latest", beta=0.1, shared_prefix=shared,
    )
    transformers.set_seed(0)
    model, tokenizer = load_model_and_tokenizer("tiny-random", dtype=torch.float64)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    rows = rl_rows(select_steps(bundled_sessions("test")[:4], max_examples=prompts, seed=1), tokenizer, config.budget)
    args = grpo_args(config, RunDir(tmp_path / ("shared" if shared else "plain")))
    args.optim, args.save_strategy, args.disable_tqdm = "sgd", "no", True
    seen: dict[str, list] = {"logps": [], "completions": [], "loss": []}
    trainer = ShopR1GRPOTrainer(
        model=model, reward_funcs=[ShopR1Reward(config.reward), varied_reward], args=args, train_dataset=to_dataset(rows),
        processing_class=tokenizer, certainty_weight=config.reward.alpha, shared_prefix=shared,
    )
    compute = trainer._get_per_token_logps_and_entropies

    def recording(model, input_ids, attention_mask, logits_to_keep, *rest, **kwargs):
        logps, entropies, aux = compute(model, input_ids, attention_mask, logits_to_keep, *rest, **kwargs)
        if torch.is_grad_enabled():  # the policy-loss pass, not the reference one
            for row in range(input_ids.size(0)):
                seen["logps"].append((tuple(input_ids[row].tolist()), logps[row].detach().clone()))
        return logps, entropies, aux

    trainer._get_per_token_logps_and_entropies = recording
    generate = trainer._generate_single_turn

    def recording_generate(prompt_ids, *rest, **kwargs):
        completion_ids, logprobs = generate(prompt_ids, *rest, **kwargs)
        seen["completions"].extend(completion_ids)
        return completion_ids, logprobs

    trainer._generate_single_turn = recording_generate
    result = trainer.train()
    seen["loss"].append(result.training_loss)
    update = {name: p.detach() - before[name] for name, p in model.named_parameters()}
    return seen, update


def test_one_step_matches_trl_plain_path(tmp_path):
    shared, shared_update = _one_step(tmp_path, shared=True)
    plain, plain_update = _one_step(tmp_path, shared=False)
    assert shared["completions"] == plain["completions"]  # same samples from the same RNG
    plain_logps = dict(plain["logps"])
    assert len(shared["logps"]) == len(plain_logps) == 8
    for ids, logps in shared["logps"]:
        torch.testing.assert_close(logps, plain_logps[ids], **LOGP_TOLERANCE)
    # On-policy at the first step the GRPO loss is ~0 by construction (ratio 1, advantages centred, KL 0);
    # its gradient is not, and is compared below.
    assert abs(shared["loss"][0] - plain["loss"][0]) < 1e-6
    moved = 0
    for name, delta in plain_update.items():
        _close_gradients(shared_update[name], delta, name)
        moved += bool(delta.abs().max() > 0)
    assert moved > len(plain_update) // 2  # the step really changed the weights


def test_logps_and_gradients_with_two_prompts_and_padding():
    """Rows of two prompts of different lengths, interleaved, left-padded prompts and right-padded completions."""
    from trl.trainer.utils import add_fused_lm_head

    model, _ = load_model_and_tokenizer("tiny-random", dtype=torch.float64)
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    generator = torch.Generator().manual_seed(0)
    short, long = torch.randint(5, 1000, (7,), generator=generator), torch.randint(5, 1000, (11,), generator=generator)
    prompts = [long, short, long, short, short]
    completions = torch.randint(5, 1000, (5, 6), generator=generator)
    completion_mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 6, [1] * 2 + [0] * 4, [1] * 5 + [0]])
    width = max(len(p) for p in prompts)
    prompt_ids = torch.stack([torch.cat([torch.zeros(width - len(p), dtype=torch.long), p]) for p in prompts])
    prompt_mask = torch.stack([torch.cat([torch.zeros(width - len(p)), torch.ones(len(p))]).long() for p in prompts])
    input_ids = torch.cat([prompt_ids, completions], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    weights = torch.randn(5, 6, generator=generator, dtype=torch.float64) * completion_mask

    def gradients(logps):
        model.zero_grad()
        (logps * weights).sum().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    labels = input_ids.masked_fill(attention_mask == 0, -100)
    labels[:, :width] = -100
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True)  # TRL's plain call
    plain_logps, plain_entropy = out.log_probs[:, -6:], out.entropy[:, -6:]
    plain_grads = gradients(plain_logps)
    logps, entropy = shared_prefix_logps(model, input_ids, attention_mask, 6, compute_entropy=True)
    mask = completion_mask.bool()
    torch.testing.assert_close(logps[mask], plain_logps[mask], **LOGP_TOLERANCE)
    torch.testing.assert_close(entropy[mask], plain_entropy[mask], **LOGP_TOLERANCE)
    for name, grad in gradients(logps).items():
        _close_gradients(grad, plain_grads[name], name)


def test_decode_matches_generate_greedy_and_sampled(tiny_model_and_tokenizer):
    """Separately prefilled, differently long prompts decoded as one batch give `generate`'s tokens."""
    from transformers import GenerationConfig

    model, tokenizer = tiny_model_and_tokenizer
    generator = torch.Generator().manual_seed(3)
    prompts = [torch.randint(5, 2000, (n,), generator=generator).tolist() for n in (9, 30, 17)]
    stop = frozenset({tokenizer.eos_token_id})
    greedy = Sampling(max_new_tokens=10, stop_ids=stop, pad_id=tokenizer.pad_token_id, greedy=True)
    decoded = decode(model, [prefill(model, ids) for ids in prompts], greedy, with_certainty=True)
    for ids, row in zip(prompts, decoded, strict=True):
        config = GenerationConfig(max_new_tokens=10, do_sample=False, eos_token_id=[tokenizer.eos_token_id],
                                  pad_token_id=tokenizer.pad_token_id)
        reference = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                   generation_config=config)[0, len(ids):].tolist()
        assert row.token_ids == reference[: len(row.token_ids)]
        assert row.certainty.shape == (len(row.token_ids),) and bool((row.certainty >= 0).all())
    # Sampling: G rows of one prompt, against generate on the prompt repeated G times, same seed.
    sampled = Sampling(max_new_tokens=10, stop_ids=stop, pad_id=tokenizer.pad_token_id, temperature=0.7, top_p=0.9)
    torch.manual_seed(5)
    one = prefill(model, prompts[1])
    rows = decode(model, [one] * 4, sampled)
    torch.manual_seed(5)
    config = GenerationConfig(max_new_tokens=10, do_sample=True, temperature=0.7, top_p=0.9, top_k=0,
                              eos_token_id=[tokenizer.eos_token_id], pad_token_id=tokenizer.pad_token_id)
    reference = model.generate(torch.tensor([prompts[1]] * 4), generation_config=config)[:, len(prompts[1]):].tolist()
    assert [row.token_ids for row in rows] == [ref[: len(row.token_ids)] for ref, row in zip(reference, rows, strict=True)]
    assert len({tuple(row.token_ids) for row in rows}) > 1  # the rows really were sampled


def test_batched_decode_with_a_shared_prefix_and_dropped_rows_matches_each_row_alone(tiny_model_and_tokenizer, monkeypatch):
    """Rows of different lengths after a common prompt prefix (kept once, outside their caches), ending at
    different steps (ended rows dropped from the batch): each row's greedy tokens and self-certainty are
    those it gets decoded alone."""
    import agents.decoding as decoding

    model, _ = tiny_model_and_tokenizer
    generator = torch.Generator().manual_seed(7)
    common = torch.randint(5, 2000, (12,), generator=generator).tolist()
    prompts = [common + torch.randint(5, 2000, (n,), generator=generator).tolist() for n in (3, 9, 5, 14, 1, 7, 2, 11)]
    free = Sampling(max_new_tokens=12, stop_ids=frozenset({-1}), pad_id=0, greedy=True)
    outputs = [decode(model, [prefill(model, ids)], free)[0].token_ids for ids in prompts]
    # Stop on tokens some rows emit early and others late or never, so that rows end at different steps.
    greedy = Sampling(max_new_tokens=12, stop_ids=frozenset({outputs[0][2], outputs[3][6]}), pad_id=0, greedy=True)
    alone = [decode(model, [prefill(model, ids)], greedy, with_certainty=True)[0] for ids in prompts]
    drops = []
    keep_rows = decoding.PreallocatedLayer.keep_rows
    monkeypatch.setattr(decoding.PreallocatedLayer, "keep_rows", lambda layer, rows: drops.append(len(rows)) or keep_rows(layer, rows))
    together = decode(model, [prefill(model, ids) for ids in prompts], greedy, with_certainty=True)
    assert len({len(row.token_ids) for row in alone}) > 2 and drops  # rows did end at different steps, and were dropped
    for one, batched in zip(alone, together, strict=True):
        assert batched.token_ids == one.token_ids
        torch.testing.assert_close(batched.certainty, one.certainty, rtol=1e-4, atol=1e-4)


def test_prefill_reuse_gives_the_same_logits(tiny_model_and_tokenizer):
    model, _ = tiny_model_and_tokenizer
    first = list(range(100, 140))
    second = first[:25] + list(range(500, 510))
    fresh = prefill(model, second)
    reused = prefill(model, second, reuse=prefill(model, first))
    torch.testing.assert_close(reused.next_logits, fresh.next_logits, rtol=1e-4, atol=1e-4)
    assert isinstance(reused, Prefilled) and reused.cache.get_seq_length() == len(second)


def test_prefill_in_causal_chunks_gives_the_models_own_logits(tiny_model_and_tokenizer, monkeypatch):
    """`prefill`'s attention (prefix unmasked + causal chunks, merged by log-sum-exp) against a plain forward."""
    import agents.decoding as decoding

    model, _ = tiny_model_and_tokenizer
    monkeypatch.setattr(decoding, "PREFILL_CHUNK", 7)  # several chunks, the last one short
    ids = list(range(100, 150))
    with torch.inference_mode():
        plain = model(torch.tensor([ids])).logits[0, -1]
    torch.testing.assert_close(prefill(model, ids).next_logits, plain, rtol=1e-4, atol=1e-4)
    reused = prefill(model, ids, reuse=prefill(model, ids[:23] + [7, 8, 9]))  # 23 kept, 27 new
    torch.testing.assert_close(reused.next_logits, plain, rtol=1e-4, atol=1e-4)


def test_inverse_cdf_draws_follow_the_warped_distribution():
    from agents.decoding import _inverse_cdf

    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3, 0.0]]).repeat(20_000, 1)
    torch.manual_seed(0)
    drawn = _inverse_cdf(probs)
    counts = torch.bincount(drawn, minlength=5) / len(drawn)
    assert counts[1] == 0 and counts[4] == 0  # never a token of zero probability
    torch.testing.assert_close(counts, probs[0], atol=0.01, rtol=0)
    with pytest.raises(ValueError, match="draw must be one of"):
        Sampling(max_new_tokens=4, stop_ids=frozenset({2}), pad_id=0, draw="gumbel")


def test_group_shuffle_keeps_groups_together():
    batch = {"ids": torch.arange(12).repeat_interleave(1).reshape(12, 1), "names": [str(i // 4) for i in range(12)],
             "scalar": torch.tensor(3), "none": None}
    torch.manual_seed(0)
    shuffled = group_shuffle(batch, 4)
    groups = [shuffled["names"][i : i + 4] for i in range(0, 12, 4)]
    assert all(len(set(group)) == 1 for group in groups) and sorted(g[0] for g in groups) == ["0", "1", "2"]
    assert [int(shuffled["ids"][i]) // 4 for i in range(12)] == [int(n) for n in shuffled["names"]]
    assert shuffled["scalar"].item() == 3 and shuffled["none"] is None
