"""The `shop-r1` command line. Each command is a thin typer function that imports its
implementation lazily, so `shop-r1 --help` stays fast and torch loads only when a command needs it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from shop_env.preflight import stay_offline, writable_dir

app = typer.Typer(
    name="shop-r1",
    help="Shop-R1: replay and score shopping sessions, evaluate and train LLM shoppers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

USAGE_ERRORS = (ValueError, FileExistsError, FileNotFoundError, PermissionError)
"""What a command reports as a one-line usage error: bad flags, missing or malformed data (file:line),
an --out that is not writable or holds another run; raised by the checks made before any model loads."""


@contextmanager
def _usage_errors() -> Iterator[None]:
    try:
        yield
    except USAGE_ERRORS as err:
        raise typer.BadParameter(str(err)) from None


@app.command()
def replay(
    sessions: str = typer.Option("bundled:test", help="bundled:train|bundled:test or a file/directory load_sessions reads."),
    session_id: str | None = typer.Option(None, help="Session to replay; default: drawn with --seed."),
    policy: str = typer.Option("oracle", help="oracle, terminate, random, heuristic, smollm2, tiny-random, an HF id or a model path."),
    context: str = typer.Option("whole", help="whole (past pages + actions) or latest (past actions + current page)."),
    seed: int = typer.Option(0, help="Seeds the session draw and the policy."),
    context_window: int = typer.Option(2048, help="Prompt token budget for LLM policies (the paper uses 32768 on GPUs)."),
    live: bool = typer.Option(False, "--live", help="Play one visit of the live shop (ShopR1/LiveShop-v0, shopper --seed) instead; --policy scripted follows the shopper."),
) -> None:
    """Replay one session step by step: what the page offers, what the policy did, what the human did, the reward."""
    from agents.make_policy import make_policy
    from shop_env.loaders import resolve_sessions
    from shop_env.replay import replay_session

    if live:
        from agents.live_eval import replay_live

        if policy == "oracle":
            raise typer.BadParameter("a live visit has no recorded human to copy; --policy scripted follows the live shop's shopper")
        replay_live(policy, seed=seed, context_window=context_window)
        return

    loaded = resolve_sessions(sessions)
    chosen = make_policy(policy, sessions=loaded, seed=seed, context_window=context_window, context=context)
    replay_session(loaded, chosen, session_id=session_id, context=context, seed=seed)


@app.command("eval")
def eval_(
    policy: str = typer.Option("smollm2", help="oracle, terminate, random, heuristic, smollm2, smollm2-sft, smollm2-shop-r1, tiny-random, an HF id, a model path, or openai:MODEL."),
    sessions: str = typer.Option("bundled:test", help="bundled:test|bundled:train or a file/directory load_sessions reads."),
    out: Path = typer.Option(..., help="Directory for metrics.json, predictions.jsonl and report.md."),
    context: str | None = typer.Option(None, help="whole (past pages + actions) or latest (past actions + current page); default: a shipped policy's training context, else whole."),
    temperature: float = typer.Option(0.6, help="Sampling temperature (paper: 0.6)."),
    temperatures: str | None = typer.Option(None, help="Temperature sweep (paper Figure 2), e.g. 0.6,0.7,0.8,0.9,1.0,1.1,1.2; writes a PNG."),
    greedy: bool = typer.Option(False, "--greedy", help="Greedy decoding instead of sampling."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling mass."),
    limit: int | None = typer.Option(None, help="Evaluate only the first N steps (sessions in order)."),
    context_window: int | None = typer.Option(None, help="Prompt + response token budget (CPU-sized; the paper uses 32768); default: a shipped policy's training budget, else 2048."),
    max_new_tokens: int | None = typer.Option(None, help="Most tokens per response; default: a shipped policy's, else 256."),
    batch_size: int = typer.Option(8, help="Observations handed to the policy at once (the next steps in order, or one per session for policies that read the env's feedback)."),
    generation_batch_size: int | None = typer.Option(None, help="Rows decoded together; default 8 (1 for --decoder generate on CPU)."),
    decoder: str = typer.Option("fast", help="fast (per-prompt prefill, batched decode) or generate (transformers' generate)."),
    weights: str = typer.Option("fp32-packed", help="fp32-packed (float32 in oneDNN's GEMM layout), fp32, or int8 (lossy); see agents.models.WEIGHT_FORMATS."),
    draw: str = typer.Option("inverse_cdf", help="How the fast decoder draws sampled tokens: inverse_cdf, or multinomial (generate's own draws)."),
    seed: int = typer.Option(0, help="Seeds sampling and the random baseline."),
    self_certainty: bool = typer.Option(True, help="Compute the rationale's self-certainty (transformers backend)."),
    backend: str = typer.Option("hf", help="hf (transformers) or vllm (GPU, optional)."),
    constrained: bool = typer.Option(False, "--constrained", help="Force responses into the format's JSON Schema, names from the page."),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server of an openai:MODEL policy, e.g. http://127.0.0.1:8080/v1 (key: OPENAI_API_KEY)."),
    max_concurrency: int = typer.Option(4, help="Requests in flight at once (openai: policies)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted eval in --out: answered steps are not asked again."),
    live: bool = typer.Option(False, "--live", help="Play the live shop (ShopR1/LiveShop-v0) instead of replaying sessions; --policy scripted is its ceiling."),
    episodes: int = typer.Option(100, help="Visits to play with --live (one shopper each, seeds from --seed)."),
) -> None:
    """Evaluate a policy on recorded sessions: exact / type accuracy, type macro F1, rewards (paper Tables 2, 3)."""
    from rich.console import Console
    from rich.markdown import Markdown

    from agents.evaluate import EvalConfig, run_eval

    try:
        sweep = tuple(float(t) for t in temperatures.split(",")) if temperatures else None
        config = EvalConfig(
            policy=policy, sessions=sessions, out=out, context=context, temperature=temperature, temperatures=sweep,
            greedy=greedy, top_p=top_p, limit=limit, context_window=context_window, max_new_tokens=max_new_tokens,
            batch_size=batch_size, generation_batch_size=generation_batch_size, seed=seed,
            self_certainty=self_certainty, backend=backend, decoder=decoder, weights=weights, draw=draw,
            constrained=constrained, base_url=base_url, max_concurrency=max_concurrency,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    with _usage_errors():
        if live:
            from agents.live_eval import SCRIPTED, LiveEvalConfig, run_live_eval

            kwargs = {} if policy == SCRIPTED else config.generation_kwargs()
            run_live_eval(LiveEvalConfig(policy=policy, episodes=episodes, seed=seed, out=out, context=context or "latest",
                                         batch_size=batch_size), **kwargs)
        else:
            run_eval(config, resume=resume)
    Console().print(Markdown((out / "report.md").read_text(encoding="utf-8")))


@app.command()
def compare(
    directories: list[str] = typer.Argument(..., help="Eval or run directories, each optionally LABEL=DIR."),
    out: Path = typer.Option(Path("runs/compare"), help="Directory for compare.md, compare.json and compare.png."),
    title: str = typer.Option("Comparison", help="Heading of compare.md."),
) -> None:
    """The paper's Tables 2-4 from several evaluations, on the steps they share, with 95% intervals."""
    from rich.console import Console
    from rich.markdown import Markdown

    from agents.compare import run_compare

    with _usage_errors():
        run_compare(directories, out, title=title)
    Console().print(Markdown((out / "compare.md").read_text(encoding="utf-8")))


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Directory for compare.md and one eval directory per policy."),
    limit: int = typer.Option(24, help="Bundled test steps every policy plays, sessions in order."),
) -> None:
    """The main job: the embedded SmolLM2-135M zero-shot, the shipped SFT and Shop-R1 policies and the heuristic, side by side."""
    from rich.console import Console
    from rich.markdown import Markdown

    from agents.demo import run_demo

    with _usage_errors():
        run_demo(out, limit=limit)
    Console().print(Markdown((out / "compare.md").read_text(encoding="utf-8")))
    Console().print(f"wrote {out}/", markup=False)


