"""Shop-R1 on verl: the same data, reward and self-certainty as the single-machine TRL trainer, on GPU clusters.

- `prepare.py`: `shop-r1 prepare-verl` writes verl's parquet files (RL prompts + gold actions, SFT chats).
- `reward.py`: `compute_score`, verl's custom reward function, calling `shop_env.rewards`.
- `self_certainty.py`: the verl extension (a registered trainer and FSDP engine) that adds
  alpha x self-certainty of the rationale to the rule score before GRPO's group normalization;
  `rationale_reward.py` holds its tensor math, which runs (and is tested) without verl.
- `launch.py`, `configs/`, `scripts/`: the paper's SFT and GRPO runs, baselines and ablations.

Importing this package imports nothing from verl; only `self_certainty.py` needs verl installed
(`pip install -e ".[gpu]"`). The how-to is docs/scale-out.md.
"""
