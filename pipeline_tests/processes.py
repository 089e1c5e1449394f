"""Processes the tests start, each in a session of its own, so that it and everything it starts in
turn (a daemon's or webserver's ``dagster api grpc`` code servers, run workers) can be stopped
together and checked gone. ``terminate()`` on the parent alone leaves such children running.

``popen``/``run`` start commands and record their sessions; ``stop`` ends a session; the guard in
``conftest.py`` fails the test run if a recorded session still has a process at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# Session id (the leader's pid) -> the command, for every process started through this module.
STARTED: dict[int, str] = {}


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2:].split()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _processes() -> dict[int, list[str]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z":  # a zombie is gone, only not yet reaped
                found[int(entry)] = fields
    return found


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def in_session(session: int) -> dict[int, str]:
    """The live processes of a session (pid -> command line)."""
    return {pid: _cmdline(pid) for pid, fields in _processes().items() if int(fields[3]) == session}


def descendants(pid: int) -> dict[int, str]:
    """The live processes below ``pid`` (pid -> command line), at any depth."""
    children: dict[int, list[int]] = {}
    for child, fields in _processes().items():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = {}, list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found[child] = _cmdline(child)
        todo += children.get(child, [])
    return found


def popen(args: Sequence[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` in a new session, recorded for ``stop`` and the end-of-run guard."""
    proc = subprocess.Popen(list(map(str, args)), start_new_session=True, **kwargs)
    STARTED[proc.pid] = " ".join(map(str, args))
    return proc


def run(args: Sequence[str], *, timeout: float | None = None, capture_output: bool = False,
        text: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` in a new session; whatever the command left running in it is stopped.

    Output goes through temporary files, not pipes: a process left behind would hold a pipe
    open, and reading it to its end would wait for that process.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        if capture_output:
            kwargs.update(stdout=out, stderr=err)
        proc = popen(args, stdin=subprocess.DEVNULL, **kwargs)
        try:
            proc.wait(timeout=timeout)
        finally:
            stop(proc)
        captured = []
        for handle in (out, err):
            handle.seek(0)
            data = handle.read()
            captured.append((data.decode(errors="replace") if text else data) if capture_output else None)
    return subprocess.CompletedProcess(proc.args, proc.returncode, *captured)


def stop(proc: subprocess.Popen, grace: float = 30) -> None:
    """End ``proc`` and every process of its session: SIGTERM, then SIGKILL after ``grace``
    seconds; raises if anything is still alive after that."""
    session = proc.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        if not in_session(session):
            break
        try:
            os.killpg(session, sig)  # the process group of the leader is the session's
        except ProcessLookupError:
            pass
        for other in in_session(session):  # a process that moved to another group of the session
            try:
                os.kill(other, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is None:
                try:
                    proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
            if not in_session(session):
                break
            time.sleep(0.2)
    proc.poll()
    left = in_session(session)
    if left:
        raise AssertionError(f"processes of {STARTED.get(session, session)!r} survived SIGKILL: {left}")
    # Seen empty, the session is over: nothing of it can start a process again. The guard forgets
    # it, since its id is a pid the kernel reuses (pid_max is 32768 here), possibly for another
    # session leader, such as a postmaster that pg_ctl started in a session of its own.
    STARTED.pop(session, None)


def leftovers() -> dict[int, str]:
    """Live processes of every session started through this module."""
    found = {}
    for session in STARTED:
        found.update(in_session(session))
    return found


def kill_leftovers() -> None:
    for pid in leftovers():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