@app.command()
def serve(
    sessions: str = typer.Option("bundled:test", help="bundled:test|bundled:train or a file/directory load_sessions reads."),
    context: str = typer.Option("whole", help="whole (past pages + actions) or latest (past actions + current page)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for other machines)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    max_envs: int = typer.Option(64, help="Envs open at once (WebSocket connections + HTTP episodes)."),
    max_request_bytes: int = typer.Option(1_000_000, help="Largest request body or WebSocket message."),
    idle_timeout: float = typer.Option(600.0, help="Seconds after which an idle HTTP episode is closed."),
) -> None:
    """Serve the session-replay env over HTTP and WebSocket (OpenEnv conventions) for agents in other processes."""
    from shop_env.server import ServerConfig, serve as run_server

    with _usage_errors():
        config = ServerConfig(sessions=sessions, context=context, max_envs=max_envs,
                              max_request_bytes=max_request_bytes, idle_timeout=idle_timeout)
        run_server(config, host=host, port=port)


@app.command("make-sessions")
def make_sessions(
    n: int = typer.Option(..., "--n", min=1, help="Number of sessions to generate."),
    out: Path = typer.Option(..., "--out", help="Output file: canonical JSON Lines, gzip-compressed when it ends in .gz."),
    seed: int = typer.Option(0, "--seed", help="Run seed; the same seed and --n give the same sessions."),
    split_name: str = typer.Option("procedural", "--split-name", help="Session id prefix: ids are <split-name>-00000, ..."),
) -> None:
    """Generate procedural-shop sessions: a persona-driven shopper browsing a deterministic shop."""
    from rich.console import Console

    from shop_env.procedural_shop.shopper import check_split_name, write_sessions

    try:
        check_split_name(split_name)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--split-name") from None
    stats = write_sessions(out, n, seed, split_name=split_name)
    mix = ", ".join(f"{kind} {share:.1%}" for kind, share in stats["action_mix"].items())
    Console().print(
        f"Wrote {stats['sessions']} sessions ({stats['steps']} steps, {stats['mean_steps']} per session) to {out}\n"
        f"action mix: {mix}; page size: mean {stats['page_chars']['mean']:.0f} chars, "
        f"p90 {stats['page_chars']['p90']} chars",
        markup=False,  # paths are printed as typed: "[v2]" in one is not a style
    )


@app.command("convert")
def convert(
    source: Path = typer.Argument(..., help="Sessions in any format load_sessions reads (file, directory, train-*.parquet)."),
    destination: Path = typer.Argument(..., help="Output: .jsonl/.jsonl.gz (canonical) or .parquet (OPeRA)."),
    source_format: str = typer.Option("auto", "--from", help="auto, jsonl, opera, hf or shopcart."),
    to: str | None = typer.Option(None, "--to", help="jsonl, opera or shopcart; default from the destination's suffix."),
    map_types: list[str] = typer.Option([], "--map", help="Rename or drop a source action type: scroll= drops, tab_activate=click renames."),
    drop_unknown_actions: bool = typer.Option(False, "--drop-unknown-actions", help="Drop every action type outside click/type_and_submit/terminate."),
    shards: int = typer.Option(1, min=1, help="OPeRA output only: split into this many part-*.parquet files in DESTINATION."),
) -> None:
    """Convert recorded sessions between canonical JSONL, OPeRA parquet and Shop-CART rows."""
    from rich.console import Console

    from shop_env.loaders import convert_sessions

    action_map = {}
    for item in map_types:
        kind, equals, target = item.partition("=")
        if not equals or not kind:
            raise typer.BadParameter(f"expected TYPE=TARGET (empty TARGET drops), got {item!r}", param_hint="--map")
        action_map[kind] = target or None
    try:
        done = convert_sessions(
            source, destination, source_format=source_format, to=to, action_map=action_map or None,
            drop_unknown_actions=drop_unknown_actions, shards=shards,
        )
    except (ValueError, FileNotFoundError) as err:  # SessionFormatError names the file, row, step and field
        raise typer.BadParameter(str(err)) from None
    Console().print(
        f"Read {done['sessions']} sessions ({done['steps']} steps) from {done['source']} as {done['source_format']}; "
        f"wrote {done['format']} to {done['destination']}",
        markup=False,
    )


@app.command("prepare-verl")
def prepare_verl(
    sessions: str = typer.Option(..., help="Training sessions: bundled:train, or a file/directory load_sessions reads."),
    out: Path = typer.Option(..., help="Directory for rl.parquet, sft.parquet (+ *_val.parquet) and manifest.json."),
    val_sessions: str | None = typer.Option(None, help="Held-out sessions for verl's validation files."),
    model: str = typer.Option("Qwen/Qwen2.5-3B-Instruct", help="Whose tokenizer counts prompt tokens: the model verl trains."),
    context: str = typer.Option("whole", help="whole (past pages + actions) or latest (past actions + current page)."),
    context_window: int = typer.Option(32_768, help="Prompt + response tokens (paper: 32k)."),
    max_new_tokens: int = typer.Option(256, help="Tokens reserved for the response."),
    max_examples: int | None = typer.Option(None, help="Seeded subset of this many training steps."),
    seed: int = typer.Option(0, help="Seeds the subset."),
    missing_rationale: str = typer.Option("skip", help="SFT steps without a rationale: skip or empty."),
    workers: int = typer.Option(1, help="Processes building prompts."),
) -> None:
    """Write verl's parquet files (GRPO prompts + gold actions, SFT chats) from recorded sessions."""
    from rich.console import Console

    from shop_env.loaders import resolve_sessions
    from training.verl.prepare import MANIFEST_FILE, PrepareConfig
    from training.verl.prepare import prepare_verl as run_prepare

    with _usage_errors():
        config = PrepareConfig(
            sessions=sessions, out=str(out), model=model, val_sessions=val_sessions, context=context,
            context_window=context_window, max_new_tokens=max_new_tokens, max_examples=max_examples, seed=seed,
            missing_rationale=missing_rationale, workers=workers,
        )
        writable_dir(out)
        _refuse_other_prepared_config(out / MANIFEST_FILE, config)
        if val_sessions is not None:  # read only after the whole training split is built: check it first
            resolve_sessions(val_sessions)
        manifest = run_prepare(config)
    for name, split in manifest["splits"].items():
        Console().print(
            f"{name}: {split['rl_rows']} RL rows -> {out / split['rl_file']}, {split['sft_rows']} SFT rows -> "
            f"{out / split['sft_file']} ({split['missing_rationale']} steps without a rationale), "
            f"longest prompt {split['longest_prompt_tokens']} tokens",
            markup=False,
        )


def _refuse_other_prepared_config(manifest: Path, config) -> None:
    """Refuse an --out that holds prepare-verl files of another config: the files this run does not
    rewrite (rl_val.parquet without --val-sessions, which the verl launcher picks up) would be stale."""
    import dataclasses
    import json

    from shop_env.preflight import config_changes

    if not manifest.exists():
        return
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))["config"]
        changes = config_changes(previous, json.loads(json.dumps(dataclasses.asdict(config))))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        changes = [f"its {manifest.name} does not read back ({err})"]
    if changes:
        raise typer.BadParameter(
            f"{manifest.parent} holds prepare-verl files of another config ({'; '.join(changes)}); choose another --out",
            param_hint="--out",
        )


