"""`--policy openai:MODEL` against a real OpenAI-compatible server on loopback: `transformers serve`
over the tiny random model (its answers are noise; the plumbing, report, usage and resume are real)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agents.models import resolve_model
from agents.openai_policy import OpenAIPolicy
from shop_env.replay_env import observation_at
from shop_env.loaders import resolve_sessions

SECRET = "sk-test-never-written-anywhere-4f1c"
REQUEST_LINE = '"POST /v1/chat/completions HTTP/1.1" 200'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    """`transformers serve` pinned to the tiny model; yields (base_url, model, log path)."""
    model = str(resolve_model("tiny-random"))
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [str(Path(sys.executable).parent / "transformers"), "serve", model, "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "info", "--device", "cpu"]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(log, "w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment)
    base_url = f"http://127.0.0.1:{port}/v1"
    request = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.post(f"{base_url}/chat/completions", json=request, timeout=30).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"transformers serve not ready after 120 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield base_url, model, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _eval_command(base_url: str, model: str, out: Path, limit: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "shop_r1", "eval", "--policy", f"openai:{model}", "--base-url", base_url,
            "--sessions", "bundled:test", "--limit", str(limit), "--context", "latest", "--context-window", "1024",
            "--max-new-tokens", "12", "--max-concurrency", "2", "--out", str(out), *extra]


def _requests(log: Path) -> int:
    return log.read_text().count(REQUEST_LINE)


def _headings(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith("#") or line.startswith("| Model")]


def test_eval_of_an_api_model_has_the_hf_report_layout_and_keeps_the_key_secret(api_server, tmp_path):
    base_url, model, log = api_server
    out = tmp_path / "api"
    before = _requests(log)
    done = subprocess.run(_eval_command(base_url, model, out, 5), env={**os.environ, "OPENAI_API_KEY": SECRET},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert _requests(log) - before == 5
    metrics = json.loads((out / "metrics.json").read_text())
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert metrics["n_steps"] == len(records) == 5
    assert metrics["tokens"]["prompt_total"] == sum(r["prompt_tokens"] for r in records) > 5 * 100  # the server's usage
    assert metrics["tokens"]["completion_total"] == sum(r["completion_tokens"] for r in records) > 0
    assert metrics["self_certainty"]["count"] == 0 and "API policy" in metrics["self_certainty"]["absent_because"]
    report = (out / "report.md").read_text()
    assert "Self-certainty of the rationale: not computed (an API policy" in report

    hf_out = tmp_path / "hf"
    from agents.evaluate import EvalConfig, run_eval

    run_eval(EvalConfig(policy="tiny-random", sessions="bundled:test", limit=5, context="latest", context_window=1024,
                        max_new_tokens=12, out=hf_out, progress=False))
    assert _headings(report) == [h.replace("tiny-random", f"openai:{model}") for h in _headings((hf_out / "report.md").read_text())]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in hf_out.iterdir())
    for path in out.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in done.stdout + done.stderr and SECRET not in log.read_text()


def test_a_killed_api_eval_resumes_without_asking_an_answered_step_again(api_server, tmp_path):
    base_url, model, log = api_server
    out, limit = tmp_path / "killed", 14
    process = subprocess.Popen(_eval_command(base_url, model, out, limit), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    predictions = out / "predictions.jsonl"
    deadline = time.monotonic() + 300
    while not (predictions.exists() and predictions.read_text().count("\n") >= 4):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.poll() is not None else "timeout"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    kept = [line for line in predictions.read_text().split("\n") if line.strip()]
    answered = {(r["session_id"], r["step"]) for r in map(json.loads, kept[:-1])}  # the last line may be torn
    assert 4 <= len(kept) < limit, "the run finished before it was killed: nothing to resume"
    assert not (out / "metrics.json").exists()  # no result of the killed run is shown as final

    before = _requests(log)
    done = subprocess.run(_eval_command(base_url, model, out, limit, "--resume"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    steps = [(r["session_id"], r["step"]) for r in records]
    assert len(steps) == len(set(steps)) == limit == metrics["n_steps"]
    assert answered <= set(steps) and metrics["resumed_steps"] >= len(answered)
    assert _requests(log) - before == limit - metrics["resumed_steps"]  # every other step asked exactly once
    assert re.search(r"\d+ steps carried over from the interrupted run", (out / "report.md").read_text())

    other = subprocess.run(_eval_command(base_url, model, out, limit + 1, "--resume"), capture_output=True, text=True, timeout=600)
    assert other.returncode != 0 and "other settings" in other.stderr and "limit: 14 -> 15" in other.stderr


def _mock_client(replies: list[httpx.Response], seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return replies[min(len(seen), len(replies)) - 1]

    return httpx.Client(transport=httpx.MockTransport(handler))


def _completion(text: str) -> httpx.Response:
    return httpx.Response(200, json={
        "id": "1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    })


@pytest.fixture
def observation():
    return observation_at(resolve_sessions("bundled:test")[0], 0, "latest")


def test_transient_failures_are_retried_with_backoff_and_client_errors_are_not(observation, tiny_tokenizer, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    fast_retry = {"retry-after-ms": "1"}
    answer = '{"rationale": "Leaving.", "action": {"type": "terminate"}}'
    seen: list[httpx.Request] = []
    replies = [httpx.Response(429, headers=fast_retry), httpx.Response(503, headers=fast_retry), _completion(answer)]
    policy = OpenAIPolicy("m", base_url="http://api.test/v1", tokenizer=tiny_tokenizer, http_client=_mock_client(replies, seen),
                          context="latest", context_window=1024, max_new_tokens=32)
    [output] = policy.act([observation])
    assert len(seen) == 3 and output.action.type == "terminate" and (output.prompt_tokens, output.completion_tokens) == (7, 3)
    assert seen[0].headers["authorization"] == f"Bearer {SECRET}"
    body = json.loads(seen[0].content)
    assert body["max_tokens"] == 32 and body["messages"][0]["role"] == "system" and "response_format" not in body

    seen.clear()
    refused = OpenAIPolicy("m", base_url="http://api.test/v1", tokenizer=tiny_tokenizer,
                           http_client=_mock_client([httpx.Response(400, json={"error": {"message": "prompt too long"}})], seen))
    [output] = refused.act([observation])
    assert len(seen) == 1 and output.action is None and "prompt too long" in output.error

    seen.clear()
    unauthorized = OpenAIPolicy("m", base_url="http://api.test/v1", tokenizer=tiny_tokenizer,
                                http_client=_mock_client([httpx.Response(401, json={"error": {"message": "bad key"}})], seen))
    import openai

    with pytest.raises(openai.AuthenticationError):
        unauthorized.act([observation])
    assert len(seen) == 1


def test_constrained_requests_carry_the_schema_with_the_pages_names(observation, tiny_tokenizer):
    from shop_env.simplify_html import interactive_elements

    seen: list[httpx.Request] = []
    policy = OpenAIPolicy("m", base_url="http://api.test/v1", tokenizer=tiny_tokenizer, constrained=True,
                          http_client=_mock_client([_completion("{}")], seen))
    policy.act([observation])
    schema = json.loads(seen[0].content)["response_format"]["json_schema"]["schema"]
    click = next(v for v in schema["properties"]["action"]["anyOf"] if v["properties"]["type"]["const"] == "click")
    assert click["properties"]["name"]["enum"] == interactive_elements(observation["page"])


def test_the_openai_api_without_a_key_is_refused_before_any_request(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIPolicy("gpt-4.1")
