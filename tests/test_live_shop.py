"""ShopR1/LiveShop-v0: the agent's own actions navigate the procedural shop."""

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import shop_env
from agents.policies import HeuristicPolicy, RandomValidPolicy
from shop_env.live_shop import LiveShopEnv
from shop_env.loaders import resolve_sessions
from shop_env.procedural_shop.pages import ADD_TO_CART, BUY_NOW, SEARCH_INPUT
from shop_env.response_format import format_response
from shop_env.rewards import RewardConfig, max_reward
from shop_env.session import Action
from shop_env.simplify_html import interactive_elements


@pytest.fixture(scope="module")
def env():
    return gym.make(shop_env.LIVE_ENV_ID).unwrapped


def _play(env, choose, **reset):
    """One visit; `choose(observation, env)` gives each action. Returns (steps, rewards, last info)."""
    observation, _ = env.reset(**reset)
    steps, rewards, done = [], [], False
    while not done:
        action = choose(observation, env)
        steps.append((observation["page"], env.reference_action(), action))
        observation, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        done = terminated or truncated
    return steps, rewards, info


def _scripted(observation, env):
    return format_response("As the shopper would.", env.reference_action())


def test_check_env_passes(env):
    check_env(env)


def test_the_scripted_shopper_playing_live_reproduces_every_bundled_test_session(env):
    sessions = resolve_sessions("bundled:test")
    mix_live, mix_recorded, outcomes_live, outcomes_recorded = [], [], [], []
    for session in sessions:
        steps, _, info = _play(env, _scripted, options={"generator_seed": session.extra["generator_seed"]})
        assert [page for page, _, _ in steps] == [step.observation for step in session.steps], session.session_id
        assert [gold for _, gold, _ in steps] == [step.action for step in session.steps], session.session_id
        mix_live += [gold.type for _, gold, _ in steps]
        mix_recorded += [step.action.type for step in session.steps]
        outcomes_live.append(info["outcome"])
        outcomes_recorded.append(session.extra["outcome"])
        assert info["shopper_outcome"] == session.extra["outcome"]
    assert sorted(mix_live) == sorted(mix_recorded) and sorted(outcomes_live) == sorted(outcomes_recorded)


def test_the_scripted_shopper_earns_the_maximum_per_step_reward_and_a_random_agent_far_less(env):
    config = RewardConfig()
    scripted, best, random_rewards, heuristic_rewards = [], [], [], []
    random_policy, heuristic = RandomValidPolicy(seed=0), HeuristicPolicy()
    for seed in range(40):
        steps, rewards, info = _play(env, _scripted, seed=seed)
        scripted += [r - (info["outcome_reward"] if i == len(rewards) - 1 else 0.0) for i, r in enumerate(rewards)]
        best += [max_reward(gold, config) for _, gold, _ in steps]
        _, rewards, info = _play(env, lambda o, e: random_policy.act([o])[0].text, seed=seed)
        random_rewards += [r - (info["outcome_reward"] if i == len(rewards) - 1 else 0.0) for i, r in enumerate(rewards)]
        _, rewards, info = _play(env, lambda o, e: heuristic.act([o])[0].text, seed=seed)
        heuristic_rewards += rewards
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    assert scripted == pytest.approx(best)
    assert mean(random_rewards) < 0.1 * mean(scripted), (mean(random_rewards), mean(scripted))
    assert mean(heuristic_rewards) > mean(random_rewards)


def test_a_name_not_on_the_page_changes_nothing_and_is_reported(env):
    observation, _ = env.reset(seed=3)
    page, reference = observation["page"], env.reference_action()
    response = format_response("x", Action("click", name="no.such.button"))
    after, reward, terminated, truncated, info = env.step(response)
    assert after["page"] == page and "no element named 'no.such.button'" in after["last_action_error"]
    from shop_env.rewards import score_response

    assert reward == score_response(response, reference, RewardConfig()).total
    assert not (terminated or truncated) and after["past_actions"][-1] == Action("click", name="no.such.button").to_json()
    after, reward, *_ = env.step("this is not JSON")
    assert after["page"] == page and reward == 0.0 and after["last_action_error"]


def test_the_agents_own_search_product_cart_and_purchase_drive_the_shop(env):
    observation, _ = env.reset(seed=11)
    observation, *_ = env.step(format_response("x", Action("type_and_submit", name=SEARCH_INPUT, text="wool socks")))
    assert "wool socks" in observation["page"] and observation["url"].endswith("k=wool+socks")
    product_link = next(name for name in interactive_elements(observation["page"]) if name.endswith(".view_product"))
    observation, *_ = env.step(format_response("x", Action("click", name=product_link)))
    assert ADD_TO_CART in interactive_elements(observation["page"]) and product_link.split(".")[-2] in observation["url"]
    observation, *_ = env.step(format_response("x", Action("click", name=ADD_TO_CART)))
    assert "Shopping Cart" in observation["page"] and "Added to cart" in observation["page"]
    observation, *_ = env.step(format_response("x", Action("click", name="header.cart")))
    observation, _, terminated, _, info = env.step(format_response("x", Action("click", name="cart.checkout")))
    assert terminated and info["outcome"] == "purchased" and isinstance(info["purchase_fits"], bool)
    assert info["shopper_outcome"] in ("left", "added_to_cart", "purchased")
    with pytest.raises(RuntimeError, match="over"):
        env.step("{}")


