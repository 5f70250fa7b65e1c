"""Fixtures shared by every test: real `rtgraph demo` servers on free loopback ports.

The binary is $RTGRAPH_BIN, else built with `go build` from the repository
root (two levels above clients/python) into a temporary directory. Each demo
runs the embedded broker and store in a temporary data directory; the
fixtures stop it (by its PID) after the last test.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from rtgraph import Client

REPO_ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT = 90.0
BUILD_TIMEOUT = 1200.0
DATA_TIMEOUT = 60.0

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn: Callable[[], T | None], timeout: float = DATA_TIMEOUT, interval: float = 0.25, what: str = "") -> T:
    """fn's first result that is neither None nor False, polling for at most timeout seconds.

    Exceptions are not retried: a poll waits for data, not for errors to go away.
    """
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v is not None and v is not False:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what or fn}")
        time.sleep(interval)


@dataclass
class Demo:
    """A running `rtgraph demo`."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    dir: Path
    api_key: str | None = None

    def stderr_tail(self, n: int = 30) -> str:
        try:
            return "\n".join((self.dir / "demo.err").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_demo(binary: str, workdir: Path, name: str, config: str, rate: int, api_key: str | None = None) -> Demo:
    d = workdir / name
    d.mkdir(parents=True)
    cfg = d / "config.yaml"
    cfg.write_text(config)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = open(d / "demo.out", "wb")  # noqa: SIM115 - the child keeps them open
    err = open(d / "demo.err", "wb")  # noqa: SIM115
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTGRAPH_")}
    proc = subprocess.Popen(
        [
            binary, "demo",
            "--config", str(cfg),
            "--data-dir", str(d / "data"),
            "--http-addr", f"127.0.0.1:{port}",
            "--kafka-addr", "127.0.0.1:0",
            "--rate", str(rate),
            "--progress", "0",
        ],
        stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=d,
    )
    out.close()
    err.close()
    demo = Demo(name, url, proc, d, api_key)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"rtgraph demo ({name}) exited with {proc.returncode} before it was ready:\n{demo.stderr_tail()}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return demo
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            demo.stop()
            raise RuntimeError(f"rtgraph demo ({name}) not ready within {READY_TIMEOUT:.0f} s:\n{demo.stderr_tail()}")
        time.sleep(0.25)


@pytest.fixture(scope="session")
def rtgraph_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """$RTGRAPH_BIN, else a binary built from this repository."""
    if os.environ.get("RTGRAPH_BIN"):
        return os.environ["RTGRAPH_BIN"]
    out = tmp_path_factory.mktemp("bin") / "rtgraph"
    res = subprocess.run(
        ["go", "build", "-o", str(out), "./cmd/rtgraph"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )
    if res.returncode != 0:
        raise RuntimeError(f"go build ./cmd/rtgraph failed in {REPO_ROOT}:\n{res.stdout}{res.stderr}")
    return str(out)


@pytest.fixture(scope="session")
def demo(rtgraph_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """An open demo (no API keys, no rate limit) whose generator publishes 300 events/s."""
    config = "api:\n  rate_limit:\n    requests_per_second: 0\n"
    d = start_demo(rtgraph_bin, tmp_path_factory.mktemp("demo"), "open", config, rate=300)
    yield d
    d.stop()


@pytest.fixture(scope="session")
def keyed_demo(rtgraph_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A demo with one API key (graph:read and counts:read) required, and no generator."""
    key = "test-key-" + secrets.token_hex(16)
    config = (
        "api:\n"
        "  keys:\n"
        "    - name: tests\n"
        f"      key: {key}\n"
        "      scopes: [graph:read, counts:read]\n"
        "  rate_limit:\n"
        "    requests_per_second: 0\n"
    )
    d = start_demo(rtgraph_bin, tmp_path_factory.mktemp("demo"), "keyed", config, rate=0, api_key=key)
    yield d
    d.stop()


@pytest.fixture
def client(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.delenv("RTGRAPH_API_KEY", raising=False)
    with Client(demo.url, max_retries=2) as c:
        yield c


@pytest.fixture(scope="session")
def account_1001(demo: Demo):
    """Account 1001, the generator's first account, once the pipeline has written it."""
    from rtgraph import NotFound

    with Client(demo.url) as c:

        def get():
            try:
                return c.node("account", "1001")
            except NotFound:
                return None

        return wait_for(get, what="account 1001 written")
