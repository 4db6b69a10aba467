"""A real IMAP server for tests: Debian's Dovecot on 127.0.0.1, in a throwaway configuration.

It runs as an unprivileged user (``nobody`` when the tests run as root, else the tests' own
user), with TLS on both its ports (implicit TLS, and STARTTLS required before any login) from a
certificate made at test time (trustme), one static password, and each user's Maildir under
the throwaway folder. ``capabilities`` may replace what it announces (e.g. without MOVE, to try
the COPY/EXPUNGE path). Use it as a context manager; it is always stopped.
"""

from __future__ import annotations

import contextlib
import getpass
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import trustme

HOST = "127.0.0.1"
DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
START_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Dovecot:
    def __init__(self, *, password: str = "bounce-box-password", capabilities: str = "") -> None:
        if DOVECOT is None:
            raise RuntimeError("dovecot is not installed (Debian: apt-get install dovecot-imapd)")
        self.password = password
        self.capabilities = capabilities
        self.folder = Path(tempfile.mkdtemp(prefix="pf-dovecot-"))
        self.imaps_port = 0
        self.imap_port = 0
        self._process: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            self.user, self.group = "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
        else:
            self.user = getpass.getuser()
            self.group = grp.getgrgid(os.getgid()).gr_name

    # --- lifecycle -------------------------------------------------------------------------
    def _write_config(self) -> Path:
        ca = trustme.CA()
        cert = ca.issue_cert(HOST, "localhost")
        cert.private_key_pem.write_to_path(str(self.folder / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.folder / "cert.pem"))
        self.ca_file = self.folder / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        for sub in ("run", "state", "home"):
            (self.folder / sub).mkdir(exist_ok=True)
        dh = Path("/usr/share/dovecot/dh.pem")
        capability = f"imap_capability = {self.capabilities}\n" if self.capabilities else ""
        text = f"""
base_dir = {self.folder}/run
state_dir = {self.folder}/state
log_path = {self.folder}/dovecot.log
default_internal_user = {self.user}
default_internal_group = {self.group}
default_login_user = {self.user}
protocols = imap
listen = {HOST}
ssl = required
ssl_cert = <{self.folder}/cert.pem
ssl_key = <{self.folder}/key.pem
{f"ssl_dh = <{dh}" if dh.exists() else ""}
auth_mechanisms = plain
{capability}
passdb {{
  driver = static
  args = password={self.password}
}}
userdb {{
  driver = static
  args = uid={self.user} gid={self.group} home={self.folder}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""
        config = self.folder / "dovecot.conf"
        config.write_text(text, encoding="utf-8")
        return config

    def start(self) -> Dovecot:
        for _attempt in range(3):  # a free port may be taken between the probe and the bind
            self.imaps_port, self.imap_port = _free_port(), _free_port()
            config = self._write_config()
            command = [str(DOVECOT), "-F", "-c", str(config)]
            if os.geteuid() == 0:
                self.folder.chmod(0o755)
                for path in [self.folder, *self.folder.rglob("*")]:
                    os.chown(path, pwd.getpwnam(self.user).pw_uid, grp.getgrnam(self.group).gr_gid)
                command = ["setpriv", f"--reuid={self.user}", f"--regid={self.group}",
                           "--clear-groups", *command]  # fmt: skip
            self._process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
            )
            if self._wait_ready():
                return self
            self.stop(remove=False)
        log = self.log()
        shutil.rmtree(self.folder, ignore_errors=True)
        raise RuntimeError(f"dovecot did not start: {log}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            for port in (self.imaps_port, self.imap_port):
                try:
                    with socket.create_connection((HOST, port), timeout=1):
                        pass
                except OSError:
                    break
            else:
                return True
            time.sleep(0.05)
        return False

    def stop(self, *, remove: bool = True) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process is not None and process.stderr is not None:
            process.stderr.close()
        if remove:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    # --- a client of our own, to put mail in and look at the folders ------------------------
    def client(self, user: str) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        conn = imaplib.IMAP4_SSL(HOST, self.imaps_port, ssl_context=context, timeout=10)
        conn.login(user, self.password)
        return conn

    def deliver(self, user: str, *messages: bytes, folder: str = "INBOX") -> None:
        conn = self.client(user)
        try:
            for raw in messages:
                status, _ = conn.append(folder, None, None, raw)
                assert status == "OK"
        finally:
            conn.logout()

    def folder_messages(self, user: str) -> dict[str, list[bytes]]:
        """Folder name → the messages in it (not deleted), for every folder of ``user``."""
        conn = self.client(user)
        found: dict[str, list[bytes]] = {}
        try:
            _, listing = conn.list()
            for line in listing:
                match = re.match(rb'\(([^)]*)\) ("[^"]*"|NIL) (.+)$', bytes(line))
                assert match, line
                name = match.group(3).decode().strip('"')
                conn.select(f'"{name}"', readonly=True)
                _, data = conn.uid("SEARCH", "UNDELETED")
                uids = data[0].split() if data and data[0] else []
                found[name] = []
                for uid in uids:
                    _, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[])")
                    found[name] += [part[1] for part in fetched if isinstance(part, tuple)]
                conn.close()
        finally:
            conn.logout()
        return found
