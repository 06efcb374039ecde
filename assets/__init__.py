"""Data shipped inside the package as `shop_env.assets` (read with importlib.resources): the bundled
procedural-shop sessions and the policies trained by this project's CPU experiment; see README.md here."""
