"""Harness for the pictograph 1.69.146 compatibility suite.

Same approach as ``tests/compat/conftest.py``: one server process per pytest session,
started from the binary built by ``cargo build`` (``target/debug/pictograph``, or
``$PICTOGRAPH_BIN``) on a throw-away data directory, keys minted with
``pictograph keys create``. Tests drive it with the real ``pictograph==1.69.146`` client;
the cross-version tests also run ``pictograph==1.6.3`` against the same server, in a
subprocess with the legacy venv's python (``$PICTOGRAPH_LEGACY_PYTHON``, set by run.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from pictograph import Client

from helpers169 import ImageFactory, unique_name

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
LEGACY_SCRIPT = HERE / "legacy_client.py"
HEIC_SAMPLE = REPO_ROOT / "tests" / "compat" / "data" / "sample-320x240.heic"

ORG_A = "compat169-org-a"
ORG_B = "compat169-org-b"
FREE_RATE_LIMIT = 5  # PICTOGRAPH_RATE_LIMIT_FREE for the session server
STARTUP_TIMEOUT = 60.0
CLI_TIMEOUT = 60.0
LEGACY_TIMEOUT = 300.0

_LOG_KEY = pytest.StashKey[Path]()


def server_binary() -> Path:
    raw = os.environ.get("PICTOGRAPH_BIN")
    path = Path(raw) if raw else REPO_ROOT / "target" / "debug" / "pictograph"
    if not path.is_absolute():
        path = Path.cwd() / path
    return path


def legacy_python() -> Path:
    raw = os.environ.get("PICTOGRAPH_LEGACY_PYTHON")
    path = Path(raw) if raw else HERE / ".venv-legacy" / "bin" / "python"
    if not path.is_absolute():
        path = Path.cwd() / path
    return path


class ServerProcess:
    """``pictograph serve`` as a child process, plus the ``keys`` CLI."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, env: dict[str, str]) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = env
        self.base_url: str | None = None
        self.stdout_lines: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._listening = threading.Event()
        self._eof = threading.Event()

    def start(self) -> str:
        self._log = open(self.log_path, "wb")
        self._proc = subprocess.Popen(
            [str(self.binary), "serve", "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=self.env,
        )
        threading.Thread(target=self._pump_stdout, name="pictograph-stdout", daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._listening.wait(0.1):
            if self._eof.is_set() or self._proc.poll() is not None or time.monotonic() > deadline:
                if self._listening.wait(0.2):
                    break
                self.stop()
                raise RuntimeError(
                    "pictograph serve did not print 'listening on ...'.\n"
                    f"stdout:\n{self._stdout_text()}\nstderr:\n{self.stderr_tail()}"
                )
        assert self.base_url
        return self.base_url

    def _pump_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:  # keeps draining for the server's lifetime
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.stdout_lines.append(line)
            stripped = line.strip()
            if not self._listening.is_set() and stripped.startswith("listening on "):
                self.base_url = stripped[len("listening on "):].strip().rstrip("/")
                self._listening.set()
        self._eof.set()

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _stdout_text(self) -> str:
        return "\n".join(self.stdout_lines[-50:]) or "(nothing)"

    def stderr_tail(self, limit: int = 6000) -> str:
        try:
            if self._log is not None:
                self._log.flush()
            text = self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return "(unreadable)"
        return text[-limit:] or "(nothing)"

    def create_key(self, org: str, role: str, tier: str) -> str:
        cmd = [
            str(self.binary), "keys", "create",
            "--data-dir", str(self.data_dir),
            "--org", org, "--role", role, "--tier", tier,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT, env=self.env)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[1:3])} failed:\n{res.stdout}\n{res.stderr}")
        lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
        if len(lines) != 1:
            raise RuntimeError(f"`pictograph keys create` must print exactly the key; got {res.stdout!r}")
        return lines[0]


@dataclass
class ServerInfo:
    base_url: str
    data_dir: Path
    keys: dict[str, str]
    process: ServerProcess = field(repr=False)

    def client(self, key_name: str = "owner", **kwargs: Any) -> Client:
        return Client(api_key=self.keys[key_name], base_url=self.base_url, **kwargs)

    def raw(self, key_name: str | None = "owner", user_agent: str | None = None) -> httpx.Client:
        """A plain httpx client for checks the SDK's models would block."""
        headers = {"Accept": "application/json"}
        if key_name is not None:
            headers["X-API-Key"] = self.keys[key_name]
        if user_agent is not None:
            headers["User-Agent"] = user_agent
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)


