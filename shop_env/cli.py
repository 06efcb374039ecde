"""The `shop-r1` command line. Each command is a thin typer function that imports its
implementation lazily, so `shop-r1 --help` stays fast and torch loads only when a command needs it."""

from __future__ import annotations

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
