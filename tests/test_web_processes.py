"""The web side as real processes on 127.0.0.1 (ports the OS picks): ``policyfeed serve`` under
500 slow connections, body caps and symlinks over real sockets, and the factory under
``waitress-serve --call`` and gunicorn. Every wait is bounded; every socket is closed."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "policyfeed.toml"
BIN = Path(sys.executable).parent
SECRET = "process-test-key"


@dataclass
class Running:
    process: subprocess.Popen[str]
    port: int
    folder: Path

    def request(self, raw: bytes, timeout: float = 10) -> bytes:
        """Send ``raw`` and read the whole answer (the server closes: Connection: close)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(raw)
            return read_answer(sock)

    def get(self, path: str, timeout: float = 10) -> bytes:
        return self.request(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
            timeout,
        )


def read_answer(sock: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):  # a server closing on unread data resets
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYFEED_")}
    env.update(
        POLICYFEED_CONFIG=str(CONFIG),
        POLICYFEED_DB=str(tmp_path / "posts.db"),
        POLICYFEED_OUTPUT_DIR=str(tmp_path / "public"),
        POLICYFEED_SECRET=SECRET,
    )
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory, pristine_demo_db: Path) -> Path:
    """The demo site built once (by the CLI) from a copy of the demo database (made from
    demo/)."""
    folder = tmp_path_factory.mktemp("demo-site")
    shutil.copyfile(pristine_demo_db, folder / "posts.db")
    subprocess.run(
        [sys.executable, "-m", "policyfeed", "build"],
        env=environment(folder),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return folder


@pytest.fixture
def built(demo_site: Path, tmp_path: Path) -> Path:
    """A copy of the built demo site in tmp_path/public, its database in tmp_path/posts.db."""
    shutil.copyfile(demo_site / "posts.db", tmp_path / "posts.db")
    shutil.copytree(demo_site / "public", tmp_path / "public", symlinks=True)
    return tmp_path / "public"


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str], listening: re.Pattern[str], stream: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start ``command``, wait (bounded) for the line saying where it listens, and stop it."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        pipe = process.stdout if stream == "stdout" else process.stderr
        assert pipe is not None
        deadline = time.monotonic() + 60
        seen = []
        port = 0
        while time.monotonic() < deadline:
            line = pipe.readline()
            if not line:
                break
            seen.append(line)
            if match := listening.search(line):
                port = int(match.group(1))
                break
        assert port, f"{command[0]} did not start: {''.join(seen)}"
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextlib.contextmanager
def serve(built: Path, **extra_env: str) -> Iterator[Running]:
    tmp_path = built.parent
    command = [sys.executable, "-m", "policyfeed", "serve", "--port", "0"]
    pattern = re.compile(r"at http://127\.0\.0\.1:(\d+)/")
    with running(command, environment(tmp_path, **extra_env), pattern, "stdout") as (proc, port):
        yield Running(proc, port, built)


