"""The env server on loopback: `shop-r1 serve` in a subprocess, driven by real HTTP and WebSocket clients."""

import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from shop_env.client import EnvClient, EnvServerError
from shop_env.loaders import resolve_sessions
from shop_env.replay_env import SessionReplayEnv
from shop_env.response_format import EXAMPLE_RESPONSES, format_response
from shop_env.rewards import RewardConfig, max_reward
from shop_env.server import ServerConfig, create_app, observation_json

SESSIONS = "bundled:test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen | None = None, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stderr.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise TimeoutError(f"no healthy server at {url} after {seconds} s")


@pytest.fixture(scope="module")
def server_url():
    """`shop-r1 serve` as a user runs it, on a free loopback port."""
    port = _free_port()
    command = [sys.executable, "-m", "shop_r1", "serve", "--sessions", SESSIONS, "--port", str(port),
               "--max-envs", "16", "--max-request-bytes", "20000"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _actions(session, lane: int) -> list:
    """Every kind of agent output, mixed per step: correct, wrong, malformed, objects, self-certainty."""
    actions = []
    for t, step in enumerate(session.steps):
        right = format_response("I think so.", step.action)
        kind = (t + lane) % 5
        actions.append(
            right if kind == 0
            else "not json at all {" if kind == 1
            else {"response": right, "self_certainty": 1.5} if kind == 2
            else step.action.to_dict() if kind == 3
            else json.dumps(EXAMPLE_RESPONSES["terminate"])
        )
    return actions


def _replay_remote(url: str, index: int, actions: list) -> list:
    with EnvClient(url) as env:
        observation, info = env.reset(options={"index": index})
        pages, rewards = [observation["page"]], []
        for action in actions:
            observation, reward, terminated, truncated, info = env.step(action)
            pages.append(observation["page"])
            rewards.append((reward, info["reward"]["total"], info["parse_error"], terminated))
        assert env.state()["done"] and terminated
        return pages, rewards


def _replay_local(index: int, actions: list) -> list:
    env = SessionReplayEnv(SESSIONS)
    observation, _ = env.reset(options={"index": index})
    pages, rewards = [observation["page"]], []
    for action in actions:
        observation, reward, terminated, _, info = env.step(action)
        pages.append(observation["page"])
        rewards.append((reward, info["reward"].total, info["parse_error"], terminated))
    return pages, rewards


def test_eight_concurrent_replays_end_with_the_in_process_envs_rewards(server_url):
    sessions = resolve_sessions(SESSIONS)
    lanes = range(8)
    plans = {lane: _actions(sessions[lane], lane) for lane in lanes}
    with ThreadPoolExecutor(max_workers=8) as pool:
        remote = dict(zip(lanes, pool.map(lambda lane: _replay_remote(server_url, lane, plans[lane]), lanes)))
    for lane in lanes:
        assert remote[lane] == _replay_local(lane, plans[lane])
    assert sum(len(plan) for plan in plans.values()) > 24 and any(r[0] > 1 for lane in lanes for r in remote[lane][1])


def test_http_reset_step_state_and_its_errors(server_url):
    with httpx.Client(base_url=server_url, timeout=30) as http:
        assert http.get("/health").json()["status"] == "healthy"
        schema = http.get("/schema").json()
        assert set(schema) == {"action", "observation", "state"} and "rationale" in schema["action"]["properties"]
        reply = http.post("/reset", json={"options": {"index": 2}}).json()
        episode = reply["episode_id"]
        expected, _ = SessionReplayEnv(SESSIONS).reset(options={"index": 2})
        assert reply["observation"] == observation_json(expected) and reply["done"] is False
        session = resolve_sessions(SESSIONS)[2]
        for step in session.steps:
            reply = http.post("/step", json={"episode_id": episode, "action": format_response("ok", step.action)}).json()
        assert reply["done"] and reply["reward"] == pytest.approx(max_reward(step.action, RewardConfig()))
        assert http.get("/state", params={"episode_id": episode}).json()["step_count"] == len(session.steps)

        def refused(response, status, words):
            assert response.status_code == status and words in response.json()["detail"], response.text

        refused(http.post("/step", json={"episode_id": episode, "action": "x"}), 409, "is over")
        refused(http.post("/step", json={"action": "x"}), 400, "episode_id is required")
        refused(http.post("/step", json={"episode_id": "nope", "action": "x"}), 404, "no open episode")
        refused(http.post("/reset", json={"options": {"session_id": "no-such-session"}}), 400, "unknown session_id")
        refused(http.post("/reset", json={"options": {"index": 10**6}}), 400, "outside")
        assert http.post("/reset", json={"seed": -1}).status_code == 422  # gymnasium takes seeds >= 0
        refused(http.post("/step", content=b"x" * 30_000, headers={"content-type": "application/json"}), 413, "limit")
        assert http.post("/step", json={"episode_id": episode}).status_code == 422  # no action
        assert http.post("/step", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
        assert http.get("/health").status_code == 200  # none of it hurt the server


def test_websocket_errors_are_messages_and_the_connection_lives_on(server_url):
    with connect(server_url.replace("http", "ws") + "/ws") as ws:
        def ask(raw):
            ws.send(raw)
            return json.loads(ws.recv(timeout=30))

        assert ask("{nope")["data"]["code"] == "INVALID_JSON"
        assert ask(json.dumps({"type": "jump"}))["data"]["code"] == "UNKNOWN_TYPE"
        assert ask(json.dumps({"type": "step", "data": {"action": "x"}}))["data"]["code"] == "SESSION_ERROR"
        assert ask(json.dumps({"type": "step", "data": {"action": "x" * 30_000}}))["data"]["code"] == "REQUEST_TOO_LARGE"
        assert ask(json.dumps({"type": "reset", "data": {"seed": "seven"}}))["data"]["code"] == "VALIDATION_ERROR"
        assert ask(json.dumps({"type": "reset", "data": {"seed": -13091793}}))["data"]["code"] == "VALIDATION_ERROR"
        assert ask(json.dumps([1, 2]))["data"]["code"] == "VALIDATION_ERROR"
        assert ask(json.dumps({"type": "reset", "data": {"seed": 3}}))["type"] == "observation"
        reply = ask(json.dumps({"type": "step", "data": {"action": "\ud800 odd \x00 unicode" * 10}}))
        assert reply["type"] == "observation" and reply["data"]["reward"] == 0.0 and reply["data"]["info"]["parse_error"]
        assert ask(json.dumps({"type": "state"}))["data"]["step_count"] == 1


def test_capacity_is_bounded_and_freed_on_close():
    config = ServerConfig(sessions=SESSIONS, max_envs=2)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url)
        first, second = EnvClient(url), EnvClient(url)
        with pytest.raises(EnvServerError, match="CAPACITY_REACHED"):
            EnvClient(url).reset()
        assert httpx.post(f"{url}/reset", json={}).status_code == 503
        first.close()
        time.sleep(0.2)
        with EnvClient(url) as third:
            assert third.reset(seed=0)[0]["step_index"] == 0
        second.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_server_config_refuses_bad_bounds():
    with pytest.raises(ValueError, match="max_envs"):
        ServerConfig(max_envs=0)
    with pytest.raises(ValueError, match="context"):
        ServerConfig(context="all")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
messages = st.one_of(
    st.text(max_size=200),  # not JSON at all, or any JSON text
    json_values.map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(["reset", "step", "state", "close", "jump", ""]), "data": json_values}).map(json.dumps),
    st.fixed_dictionaries({"type": st.just("step"), "data": st.fixed_dictionaries({"action": json_values})}).map(json.dumps),
    st.fixed_dictionaries({"type": st.just("reset"), "data": st.fixed_dictionaries({"seed": json_values, "options": json_values})}).map(json.dumps),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(messages, min_size=1, max_size=6))
def test_whatever_an_agent_sends_gets_a_reply_and_the_server_lives_on(server_url, sequence):
    with connect(server_url.replace("http", "ws") + "/ws") as ws:
        ws.send(json.dumps({"type": "reset", "data": {"seed": 0}}))
        assert json.loads(ws.recv(timeout=30))["type"] == "observation"
        for raw in sequence:
            ws.send(raw)
            reply = json.loads(ws.recv(timeout=30))
            assert reply["type"] in ("observation", "state", "error", "closed"), reply
            if reply["type"] == "closed":
                break
            if reply["type"] == "error":
                assert reply["data"]["code"] and reply["data"]["message"]
    assert httpx.get(f"{server_url}/health", timeout=10).json()["status"] == "healthy"
