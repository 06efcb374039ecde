"""docs/recipes.md runs as written: its code blocks, with the tiny random model and a one-step budget."""

import importlib
import json
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml

from agents.models import resolve_model
from shop_env.rewards import RewardConfig, score_response
from shop_env.server import ServerConfig, create_app

RECIPES = Path(__file__).parents[1] / "docs" / "recipes.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", RECIPES.read_text(encoding="utf-8"), flags=re.DOTALL)


def _swap(code: str, old: str, new: str) -> str:
    assert old in code, f"the recipe no longer has {old!r}; update this test with it"
    return code.replace(old, new)


def test_the_trl_recipe_trains_a_plain_grpo_trainer_on_our_dataset_and_reward(tmp_path):
    code = _blocks("python")[0]
    code = _swap(code, '"HuggingFaceTB/SmolLM2-135M-Instruct"', repr(str(resolve_model("tiny-random"))))
    code = _swap(code, "max_new_tokens=96", "max_new_tokens=16")
    code = _swap(code, "max_examples=256", "max_examples=4")
    code = _swap(code, "num_generations=8", "num_generations=2")
    code = _swap(code, "per_device_train_batch_size=8", "per_device_train_batch_size=2")
    code = _swap(code, "max_steps=500", "max_steps=1, report_to='none', save_strategy='no', use_cpu=True, bf16=False")
    code = _swap(code, '"runs/my-grpo"', repr(str(tmp_path / "grpo")))
    namespace: dict = {}
    exec(compile(code, str(RECIPES), "exec"), namespace)
    trainer, dataset = namespace["trainer"], namespace["dataset"]
    assert type(trainer).__name__ == "GRPOTrainer" and {"prompt", "gold_action"} <= set(dataset.column_names)
    assert trainer.state.global_step == 1
    logged = {key for record in trainer.state.log_history for key in record}
    assert "rewards/shop_r1/mean" in logged and "reward/format" in logged and "reward/dars_value" in logged


def test_the_verl_recipe_names_a_reward_function_that_loads_by_module_and_scores_a_prepared_row():
    config = yaml.safe_load(_blocks("yaml")[0])["reward"]["custom_reward_function"]
    assert config["path"].startswith("pkg://")
    module = importlib.import_module(config["path"].removeprefix("pkg://"))  # what verl's pkg:// loader does
    compute_score = getattr(module, config["name"])
    gold = '{"type": "click", "name": "search_results.trail_runner_pro.view_product"}'
    response = '{"rationale": "Looks right.", "action": {"type": "click", "name": "search_results.trail_runner_pro.view_product"}}'
    result = compute_score(data_source="shop_r1", solution_str=response, ground_truth=gold, extra_info={"index": 0},
                           **config["reward_kwargs"])
    assert result["score"] == score_response(response, json.loads(gold), RewardConfig(**config["reward_kwargs"])).total > 1


def test_the_env_server_recipe_drives_a_replay_to_its_end():
    with_client = _blocks("python")[1]
    port = 8000
    server = uvicorn.Server(uvicorn.Config(create_app(ServerConfig()), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not (server.started and server.servers):
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        namespace: dict = {}
        exec(compile(_swap(with_client, "http://127.0.0.1:8000", f"http://127.0.0.1:{port}"), str(RECIPES), "exec"), namespace)
        assert namespace["done"] and namespace["reward"] == pytest.approx(0.5 + 0.3)  # terminate on the final step
    finally:
        server.should_exit = True
        thread.join(timeout=30)