def open_files_for(count: int) -> None:
    """Room for ``count`` sockets in this test process too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count + 200:
        wanted = count + 200 if hard == resource.RLIM_INFINITY else min(count + 200, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@contextlib.contextmanager
def slow_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each send half a request header and wait."""
    open_files_for(count)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /feed.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slo")
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def still_open(sock: socket.socket) -> bool:
    """Whether the server still holds the connection (it has neither answered nor closed)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


# --- serve under slow connections -----------------------------------------------------------


def test_a_normal_get_is_answered_within_2s_while_500_slow_connections_are_open(
    built: Path,
) -> None:
    with serve(built) as site:
        feed = (built / "feed.xml").read_bytes()
        with slow_connections(site.port, 500) as sockets:
            started = time.monotonic()
            answer = site.get("/feed.xml", timeout=2)
            elapsed = time.monotonic() - started
            assert status_of(answer) == 200
            assert answer.endswith(feed)
            assert elapsed < 2.0, f"{elapsed:.2f} s"
            # The 500 were held open all the while: the server kept serving beside them.
            assert all(still_open(s) for s in sockets)


def test_a_connection_that_goes_quiet_is_closed_after_the_channel_timeout(built: Path) -> None:
    with (
        serve(built, POLICYFEED_CHANNEL_TIMEOUT="2") as site,
        slow_connections(site.port, 3) as sockets,
    ):
        started = time.monotonic()
        for sock in sockets:
            sock.settimeout(20)
            assert sock.recv(1024) == b""  # closed by the server, unanswered
        elapsed = time.monotonic() - started
        assert 1.5 < elapsed < 15, f"{elapsed:.2f} s"


def test_serve_raises_its_open_file_limit_to_fit_the_connection_limit(built: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"the hard open-file limit is {hard}")
    # Start serve with a low soft limit, as a default shell or unit gives it.
    low = f"import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard}))"
    command = [
        sys.executable,
        "-c",
        f"{low}; import sys; sys.argv = ['policyfeed', 'serve', '--port', '0']; "
        "from policyfeed.cli import main; main()",
    ]
    env = environment(built.parent)
    pattern = re.compile(r"at http://127\.0\.0\.1:(\d+)/")
    with running(command, env, pattern, "stdout") as (process, _):
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        assert int(line.split()[3]) >= 1000 + 64, line


def test_under_a_low_hard_limit_serve_lowers_its_connection_limit_and_says_so(
    built: Path,
) -> None:
    low = "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))"
    command = [
        sys.executable,
        "-c",
        f"{low}; import sys; sys.argv = ['policyfeed', 'serve', '--port', '0']; "
        "from policyfeed.cli import main; main()",
    ]
    pattern = re.compile(r"at http://127\.0\.0\.1:(\d+)/")
    with running(command, environment(built.parent), pattern, "stdout") as (process, port):
        assert status_of(Running(process, port, built).get("/feed.xml")) == 200
        process.terminate()
        _, errors = process.communicate(timeout=15)
    assert "web.connection_limit lowered from 1000 to 448: the open-file limit is 512" in errors


# --- bodies, paths and symlinks over a real socket --------------------------------------------


def test_a_20mb_declared_body_is_answered_413_before_it_is_sent(built: Path) -> None:
    with serve(built) as site:
        head = (
            "POST /unsubscribe?t=x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {20 * 1024 * 1024}\r\n\r\n"
        ).encode()
        started = time.monotonic()
        answer = site.request(head, timeout=10)  # not a byte of the body is sent
        assert status_of(answer) == 413
        assert time.monotonic() - started < 5


def test_a_chunked_body_over_the_cap_is_cut_off_with_413(built: Path) -> None:
    with serve(built) as site, socket.create_connection(("127.0.0.1", site.port), 10) as sock:
        sock.sendall(
            b"POST /unsubscribe?t=x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"a" * 64 * 1024)
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(320):  # 20 MB, if the server let it all in
                sock.sendall(chunk)
                sent += 1
        answer = read_answer(sock)
        assert status_of(answer) == 413
        assert sent < 320


def test_the_server_caps_bodies_at_the_largest_endpoint_cap(built: Path) -> None:
    with serve(built) as site:
        # Headers only: the app is called once the body is in, so a 413 now is waitress's.
        head = (
            "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {16 * 1024 + 1}\r\n\r\n"  # the largest cap (unsubscribe) + 1
        )
        assert status_of(site.request(head.encode())) == 413


def test_a_symlink_out_of_the_site_is_404_over_http(built: Path) -> None:
    (built / "leak.txt").symlink_to("/etc/passwd")
    with serve(built) as site:
        answer = site.get("/leak.txt")
        assert status_of(answer) == 404
        assert b"root:" not in answer


def test_nul_and_overlong_paths_over_http_are_refused_without_a_traceback(built: Path) -> None:
    with serve(built) as site:
        assert status_of(site.get("/a%00b")) == 400
        assert (
            status_of(site.request(b"GET /a\x00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
            == 400
        )
        assert status_of(site.get("/" + "a" * 10_000)) == 404  # reaches the app
        raw_query = b"GET /unsubscribe?t=\x80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert status_of(site.request(raw_query)) == 400  # waitress: "Bad URI", before the app
        # Over the server's 32 KiB for a request line and headers: waitress refuses it alone.
        assert status_of(site.get("/" + "a" * 70_000)) == 431
        assert status_of(site.get("/feed.xml")) == 200
        site.process.terminate()
        _, errors = site.process.communicate(timeout=15)
    assert "Traceback" not in errors
    refused = [line for line in errors.splitlines() if "refused" in line]
    assert len(refused) == 3, errors  # one line each for the two NULs and the long path


def test_a_token_page_over_http_carries_its_headers(built: Path) -> None:
    with serve(built) as site:
        head, _, _ = site.get("/unsubscribe?t=1.abc").partition(b"\r\n\r\n")
        headers = head.decode("latin-1").lower()
        assert "cache-control: no-store" in headers
        assert "referrer-policy: no-referrer" in headers
        assert "frame-ancestors 'none'" in headers


# --- the factory under other WSGI servers -------------------------------------------------------


def test_waitress_serve_runs_the_factory_from_the_environment(built: Path) -> None:
    command = [str(BIN / "waitress-serve"), "--listen=127.0.0.1:0"]
    command += ["--call", "policyfeed.web:create_app"]
    pattern = re.compile(r"Serving on http://127\.0\.0\.1:(\d+)")
    env = environment(built.parent)
    with running(command, env, pattern, "stderr") as (_, port):
        site = Running(_, port, built)
        assert site.get("/healthz").endswith(b"\r\n\r\nok\n")
        assert site.get("/feed.xml").endswith((built / "feed.xml").read_bytes())
        assert status_of(site.get("/unsubscribe?t=1.abc")) == 400


WHOAMI_FACTORY = """
from werkzeug.wrappers import Response
from policyfeed.web.app import Endpoint, create_app, make_app

