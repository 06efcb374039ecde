"""--constrained: the response grammar (llguidance) admits exactly the format's responses for the page,
decoding follows it in both decoders, and self-certainty still reads the model's unmasked logits."""

import json
import sys
import types

import pytest
import torch

from agents.constrained import MaskedRows, ResponseGrammar
from agents.decoding import Sampling, decode, prefill
from agents.hf_policy import GenerationSettings, HFPolicy
from shop_env.loaders import resolve_sessions
from shop_env.replay_env import observation_at
from shop_env.response_format import format_response
from shop_env.self_certainty import self_certainty
from shop_env.session import Action
from shop_env.simplify_html import interactive_elements

END_OF_TURN = 2  # SmolLM2's <|im_end|>


@pytest.fixture(scope="module")
def observation():
    return observation_at(resolve_sessions("bundled:test")[0], 1, "latest")


@pytest.fixture(scope="module")
def grammar(tiny_tokenizer):
    return ResponseGrammar(tiny_tokenizer, vocab_size=49152, stop_ids={END_OF_TURN})


def _walk(grammar, observation, tokenizer, text):
    """Feed `text` token by token; returns (tokens accepted before the first forbidden one, all accepted,
    only the end of turn allowed after it)."""
    rows = MaskedRows([grammar.matcher(observation)], 49152)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for count, token in enumerate(ids):
        if rows.mask(torch.zeros(1, 49152))[0, token] == float("-inf"):
            return count, False, False
        rows.advance([token], [True])
    allowed = (rows.mask(torch.zeros(1, 49152))[0] == 0.0).nonzero()[:, 0].tolist()
    return len(ids), True, allowed == [END_OF_TURN]


def test_the_grammar_admits_every_valid_response_of_the_page(grammar, observation, tiny_tokenizer):
    names = interactive_elements(observation["page"])
    search = next(name for name in names if "search_input" in name)
    for action in (Action("click", names[-1]), Action("type_and_submit", search, "red shoes size 9"), Action("terminate")):
        text = format_response("I want something for my trip — under $50.", action)
        _, accepted, must_end = _walk(grammar, observation, tiny_tokenizer, text)
        assert accepted and must_end, text  # a complete response may only end the turn (nothing after the object)


@pytest.mark.parametrize("text", [
    '{"rationale": "x", "action": {"type": "click", "name": "no.such.element"}}',
    '{"rationale": "x", "action": {"type": "scroll"}}',
    '{"action": {"type": "terminate"}, "rationale": "x"}',
    '{"rationale": "x", "action": {"type": "terminate"}, "extra": 1}',
    'Sure! {"rationale": "x", "action": {"type": "terminate"}}',
])
def test_the_grammar_forbids_what_the_format_or_the_page_does_not_allow(grammar, observation, tiny_tokenizer, text):
    assert not _walk(grammar, observation, tiny_tokenizer, text)[1]


def test_an_empty_page_leaves_only_terminate(grammar, tiny_tokenizer):
    final = {"page": "", "session_id": "s", "step_index": 3}
    assert _walk(grammar, final, tiny_tokenizer, format_response("Done.", Action("terminate")))[1]
    assert not _walk(grammar, final, tiny_tokenizer, '{"rationale": "x", "action": {"type": "click", "name": "a"}}')[1]


def test_constrained_decoding_keeps_self_certainty_on_the_unmasked_logits(tiny_model_and_tokenizer, grammar, observation):
    model, tokenizer = tiny_model_and_tokenizer
    policy = HFPolicy(model, tokenizer, context="latest", context_window=1024, max_new_tokens=24)
    ids = tokenizer(policy.build_prompts([observation])[0].text, add_special_tokens=False)["input_ids"]
    sampling = Sampling(max_new_tokens=24, stop_ids=frozenset({END_OF_TURN}), pad_id=tokenizer.pad_token_id, greedy=True)
    free, = decode(model, [prefill(model, ids)], sampling)
    forced, = decode(model, [prefill(model, ids)], sampling, with_certainty=True, constraints=[grammar.matcher(observation)])
    text = tokenizer.decode(forced.token_ids, skip_special_tokens=True)
    assert text.startswith('{"rationale": "') and forced.token_ids != free.token_ids
    with torch.inference_mode():
        logits = model(torch.tensor([ids + forced.token_ids])).logits[0, len(ids) - 1 : -1].float()  # raw, unmasked
    expected = torch.stack([self_certainty(logits[t][None, None], torch.ones(1, 1, dtype=torch.bool)) for t in range(len(logits))])
    torch.testing.assert_close(forced.certainty, expected[:, 0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("decoder", ["fast", "generate"])
def test_both_decoders_follow_the_grammar(tiny_model_and_tokenizer, observation, decoder):
    model, tokenizer = tiny_model_and_tokenizer
    settings = dict(context="latest", context_window=1024, max_new_tokens=20, greedy=True, decoder=decoder, batch_size=2)
    free = HFPolicy(model, tokenizer, **settings).act([observation, observation])
    forced = HFPolicy(model, tokenizer, constrained=True, **settings).act([observation, observation])
    assert all(output.text.startswith('{"rationale": "') for output in forced)
    assert not any(output.text.startswith('{"rationale": "') for output in free)


def test_vllm_gets_the_pages_schema_as_structured_outputs(monkeypatch, observation, tiny_tokenizer):
    """vLLM itself needs a GPU; what the policy hands it is checked against a recording stand-in."""
    made = []
    fake = types.ModuleType("vllm")
    fake.SamplingParams = lambda **kwargs: made.append(kwargs) or kwargs
    fake_params = types.ModuleType("vllm.sampling_params")
    fake_params.StructuredOutputsParams = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", fake_params)
    from agents.vllm_policy import VLLMPolicy

    policy = object.__new__(VLLMPolicy)
    policy._vllm = fake
    policy.settings = GenerationSettings(constrained=True, context="latest")
    params = policy._sampling(observation)
    schema = params["structured_outputs"]["json"]
    click = next(v for v in schema["properties"]["action"]["anyOf"] if v["properties"]["type"]["const"] == "click")
    assert click["properties"]["name"]["enum"] == interactive_elements(observation["page"])
    assert json.loads(json.dumps(schema)) == schema  # JSON as it is, as vLLM sends it to its grammar backend
