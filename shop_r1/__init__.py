"""The `shop-r1` command line: the top layer, above shop_env (env, rewards, data), agents (policies,
evaluation) and training (SFT, GRPO, verl). Nothing imports it but the console script."""
