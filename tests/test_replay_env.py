"""The session-replay env: Gymnasium API, teacher-forced replay, scoring, robustness to bad actions."""

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import shop_env
from shop_env.replay_env import SessionReplayEnv, observation_at
from shop_env.spaces import SharedTexts, UnicodeText
from shop_env.response_format import format_response
from shop_env.rewards import RewardConfig, max_reward
from shop_env.session import Action, read_jsonl

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"
GARBAGE = [
    "",
    "not json at all",
    '{"rationale": "x"}',
    '{"rationale": "x", "action": {"type": "scroll"}}',
    '{"rationale": 3, "action": {"type": "click", "name": "a"}}',
    "[" * 100_000,
    "x" * 5_000_000,
    '{"rationale": "\ud800", "action": {"type": "jump"}}',
    "\x00\xff\ufffe",
    {"type": "fly"},
    {"response": None},
    {"response": 42, "self_certainty": "high"},
    12345,
    None,
]


@pytest.fixture(scope="module")
def sessions():
    return read_jsonl(FIXTURE)


def oracle_text(step):
    return format_response(step.rationale or "", step.action)


def test_import_registers_the_id():
    assert shop_env.ENV_ID == "ShopR1/SessionReplay-v0" and shop_env.ENV_ID in gym.registry


def test_make_wraps_with_gymnasiums_checks_and_the_env_checks_call_order_itself(sessions):
    env = gym.make(shop_env.ENV_ID, sessions=sessions)  # gymnasium's default wrappers: order, passive checker
    with pytest.raises(gym.error.ResetNeeded):
        env.step("{}")
    with pytest.raises(RuntimeError, match="call reset"):
        env.unwrapped.step("{}")
    assert env.unwrapped.render() is None
    env.reset(seed=0)
    assert env.step("not json")[1] == 0.0