# Key name -> (org, role, tier). "free" is reserved for the rate-limit test.
KEY_SPECS: dict[str, tuple[str, str, str]] = {
    "owner": (ORG_A, "owner", "unlimited"),
    "member": (ORG_A, "member", "unlimited"),
    "admin": (ORG_A, "admin", "unlimited"),
    "owner_b": (ORG_B, "owner", "unlimited"),
    "free": (ORG_A, "member", "free"),
}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[ServerInfo]:
    binary = server_binary()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.exit(
            f"server binary not found or not executable: {binary}\n"
            "Run `cargo build` first, or point PICTOGRAPH_BIN at the binary.",
            returncode=2,
        )
    data_dir = tmp_path_factory.mktemp("pictograph-data")
    log_path = tmp_path_factory.mktemp("pictograph-log") / "server-stderr.log"
    request.config.stash[_LOG_KEY] = log_path

    env = dict(os.environ)
    env["PICTOGRAPH_RATE_LIMIT_FREE"] = str(FREE_RATE_LIMIT)
    for var in ("PICTOGRAPH_API_KEY", "PICTOGRAPH_BASE_URL"):
        os.environ.pop(var, None)

    proc = ServerProcess(binary, data_dir, log_path, env)
    try:
        base_url = proc.start()
        keys = {name: proc.create_key(*spec) for name, spec in KEY_SPECS.items()}
        yield ServerInfo(base_url=base_url, data_dir=data_dir, keys=keys, process=proc)
    finally:
        proc.stop()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    log_path = config.stash.get(_LOG_KEY, None)
    if log_path is not None and exitstatus != 0:
        terminalreporter.write_line(f"pictograph server stderr log: {log_path}")


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------


@pytest.fixture
def make_client(server: ServerInfo) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def factory(key_name: str = "owner", **kwargs: Any) -> Client:
        c = server.client(key_name, **kwargs)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


@pytest.fixture
def client(make_client: Callable[..., Client]) -> Client:
    """Owner key in org A."""
    return make_client("owner")


@pytest.fixture
def member_client(make_client: Callable[..., Client]) -> Client:
    return make_client("member")


@pytest.fixture
def admin_client(make_client: Callable[..., Client]) -> Client:
    return make_client("admin")


@pytest.fixture
def other_org_client(make_client: Callable[..., Client]) -> Client:
    """Owner key in org B."""
    return make_client("owner_b")


@pytest.fixture
def raw(server: ServerInfo) -> Iterator[Callable[..., httpx.Client]]:
    """``raw("owner", user_agent=...)`` -> httpx.Client with that key's X-API-Key header."""
    made: list[httpx.Client] = []

    def factory(key_name: str | None = "owner", user_agent: str | None = None) -> httpx.Client:
        c = server.raw(key_name, user_agent)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


@pytest.fixture
def images(tmp_path: Path) -> ImageFactory:
    """``images("stop/001.jpg", size=(40, 30))`` -> Path of a fresh image file."""
    return ImageFactory(tmp_path / "images")


@pytest.fixture
def dataset(client: Client) -> Any:
    """A fresh, empty dataset (no classes) in org A."""
    return client.datasets.create(unique_name("ds"))


# ---------------------------------------------------------------------------
# the 1.6.3 client, in a subprocess
# ---------------------------------------------------------------------------


class LegacyClient:
    """Runs ``legacy_client.py <op> <json args>`` with pictograph 1.6.3 and parses its JSON."""

    def __init__(self, server: ServerInfo, key_name: str = "owner") -> None:
        self.server = server
        self.key_name = key_name

    def __call__(self, op: str, **args: Any) -> Any:
        python = legacy_python()
        if not python.is_file():
            pytest.fail(
                f"legacy python not found: {python}. Run the suite through tests/compat169/run.sh, "
                "or set PICTOGRAPH_LEGACY_PYTHON to a python with pictograph==1.6.3."
            )
        env = dict(os.environ)
        env["PICTOGRAPH_API_KEY"] = self.server.keys[self.key_name]
        env["PICTOGRAPH_BASE_URL"] = self.server.base_url
        res = subprocess.run(
            [str(python), str(LEGACY_SCRIPT), op, json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=LEGACY_TIMEOUT,
            env=env,
        )
        if res.returncode != 0:
            pytest.fail(f"pictograph 1.6.3 `{op}` failed (exit {res.returncode}):\n{res.stderr[-4000:]}")
        return json.loads(res.stdout)


@pytest.fixture
def legacy(server: ServerInfo) -> LegacyClient:
    """``legacy("op", **args)``: one call of the 1.6.3 client as the org A owner."""
    return LegacyClient(server)


def pytest_report_header(config: pytest.Config) -> list[str]:
    import pictograph

    return [f"pictograph {pictograph.__version__} (python {sys.version.split()[0]})"]
