"""Policies: HF generation (batching, greedy, seeds, self-certainty) and the baselines."""

import json
import math

import pytest
import torch

from agents.context_builder import build_prompt
from agents.hf_policy import GenerationSettings, HFPolicy
from agents.models import load_model_and_tokenizer
from agents.policies import (
    HeuristicPolicy,
    OraclePolicy,
    Policy,
    PolicyOutput,
    RandomValidPolicy,
    TerminatePolicy,
    persona_query,
)
from agents.make_policy import make_policy
from shop_env.replay_env import observation_at
from shop_env.response_format import EXAMPLE_RESPONSES, format_response, parse_response
from shop_env.self_certainty import rationale_mask_for
from shop_env.session import Action
from shop_env.simplify_html import interactive_elements

PARROT_RESPONSE = json.dumps(EXAMPLE_RESPONSES["terminate"])


@pytest.fixture(scope="module")
def observations(fixture_sessions):
    """Every step of the fixture sessions in latest-step context (shorter prompts keep generation tests fast)."""
    return [observation_at(session, index, "latest") for session in fixture_sessions for index in range(len(session))]


@pytest.fixture()
def scripted(observations):
    """A tiny model whose logits get +40 on the next token of PARROT_RESPONSE + end of turn after the prompt.

    Random weights never emit valid JSON, and a response that parses is needed to test self-certainty.
    The bias is keyed on absolute positions, so generation (with a KV cache) and one teacher-forced
    forward pass see the same distributions; misaligning logits and tokens by one would show.
    """
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    policy_prompt = build_prompt(observations[0], tokenizer, context_window=4096, max_new_tokens=64)
    prompt_length = len(tokenizer(policy_prompt.text, add_special_tokens=False)["input_ids"])
    script = tokenizer(PARROT_RESPONSE + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    original = model.forward

    def forward(input_ids=None, past_key_values=None, **kwargs):
        seen = past_key_values.get_seq_length() if past_key_values is not None else 0
        output = original(input_ids=input_ids, past_key_values=past_key_values, **kwargs)
        end = seen + input_ids.shape[1]
        first = end - output.logits.shape[1]  # generate may keep only the last positions' logits
        for position in range(first, end):
            step = position - (prompt_length - 1)  # logits at position p predict token p + 1
            if 0 <= step < len(script):
                output.logits[:, position - first, script[step]] += 40.0
        return output

    model.forward = forward
    return model, tokenizer


def test_batched_and_single_generation_agree_under_greedy(tiny_model_and_tokenizer, observations):
    model, tokenizer = tiny_model_and_tokenizer
    policy = HFPolicy(model, tokenizer, greedy=True, max_new_tokens=12, context_window=2048, batch_size=4)
    chosen = observations[:4]
    lengths = {p.n_tokens for p in policy.build_prompts(chosen)}
    assert len(lengths) == 4, "prompts of different lengths exercise the left padding"
    batched = policy.act(chosen)
    single = [policy.act([observation])[0] for observation in chosen]
    assert [o.text for o in batched] == [o.text for o in single]
    assert len({o.text for o in batched}) == 4, "the tiny model must answer prompts differently for this test to bite"
    assert all(o.completion_tokens == 12 and o.prompt_tokens in lengths for o in batched)


def test_sampling_repeats_with_the_same_seed_and_varies_with_another(tiny_model_and_tokenizer, observations):
    model, tokenizer = tiny_model_and_tokenizer
    run = lambda seed: [o.text for o in HFPolicy(model, tokenizer, seed=seed, max_new_tokens=8, temperature=1.0).act(observations[:2])]  # noqa: E731
    assert run(1) == run(1)
    assert run(1) != run(2)


def test_model_generation_defaults_do_not_leak_into_decoding(observations):
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    policy = HFPolicy(model, tokenizer, greedy=True, max_new_tokens=6)
    before = policy.act(observations[:1])[0].text
    first_token = tokenizer(before, add_special_tokens=False)["input_ids"][0]
    model.generation_config.suppress_tokens = [first_token]
    model.generation_config.repetition_penalty = 5.0
    assert policy.act(observations[:1])[0].text == before


def test_scripted_model_answers_in_format_and_stops_at_end_of_turn(scripted, observations):
    output = HFPolicy(*scripted, greedy=True, max_new_tokens=64, context_window=4096).act(observations[:1])[0]
    assert output.text == PARROT_RESPONSE
    assert output.action == Action("terminate")
    assert output.completion_tokens == len(scripted[1](PARROT_RESPONSE, add_special_tokens=False)["input_ids"]) + 1


@pytest.mark.parametrize("greedy", [True, False])
def test_self_certainty_equals_a_direct_forward_computation(scripted, observations, greedy):
    model, tokenizer = scripted
    temperature = 0.7
    policy = HFPolicy(
        model, tokenizer, greedy=greedy, max_new_tokens=64, context_window=4096, temperature=temperature, with_self_certainty=True
    )
    output = policy.act(observations[:1])[0]
    assert output.text == PARROT_RESPONSE and output.self_certainty is not None

    prompt_ids = tokenizer(policy.build_prompts(observations[:1])[0].text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(output.text + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + response_ids])).logits[0]  # (T, V)
    scaled = logits[len(prompt_ids) - 1 : -1] / temperature  # (T_response, V): row t predicts response token t
    kl_uniform = torch.logsumexp(scaled, -1) - scaled.mean(-1) - math.log(scaled.shape[-1])  # KL(U || p) per token
    mask = torch.tensor(rationale_mask_for(tokenizer, output.text, token_ids=response_ids))
    rationale = json.loads(output.text)["rationale"]
    marked = tokenizer.decode([t for t, m in zip(response_ids, mask) if m])
    assert rationale in marked and "action" not in marked, "the mask covers the rationale's tokens only"
    assert output.self_certainty == pytest.approx(kl_uniform[mask].mean().item(), rel=1e-4)


