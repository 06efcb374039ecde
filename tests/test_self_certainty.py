"""Self-certainty KL(U || p) against a direct float64 computation, known cases, dtypes and shapes,
and the rationale token mask with a real (tiny, in-memory) fast tokenizer."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

import shop_env.self_certainty
from shop_env.response_format import format_response
from shop_env.self_certainty import (
    rationale_char_span,
    rationale_mask_for,
    rationale_token_mask,
    self_certainty,
)
from shop_env.session import TYPE_AND_SUBMIT, Action


def direct_kl_uniform(logits: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(U || p) = sum_j (1/V) log((1/V) / p_j), written out in float64, one position at a time."""
    batch, tokens, vocab = logits.shape
    out = torch.zeros(batch, dtype=torch.float64)
    for b in range(batch):
        values = []
        for t in range(tokens):
            if mask[b, t]:
                log_p = torch.log_softmax(logits[b, t].double() / temperature, dim=-1)
                values.append(((1 / vocab) * (math.log(1 / vocab) - log_p)).sum())
        out[b] = torch.stack(values).mean() if values else 0.0
    return out


@pytest.fixture
def random_batch():
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(3, 7, 50, generator=generator)
    mask = torch.rand(3, 7, generator=generator) > 0.4
    mask[2] = False  # a sequence without rationale tokens
    return logits, mask


def test_matches_direct_float64_computation(random_batch):
    logits, mask = random_batch
    expected = direct_kl_uniform(logits, mask)
    assert torch.allclose(self_certainty(logits, mask).double(), expected, atol=1e-5)
    assert torch.allclose(self_certainty(logits.double(), mask), expected, atol=1e-12, rtol=0)


def test_empty_mask_gives_zero(random_batch):
    logits, mask = random_batch
    result = self_certainty(logits, mask)
    assert result.shape == (3,) and result[2] == 0.0
    assert torch.equal(self_certainty(logits, torch.zeros_like(mask)), torch.zeros(3))


def test_uniform_logits_give_zero():
    logits = torch.full((2, 4, 1000), 7.5)
    assert torch.allclose(self_certainty(logits, torch.ones(2, 4, dtype=torch.bool)), torch.zeros(2), atol=1e-6)


@pytest.mark.parametrize("peak", [10.0, 50.0, 200.0])
def test_peaked_logits_give_log_v_plus_large(peak):
    """One logit at c, the rest 0: KL(U || p) = log(e^c + V - 1) - c/V - log V ~ c - log V for large c."""
    vocab = 32_000
    logits = torch.zeros(1, 2, vocab)
    logits[0, :, 5] = peak
    expected = math.log(math.exp(peak) + vocab - 1) - peak / vocab - math.log(vocab)
    assert self_certainty(logits, torch.ones(1, 2)).item() == pytest.approx(expected, rel=1e-5)


def test_bf16_logits_are_upcast(random_batch):
    logits, mask = random_batch
    low = logits.to(torch.bfloat16)
    result = self_certainty(low, mask)
    assert result.dtype == torch.float32
    assert torch.allclose(result.double(), direct_kl_uniform(low.double(), mask), atol=1e-5)


def test_temperature_divides_the_logits(random_batch):
    logits, mask = random_batch
    assert torch.allclose(self_certainty(logits, mask, temperature=0.6), self_certainty(logits / 0.6, mask))
    expected = direct_kl_uniform(logits, mask, temperature=1.3)
    assert torch.allclose(self_certainty(logits.double(), mask, temperature=1.3), expected, atol=1e-12)
    # A hotter policy is less certain.
    assert (self_certainty(logits, mask, 2.0)[:2] < self_certainty(logits, mask, 1.0)[:2]).all()


def test_mask_may_be_int_and_chunking_does_not_change_the_result(random_batch, monkeypatch):
    logits, mask = random_batch
    whole = self_certainty(logits.double(), mask)
    monkeypatch.setattr(shop_env.self_certainty, "CHUNK_ELEMENTS", 120)  # two positions per chunk
    assert torch.allclose(self_certainty(logits.double(), mask.long()), whole, atol=1e-12, rtol=0)


def test_no_gradient_flows(random_batch):
    logits, mask = random_batch
    assert not self_certainty(logits.requires_grad_(), mask).requires_grad


