"""Helpers for running a local server as a detached process we can find again.

A server is identified by a pidfile plus markers that must appear in the
process's command line, so a recycled pid is never mistaken for ours and
`stop()` never signals a process it did not start.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# Backgrounding through sh makes the server a grandchild that is reparented at once:
# nothing is left for us to reap, and it outlives a CLI that started it. With an
# owner pid, a watcher sends SIGTERM once the owner is gone, so a test run killed
# with SIGKILL leaves no JVM behind.
_LAUNCHER = """
log=$1; owner=$2; shift 2
"$@" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid"
[ "$owner" = 0 ] && exit 0
(
    while kill -0 "$owner"; do kill -0 "$pid" || exit 0; sleep 1; done
    kill -TERM "$pid"
) >/dev/null 2>&1 </dev/null &
"""


class InfraError(Exception):
    """A local service could not be fetched, started or stopped; not retriable.

    InfraError
     +-- PortInUseError   the port is held by a process we did not start
    """


class PortInUseError(InfraError):
    def __init__(self, service: str, host: str, port: int) -> None:
        super().__init__(f"{service}: port {port} on {host} is already in use")
        self.port = port


def free_ports(count: int = 1, host: str = "127.0.0.1") -> list[int]:
    """Ports free right now; the sockets are held open together so the ports differ."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if we could listen on the port.

    SO_REUSEADDR, as servers set it, so sockets in TIME_WAIT do not count as busy.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True for a live process; zombies count as dead, as PID 1 may never reap them."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def cmdline(pid: int) -> str:
    """The process's command line, space-joined; '' if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pidfile(path: Path, pid: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def spawn_detached(cmd: Sequence[str], log_path: Path, cwd: Path, owner_pid: int | None = None) -> int:
    """Start `cmd` in a new session, output appended to `log_path`; return its pid.

    If `owner_pid` is given, the server gets SIGTERM when that process exits.
    """
    owner = str(owner_pid or 0)
    out = subprocess.run(  # noqa: S603 - fixed launcher, arguments are passed as argv
        ["/bin/sh", "-c", _LAUNCHER, "sh", str(log_path), owner, *cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        start_new_session=True,
    )
    return int(out.stdout.strip())


class DetachedServer(abc.ABC):
    """A server process started in `workdir`, tracked by `<name>.pid` there.

    `owner_pid`: stop the server when that process exits (tests pass their own pid);
    None leaves it running until `stop()` (`dev up`).
    """

    name: str

    def __init__(self, workdir: Path, host: str, port: int, owner_pid: int | None = None) -> None:
        self.workdir = workdir.resolve()
        self.host = host
        self.port = port
        self.owner_pid = owner_pid
        self.pidfile = self.workdir / f"{self.name}.pid"
        self.log_path = self.workdir / f"{self.name}.log"
        self.startup_seconds: float | None = None

    @abc.abstractmethod
    def _prepare(self) -> list[str]:
        """Write config files and return the command to run."""

    @abc.abstractmethod
    def _markers(self) -> list[str]:
        """Strings that all appear in our server's command line."""

    @abc.abstractmethod
    def _ready(self) -> bool:
        """One readiness probe; must not block for long."""

    @property
    def pid(self) -> int | None:
        """Pid of our live server or None; a stale or foreign pidfile does not count."""
        pid = read_pidfile(self.pidfile)
        if pid is None or not pid_alive(pid):
            return None
        line = cmdline(pid)
        return pid if all(marker in line for marker in self._markers()) else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self, timeout: float = 30) -> None:
        """Start the server and wait until it is ready; a running one is reused."""
        if self.running:
            if wait_for(self._ready, timeout):
                return
            raise InfraError(f"{self.name} (pid {self.pid}) is running but not ready:\n" + self._tail())
        if not port_is_free(self.port, self.host):
            raise PortInUseError(self.name, self.host, self.port)
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = self._prepare()
        if self.log_path.exists():
            # A fresh log per run: start-up errors in the tail are from this run only.
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        pid = spawn_detached(cmd, self.log_path, self.workdir, self.owner_pid)
        write_pidfile(self.pidfile, pid)
        started = time.monotonic()

        def ready_or_dead() -> bool:
            return not pid_alive(pid) or self._ready()

        ok = wait_for(ready_or_dead, timeout) and pid_alive(pid)
        if not ok:
            why = "exited during start-up" if not pid_alive(pid) else f"not ready after {timeout:.0f}s"
            log_tail = self._tail()
            self.stop()
            raise InfraError(f"{self.name} {why} (log {self.log_path}):\n{log_tail}")
        self.startup_seconds = time.monotonic() - started

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM our server, SIGKILL after `timeout`; return its pid or None.

        A pidfile naming a process that is not ours is removed; the process is left
        alone.
        """
        pid = self.pid
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_for(lambda: not pid_alive(pid), timeout) and self.pid == pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(pid), 5)
        self.pidfile.unlink(missing_ok=True)
        return pid

    def _tail(self) -> str:
        return tail(self.log_path)
