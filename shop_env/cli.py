"""The `shop-r1` command line. Each command is a thin typer function that imports its
implementation lazily, so `shop-r1 --help` stays fast and torch loads only when a command needs it."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    name="shop-r1",
    help="Shop-R1: replay and score shopping sessions, evaluate and train LLM shoppers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.command()
def replay(
    sessions: str = typer.Option("bundled:test", help="bundled:train|bundled:test or a file/directory load_sessions reads."),
    session_id: str | None = typer.Option(None, help="Session to replay; default: drawn with --seed."),
    policy: str = typer.Option("oracle", help="oracle, terminate, random, heuristic, smollm2, tiny-random, an HF id or a model path."),
    context: str = typer.Option("whole", help="whole (past pages + actions) or latest (past actions + current page)."),
    seed: int = typer.Option(0, help="Seeds the session draw and the policy."),
    max_tokens: int = typer.Option(2048, help="Prompt token budget for LLM policies (the paper uses 32768 on GPUs)."),
) -> None:
    """Replay one session step by step: what the page offers, what the policy did, what the human did, the reward."""
    from agents.policies import make_policy
    from shop_env.loaders import resolve_sessions
    from shop_env.replay import replay_session

    loaded = resolve_sessions(sessions)
    chosen = make_policy(policy, sessions=loaded, seed=seed, max_tokens=max_tokens, context=context)
    replay_session(loaded, chosen, session_id=session_id, context=context, seed=seed)


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
        f"p90 {stats['page_chars']['p90']} chars"
    )


@app.command("prepare-verl")
def prepare_verl(
    sessions: str = typer.Option(..., help="Training sessions: bundled:train, or a file/directory load_sessions reads."),
    out: Path = typer.Option(..., help="Directory for rl.parquet, sft.parquet (+ *_val.parquet) and manifest.json."),
    val_sessions: str | None = typer.Option(None, help="Held-out sessions for verl's validation files."),
    model: str = typer.Option("Qwen/Qwen2.5-3B-Instruct", help="Whose tokenizer counts prompt tokens: the model verl trains."),
    context: str = typer.Option("whole", help="whole (past pages + actions) or latest (past actions + current page)."),
    context_window: int = typer.Option(32_768, help="Prompt + response tokens (paper: 32k)."),
    response_tokens: int = typer.Option(256, help="Tokens reserved for the response."),
    max_examples: int | None = typer.Option(None, help="Seeded subset of this many training steps."),
    seed: int = typer.Option(0, help="Seeds the subset."),
    missing_rationale: str = typer.Option("skip", help="SFT steps without a rationale: skip or empty."),
    workers: int = typer.Option(1, help="Processes building prompts."),
) -> None:
    """Write verl's parquet files (GRPO prompts + gold actions, SFT chats) from recorded sessions."""
    from rich.console import Console

    from training.verl.prepare import PrepareConfig
    from training.verl.prepare import prepare_verl as run_prepare

    manifest = run_prepare(PrepareConfig(
        sessions=sessions, out=str(out), model=model, val_sessions=val_sessions, context=context,
        context_window=context_window, response_tokens=response_tokens, max_examples=max_examples, seed=seed,
        missing_rationale=missing_rationale, workers=workers,
    ))
    for name, split in manifest["splits"].items():
        Console().print(
            f"{name}: {split['rl_rows']} RL rows -> {out / split['rl_file']}, {split['sft_rows']} SFT rows -> "
            f"{out / split['sft_file']} ({split['missing_rationale']} steps without a rationale), "
            f"longest prompt {split['longest_prompt_tokens']} tokens"
        )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