def test_single_position_batch():
    logits = torch.tensor([[[0.0, math.log(3.0)]]])  # p = (1/4, 3/4)
    expected = 0.5 * (math.log(0.5 / 0.25) + math.log(0.5 / 0.75))
    assert self_certainty(logits, torch.ones(1, 1)).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "logits, mask, temperature, message",
    [
        (torch.zeros(4, 10), torch.ones(4), 1.0, "batch, tokens, vocab"),
        (torch.zeros(2, 3, 5), torch.ones(2, 4), 1.0, "does not match"),
        (torch.zeros(2, 3, 5, dtype=torch.long), torch.ones(2, 3), 1.0, "float tensor"),
        (torch.zeros(2, 3, 5), torch.ones(2, 3), 0.0, "temperature"),
        (torch.zeros(2, 3, 5), torch.ones(2, 3), math.nan, "temperature"),
    ],
)
def test_bad_inputs_raise_clearly(logits, mask, temperature, message):
    with pytest.raises(ValueError, match=message):
        self_certainty(logits, mask, temperature)


# ---- the rationale token mask ----

RESPONSE = format_response(
    'Les "trail" shoes — 日本 look light.',
    Action(TYPE_AND_SUBMIT, name="header.search_box.search_input", text="trail shoes"),
)


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained in memory on a few responses, so merges straddle JSON punctuation."""
    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    model.train_from_iterator([RESPONSE, json.dumps({"rationale": "x", "action": {"type": "terminate"}})] * 5,
                              trainer)
    return PreTrainedTokenizerFast(tokenizer_object=model, eos_token="<eos>")


def test_char_span_is_the_value_between_the_quotes():
    start, end = rationale_char_span(RESPONSE)
    assert json.loads('"' + RESPONSE[start:end] + '"') == 'Les "trail" shoes — 日本 look light.'
    assert rationale_char_span('{"rationale": "x"}') is None


def test_char_span_ignores_nested_and_quoted_keys():
    text = ('{"action": {"type": "terminate", "rationale": "inner"}, "note": "\\"rationale\\": \\"no\\"",'
            ' "rationale" : "outer"}')
    start, end = rationale_char_span(text)
    assert text[start:end] == "outer"


def test_char_span_inside_a_code_fence():
    text = "\n```json\n" + RESPONSE + "\n```\n"
    start, end = rationale_char_span(text)
    assert text[start:end] == RESPONSE[rationale_char_span(RESPONSE)[0]:rationale_char_span(RESPONSE)[1]]


def test_mask_marks_exactly_the_tokens_overlapping_the_rationale(tokenizer):
    encoded = tokenizer(RESPONSE, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    mask = rationale_mask_for(tokenizer, RESPONSE)
    start, end = rationale_char_span(RESPONSE)
    assert len(mask) == len(offsets) and any(mask) and not all(mask)
    for marked, (token_start, token_end) in zip(mask, offsets, strict=True):
        assert marked == (token_start < end and token_end > start)
    covered = "".join(RESPONSE[s:e] for marked, (s, e) in zip(mask, offsets, strict=True) if marked)
    assert RESPONSE[start:end] in covered and '"action"' not in covered


def test_mask_from_sampled_ids_matches_and_leaves_eos_unmarked(tokenizer):
    ids = tokenizer(RESPONSE, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    mask = rationale_mask_for(tokenizer, RESPONSE, token_ids=ids)
    assert len(mask) == len(ids) and mask[-1] is False
    assert mask[:-1] == rationale_mask_for(tokenizer, RESPONSE)


def test_mask_from_ids_rejects_text_that_is_not_their_decoding(tokenizer):
    ids = tokenizer(RESPONSE, add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match="skip_special_tokens"):
        rationale_mask_for(tokenizer, RESPONSE + " ", token_ids=ids)


def test_unparseable_or_empty_rationale_gives_an_all_false_mask(tokenizer):
    broken = RESPONSE[:-2]
    assert rationale_mask_for(tokenizer, broken) == [False] * len(tokenizer(broken, add_special_tokens=False)["input_ids"])
    empty = format_response("", Action("terminate"))
    assert not any(rationale_mask_for(tokenizer, empty))


def test_special_token_offsets_are_never_marked():
    start, end = rationale_char_span(RESPONSE)
    assert rationale_token_mask(RESPONSE, [(0, 0), (start, end), (end, end)]) == [False, True, False]


def test_slow_tokenizer_without_ids_is_refused():
    class SlowTokenizer:
        is_fast = False

    with pytest.raises(ValueError, match="fast tokenizer"):
        rationale_mask_for(SlowTokenizer(), RESPONSE)


def test_end_to_end_mask_feeds_self_certainty(tokenizer):
    """Mask from the tokenizer, logits (1, T, V): only the rationale positions count."""
    ids = tokenizer(RESPONSE, add_special_tokens=False)["input_ids"]
    mask = torch.tensor([rationale_mask_for(tokenizer, RESPONSE)])
    logits = torch.zeros(1, len(ids), tokenizer.vocab_size)
    logits[0, ~mask[0], 0] = 100.0  # very certain outside the rationale: must not count
    assert self_certainty(logits, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_doctests():
    import doctest

    failures, tried = doctest.testmod(shop_env.self_certainty)
    assert tried > 0 and failures == 0
