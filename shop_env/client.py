"""A Python client for `shop-r1 serve`: a remote replay env with the gymnasium reset / step API.

    with EnvClient("http://127.0.0.1:8000") as env:
        observation, info = env.reset(seed=0)
        observation, reward, terminated, truncated, info = env.step(response_text)

One client holds one WebSocket, which is one env on the server (docs/contract.md, the env server).
Observations and infos arrive as JSON: lists for tuples, actions and the reward breakdown as dicts.
"""

from __future__ import annotations

import json
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


class EnvServerError(RuntimeError):
    """The server refused a message; `code` is its reason code (SESSION_ERROR, CAPACITY_REACHED, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class EnvClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, timeout: float = 60.0, max_message_bytes: int = 64 << 20):
        url = base_url.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        # A context manager (websockets deprecates holding a bare connection); close() exits it.
        self._socket = connect(f"{url}/ws", open_timeout=timeout, max_size=max_message_bytes).__enter__()
        self._timeout = timeout

    def _ask(self, kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            self._socket.send(json.dumps({"type": kind, "data": data or {}}))
            reply = json.loads(self._socket.recv(timeout=self._timeout))
        except ConnectionClosed as closed:  # the server's reason is on the close frame ("CODE: message")
            reason = closed.rcvd.reason if closed.rcvd is not None else ""
            code, _, message = reason.partition(": ")
            raise EnvServerError(code or "CONNECTION_CLOSED", message or str(closed)) from None
        if reply["type"] == "error":
            raise EnvServerError(reply["data"]["code"], reply["data"]["message"])
        return reply["data"]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        data = self._ask("reset", {"seed": seed, "options": options})
        return data["observation"], data["info"]

    def step(self, action: str | dict[str, Any]) -> tuple[dict, float, bool, bool, dict]:
        data = self._ask("step", {"action": action})
        return data["observation"], data["reward"], data["done"] and not data["truncated"], data["truncated"], data["info"]

    def state(self) -> dict[str, Any]:
        return self._ask("state")

    def close(self) -> None:
        try:
            self._ask("close")
        except (EnvServerError, ConnectionClosed, OSError, TimeoutError):  # gone already: nothing left to close
            pass
        self._socket.__exit__(None, None, None)

    def __enter__(self) -> EnvClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
