"""A real kiln-server for the tests: the embedded default (SQLite and a folder) in a temporary folder."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from kiln import Registry
from sample import MIB, MODEL, VERSION, part_size, write_model

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, token: str, log: Path):
        self.url = url
        self.token = token
        self.log = log


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    binary = Path(os.environ.get("KILN_SERVER_BIN", REPO / "target/debug/kiln-server"))
    if not binary.is_absolute():
        binary = REPO / binary
    if not binary.exists():
        pytest.fail(f"{binary} does not exist: run `cargo build -p kiln-server` or set KILN_SERVER_BIN")
    work = tmp_path_factory.mktemp("kiln-server")
    port = free_port()
    token = "pytest-" + secrets.token_hex(20)
    env = {
        # Only what the server needs: a KILN_ variable it does not know would stop its start.
        **{k: v for k, v in os.environ.items() if not k.startswith("KILN_")},
        "KILN_DATA_DIR": str(work / "data"),
        "KILN_LISTEN": f"127.0.0.1:{port}",
        "KILN_BOOTSTRAP_TOKEN": token,
        # Benchmarks need a runner; the tests wait for the pipeline without them.
        "KILN_EMBEDDED_RUNNER": "false",
    }
    log = work / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(binary)], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield Server(url, token, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"kiln-server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"kiln-server did not answer /healthz within {START_TIMEOUT:g} s:\n{log.read_text()[-4000:]}")


@pytest.fixture
def registry(server: Server):
    with Registry(server.url, server.token) as registry:
        yield registry


@pytest.fixture(scope="session")
def pushed(server: Server, tmp_path_factory: pytest.TempPathFactory):
    """acme/roundtrip:1.0.0, pushed one part per chunk and settled: (its files, the push's result, the
    upload progress reported, the server's part size)."""
    with Registry(server.url, server.token) as registry:
        part = part_size(registry)
        folder = tmp_path_factory.mktemp("model")
        files = write_model(folder, big_size=part + 3 * MIB // 2)
        progress: list[tuple[str, int, int]] = []
        # chunk_size=1 rounds up to one part: the big file goes in two PATCHes, the second one shorter.
        result = registry.push(folder, MODEL, VERSION, chunk_size=1, on_progress=lambda *p: progress.append(p))
        registry.wait(MODEL, VERSION, timeout=120)
        yield files, result, progress, part
