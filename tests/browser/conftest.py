"""Fixtures for the browser tests: the server scripts/ui-test.sh started, models pushed with the kiln CLI,
users made through the API, and headless Chromium over WebDriver."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

SERVER = os.environ["KILN_SERVER"]
ADMIN_TOKEN = os.environ["KILN_TOKEN"]
KILN = os.environ["KILN_BIN"]
SAMPLE_ONNX = os.environ["KILN_SAMPLE_ONNX"]
PASSWORD = "a long enough password"
# The CLI's own state (credentials, manifest sequences) stays out of the user's home.
CLI_CONFIG = tempfile.mkdtemp(prefix="kiln-browser-cli-")

HOSTILE_README = """# Hostile card

<script>document.title = "pwned"; console.error("card script ran")</script>

[a javascript link](javascript:console.error('link%20ran'))

<a href="javascript:console.error('raw link ran')" onclick="console.error('onclick ran')">raw</a>
<img src="x" onerror="console.error('onerror ran')">

| kept | table |
|------|-------|
| 1    | 2     |
"""


def api(method: str, path: str, body: dict | None = None, token: str = ADMIN_TOKEN) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(SERVER + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def kiln(*args: str, token: str = ADMIN_TOKEN) -> str:
    env = {**os.environ, "KILN_SERVER": SERVER, "KILN_TOKEN": token, "XDG_CONFIG_HOME": CLI_CONFIG}
    done = subprocess.run([KILN, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"kiln {' '.join(args)}: {done.stderr}"
    return done.stdout


def wait_settled(reference: str, benchmarks: bool = False, timeout: float = 240) -> dict:
    """Polls the version until its pipeline (and, if asked, its benchmarks) has nothing left to run."""
    namespace, rest = reference.split("/", 1)
    model, version = rest.split(":", 1)
    deadline = time.time() + timeout
    while True:
        _, detail = api("GET", f"/api/v1/models/{namespace}/{model}/versions/{version}")
        jobs = detail.get("pipeline", [])
        open_jobs = [j for j in jobs if j["state"] in ("queued", "running") and (benchmarks or j["kind"] != "benchmark")]
        if detail["status"] in ("ready", "failed") and not open_jobs:
            return detail
        assert time.time() < deadline, f"{reference} did not settle: {detail}"
        time.sleep(0.5)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """acme/open (public, an ONNX model with a hostile README, two versions, alias production),
    acme/secret (private), acme/page-00..04 (for paging); users alice (writer in acme) and bob (his own
    namespace only), with passwords; a token of alice's."""
    for name in ("alice", "bob"):
        status, body = api("POST", "/api/v1/users", {"name": name, "password": PASSWORD})
        assert status == 201, body
    root = tmp_path_factory.mktemp("models")
    open_dir = root / "open"
    subprocess.run([SAMPLE_ONNX, str(open_dir)], check=True, capture_output=True)
    (open_dir / "README.md").write_text(HOSTILE_README)
    kiln("push", str(open_dir), "acme/open:1.0.0")
    kiln("push", str(open_dir), "acme/open:1.1.0")
    secret = root / "secret"
    secret.mkdir()
    (secret / "weights.bin").write_bytes(b"private weights")
    kiln("push", str(secret), "acme/secret:1")
    for i in range(5):
        page = root / f"page-{i}"
        page.mkdir()
        (page / "w.bin").write_bytes(f"page {i}".encode())
        kiln("push", str(page), f"acme/page-{i:02d}:1")
    status, body = api("PUT", "/api/v1/namespaces/acme/members/alice", {"role": "writer"})
    assert status == 200, body
    status, body = api(
        "PATCH",
        "/api/v1/models/acme/open",
        {"description": "<script>console.error('description ran')</script> an MLP", "tags": ["demo", "<b>tag</b>"]},
    )
    assert status == 200, body
    status, body = api("PUT", "/api/v1/models/acme/open/visibility", {"visibility": "public"})
    assert status == 200, body
    wait_settled("acme/open:1.0.0", benchmarks=True)
    wait_settled("acme/open:1.1.0", benchmarks=True)
    wait_settled("acme/secret:1")
    kiln("alias", "set", "acme/open", "production", "1.0.0")
    _, jwt = api("POST", "/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, token="")
    status, created = api("POST", "/api/v1/tokens", {"name": "browser"}, token=jwt["access_token"])
    assert status == 201, created
    return {"alice_token": created["token"], "password": PASSWORD}


@pytest.fixture()
def browser(tmp_path: Path):
    options = webdriver.ChromeOptions()
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1440,1000",
    ):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(2)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, name: str) -> None:
    """Saves the page as docs/ui/NAME.png when scripts/ui-test.sh --screenshots asked for it."""
    folder = os.environ.get("KILN_UI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(driver.get_window_size()["width"], min(max(height, 600), 4000))
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))
