"""Shop-R1 session data, simplified HTML, rewards, metrics and the session-replay Gymnasium env.

Importing the package registers `ShopR1/SessionReplay-v0` and `ShopR1/LiveShop-v0`. Public names load lazily, so
`import shop_env` stays cheap (no torch, no HTML parser) until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gymnasium.envs.registration import register, registry

from shop_env.lazy_exports import lazy_getattr

ENV_ID = "ShopR1/SessionReplay-v0"
LIVE_ENV_ID = "ShopR1/LiveShop-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="shop_env.replay_env:SessionReplayEnv")
if LIVE_ENV_ID not in registry:
    register(id=LIVE_ENV_ID, entry_point="shop_env.live_shop:LiveShopEnv")

_EXPORTS = {
    "Action": "shop_env.session",
    "Step": "shop_env.session",
    "Session": "shop_env.session",
    "SessionFormatError": "shop_env.session",
    "ACTION_TYPES": "shop_env.session",
    "read_jsonl": "shop_env.session",
    "write_jsonl": "shop_env.session",
    "load_sessions": "shop_env.loaders",
    "bundled_sessions": "shop_env.loaders",
    "resolve_sessions": "shop_env.loaders",
    "write_opera_parquet": "shop_env.loaders",
    "simplify_html": "shop_env.simplify_html",
    "interactive_elements": "shop_env.simplify_html",
    "parse_response": "shop_env.response_format",
    "ParsedResponse": "shop_env.response_format",
    "format_response": "shop_env.response_format",
    "SessionReplayEnv": "shop_env.replay_env",
    "LiveShopEnv": "shop_env.live_shop",
    "observation_at": "shop_env.replay_env",
    "make_sessions": "shop_env.procedural_shop",
}
__all__ = ["ENV_ID", "LIVE_ENV_ID", *_EXPORTS]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from shop_env.loaders import bundled_sessions, load_sessions, resolve_sessions, write_opera_parquet
    from shop_env.live_shop import LiveShopEnv
    from shop_env.procedural_shop import make_sessions
    from shop_env.replay_env import SessionReplayEnv, observation_at
    from shop_env.response_format import ParsedResponse, format_response, parse_response
    from shop_env.session import ACTION_TYPES, Action, Session, SessionFormatError, Step, read_jsonl, write_jsonl
    from shop_env.simplify_html import interactive_elements, simplify_html