@pytest.mark.parametrize("context", ["whole", "latest"])
def test_check_env_passes_without_warnings(sessions, context):
    env = gym.make("ShopR1/SessionReplay-v0", sessions=sessions, context=context, render_mode="ansi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


def test_accepts_a_path_and_bundled_spec(sessions):
    env = gym.make("ShopR1/SessionReplay-v0", sessions=str(FIXTURE))
    assert [s.session_id for s in env.unwrapped.sessions] == [s.session_id for s in sessions]
    bundled = gym.make("ShopR1/SessionReplay-v0", sessions="bundled:test")
    assert len(bundled.unwrapped.sessions) >= 100


def test_oracle_earns_the_maximum_at_every_step(sessions):
    env = gym.make("ShopR1/SessionReplay-v0", sessions=sessions)
    for session in sessions:
        observation, _ = env.reset(options={"session_id": session.session_id})
        for index, step in enumerate(session.steps):
            assert observation["page"] == step.observation and observation["step_index"] == index
            observation, reward, terminated, truncated, info = env.step(oracle_text(step))
            assert reward == pytest.approx(max_reward(step.action, RewardConfig()), abs=1e-9)
            assert info["parse_error"] is None and info["gold_action"] is step.action and info["predicted_action"] == step.action
            assert terminated == (index == len(session) - 1) and not truncated
        assert observation["page"] == ""
        with pytest.raises(RuntimeError, match="over after"):
            env.step(oracle_text(session.steps[-1]))


def test_action_objects_and_dicts_score_like_text(sessions):
    env = SessionReplayEnv(sessions=sessions)
    step = sessions[0].steps[0]
    rewards = []
    for action in (oracle_text(step), step.action, step.action.to_dict(), {"response": oracle_text(step)}):
        env.reset(options={"index": 0})
        rewards.append(env.step(action)[1])
    assert rewards == [rewards[0]] * 4 and rewards[0] > 1


def test_self_certainty_adds_the_rationale_reward(sessions):
    env = SessionReplayEnv(sessions=sessions)
    step = sessions[0].steps[0]
    env.reset(options={"index": 0})
    plain = env.step({"response": oracle_text(step)})[1]
    env.reset(options={"index": 0})
    with_certainty = env.step({"response": oracle_text(step), "self_certainty": 20.0})[1]
    assert with_certainty == pytest.approx(plain + RewardConfig().alpha * 20.0)


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_scores_zero_and_the_episode_goes_on(sessions, garbage):
    env = SessionReplayEnv(sessions=sessions)
    env.reset(options={"index": 0})
    observation, reward, terminated, truncated, info = env.step(garbage)
    assert reward == 0.0 and not terminated and not truncated
    assert info["parse_error"] and observation["last_action_error"] == info["parse_error"]
    assert observation["step_index"] == 1
    observation, reward, *_ = env.step(oracle_text(sessions[0].steps[1]))
    assert reward > 0 and observation["last_action_error"] == ""


def test_same_seed_same_sessions_and_rewards():
    def run(seed):
        env = gym.make("ShopR1/SessionReplay-v0", sessions="bundled:test")
        rng = np.random.default_rng(0)
        trace = []
        env.reset(seed=seed)
        for _ in range(30):
            observation, reward, terminated, truncated, _ = env.step(["{}", '{"rationale": "", "action": {"type": "terminate"}}'][rng.integers(2)])
            trace.append((observation["session_id"], int(observation["step_index"]), reward))
            if terminated or truncated:
                env.reset()
        return trace

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_context_modes(sessions):
    whole = observation_at(sessions[0], 3, "whole")
    latest = observation_at(sessions[0], 3, "latest")
    assert whole["past_pages"] == tuple(s.observation for s in sessions[0].steps[:3])
    assert latest["past_pages"] == () and latest["past_actions"] == whole["past_actions"]
    assert Action.from_dict(__import__("json").loads(whole["past_actions"][0])) == sessions[0].steps[0].action
    with pytest.raises(ValueError, match="context must be .whole. or .latest., got .everything."):
        observation_at(sessions[0], 0, "everything")
    with pytest.raises(IndexError):
        observation_at(sessions[0], 99)


def test_reset_options_and_errors(sessions):
    env = SessionReplayEnv(sessions=sessions)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step("{}")
    assert env.reset(options={"session_id": "opera-like-0002"})[0]["session_id"] == "opera-like-0002"
    assert env.reset(options={"index": 0})[0]["session_id"] == "opera-like-0001"
    with pytest.raises(KeyError, match="unknown session_id"):
        env.reset(options={"session_id": "nope"})
    with pytest.raises(IndexError):
        env.reset(options={"index": 5})
    with pytest.raises(ValueError, match="context"):
        SessionReplayEnv(sessions=sessions, context="all")


def test_truncation_comes_from_max_episode_steps(sessions):
    env = gym.make("ShopR1/SessionReplay-v0", sessions=sessions, max_episode_steps=2)
    env.reset(options={"index": 0})
    assert env.step("{}")[3] is False
    assert env.step("{}")[3] is True


def test_render_ansi_summarises_the_step(sessions):
    env = SessionReplayEnv(sessions=sessions, render_mode="ansi")
    env.reset(options={"index": 0})
    assert "step 0/5" in env.render()
    env.step(oracle_text(sessions[0].steps[0]))
    text = env.render()
    assert "Shop.com. Spend less" in text and "interactive elements" in text
    assert "type_and_submit(header.search_box.search_input, 'mens running shoes')" in text
    assert "total=" in text
    env.step("nonsense")
    assert "(invalid)" in env.render()


def test_unicode_text_space():
    space = UnicodeText(seed=3)
    samples = [space.sample() for _ in range(20)]
    assert all(isinstance(s, str) and space.contains(s) for s in samples)
    assert space.contains("<html>{}</html>\n") and not space.contains(b"bytes")


def _vector_rollout(mode, vector_kwargs, steps=14):
    """Observations and rewards of 3 envs over `steps` steps (through an autoreset), oracle and garbage mixed."""
    envs = gym.make_vec("ShopR1/SessionReplay-v0", num_envs=3, vectorization_mode=mode, vector_kwargs=vector_kwargs)
    observations, _ = envs.reset(seed=5)
    plain = lambda obs: {key: value.tolist() if isinstance(value, np.ndarray) else tuple(value) for key, value in obs.items()}  # noqa: E731
    record = [plain(observations)]
    for t in range(steps):
        sessions = [envs.call("session")[i] for i in range(3)]
        indices = [int(i) for i in observations["step_index"]]
        actions = tuple(
            oracle_text(session.steps[index]) if (t + i) % 3 and index < len(session) else "garbage"
            for i, (session, index) in enumerate(zip(sessions, indices))
        )
        observations, rewards, terminated, truncated, _ = envs.step(actions)
        record.append((plain(observations), rewards.tolist(), terminated.tolist()))
    envs.close()
    return record


@pytest.mark.parametrize(
    "mode, vector_kwargs",
    [("async", {}), ("async", {"shared_memory": False}), ("async", {"context": "spawn"})],
    ids=["async-shared-memory", "async-pipes", "async-spawn"],
)
def test_vector_env_async_equals_sync(mode, vector_kwargs):
    """make_vec works as is in every mode, with the same observations and rewards as the sync vector env."""
    assert _vector_rollout(mode, vector_kwargs) == _vector_rollout("sync", {})


def test_vector_env_sync_equals_single_envs(sessions):
    envs = gym.make_vec("ShopR1/SessionReplay-v0", num_envs=2, sessions=sessions)
    observations, _ = envs.reset(seed=0, options={"index": 0})
    assert list(observations["session_id"]) == ["opera-like-0001"] * 2
    single = SessionReplayEnv(sessions)
    single.reset(options={"index": 0})
    step = sessions[0].steps[0]
    observations, rewards, terminated, _, infos = envs.step((oracle_text(step), "garbage"))
    expected, reward, *_ = single.step(oracle_text(step))
    assert rewards[0] == reward == pytest.approx(max_reward(step.action, RewardConfig())) and rewards[1] == 0.0
    assert observations["page"][0] == expected["page"] and observations["past_actions"][0] == expected["past_actions"]
    assert not terminated.any()
    envs.close()


def test_async_shared_memory_is_read_live_not_stale():
    """Without copies, the observation is a view that shows each step's values, as gymnasium's arrays do."""
    envs = gym.make_vec("ShopR1/SessionReplay-v0", num_envs=2, vectorization_mode="async", vector_kwargs={"copy": False})
    first, _ = envs.reset(seed=0)
    assert isinstance(first["page"], SharedTexts)
    pages = tuple(first["page"])
    envs.step(("garbage", "garbage"))
    assert tuple(first["page"]) != pages and all(isinstance(page, str) for page in first["page"])
    envs.close()
