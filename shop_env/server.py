"""The session-replay env as a web service, for agents in another process, language or machine.

`shop-r1 serve` runs it; `shop_env.client.EnvClient` talks to it. It follows OpenEnv's conventions:

- `GET /health`, `GET /metadata`, `GET /schema` (JSON Schemas of the action, observation and state);
- `WS /ws`: one env per connection, so a replay keeps its place. The client sends
  `{"type": "reset" | "step" | "state" | "close", "data": {...}}` and gets back
  `{"type": "observation" | "state" | "error", "data": {...}}`;
- `POST /reset`, `POST /step`, `GET /state` over plain HTTP: `/reset` opens an episode and returns
  its `episode_id`, which `/step` and `/state` then name (idle episodes are closed after a timeout).

Every reply to reset or step carries `observation`, `reward`, `done` (and `truncated`, `info` with
the reward breakdown, the gold and predicted actions and the parse error, as the in-process env's
info). The server bounds the number of open envs and the size of a request; a bad request gets a 4xx
or an error message with the reason, and whatever an agent sends is scored (0 with the reason when it
cannot be read), never raised. Env calls take microseconds to milliseconds and run on the event loop,
so requests on one episode are served in order.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shop_env.replay_env import CONTEXT_MODES, SessionReplayEnv, check_context
from shop_env.response_format import response_schema
from shop_env.rewards import RewardBreakdown, RewardConfig

ENV_NAME = "ShopR1/SessionReplay-v0"


@dataclasses.dataclass
class ServerConfig:
    """What `shop-r1 serve` serves and its bounds."""

    sessions: str = "bundled:test"
    """The sessions to replay (a file, a directory or `bundled:<split>`), loaded once at start."""
    context: str = "whole"
    """whole or latest (the env's context mode)."""
    max_envs: int = 64
    """Open envs at once (WebSocket connections plus HTTP episodes); more get 503 / CAPACITY_REACHED."""
    max_request_bytes: int = 1_000_000
    """Largest request body or WebSocket message; larger ones get 413 / REQUEST_TOO_LARGE."""
    idle_timeout: float = 600.0
    """Seconds after which an idle HTTP episode is closed (WebSocket envs live as long as the connection)."""

    def __post_init__(self):
        check_context(self.context)
        if self.max_envs < 1:
            raise ValueError(f"max_envs must be >= 1, got {self.max_envs}")
        if self.max_request_bytes < 1024:
            raise ValueError(f"max_request_bytes must be >= 1024 (a response is a few hundred bytes), got {self.max_request_bytes}")
        if not self.idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 seconds, got {self.idle_timeout}")


class ResetRequest(BaseModel):
    seed: int | None = Field(default=None, ge=0, description="Seed of the session draw (as env.reset(seed=...); gymnasium takes seeds >= 0).")
    options: dict[str, Any] | None = Field(default=None, description='{"session_id": ...} or {"index": ...} picks the session.')
    episode_id: str | None = Field(default=None, description="HTTP only: reuse this open episode instead of opening one.")


class StepRequest(BaseModel):
    action: str | dict[str, Any] = Field(
        description='The model\'s response text, {"response": text, "self_certainty": s}, or an action object.'
    )
    episode_id: str | None = Field(default=None, description="HTTP only: the episode /reset returned.")


class EnvError(Exception):
    """A request the env refuses, with the HTTP status and the WebSocket error code that say why."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def observation_json(observation: dict[str, Any]) -> dict[str, Any]:
    """An env observation as JSON values (tuples as lists, the numpy step index as an int)."""
    return {
        key: int(value) if key == "step_index" else list(value) if isinstance(value, tuple) else value
        for key, value in observation.items()
    }


def breakdown_json(breakdown: RewardBreakdown) -> dict[str, Any]:
    """A reward breakdown as JSON: every term, the error, and the predicted action as an object."""
    data = breakdown._asdict()
    predicted = data.pop("predicted_action")
    data["predicted_action"] = None if predicted is None else predicted.to_dict()
    return data


def step_json(observation: dict, reward: float, terminated: bool, truncated: bool, info: dict) -> dict[str, Any]:
    return {
        "observation": observation_json(observation),
        "reward": float(reward),
        "done": bool(terminated or truncated),
        "truncated": bool(truncated),
        "info": {
            "reward": breakdown_json(info["reward"]),
            "gold_action": info["gold_action"].to_dict(),
            "predicted_action": None if info["predicted_action"] is None else info["predicted_action"].to_dict(),
            "parse_error": info["parse_error"],
            "session_id": info["session_id"],
            "step_index": info["step_index"],
        },
    }


class _Episode:
    """One open env and where its replay stands."""

    def __init__(self, env: SessionReplayEnv):
        self.env = env
        self.steps = 0
        self.done = False
        self.last_used = time.monotonic()

    def reset(self, request: ResetRequest) -> dict[str, Any]:
        try:
            observation, info = self.env.reset(seed=request.seed, options=request.options)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise EnvError(400, "VALIDATION_ERROR", f"reset: {error.args[0] if error.args else error}") from error
        self.steps, self.done, self.last_used = 0, False, time.monotonic()
        return {"observation": observation_json(observation), "reward": None, "done": False, "info": info}

    def step(self, action: Any) -> dict[str, Any]:
        if self.env.session is None:
            raise EnvError(409, "SESSION_ERROR", "step before reset: send a reset first")
        if self.done:
            raise EnvError(409, "SESSION_ERROR", f"the replay of session {self.env.session.session_id!r} is over; send a reset")
        result = step_json(*self.env.step(action))
        self.steps += 1
        self.done = result["done"]
        self.last_used = time.monotonic()
        return result

    def state(self, episode_id: str) -> dict[str, Any]:
        session = self.env.session
        return {
            "episode_id": episode_id,
            "step_count": self.steps,
            "session_id": None if session is None else session.session_id,
            "num_steps": None if session is None else len(session.steps),
            "done": self.done,
        }


def _schemas() -> dict[str, Any]:
    text_list = {"type": "array", "items": {"type": "string"}}
    observation = {
        "type": "object",
        "properties": {
            "session_id": {"type": "string"},
            "step_index": {"type": "integer", "minimum": 0},
            "persona": {"type": "string"},
            "page": {"type": "string", "description": "the simplified HTML of the current page"},
            "url": {"type": "string"},
            "past_pages": {**text_list, "description": "earlier pages (whole context; empty in latest)"},
            "past_actions": {**text_list, "description": "earlier gold actions as JSON"},
            "last_action_error": {"type": "string", "description": "why the last response failed the format, or ''"},
        },
    }
    state = {
        "type": "object",
        "properties": {
            "episode_id": {"type": "string"},
            "step_count": {"type": "integer"},
            "session_id": {"type": ["string", "null"]},
            "num_steps": {"type": ["integer", "null"]},
            "done": {"type": "boolean"},
        },
    }
    action = {
        "description": "The model's response as text (this schema), or {response, self_certainty}, or an action object.",
        **response_schema(),
    }
    return {"action": action, "observation": observation, "state": state}


def create_app(config: ServerConfig | None = None, reward_config: RewardConfig | None = None) -> FastAPI:
    """The FastAPI app serving `config.sessions`; uvicorn (or any ASGI server) runs it."""
    from shop_env.loaders import resolve_sessions

    config = config or ServerConfig()
    sessions = resolve_sessions(config.sessions)
    if not sessions:
        raise ValueError(f"no sessions to serve in {config.sessions!r}")
    app = FastAPI(title="Shop-R1 session-replay env", version="0")
    episodes: dict[str, _Episode] = {}
    open_sockets = 0

    def open_episode() -> _Episode:
        now = time.monotonic()
        for episode_id in [key for key, episode in episodes.items() if now - episode.last_used > config.idle_timeout]:
            del episodes[episode_id]
        if len(episodes) + open_sockets >= config.max_envs:
            raise EnvError(503, "CAPACITY_REACHED", f"{config.max_envs} envs are open (--max-envs); close one or retry later")
        return _Episode(SessionReplayEnv(sessions, context=config.context, reward_config=reward_config))

    def http_episode(episode_id: str | None) -> _Episode:
        if episode_id is None:
            raise EnvError(400, "VALIDATION_ERROR", "episode_id is required over HTTP: pass the one /reset returned (or use /ws)")
        if episode_id not in episodes:
            raise EnvError(404, "SESSION_ERROR", f"no open episode {episode_id!r} (closed after {config.idle_timeout:g} s idle, or never opened); /reset opens one")
        return episodes[episode_id]

    @app.exception_handler(EnvError)
    async def _env_error(request: Request, error: EnvError) -> JSONResponse:
        return JSONResponse(status_code=error.status, content={"detail": error.message, "code": error.code})

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Any) -> Any:
        declared = request.headers.get("content-length")
        size = int(declared) if declared and declared.isdigit() else len(await request.body())
        if size > config.max_request_bytes:
            return JSONResponse(
                status_code=413,
                content={"detail": f"request of {size:,} bytes is over the {config.max_request_bytes:,}-byte limit", "code": "REQUEST_TOO_LARGE"},
            )
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "open_envs": len(episodes) + open_sockets, "max_envs": config.max_envs}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        return {
            "name": ENV_NAME,
            "description": "Replays recorded shopping sessions; each predicted next action is scored with the Shop-R1 reward.",
            "sessions": config.sessions,
            "num_sessions": len(sessions),
            "context": config.context,
            "context_modes": list(CONTEXT_MODES),
        }

    @app.get("/schema")
    async def schema() -> dict[str, Any]:
        return _schemas()

    @app.post("/reset")
    async def reset(request: ResetRequest | None = None) -> dict[str, Any]:
        request = request or ResetRequest()
        if request.episode_id is not None:
            episode_id, episode = request.episode_id, http_episode(request.episode_id)
        else:
            episode_id, episode = uuid.uuid4().hex, open_episode()
        reply = episode.reset(request)
        episodes[episode_id] = episode
        return {**reply, "episode_id": episode_id}

    @app.post("/step")
    async def step(request: StepRequest) -> dict[str, Any]:
        return {**http_episode(request.episode_id).step(request.action), "episode_id": request.episode_id}

    @app.get("/state")
    async def state(episode_id: str) -> dict[str, Any]:
        return http_episode(episode_id).state(episode_id)

    @app.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        nonlocal open_sockets
        await socket.accept()
        try:
            episode = open_episode()
        except EnvError as error:
            await socket.send_json({"type": "error", "data": {"message": error.message, "code": error.code}})
            # The reason rides on the close frame too: a client may see the close before the message.
            await socket.close(code=1013, reason=f"{error.code}: {error.message}"[:123])
            return
        open_sockets += 1
        episode_id, reply = uuid.uuid4().hex, {}
        try:
            while True:
                raw = await socket.receive_text()
                reply = _answer(episode, episode_id, raw, config.max_request_bytes)
                await socket.send_json(reply)
                if reply.get("type") == "closed":
                    break
        except WebSocketDisconnect:
            pass
        finally:
            open_sockets -= 1
        if reply.get("type") == "closed":
            await socket.close()

    return app


def _answer(episode: _Episode, episode_id: str, raw: str, max_bytes: int) -> dict[str, Any]:
    """The reply to one WebSocket message; never raises for anything the client sends."""
    if len(raw) > max_bytes:
        return _ws_error("REQUEST_TOO_LARGE", f"message of {len(raw):,} characters is over the {max_bytes:,}-byte limit")
    try:
        message = json.loads(raw)
    except ValueError as error:
        return _ws_error("INVALID_JSON", f"invalid JSON: {error}")
    if not isinstance(message, dict) or not isinstance(message.get("data", {}), dict):
        return _ws_error("VALIDATION_ERROR", 'a message is {"type": ..., "data": {...}}')
    kind, data = message.get("type"), message.get("data", {})
    try:
        if kind == "reset":
            return {"type": "observation", "data": episode.reset(ResetRequest.model_validate(data))}
        if kind == "step":
            return {"type": "observation", "data": episode.step(StepRequest.model_validate(data).action)}
        if kind == "state":
            return {"type": "state", "data": episode.state(episode_id)}
        if kind == "close":
            return {"type": "closed", "data": {}}
    except EnvError as error:
        return _ws_error(error.code, error.message)
    except ValueError as error:  # pydantic's ValidationError
        return _ws_error("VALIDATION_ERROR", str(error))
    return _ws_error("UNKNOWN_TYPE", f"unknown message type {kind!r}; expected reset, step, state or close")


def _ws_error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "data": {"message": message, "code": code}}


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the server until interrupted (what `shop-r1 serve` calls)."""
    import uvicorn

    # Messages up to the frame cap get a REQUEST_TOO_LARGE reply and the connection lives on; past it
    # the WebSocket protocol closes the connection with 1009 (message too big) before reading more.
    frame_cap = max(16 << 20, 4 * config.max_request_bytes)
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, ws_max_size=frame_cap)
