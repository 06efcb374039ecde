"""Check that a rewrite of the scorer scores exactly as an earlier revision did, on fuzzed pairs.

    python experiments/scorer_equivalence.py --old 082eb77 --pairs 100000

Draws `--pairs` (response text, gold action, self-certainty, reward config) cases from a seeded
generator: the human's own actions from the bundled sessions, answered by exact copies, copies with
changed whitespace, case or keys, sibling element names, near and far texts, wrong types, cut-off and
malformed JSON, non-string fields, extra keys, deep nesting, odd unicode (lone surrogates included),
huge numbers, and self-certainties that are None, ordinary, zero, negative, huge, NaN or infinite,
under the default reward, its Table 4 ablations and other thresholds. Each case is scored by this
checkout and, in a subprocess, by the `--old` revision (checked out into a temporary git worktree), and
every field of the two breakdowns is compared (floats exactly). Prints the counts and the first
differences; exits 1 when any case differs.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [
    {}, {"dars_factor": 1.0}, {"action_reward": "binary"}, {"use_format": False}, {"alpha": 0.0},
    {"rouge_threshold": 0.0}, {"rouge_threshold": 1.0}, {"rouge_threshold": 0.5, "dars_factor": 10.0},
]
NOISE = ["", " ", "\t\n", "é", "日本語", "\ud83d", "\U0001f600", "\x00", "\u2028", "<b>", "'", '"', "\\", "}", "{"]


def _gold_actions() -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from shop_env.loaders import bundled_sessions

    return [step.action.to_dict() for session in bundled_sessions("test") for step in session.steps]


def _mutate_string(rng: random.Random, value: str) -> str:
    choice = rng.randrange(9)
    if choice == 0:
        return value
    if choice == 1:
        return f"  {value} "
    if choice == 2:
        return value.upper()
    if choice == 3 and "." in value:
        parts = value.split(".")
        parts[-1] = rng.choice(["add_to_cart", "view_product", "title", "x"])
        return ".".join(parts)
    if choice == 4:
        words = value.split()
        return " ".join(words[: max(1, len(words) - 1)] + [rng.choice(["shoes", "mens", "red", "", "2"])])
    if choice == 5:
        return value + rng.choice(NOISE)
    if choice == 6:
        return rng.choice(NOISE) * rng.randrange(1, 4)
    if choice == 7:
        return " ".join(rng.choice(value.split() or ["x"]) for _ in range(rng.randrange(1, 30)))
    return value[: rng.randrange(len(value) + 1)]


def _response(rng: random.Random, gold: dict) -> str:
    action = dict(gold)
    kind = rng.randrange(20)
    if kind < 6:  # an exact copy, or one with a field changed
        if kind > 1:
            for key in ("name", "text"):
                if key in action and rng.random() < 0.6:
                    action[key] = _mutate_string(rng, action[key])
    elif kind < 9:  # another type
        action = rng.choice([{"type": "terminate"}, {"type": "click", "name": gold.get("name", "x")},
                             {"type": "type_and_submit", "name": gold.get("name", "x"), "text": gold.get("text", "shoes")},
                             {"type": rng.choice(["hover", "scroll", "", "CLICK", None, 3])}])
    elif kind < 11:  # odd field values and extra keys
        action = {**action, rng.choice(["name", "text", "extra", "type"]): rng.choice([None, 1, 1e308, 10**40, [], {}, True, "x"])}
    rationale: object = rng.choice(["I want these.", "", "日本語 \ud83d", "x" * rng.randrange(200), None, 5, ["a"]])
    body: object = {"rationale": rationale, "action": action}
    if kind == 11:
        body = {"action": action}
    elif kind == 12:
        body = {"rationale": "r", "action": action, "other": {"deep": [[[[1]]]]}}
    elif kind == 13:
        body = [body]
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5)
    if kind == 14:
        text = text[: rng.randrange(len(text))]
    elif kind == 15:
        text = f"Sure! Here is my answer:\n```json\n{text}\n```"
    elif kind == 16:
        text = "".join(rng.choice(NOISE + ["{", "}", ":", ","]) for _ in range(rng.randrange(30)))
    elif kind == 17:
        text = text.replace('"action"', '"action"' + " " * rng.randrange(3)).replace(":", " : ")
    elif kind == 18:
        text = "[" * rng.randrange(1, 2000) + "]" * rng.randrange(2000)
    elif kind == 19:
        text = text + rng.choice(["", " trailing", "\n{}", "}"])
    return text


def cases(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    golds = _gold_actions()
    out = []
    for _ in range(count):
        gold = rng.choice(golds)
        certainty = rng.choice([None, None, 0.0, 25.7, 1e-9, -1.0, 999.9, 1000.1, 1e308, float("nan"), float("inf")])
        out.append({"text": _response(rng, gold), "gold": gold, "self_certainty": certainty, "config": rng.choice(CONFIGS)})
    return out


SCORE = r"""
import json, sys
from shop_env.rewards import RewardConfig, score_response
for line in sys.stdin:
    case = json.loads(line)
    b = score_response(case["text"], case["gold"], RewardConfig(**case["config"]), self_certainty=case["self_certainty"])
    predicted = None if b.predicted_action is None else b.predicted_action.to_dict()
    print(json.dumps([b.total, b.format, b.type, b.attribute, b.value, b.action, b.self_certainty, b.rationale, b.error, predicted]))
"""


def score(tree: Path, lines: str) -> list[list]:
    result = subprocess.run([sys.executable, "-c", SCORE], input=lines, capture_output=True, text=True, check=True,
                            cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, errors="surrogatepass")
    return [json.loads(line) for line in result.stdout.splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="git revision of the scorer to compare against")
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    drawn = cases(args.pairs, args.seed)
    lines = "".join(json.dumps(case) + "\n" for case in drawn)
    with tempfile.TemporaryDirectory() as scratch:
        old_tree = Path(scratch) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old_tree), args.old], check=True)
        try:
            old = score(old_tree, lines)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)], check=True)
    new = score(ROOT, lines)
    differing = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    fields = ["total", "format", "type", "attribute", "value", "action", "self_certainty", "rationale", "error", "predicted"]
    print(f"{len(drawn)} cases, {len(differing)} differ (old {args.old} vs this checkout)")
    print(f"scored > 0: {sum(1 for row in new if row[0] > 0)}, format failures: {sum(1 for row in new if row[9] is None)}, "
          f"rationale errors: {sum(1 for row in new if row[8] and 'self-certainty' in row[8])}")
    for i in differing[:10]:
        changes = {name: (a, b) for name, a, b in zip(fields, old[i], new[i], strict=True) if a != b}
        print(json.dumps({"case": drawn[i], "old -> new": changes}, ensure_ascii=True)[:600])
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