def test_buy_now_ends_the_visit_and_pays_the_outcome_reward_only_for_a_fitting_purchase(env):
    found = {True: False, False: False}
    for seed in range(60):
        steps, rewards, info = _play(env, _scripted, seed=seed)
        if info["outcome"] == "purchased":
            found[info["purchase_fits"]] = True
            assert info["outcome_reward"] == (1.0 if info["purchase_fits"] else 0.0)
        else:
            assert not info["purchase_fits"] and info["outcome_reward"] == 0.0
    assert found[True], "no scripted purchase in 60 visits fits its persona: the fit check is broken"
    observation, _ = env.reset(seed=5)
    while BUY_NOW not in interactive_elements(observation["page"]):
        names = [n for n in interactive_elements(observation["page"]) if n.endswith(".view_product")]
        if names:
            observation, *_ = env.step(format_response("x", Action("click", name=names[0])))
        else:
            observation, *_ = env.step(format_response("x", Action("type_and_submit", name=SEARCH_INPUT, text="shoes")))
    _, _, terminated, _, info = env.step(format_response("x", Action("click", name=BUY_NOW)))
    assert terminated and info["outcome"] == "purchased"


def test_the_same_seed_gives_the_same_visit_whatever_the_agent_did_before(env):
    policy = RandomValidPolicy(seed=4)
    first = _play(env, lambda o, e: policy.act([o])[0].text, seed=21)[0]
    _play(env, _scripted, seed=99)
    policy = RandomValidPolicy(seed=4)
    assert _play(env, lambda o, e: policy.act([o])[0].text, seed=21)[0] == first


def test_shop_r1_eval_live_reports_step_agreement_and_session_outcomes(tmp_path):
    import json

    from typer.testing import CliRunner

    from shop_r1.cli import app

    results = {}
    for policy in ("scripted", "heuristic", "random"):
        out = tmp_path / policy
        done = CliRunner().invoke(app, ["eval", "--live", "--policy", policy, "--episodes", "30", "--out", str(out)])
        assert done.exit_code == 0, done.output
        results[policy] = json.loads((out / "metrics.json").read_text())
        assert "Session outcomes" in (out / "report.md").read_text()
        assert len((out / "episodes.jsonl").read_text().splitlines()) == results[policy]["n_steps"]
    scripted = results["scripted"]
    assert scripted["step"]["exact_acc"] == 1.0 and scripted["outcome_agreement"] == 1.0 and scripted["outcome_macro_f1"] == 1.0
    assert scripted["outcomes"] == scripted["shopper_outcomes"]
    assert results["random"]["mean_step_reward"] < 0.1 * scripted["mean_step_reward"]
    assert results["heuristic"]["step"]["type_acc"] > results["random"]["step"]["type_acc"]


def test_shop_r1_replay_live_prints_the_visit(tmp_path):
    from typer.testing import CliRunner

    from shop_r1.cli import app

    done = CliRunner().invoke(app, ["replay", "--live", "--policy", "heuristic", "--seed", "3"])
    assert done.exit_code == 0, done.output
    assert "live visit live-3" in done.output and "shopper:" in done.output and "outcome:" in done.output


def test_an_llm_policy_plays_the_live_shop(tmp_path):
    from agents.evaluate import EvalConfig
    from agents.live_eval import LiveEvalConfig, run_live_eval

    # The generation settings as `shop-r1 eval --live` builds them (their context is the replay default, whole).
    settings = EvalConfig(policy="tiny-random", context_window=1024, max_new_tokens=8, greedy=True).generation_kwargs()
    metrics = run_live_eval(LiveEvalConfig(policy="tiny-random", episodes=2, out=tmp_path, batch_size=2), **settings)
    assert metrics["n_visits"] == 2 and metrics["n_steps"] >= 2 and metrics["format_ok"] == 0.0
    assert sum(metrics["outcomes"].values()) == pytest.approx(1.0)


def test_a_buy_now_purchase_is_judged_on_the_product_bought_not_the_cart(env):
    from shop_env.live_shop import _fits
    from shop_env.procedural_shop.pages import CartLine

    judged = 0
    for seed in range(200):
        steps, _, info = _play(env, _scripted, seed=seed)
        if steps[-1][1].name == BUY_NOW:
            page = env.unwrapped._page
            assert info["outcome"] == "purchased"
            assert info["purchase_fits"] == _fits(env.unwrapped._visit.persona, CartLine(page.products[0], page.chosen))
            judged += info["purchase_fits"]
    assert judged, "no buy-now purchase among 200 scripted visits fits: the check is not exercised"
