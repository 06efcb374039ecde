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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