PRESET_HELP = "cpu (embedded SmolLM2, short contexts, a few steps) or paper (Qwen2.5-3B-Instruct, 32k, bf16); flags override it."
LORA_RANK_HELP = "Train rank-N LoRA adapters (peft) instead of every weight; model/ then holds the adapter. 0: full fine-tuning."
LORA_ALPHA_HELP = "LoRA scale alpha (the update is alpha / rank * B A); default 2 x --lora-rank."


def _run_training(run, config, resume: bool) -> None:
    """Run a training command; a bad config or run directory is a usage error, not a traceback."""
    from rich.console import Console

    from training.run_dir import NOTHING_TO_DO

    with _usage_errors():
        summary = run(config, resume=resume)
    nothing_to_do = summary.pop(NOTHING_TO_DO, None)
    if nothing_to_do:
        Console().print(nothing_to_do, markup=False)
    Console().print_json(data={k: v for k, v in summary.items() if not isinstance(v, dict)} or summary)


@app.command()
def sft(
    preset: str | None = typer.Option(None, help=PRESET_HELP),
    model: str | None = typer.Option(None, help="smollm2, tiny-random, an HF id or a model directory."),
    sessions: str | None = typer.Option(None, help="Training sessions: bundled:train, or a file/directory load_sessions reads."),
    out: str | None = typer.Option(None, help="Run directory (config.json, metrics.jsonl, tensorboard/, checkpoints/, model/, plots/)."),
    max_steps: int | None = typer.Option(None, help="Stop after N optimizer steps."),
    max_examples: int | None = typer.Option(None, help="Train on a seeded subset of N steps."),
    epochs: float | None = typer.Option(None, help="Passes over the data (paper: 4)."),
    learning_rate: float | None = typer.Option(None, help="Learning rate (paper: 2e-5)."),
    context: str | None = typer.Option(None, help="whole (past pages + actions) or latest (past actions + current page)."),
    context_window: int | None = typer.Option(None, help="Prompt + response tokens (paper: 32768)."),
    max_new_tokens: int | None = typer.Option(None, help="Tokens kept for the response (eval must use the same; default 256)."),
    seed: int | None = typer.Option(None, help="Seeds the subset, the data order and the initialization."),
    lora_rank: int | None = typer.Option(None, help=LORA_RANK_HELP),
    lora_alpha: int | None = typer.Option(None, help=LORA_ALPHA_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
) -> None:
    """SFT cold start: learn the rationale + action JSON from recorded sessions (TRL SFTTrainer)."""
    from training.presets import sft_config
    from training.sft import run_sft

    try:
        config = sft_config(preset, model=model, sessions=sessions, out=out, max_steps=max_steps, max_examples=max_examples,
                            epochs=epochs, learning_rate=learning_rate, context=context,
                            context_window=context_window, max_new_tokens=max_new_tokens, seed=seed, lora_rank=lora_rank, lora_alpha=lora_alpha)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    _run_training(run_sft, config, resume)


@app.command()
def grpo(
    preset: str | None = typer.Option(None, help=PRESET_HELP),
    model: str | None = typer.Option(None, help="Policy to start from, usually an SFT run's model/ directory."),
    sessions: str | None = typer.Option(None, help="Training sessions: bundled:train, or a file/directory load_sessions reads."),
    out: str | None = typer.Option(None, help="Run directory (config.json, metrics.jsonl, tensorboard/, checkpoints/, model/, plots/)."),
    max_steps: int | None = typer.Option(None, help="Optimizer steps (paper: 500)."),
    max_examples: int | None = typer.Option(None, help="Draw prompts from a seeded subset of N steps."),
    ablation: str | None = typer.Option(None, help="Table 4 row: no_format, no_rationale, no_dars, binary."),
    baseline: str | None = typer.Option(None, help="Table 2 baseline: rl_binary (binary action reward only)."),
    action_reward: str | None = typer.Option(None, help="hierarchical (Shop-R1) or binary."),
    alpha: float | None = typer.Option(None, help="Self-certainty weight (paper: 0.005)."),
    num_generations: int | None = typer.Option(None, help="Group size: completions per prompt."),
    learning_rate: float | None = typer.Option(None, help="Learning rate (paper: 1e-7)."),
    context: str | None = typer.Option(None, help="whole (past pages + actions) or latest (past actions + current page)."),
    context_window: int | None = typer.Option(None, help="Prompt + response tokens (paper: 32768)."),
    max_new_tokens: int | None = typer.Option(None, help="Tokens kept for the response (eval must use the same; default 256)."),
    seed: int | None = typer.Option(None, help="Seeds the subset, the data order and sampling."),
    lora_rank: int | None = typer.Option(None, help=LORA_RANK_HELP + " From an SFT LoRA run, a new adapter on the merged SFT model."),
    lora_alpha: int | None = typer.Option(None, help=LORA_ALPHA_HELP),
    probe_sessions: str | None = typer.Option(None, help="Held-out sessions scored every --probe-every steps (probe.jsonl)."),
    probe_limit: int | None = typer.Option(None, help="Probe the first N held-out steps (default 24)."),
    probe_every: int | None = typer.Option(None, help="Optimizer steps between probes (default 10)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
) -> None:
    """Shop-R1 GRPO: hybrid reward (format + hierarchical DARS + alpha x self-certainty), KL to the start policy."""
    from training.grpo import run_grpo
    from training.presets import grpo_config

    try:
        config = grpo_config(preset, ablation=ablation, baseline=baseline, action_reward=action_reward, alpha=alpha,
                             model=model, sessions=sessions, out=out, max_steps=max_steps, max_examples=max_examples,
                             num_generations=num_generations, learning_rate=learning_rate, context=context,
                             context_window=context_window, max_new_tokens=max_new_tokens, seed=seed, lora_rank=lora_rank, lora_alpha=lora_alpha,
                             probe_sessions=probe_sessions, probe_limit=probe_limit, probe_every=probe_every)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    _run_training(run_grpo, config, resume)


@app.command()
def train(
    preset: str | None = typer.Option(None, help=PRESET_HELP),
    model: str | None = typer.Option(None, help="Base model: smollm2, tiny-random, an HF id or a model directory."),
    sessions: str | None = typer.Option(None, help="Training sessions: bundled:train, or a file/directory load_sessions reads."),
    out: str | None = typer.Option(None, help="Run directory; stages write sft/, grpo/, eval/ under it."),
    max_steps: int | None = typer.Option(None, help="Cap the optimizer steps of both stages (a smoke test: 2)."),
    max_examples: int | None = typer.Option(None, help="Train on a seeded subset of N steps."),
    ablation: str | None = typer.Option(None, help="Table 4 row: no_format, no_rationale, no_dars, binary, no_sft."),
    baseline: str | None = typer.Option(None, help="Table 2 baseline: rl_binary (with --no-sft: RL (binary) from the base model)."),
    action_reward: str | None = typer.Option(None, help="hierarchical (Shop-R1) or binary."),
    alpha: float | None = typer.Option(None, help="Self-certainty weight (paper: 0.005)."),
    no_sft: bool = typer.Option(False, "--no-sft", help="Skip the SFT warm start: GRPO from the base model."),
    context: str | None = typer.Option(None, help="whole (past pages + actions) or latest (past actions + current page)."),
    context_window: int | None = typer.Option(None, help="Prompt + response tokens (paper: 32768)."),
    max_new_tokens: int | None = typer.Option(None, help="Tokens kept for the response (eval must use the same; default 256)."),
    eval_sessions: str | None = typer.Option(None, help="Held-out sessions to evaluate on (default bundled:test)."),
    eval_limit: int | None = typer.Option(None, help="Evaluate the first N held-out steps (a fixed subset)."),
    seed: int | None = typer.Option(None, help="Seeds every stage."),
    lora_rank: int | None = typer.Option(None, help=LORA_RANK_HELP + " Both stages: GRPO trains a new adapter on the merged SFT one."),
    lora_alpha: int | None = typer.Option(None, help=LORA_ALPHA_HELP),
    resume: bool = typer.Option(False, "--resume", help="Skip finished stages, continue the unfinished one from its checkpoint."),
) -> None:
    """SFT, then Shop-R1 GRPO from the SFT model, then evaluation (exact / type accuracy, type macro F1)."""
    from training.pipeline import run_train
    from training.presets import train_config

    try:
        config = train_config(preset, out=out, model=model, no_sft=no_sft, ablation=ablation, baseline=baseline,
                              action_reward=action_reward, alpha=alpha, max_steps=max_steps, eval_sessions=eval_sessions,
                              eval_limit=eval_limit, sessions=sessions, max_examples=max_examples,
                              context=context, context_window=context_window, max_new_tokens=max_new_tokens, seed=seed,
                              lora_rank=lora_rank, lora_alpha=lora_alpha)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    _run_training(run_train, config, resume)


def main() -> None:
    # Before any command imports torch: OpenMP threads that spin while waiting slow torch several-fold
    # when the cores are shared (measured: a tiny-model step took 7.2 s spinning, 0.54 s passive).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    stay_offline()  # before any command imports huggingface_hub, transformers or TRL
    try:
        app()
    except ModuleNotFoundError as err:  # a command of an extra the install lacks: say which, not a traceback
        extra = EXTRA_FOR_MODULE.get((err.name or "").split(".")[0])
        if extra is None:
            raise
        typer.echo(f"Error: this command needs {err.name}, which comes with shop-r1's [{extra}] extra: "
                   f"pip install 'shop-r1[{extra}]' (on a CPU machine, pip install torch==2.13.0 first)", err=True)
        raise SystemExit(1) from None


EXTRA_FOR_MODULE = {"torch": "models", "transformers": "models", "peft": "models", "accelerate": "models",
                    "gguf": "models", "trl": "train", "tensorboard": "train", "verl": "gpu", "vllm": "gpu",
                    "fastapi": "server", "uvicorn": "server", "websockets": "server", "openai": "api",
                    "llguidance": "models"}
"""Which extra brings a module that the core install lacks (pyproject.toml)."""


if __name__ == "__main__":
    main()