def test_self_certainty_is_none_without_a_rationale(tiny_model_and_tokenizer, observations):
    policy = HFPolicy(*tiny_model_and_tokenizer, greedy=True, max_new_tokens=6, with_self_certainty=True)
    output = policy.act(observations[:1])[0]
    assert output.action is None and output.self_certainty is None


def test_a_shared_tokenizer_keeps_its_padding_side(tiny_model_and_tokenizer, observations):
    model, tokenizer = tiny_model_and_tokenizer
    policy = HFPolicy(model, tokenizer, greedy=True, max_new_tokens=4, batch_size=2)
    expected = [o.text for o in policy.act(observations[:2])]
    tokenizer.padding_side = "right"  # as a trainer sharing the tokenizer might set it
    try:
        assert [o.text for o in policy.act(observations[:2])] == expected
    finally:
        tokenizer.padding_side = "left"


def test_budget_is_clamped_to_the_context_window(tiny_model_and_tokenizer):
    model, tokenizer = tiny_model_and_tokenizer
    policy = HFPolicy(model, tokenizer, context_window=10**6)
    assert policy.budget.context_window == model.config.max_position_embeddings


def test_batch_size_defaults(tiny_model_and_tokenizer):
    assert HFPolicy(*tiny_model_and_tokenizer).batch_size == 8  # the fast decoder batches only the decode steps
    assert HFPolicy(*tiny_model_and_tokenizer, decoder="generate").batch_size == 1  # padded prefill is slow on CPU
    assert HFPolicy(*tiny_model_and_tokenizer, batch_size=4).batch_size == 4


@pytest.mark.parametrize("batch_size", [1, 3])
def test_fast_decoder_answers_as_generate_does(tiny_model_and_tokenizer, observations, batch_size):
    """Greedy: the same text and self-certainty, whatever the batching; prompts of different lengths."""
    settings = {"greedy": True, "max_new_tokens": 12, "context_window": 4096, "with_self_certainty": True}
    fast = HFPolicy(*tiny_model_and_tokenizer, batch_size=batch_size, **settings).act(observations)
    reference = HFPolicy(*tiny_model_and_tokenizer, decoder="generate", batch_size=1, **settings).act(observations)
    assert len({o.prompt_tokens for o in reference}) > 1
    assert [o.text for o in fast] == [o.text for o in reference]
    assert [o.completion_tokens for o in fast] == [o.completion_tokens for o in reference]
    for ours, theirs in zip(fast, reference, strict=True):
        assert (ours.self_certainty is None) == (theirs.self_certainty is None)
        if ours.self_certainty is not None:
            assert ours.self_certainty == pytest.approx(theirs.self_certainty, rel=1e-4)


def test_int8_weights_load_and_answer(observations):
    policy = HFPolicy("tiny-random", weights="int8", greedy=True, max_new_tokens=8, context_window=4096)
    assert any("quantized" in type(module).__module__ for module in policy.model.modules())
    assert all(output.completion_tokens >= 1 for output in policy.act(observations[:2]))


def test_packed_weights_give_float32_logits_and_answers(observations):
    """fp32-packed (oneDNN's layout) is float32 arithmetic: the same logits to rounding, the same greedy text."""
    from agents.packed_linear import PackedLinear

    settings = {"greedy": True, "max_new_tokens": 12, "context_window": 4096, "with_self_certainty": True}
    packed = HFPolicy("tiny-random", weights="fp32-packed", **settings)
    plain = HFPolicy("tiny-random", **settings)
    assert not any(type(module) is torch.nn.Linear for module in packed.model.modules())
    assert isinstance(packed.model.get_output_embeddings(), PackedLinear)
    ids = torch.arange(5, 45)[None]
    torch.testing.assert_close(packed.model(ids).logits, plain.model(ids).logits, rtol=1e-4, atol=1e-4)
    ours, theirs = packed.act(observations), plain.act(observations)
    assert [o.text for o in ours] == [o.text for o in theirs]
    for one, other in zip(ours, theirs, strict=True):
        assert one.self_certainty == (None if other.self_certainty is None else pytest.approx(other.self_certainty, rel=1e-4))


