"""Large inputs: OPeRA-sized pages (100k-600k characters), a 5 MB page and a 200-step session.

1. simplify_html vs the floor, lxml parse + serialize (timed with `simplify_throughput.paired`), on raw
   pages of 100k, 300k and 600k characters built from the procedural shop's search and product pages
   with the noise real retail pages carry (inline scripts and JSON, styles, svg icons, hidden blocks,
   comments, long class lists, data-* attributes; no `name` attributes, so simplify assigns them).
   Pinned to one core.
2. Memory: each scenario runs in a fresh interpreter (multiprocessing "spawn") that reports its peak
   RSS (ru_maxrss), its RSS once its inputs are built, and the scenario's wall time:
   - simplify_5mb: simplify_html on a 5 MB raw page;
   - env_200_steps: a 200-step session of ~100k-character simplified pages replayed through the env
     (context="whole") with the oracle's responses;
   - context_whole_session: whole-session prompts (32k-token budget, the real SmolLM2 tokenizer) for
     steps 0, 49, 99, 149 and 199 of that session (--quick: step 199 only);
   - context_5mb_page: a prompt whose current page is the 5 MB page's simplified HTML.
"""

from __future__ import annotations

import multiprocessing
import random
import re
from collections.abc import Callable

from benchmarks import current_rss_mb, peak_rss_mb, pinned_to_one_core, timed
from benchmarks.simplify_throughput import paired

PAGE_SIZES = (100_000, 300_000, 600_000)
"""Raw page sizes in characters: OPeRA's median is about 100k, its largest about 600k (docs/contract.md, data sources)."""
FIVE_MB = 5 * 2**20
SESSION_STEPS = 200
SESSION_PAGE_CHARS = 100_000
TARGET_RATIO = 0.5
"""simplify_html over lxml parse + serialize on the same pages (issue 8)."""

_CLASSES = "s-result-item s-asin sg-col-0-of-12 sg-col-16-of-20 s-widget-spacing-small sg-col a-section"
_NAME_ATTRIBUTE = re.compile(r' name="[^"]*"')
_OPEN_TAG = re.compile(r"<(div|a|span|li)\b")


def _noise(rng: random.Random, index: int) -> str:
    """One chunk of what simplify throws away: a script, a style, an icon, a hidden block or a comment."""
    kind = rng.randrange(5)
    if kind == 0:
        blob = ",".join(f'"k{index}_{i}":"{rng.getrandbits(64):x}"' for i in range(rng.randint(20, 80)))
        return f'<script type="application/json" data-a-state="{{&quot;key&quot;:&quot;s{index}&quot;}}">{{{blob}}}</script>'
    if kind == 1:
        rules = "".join(f".c{index}-{i}{{margin:{i}px;color:#{rng.getrandbits(24):06x}}}" for i in range(rng.randint(10, 40)))
        return f"<style>{rules}</style>"
    if kind == 2:
        return f'<svg width="16" height="16" viewBox="0 0 16 16"><path d="M{index} 0L{rng.randint(1, 16)} 8z"/></svg>'
    if kind == 3:
        return f'<div style="display:none" aria-hidden="true"><a href="/track/{index}">Hidden offer {index}</a></div>'
    return f"<!-- slot {index}: {rng.getrandbits(128):x} -->"


def _shop_bodies(seed: int) -> Callable[[], str]:
    """An endless supply of procedural-shop page bodies (search results and product pages)."""
    from shop_env.procedural_shop import Catalog, SearchState
    from shop_env.procedural_shop.pages import render_product, render_search

    catalog = Catalog.generate()
    rng = random.Random(seed)
    queries = sorted({word for product in catalog.products[:400] for word in product.title.lower().split()[:3]})

    def body() -> str:
        if rng.random() < 0.5:
            page = render_search(catalog, SearchState(query=rng.choice(queries)), cart_count=0)
        else:
            product = rng.choice(catalog.products)
            related = rng.sample(catalog.products, 6)
            page = render_product(catalog, product, {}, related, cart_count=0, from_search=None)
        html = page.html
        return html[html.index("<body>") + len("<body>") : html.rindex("</body>")]

    return body


def noisy_shop_page(target_chars: int, seed: int = 0) -> str:
    """A raw page of about `target_chars` characters: procedural-shop content in retail-page noise."""
    rng = random.Random(seed)
    next_body = _shop_bodies(seed)
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Procedural Shop</title>'
        '<link rel="stylesheet" href="/static/site.css"><script>window.ue_t0 = +new Date();</script></head>'
        '<body class="a-m-us a-aui_72554-c">'
    )
    parts, size, index = [head], len(head), 0
    while size < target_chars:
        body = _NAME_ATTRIBUTE.sub("", next_body())
        body = _OPEN_TAG.sub(
            lambda m: f'<{m.group(1)} class="{_CLASSES}" data-index="{rng.randrange(10**6)}"', body
        )
        block = f'<div class="sg-row" data-cel-widget="w{index}">{_noise(rng, index)}{body}{_noise(rng, index + 1)}</div>'
        parts.append(block)
        size += len(block)
        index += 2
    parts.append("</body></html>")
    return "".join(parts)


def large_session(n_steps: int = SESSION_STEPS, page_chars: int = SESSION_PAGE_CHARS, seed: int = 0):
    """A session of `n_steps` clicks on simplified pages of about `page_chars` characters each."""
    from shop_env.session import CLICK, TERMINATE, Action, Session, Step
    from shop_env.simplify_html import interactive_elements, simplify_html

    rng = random.Random(seed)
    # simplify_html keeps about a quarter of these raw pages
    pages = [simplify_html(noisy_shop_page(page_chars * 4, seed=seed * 1000 + i)) for i in range(4)]
    steps = []
    for index in range(n_steps):
        page = pages[index % len(pages)]
        last = index == n_steps - 1
        action = Action(TERMINATE) if last else Action(CLICK, name=rng.choice(interactive_elements(page)))
        steps.append(Step(observation=page, action=action, rationale=f"Step {index}: this looks right."))
    return Session(session_id=f"large-{n_steps}", steps=steps, source="benchmark")


