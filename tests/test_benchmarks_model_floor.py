"""The model_floor benchmark's accounting: which weights count, the FLOPs and bytes of each floor."""

import pytest

from benchmarks.model_floor import (
    MatmulParams,
    floor_seconds,
    grpo_rows,
    grpo_step_floor,
    prefill_flops,
    ratio_name,
    sft_flops,
    weight_bytes,
)


@pytest.fixture(scope="module")
def tiny_llama():
    """A 1-layer Llama small enough to count by hand: hidden 8, MLP 16, 2 heads of 4, 1 KV head, 32 words."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def test_params_count_the_decoder_linears_and_the_tied_head_once_never_the_embedding(tiny_llama):
    # q 8x8 + k 8x4 + v 8x4 + o 8x8 + gate, up, down 8x16 each
    body = 64 + 32 + 32 + 64 + 3 * 128
    assert tiny_llama.get_output_embeddings().weight is tiny_llama.get_input_embeddings().weight
    assert MatmulParams.of(tiny_llama) == MatmulParams(body=body, head=32 * 8)
    assert weight_bytes(tiny_llama) == (body + 32 * 8) * 4  # fp32


def test_int8_weights_count_one_byte_per_weight_and_a_float32_scale_per_scale(tiny_llama):
    import copy
    import warnings

    import torch

    from agents.models import quantize_int8

    weights = MatmulParams.of(tiny_llama).body + 32 * 8
    per_tensor = quantize_int8(copy.deepcopy(tiny_llama))  # what eval's int8 format does: one scale per layer
    assert weight_bytes(per_tensor) == weights + 4 * 8  # 7 decoder Linears and the LM head
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's eager quantization is deprecated; torch still ships it
        per_channel = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(tiny_llama), {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
    out_channels = 8 + 4 + 4 + 8 + 16 + 16 + 8 + 32  # q k v o gate up down, the LM head
    assert weight_bytes(per_channel) == weights + 4 * out_channels


def test_packed_weights_count_four_bytes_per_weight(tiny_llama):
    import copy

    from agents.models import pack_fp32

    assert weight_bytes(pack_fp32(copy.deepcopy(tiny_llama))) == weight_bytes(tiny_llama) == 4 * (MatmulParams.of(tiny_llama).body + 32 * 8)


def test_sft_is_6_n_tokens_and_prefill_2_n_body_tokens_plus_one_head_position():
    params = MatmulParams(body=100, head=30)
    assert sft_flops(params, 1024) == 6 * 130 * 1024
    assert prefill_flops(params, 1024) == 2 * 100 * 1024 + 2 * 30


def test_grpo_floor_counts_each_unique_token_once_and_lc_minus_1_decode_steps():
    params = MatmulParams(body=100, head=30)
    prompt, group, completion = 256, 4, 16
    unique = prompt + group * completion
    policy = 6 * (100 * unique + 30 * group * completion)
    reference = 2 * (100 * unique + 30 * group * completion)
    rollout_prefill = 2 * (100 * prompt + 30)
    assert grpo_step_floor(params, 520, prompt, group, completion) == (policy + reference + rollout_prefill, 15 * 520)
    assert grpo_step_floor(params, 520, prompt, group, 0.0)[1] == 0  # nothing generated: no decode step


def test_floor_seconds_add_the_compute_and_the_memory_parts():
    assert floor_seconds(2e9, 0, 1e9, 5e9) == 2.0
    assert floor_seconds(0, 5e9, 1e9, 5e9) == 1.0
    assert floor_seconds(2e9, 5e9, 1e9, 5e9) == 3.0


def test_ratio_names_say_which_floor():
    assert ratio_name("sft", 1.0, 0) == "sft_vs_sgemm"
    assert ratio_name("decode_fp32", 0, 1.0) == "decode_fp32_vs_stream"
    assert ratio_name("grpo_step", 1.0, 1.0) == "grpo_step_vs_floor"


@pytest.mark.parametrize("prompt_tokens", [256, 1024])
def test_grpo_rows_cut_a_real_prompt_to_the_asked_length(tiny_tokenizer, prompt_tokens):
    (row,) = grpo_rows(tiny_tokenizer, prompt_tokens)
    text = tiny_tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    assert row["prompt_tokens"] == len(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert abs(row["prompt_tokens"] - prompt_tokens) <= 4  # a decoded cut may re-tokenize a little differently
    assert row["gold_action"] and row["prompt"][0]["role"] == "user"
