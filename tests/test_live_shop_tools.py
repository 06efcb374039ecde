"""The live shop as TRL tools: the tool methods drive the env, and a tiny-random GRPO step runs on it."""

import pytest

from shop_env.rewards import RewardConfig, max_reward
from training.live_shop_tools import LiveShopTools, live_prompts


def test_the_tools_play_a_visit_and_the_reward_is_the_mean_step_reward_plus_the_outcome():
    tools = LiveShopTools()
    first = tools.reset(seed=7)
    assert first.startswith("Persona: ") and "<html>" in first
    rewards = []
    while not tools.done:
        reference = tools.env.reference_action()
        rewards.append(max_reward(reference, RewardConfig()))
        method = {"click": tools.click, "type_and_submit": tools.type_and_submit, "terminate": tools.terminate}[reference.type]
        reply = method(**{k: v for k, v in (("name", reference.name), ("text", reference.text)) if v is not None})
    assert reply.startswith("The visit is over")
    assert tools.get_reward() == pytest.approx(sum(rewards) / len(rewards) + tools.outcome_reward)
    assert tools.click("x") == "The visit is over; no more actions."


def test_bad_tool_arguments_change_nothing_and_say_so():
    tools = LiveShopTools()
    tools.reset(seed=1)
    assert "malformed" in tools.click("") and "malformed" in tools.type_and_submit(None, "shoes")
    assert "no element named 'nope'" in tools.click("nope")
    assert tools.get_reward() == pytest.approx(tools.rewards[0])
    assert LiveShopTools().get_reward() == 0.0


def test_a_trl_grpo_step_runs_on_the_live_shop_environment(tmp_path):
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_chat_template

    from agents.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer("tiny-random")
    tokenizer.chat_template = qwen3_chat_template  # a template TRL parses tool calls for (SmolLM2's vocabulary has its tokens)
    args = GRPOConfig(output_dir=str(tmp_path), max_steps=1, num_generations=2, per_device_train_batch_size=2,
                      max_completion_length=16, report_to="none", save_strategy="no", use_cpu=True, bf16=False,
                      logging_steps=1, max_tool_calling_iterations=2)
    trainer = GRPOTrainer(model=model, args=args, processing_class=tokenizer, environment_factory=LiveShopTools,
                          train_dataset=live_prompts(4))
    trainer.train()
    assert trainer.state.global_step == 1
    assert any("LiveShopTools" in key for record in trainer.state.log_history for key in record)


def test_the_verl_interaction_plays_a_visit_turn_by_turn(tiny_tokenizer):
    import asyncio

    from agents.context_builder import PromptBudget
    from shop_env.response_format import format_response
    from training.verl.live_shop_interaction import LiveShopInteraction, live_rows

    rows = live_rows(2, tiny_tokenizer, PromptBudget("latest", 1024, 96), seed=7)
    assert rows[0]["extra_info"]["interaction_kwargs"] == {"name": "live_shop", "seed": 7}
    assert rows[0]["prompt"][0]["role"] == "system" and "## Current page" in rows[0]["prompt"][1]["content"]

    async def play() -> tuple[list[float], float, dict]:
        interaction = LiveShopInteraction({"name": "live_shop"})
        instance = await interaction.start_interaction(seed=7)
        env = interaction._visits[instance]["env"]
        messages, turn_rewards, done = list(rows[0]["prompt"]), [], False
        while not done:
            messages.append({"role": "assistant", "content": format_response("As the shopper would.", env.reference_action())})
            done, reply, reward, extra = await interaction.generate_response(instance, messages)
            messages.append({"role": "user", "content": reply})
            turn_rewards.append(reward)
        score = await interaction.calculate_score(instance)
        await interaction.finalize_interaction(instance)
        assert instance not in interaction._visits
        return turn_rewards, score, extra

    turn_rewards, score, extra = asyncio.run(play())
    tools = LiveShopTools()
    tools.reset(seed=7)
    best = []
    while not tools.done:
        reference = tools.env.reference_action()
        best.append(max_reward(reference, RewardConfig()))
        tools._act(reference)
    assert turn_rewards[:-1] == pytest.approx(best[:-1]) and score == pytest.approx(sum(best) / len(best) + tools.outcome_reward)
    assert extra["outcome"] == extra["shopper_outcome"]