def test_with_settings_shares_the_model(tiny_model_and_tokenizer):
    policy = HFPolicy(*tiny_model_and_tokenizer)
    tempered = policy.with_settings(temperature=1.1)
    assert tempered.model is policy.model and tempered.settings.temperature == 1.1 and policy.settings.temperature == 0.6


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"temperature": 0}, "greedy=True"),
        ({"top_p": 0}, "top_p"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"context_window": 64, "max_new_tokens": 64}, "leave room"),
        ({"context": "all"}, "context"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_settings_say_how_to_fix_them(settings, message):
    with pytest.raises(ValueError, match=message):
        GenerationSettings(**settings)


def test_unknown_setting_is_a_type_error(tiny_model_and_tokenizer):
    with pytest.raises(TypeError, match="temprature"):
        HFPolicy(*tiny_model_and_tokenizer, temprature=0.5)


def test_oracle_answers_with_the_humans_action(fixture_sessions, observations):
    outputs = OraclePolicy(fixture_sessions).act(observations)
    golds = [step for session in fixture_sessions for step in session.steps]
    assert [o.action for o in outputs] == [step.action for step in golds]
    assert outputs[0].text == format_response(golds[0].rationale, golds[0].action)


def test_oracle_refuses_an_unknown_step(fixture_sessions, observations):
    with pytest.raises(KeyError, match="no step 0 of session 'elsewhere'"):
        OraclePolicy(fixture_sessions).act([{**observations[0], "session_id": "elsewhere"}])


def test_terminate_policy_always_leaves(observations):
    assert {o.action for o in TerminatePolicy().act(observations)} == {Action("terminate")}


def test_random_policy_picks_page_elements_and_ignores_batching(observations):
    policy = RandomValidPolicy(seed=3)
    batched = policy.act(observations)
    assert [o.text for o in batched] == [policy.act([o])[0].text for o in observations]
    for observation, output in zip(observations, batched):
        assert parse_response(output.text).ok
        if output.action.type != "terminate":
            assert output.action.name in interactive_elements(observation["page"])
        if output.action.type == "type_and_submit":
            assert output.action.text
    assert [o.text for o in RandomValidPolicy(seed=4).act(observations)] != [o.text for o in batched]


def test_heuristic_policy_searches_opens_adds_and_leaves(fixture_sessions):
    session = fixture_sessions[0]  # home -> results -> product -> product -> cart
    policy = HeuristicPolicy()
    first = policy.act([observation_at(session, 0)])[0].action
    assert first == Action("type_and_submit", name="header.search_box.search_input", text="cushioned shoes")
    assert policy.act([observation_at(session, 1)])[0].action.name.endswith("view_product")
    assert policy.act([observation_at(session, 2)])[0].action == Action("click", name="product.add_to_cart")
    assert policy.act([observation_at(session, 4)])[0].action == Action("terminate")


def test_persona_query_falls_back_to_the_page_title():
    assert persona_query("I need a trail running shoe (waterproof).") == "trail running shoe"
    assert persona_query("", "<html><head><title>Shop : Kids Rain Boots</title></head></html>") == "shop kids rain boots"
    assert persona_query("", "") == "deals"


def test_make_policy_builds_each_kind(fixture_sessions, tiny_model_and_tokenizer):
    assert isinstance(make_policy("oracle", sessions=fixture_sessions), OraclePolicy)
    assert isinstance(make_policy("terminate", seed=1, context_window=2048, context="whole"), TerminatePolicy)
    assert make_policy("random", seed=5).seed == 5
    assert isinstance(make_policy("heuristic"), HeuristicPolicy)
    llm = make_policy("tiny-random", greedy=True, max_new_tokens=4)
    assert isinstance(llm, HFPolicy) and isinstance(llm, Policy) and llm.settings.greedy
    with pytest.raises(ValueError, match="needs the sessions"):
        make_policy("oracle")


def test_vllm_backend_names_the_pip_command_when_missing():
    pytest.importorskip("agents.vllm_policy")
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vllm is installed")
    with pytest.raises(ImportError, match="pip install vllm"):
        make_policy("tiny-random", backend="vllm")


def test_policy_output_parses_its_text():
    output = PolicyOutput.from_text('{"rationale": "x", "action": {"type": "terminate"}}', self_certainty=1.5)
    assert output.action == Action("terminate") and output.self_certainty == 1.5
    assert PolicyOutput.from_text("nope").action is None