def whoami(request, site):
    return Response(request.remote_addr or "", mimetype="text/plain")

def create():
    app = create_app()
    return make_app(app.settings, app.db_path, app.out_dir, endpoints=[Endpoint("/whoami", whoami)])
"""


def documented_waitress_serve() -> list[str]:
    """The waitress-serve command line of docs/deploy.md, as an operator copies it."""
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    [start] = re.findall(r"^waitress-serve (?:.*\\\n)*.*$", deploy, flags=re.M)
    command = shlex.split(start.replace("\\\n", " "))
    assert "--listen=127.0.0.1:8000" in command and "policyfeed.web:create_app" in command
    return command


def test_the_documented_waitress_serve_sets_the_limits_serve_sets() -> None:
    from policyfeed.config import Settings
    from policyfeed.web.app import make_app
    from policyfeed.web.server import server_options

    settings = Settings(secret="x" * 32, trusted_proxies=1)
    app = make_app(settings, Path("posts.db"), Path("public"))
    wanted = server_options(app, settings, settings.connection_limit)
    given: dict[str, object] = {}
    for arg in documented_waitress_serve()[1:]:
        name, _, value = arg.lstrip("-").partition("=")
        if name.startswith("no-"):
            given[name[3:].replace("-", "_")] = False
        else:
            given[name.replace("-", "_")] = int(value) if value.isdigit() else (value or True)
    assert {k: given.get(k) for k in wanted if k != "ident"} == {
        k: v for k, v in wanted.items() if k != "ident"
    }


def test_waitress_serve_as_documented_behind_a_proxy_keeps_the_apps_limits_and_client_address(
    built: Path,
) -> None:
    """The documented command line: the client address the proxy appends reaches the app (a
    bare waitress-serve drops X-Forwarded-For, so every client would share the proxy's address
    and its rate limits), and a large body is refused before it is read."""
    (built.parent / "whoami_app.py").write_text(WHOAMI_FACTORY)
    command = [
        {"--listen=127.0.0.1:8000": "--listen=127.0.0.1:0"}.get(arg, arg)
        for arg in documented_waitress_serve()
    ]
    command[0] = str(BIN / "waitress-serve")
    command[command.index("policyfeed.web:create_app")] = "whoami_app:create"
    env = environment(built.parent, POLICYFEED_TRUSTED_PROXIES="1", PYTHONPATH=str(built.parent))
    pattern = re.compile(r"Serving on http://127\.0\.0\.1:(\d+)")
    with running(command, env, pattern, "stderr") as (process, port):
        site = Running(process, port, built)
        proxied = site.request(
            b"GET /whoami HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n"
            b"Connection: close\r\n\r\n"
        )
        assert proxied.endswith(b"\r\n\r\n203.0.113.9"), proxied
        large = site.request(
            b"POST /unsubscribe?t=x HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n",
            timeout=20,
        )
        assert status_of(large) == 413


def test_waitress_serve_refuses_to_start_without_the_secret(built: Path) -> None:
    env = environment(built.parent)
    del env["POLICYFEED_SECRET"]
    command = [str(BIN / "waitress-serve"), "--listen=127.0.0.1:0"]
    done = subprocess.run(
        [*command, "--call", "policyfeed.web:create_app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "POLICYFEED_SECRET is not set" in done.stderr


@pytest.mark.skipif(not (BIN / "gunicorn").exists(), reason="gunicorn is not installed")
def test_gunicorn_runs_the_factory_from_the_environment(built: Path) -> None:
    command = [str(BIN / "gunicorn"), "--bind", "127.0.0.1:0", "--workers", "1"]
    command += ["policyfeed.web:create_app()"]
    pattern = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
    with running(command, environment(built.parent), pattern, "stderr") as (proc, port):
        site = Running(proc, port, built)
        assert site.get("/healthz").endswith(b"\r\n\r\nok\n")
        assert site.get("/feed.xml").endswith((built / "feed.xml").read_bytes())
