"""Google's Firestore emulator (``gcloud emulators firestore start``) for tests, on 127.0.0.1 only.

The emulator is gcloud (Python) -> a shell wrapper -> Java; it runs in its own process group and
is stopped by signalling the whole group, because the Java process outlives gcloud otherwise.
Readiness: ``GET /`` answers ``Ok``. Reset: ``DELETE /emulator/v1/projects/{project}/databases/
(default)/documents`` wipes every document (Firestore emulator docs, "Clear the database").
gcloud runs with a throwaway config directory and no prompts or update checks, so it needs no
network. :meth:`FirestoreEmulator.thread_dump` (``jstack``) shows where its request threads wait,
for hang reports.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from tests.support.ports import free_port

__all__ = ["EmulatorError", "FirestoreEmulator", "running_firestore_emulator", "start_firestore_emulator"]

_HOST = "127.0.0.1"


class EmulatorError(RuntimeError):
    """The emulator could not be found, started or stopped."""


def _http(method: str, url: str, *, timeout_s: float = 5.0) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.status, response.read().decode("utf-8", "replace")


@dataclass
class FirestoreEmulator:
    """A running emulator: ``host_port`` for ``FIRESTORE_EMULATOR_HOST``; :meth:`reset`, :meth:`stop`."""

    port: int
    project: str
    process: subprocess.Popen[bytes]
    workdir: Path
    started_at: float
    started_in_s: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    @property
    def host_port(self) -> str:
        """``"127.0.0.1:PORT"``."""
        return f"{_HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The emulator's combined stdout and stderr."""
        return self.workdir / "emulator.log"

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the emulator's log, for error messages."""
        try:
            return self.log_path.read_text("utf-8", "replace")[-chars:]
        except OSError:
            return ""

    def reset(self) -> None:
        """Delete every document of ``project``'s default database.

        Raises:
            EmulatorError: the emulator did not answer 200.
        """
        url = f"http://{self.host_port}/emulator/v1/projects/{self.project}/databases/(default)/documents"
        # The first delete after a start loads much of the emulator's code (Java): on a loaded
        # 2-core machine it took more than 5 s. A deadline, not a sleep: it answers as soon as it can.
        status, body = _http("DELETE", url, timeout_s=60.0)
        if status != 200:
            raise EmulatorError(f"emulator reset answered {status}: {body[:200]}")

    def java_pids(self) -> list[int]:
        """Pids of the emulator's Java processes (its process group; Linux ``/proc``)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                pgid = int(stat.rsplit(")", 1)[1].split()[2])
                if pgid == self.process.pid and b"java" in (entry / "cmdline").read_bytes().split(b"\0")[0]:
                    pids.append(int(entry.name))
        return pids

    def thread_dump(self, *, only: str = "datastore", timeout_s: float = 15.0) -> str:
        """The emulator JVM's threads (``jstack``), keeping those whose stack mentions ``only``
        (the emulator's own request threads), for hang diagnostics. Never raises: a failure is
        described in the returned text."""
        jstack = shutil.which("jstack")
        pids = self.java_pids()
        if jstack is None or not pids:
            return f"(no emulator thread dump: jstack={jstack}, java pids={pids})"
        out = []
        for pid in pids:
            try:
                done = subprocess.run(
                    [jstack, str(pid)], capture_output=True, timeout=timeout_s, check=False, text=True
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                out.append(f"(jstack {pid} failed: {exc})")
                continue
            threads = done.stdout.split("\n\n")
            kept = [t for t in threads if only in t]
            out.append(f"jstack {pid}: {len(threads)} blocks, {len(kept)} mention {only!r}")
            out.extend(kept)
        return "\n\n".join(out)

    def stop(self, *, grace_s: float = 10.0) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after ``grace_s``.

        Idempotent once the group is gone; if interrupted midway, calling it again (``atexit`` does)
        finishes the job.
        """
        if self._stopped:
            return
        pgid = self.process.pid  # start_new_session=True: the group id is gcloud's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        if not _wait_group_gone(self.process, pgid, grace_s):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            _wait_group_gone(self.process, pgid, grace_s)
        self._stopped = True
        shutil.rmtree(self.workdir, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a foreign process reused the group id
        return False
    return True


def _wait_group_gone(process: subprocess.Popen[bytes], pgid: int, timeout_s: float) -> bool:
    """Reap gcloud and poll until no process of the group is left (orphans are reaped by init)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.05)
        if process.poll() is not None and not _group_alive(pgid):
            return True
        time.sleep(0.05)
    return False


class _ExitedEarlyError(Exception):
    """The emulator process ended before it answered (its port was taken, or Java is missing)."""


def start_firestore_emulator(
    *, project: str, rules: Path | None = None, deadline_s: float = 60.0, attempts: int = 3
) -> FirestoreEmulator:
    """Start the emulator on a free port and return once ``GET /`` answers ``Ok``.

    Args:
        project: the project id the tests use (needed for :meth:`FirestoreEmulator.reset`).
        rules: a ``firestore.rules`` file to load (the Admin SDK's ``Bearer owner`` bypasses rules).
        deadline_s: how long to wait for readiness, per attempt.
        attempts: starts to try when the emulator exits early (another process took the port).

    Raises:
        EmulatorError: gcloud is not installed, or the emulator exited or was not ready in time
            (the message carries the end of its log).
    """
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise EmulatorError(
            "gcloud not found on PATH: the Firestore contract tests need Google's emulator "
            "(Debian packages google-cloud-cli and google-cloud-cli-firestore-emulator, plus a Java 17+ JRE)"
        )
    for attempt in range(1, attempts + 1):
        emulator = _spawn(gcloud, project=project, rules=rules)
        try:
            _wait_ready(emulator, deadline_s)
        except _ExitedEarlyError:
            tail = emulator.log_tail()
            emulator.stop()
            if attempt == attempts:
                raise EmulatorError(f"Firestore emulator exited during start; log tail:\n{tail}") from None
            continue
        except TimeoutError:
            tail = emulator.log_tail()
            emulator.stop()
            raise EmulatorError(
                f"Firestore emulator not ready in {deadline_s} s; log tail:\n{tail}"
            ) from None
        except BaseException:  # KeyboardInterrupt during the wait: stop the group, keep the error
            emulator.stop()
            raise
        emulator.started_in_s = time.monotonic() - emulator.started_at
        return emulator
    raise AssertionError("unreachable")  # pragma: no cover


def _spawn(gcloud: str, *, project: str, rules: Path | None) -> FirestoreEmulator:
    workdir = Path(tempfile.mkdtemp(prefix="firestore-emulator-"))
    port = free_port(_HOST)
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(workdir / "gcloud-config"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_CORE_PROJECT": project,
    }
    env.pop("FIRESTORE_EMULATOR_HOST", None)
    args = [gcloud, "emulators", "firestore", "start", f"--host-port={_HOST}:{port}"]
    if rules is not None:
        args.append(f"--rules={rules}")
    started_at = time.monotonic()
    with (workdir / "emulator.log").open("wb") as log:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
    emulator = FirestoreEmulator(
        port=port, project=project, process=process, workdir=workdir, started_at=started_at
    )
    atexit.register(emulator.stop)
    return emulator


def _wait_ready(emulator: FirestoreEmulator, deadline_s: float) -> None:
    url = f"http://{emulator.host_port}/"
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            raise _ExitedEarlyError(emulator.process.returncode)
        with contextlib.suppress(OSError, urllib.error.URLError):
            status, body = _http("GET", url, timeout_s=1.0)
            if status == 200 and body.strip() == "Ok":
                return
        time.sleep(0.1)
    raise TimeoutError(f"emulator not ready after {deadline_s} s")


@contextlib.contextmanager
def running_firestore_emulator(
    *, project: str, rules: Path | None = None, deadline_s: float = 60.0
) -> Iterator[FirestoreEmulator]:
    """Context manager around :func:`start_firestore_emulator`; always stops the process group.

    While it runs in the main thread with SIGTERM at its default action (a CI runner cancelling the
    job), SIGTERM first stops the emulator, then terminates this process as it would have.
    """
    emulator = start_firestore_emulator(project=project, rules=rules, deadline_s=deadline_s)
    restore = _stop_on_sigterm(emulator)
    try:
        yield emulator
    finally:
        restore()
        emulator.stop()


def _stop_on_sigterm(emulator: FirestoreEmulator) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return lambda: None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        emulator.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return restore