# ---- memory scenarios, one fresh interpreter each ----


def _scenario_simplify_5mb(quick: bool) -> dict:
    from shop_env.simplify_html import simplify_html

    page = noisy_shop_page(FIVE_MB)
    before = current_rss_mb()
    simplified, seconds = timed(lambda: simplify_html(page))
    return {"input_chars": len(page), "output_chars": len(simplified), "rss_after_inputs_mb": before, "seconds": seconds}


def _scenario_env_200_steps(quick: bool) -> dict:
    from shop_env.replay_env import SessionReplayEnv
    from shop_env.response_format import format_response

    session = large_session()
    responses = [format_response(step.rationale, step.action) for step in session.steps]
    env = SessionReplayEnv([session], context="whole")
    before = current_rss_mb()

    def replay() -> float:
        env.reset(options={"index": 0})
        return sum(env.step(text)[1] for text in responses)

    total, seconds = timed(replay)
    return {
        "steps": len(session.steps),
        "session_chars": sum(len(step.observation) for step in session.steps),
        "total_reward": total,
        "rss_after_inputs_mb": before,
        "seconds": seconds,
    }


def _scenario_context_whole_session(quick: bool) -> dict:
    from agents.context_builder import build_prompt
    from agents.models import load_tokenizer
    from shop_env.replay_env import observation_at

    session = large_session()
    tokenizer = load_tokenizer("smollm2")
    before = current_rss_mb()
    last = len(session.steps) - 1
    indices = (last,) if quick else (0, last // 4, last // 2, 3 * last // 4, last)
    built, seconds = timed(
        lambda: [build_prompt(observation_at(session, i, "whole"), tokenizer, context_window=32_768) for i in indices]
    )
    return {
        "session_steps": len(session.steps),
        "prompt_steps": list(indices),
        "max_prompt_tokens": max(prompt.n_tokens for prompt in built),
        "pages_dropped_at_last_step": built[-1].dropped.pages,
        "rss_after_inputs_mb": before,
        "seconds": seconds,
    }


def _scenario_context_5mb_page(quick: bool) -> dict:
    from agents.context_builder import build_prompt
    from agents.models import load_tokenizer
    from shop_env.replay_env import observation_at
    from shop_env.session import TERMINATE, Action, Session, Step
    from shop_env.simplify_html import simplify_html

    page = simplify_html(noisy_shop_page(FIVE_MB))
    session = Session("five-mb", [Step(observation=page, action=Action(TERMINATE))])
    tokenizer = load_tokenizer("smollm2")
    before = current_rss_mb()
    prompt, seconds = timed(lambda: build_prompt(observation_at(session, 0, "whole"), tokenizer, context_window=32_768))
    return {
        "page_chars": len(page),
        "prompt_tokens": prompt.n_tokens,
        "page_chars_cut": prompt.dropped.page_chars,
        "rss_after_inputs_mb": before,
        "seconds": seconds,
    }


SCENARIOS: dict[str, Callable[[bool], dict]] = {
    "simplify_5mb": _scenario_simplify_5mb,
    "env_200_steps": _scenario_env_200_steps,
    "context_whole_session": _scenario_context_whole_session,
    "context_5mb_page": _scenario_context_5mb_page,
}
"""Each takes `quick`; only the whole-session context one shrinks with it (one prompt instead of five)."""


def _in_child(name: str, quick: bool) -> dict:
    result = SCENARIOS[name](quick)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run_scenario(name: str, quick: bool = False) -> dict:
    """Run one memory scenario in a fresh interpreter so its peak RSS is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_in_child, (name, quick))


def run(quick: bool = False) -> dict:
    per_size = 2 if quick else 4
    rounds = 5 if quick else 15
    with pinned_to_one_core() as core:
        timed_pages = {
            size: paired([noisy_shop_page(size, seed=size + i) for i in range(per_size)], rounds) for size in PAGE_SIZES
        }
    memory = {name: run_scenario(name, quick) for name in SCENARIOS}
    numbers: dict = {}
    for size, result in timed_pages.items():
        numbers[f"simplify_{size // 1000}k_mb_s"] = result.simplify_mb_s
        numbers[f"lxml_{size // 1000}k_mb_s"] = result.lxml_mb_s
    numbers |= {"pages_per_size": per_size, "rounds": rounds}
    for name, result in memory.items():
        numbers |= {f"{name}/{key}": (round(value, 2) if isinstance(value, float) else value) for key, value in result.items()}
    return {
        "benchmark": "large_inputs",
        "ratios": {f"simplify_vs_lxml_{size // 1000}k": result.ratio for size, result in timed_pages.items()},
        "targets": {f"simplify_vs_lxml_{size // 1000}k": TARGET_RATIO for size in PAGE_SIZES},
        "numbers": numbers,
        "pinned_core": core,
        "notes": (
            "Ratios: simplify_html over lxml.html parse + tostring on the same raw pages, timed page by page "
            "in alternating order (`simplify_throughput.paired`: median over rounds), one core; MB/s: best round, "
            "MB = 1e6 bytes of UTF-8. Memory scenarios: one spawned interpreter each (not pinned); peak_rss_mb "
            "is that interpreter's ru_maxrss, imports and inputs included."
        ),
    }
