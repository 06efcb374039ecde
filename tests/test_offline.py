"""No network: tiny training runs, through `shop-r1` and through the library, look up no remote host.

The model hub's libraries reach out on their own: TRL's trainers send a telemetry ping when they are
created, and huggingface_hub fetches its list of AI-agent harnesses for the request headers, both
from a background thread. Each run here replaces `socket.getaddrinfo` and `socket.create_connection`
with versions that record (and refuse) every non-loopback name, and requires the record to be empty.
The offline switches, and CI (TRL skips its ping under CI), are removed from the environment first,
so what is tested is what shop-r1 sets, not what the machine had.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from shop_env.preflight import OFFLINE_ENVIRONMENT, stay_offline

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"
CLEARED = (*OFFLINE_ENVIRONMENT, "CI", "DO_NOT_TRACK", "DISABLE_TELEMETRY")


def _is_loopback(host) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def guard_sockets(setattr=None) -> list[list[str]]:
    """Make every non-loopback name lookup or connection fail and be recorded in the returned list."""
    setattr = setattr or (lambda owner, name, value: owner.__setattr__(name, value))
    lookups: list[list[str]] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host, *args, **kwargs):
        if _is_loopback(host):
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(["getaddrinfo", str(host), threading.current_thread().name])
        raise OSError(f"test_offline: lookup of {host} refused")

    def create_connection(address, *args, **kwargs):
        if _is_loopback(address[0]):
            return real_connect(address, *args, **kwargs)
        lookups.append(["create_connection", str(address[0]), threading.current_thread().name])
        raise OSError(f"test_offline: connection to {address[0]} refused")

    setattr(socket, "getaddrinfo", getaddrinfo)
    setattr(socket, "create_connection", create_connection)
    return lookups


CHILD = """
import json, sys, time
tests, report, args = sys.argv[1:]
sys.path.insert(0, tests)
from test_offline import guard_sockets

lookups = guard_sockets()
from shop_r1.cli import main

sys.argv = ["shop-r1", *json.loads(args)]
try:
    main()
    code = 0
except SystemExit as exit:
    code = exit.code
time.sleep(1)  # the libraries' background threads get their turn
with open(report, "w") as handle:
    json.dump({"code": code, "lookups": lookups}, handle)
"""


def test_shop_r1_sft_looks_up_no_remote_host(tmp_path):
    args = ["sft", "--preset", "cpu", "--model", "tiny-random", "--sessions", str(FIXTURE), "--max-steps", "1",
            "--max-examples", "2", "--out", str(tmp_path / "sft")]
    env = {key: value for key, value in os.environ.items() if key not in CLEARED}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    report = tmp_path / "report.json"
    child = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent), str(report), json.dumps(args)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert report.exists(), child.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["code"] == 0, child.stderr[-3000:]
    assert result["lookups"] == []
    assert (tmp_path / "sft" / "model" / "config.json").exists()


def test_library_grpo_looks_up_no_remote_host(monkeypatch, tmp_path):
    """A library user who imported huggingface_hub before shop-r1 (its switches already read) stays offline too."""
    import huggingface_hub.constants as hub

    from training.grpo import GRPORunConfig, run_grpo

    for name in CLEARED:
        monkeypatch.setenv(name, "")  # so that the delenv below is undone after the test
        monkeypatch.delenv(name)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HUB_DISABLE_TELEMETRY", False)
    lookups = guard_sockets(monkeypatch.setattr)
    config = GRPORunConfig(
        model="tiny-random", sessions=str(FIXTURE), out=str(tmp_path / "grpo"), max_steps=1, num_generations=2,
        prompts_per_step=1, micro_batch_size=2, context_window=1024, max_new_tokens=16, max_examples=2,
    )
    summary = run_grpo(config)
    time.sleep(1)  # the libraries' background threads get their turn
    assert lookups == []
    assert summary["step"] == 1


def test_stay_offline_keeps_explicit_settings_and_updates_imported_libraries(monkeypatch):
    import datasets.config
    import huggingface_hub.constants as hub

    for name in CLEARED:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")  # a user's explicit choice wins
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HUB_DISABLE_TELEMETRY", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    stay_offline()
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert hub.HF_HUB_OFFLINE and hub.HF_HUB_DISABLE_TELEMETRY
    assert os.environ["HF_DATASETS_OFFLINE"] == "0" and not datasets.config.HF_DATASETS_OFFLINE


def test_the_cli_module_imports_no_model_library():
    """main() sets the switches before any command runs; that only works if importing the CLI loads none of them."""
    code = "import sys, shop_r1.cli; print(sorted(m for m in ('torch', 'huggingface_hub', 'transformers', 'trl') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
