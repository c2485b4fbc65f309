"""A real IMAP server for tests: Debian's dovecot on 127.0.0.1, one passwd-file user, a maildir.

Install with ``apt-get install -y dovecot-imapd`` (the package's own service is not used). The
server is started from a generated config in a fresh directory, in the foreground (``-F``), on a
free high port, and stopped by the test. As root, dovecot's own unprivileged users run the login
and mail processes (the Debian package creates ``dovecot`` and ``dovenull``); as another user,
everything runs as that user. Tests that need it fail with the install command when dovecot is missing.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

__all__ = ["DOVECOT", "Dovecot", "running_dovecot"]

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)

_CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
instance_name = leadwarm-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {root}/dovecot.log
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
"""


@dataclass
class Dovecot:
    """A running dovecot: where it listens and the one user's credentials."""

    host: str
    port: int
    user: str
    password: str
    root: Path

    def client(self) -> imaplib.IMAP4:
        """A logged-in stdlib IMAP client (test-side helper; the code under test uses its own)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message in ``folder`` (APPEND, unseen) as a mail server would deliver it."""
        client = self.client()
        try:
            typ, data = client.append(folder, "", None, raw)
            assert typ == "OK", data
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> dict[str, set[str]]:
        """``{Message-ID header value: flags}`` of every message in ``folder``."""
        client = self.client()
        try:
            client.select(folder, readonly=True)
            typ, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            assert typ == "OK", data
            out: dict[str, set[str]] = {}
            for item in data:
                if not isinstance(item, tuple):
                    continue
                meta, header = item
                flags = imaplib.ParseFlags(meta)
                mid = header.decode().partition(":")[2].strip()
                out[mid] = {f.decode() for f in flags}
            return out
        finally:
            client.logout()


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            if sock.recv(64).startswith(b"* OK"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on {port}: {log.read_text() if log.exists() else ''}")


@contextlib.contextmanager
def running_dovecot(
    *,
    user: str = "leads@sunnywatt.example",
    password: str = "imap-test-pass",  # noqa: S107 - test server
) -> Iterator[Dovecot]:
    """Start dovecot on a free 127.0.0.1 port with a fresh maildir; stop and remove it on exit."""
    if DOVECOT is None:
        raise RuntimeError("dovecot is not installed (apt-get install -y dovecot-imapd)")
    # Not under pytest's tmp_path: that tree is mode 0700 and dovecot's unprivileged processes
    # must reach the sockets in base_dir.
    root = Path(tempfile.mkdtemp(prefix="leadwarm-dovecot-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        internal_user, internal_group, login_user = "dovecot", "dovecot", "dovenull"
        uid, gid = pwd.getpwnam("dovecot").pw_uid, grp.getgrnam("dovecot").gr_gid
    else:
        internal_user = login_user = pwd.getpwuid(os.getuid()).pw_name
        internal_group = grp.getgrgid(os.getgid()).gr_name
        uid, gid = os.getuid(), os.getgid()
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    os.chown(root / "mail", uid, gid)
    (root / "passwd").write_text(f"{user}:{{PLAIN}}{password}\n")
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(5):
            port = free_port()
            config = root / "dovecot.conf"
            config.write_text(
                _CONFIG.format(
                    root=root,
                    port=port,
                    internal_user=internal_user,
                    internal_group=internal_group,
                    login_user=login_user,
                    uid=uid,
                    gid=gid,
                )
            )
            process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                _wait_listening(port, process, root / "dovecot.log")
                break
            except RuntimeError:
                process.terminate()
                process.wait(timeout=10)
                process = None
        if process is None:
            raise RuntimeError(f"dovecot would not start: {(root / 'dovecot.log').read_text()}")
        yield Dovecot("127.0.0.1", port, user, password, root)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
