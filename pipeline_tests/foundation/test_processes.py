"""Processes the tests start are stopped with everything they started (issue 15: a `dagster api
grpc` code server outlived the test suite by 13 minutes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline_tests import processes
from pipeline_tests.live_dagster import live_dagster

# A parent that starts a child which ignores SIGTERM and prints the child's pid; then it waits
# ("wait") or exits with 3, leaving the child behind.
PARENT = """
import signal, subprocess, sys
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
signal.pause() if sys.argv[1] == "wait" else sys.exit(3)
"""


def test_stop_ends_the_whole_session_even_a_child_that_ignores_sigterm():
    parent = processes.popen([sys.executable, "-c", PARENT, "wait"], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert processes.alive(child) and set(processes.in_session(parent.pid)) == {parent.pid, child}
    started = time.monotonic()
    processes.stop(parent, grace=2)
    assert time.monotonic() - started < 15
    assert not processes.alive(child) and processes.in_session(parent.pid) == {}
    parent.stdout.close()


def test_run_returns_the_output_and_stops_what_the_command_left_running():
    result = processes.run([sys.executable, "-c", PARENT, "exit"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    child = int(result.stdout.split()[0])
    assert not processes.alive(child)  # the parent exited; run() stopped the child it left behind


@pytest.mark.e2e
@pytest.mark.slow
def test_live_dagster_leaves_no_code_server_behind_even_when_the_daemon_dies_first(tmp_path):
    """A daemon that does not stop within its grace is SIGKILLed (the machine is busy, or it
    crashed): its ``dagster api grpc`` code server, orphaned, used to live on (found 13 minutes
    after a test run; heartbeats did not end it)."""
    with live_dagster(tmp_path / "lake", tmp_path / "logs") as live:
        daemon, webserver = live.procs

        def code_servers():
            below = processes.descendants(daemon.pid)
            return below if any(" api grpc" in command for command in below.values()) else None

        tree = live.wait(code_servers, 120, "the daemon's `dagster api grpc` code server")
        tree.update(processes.descendants(webserver.pid))
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait()
        assert any(processes.alive(pid) for pid, command in tree.items() if " api grpc" in command)
    survivors = {pid: command for pid, command in tree.items() if processes.alive(pid)}
    assert survivors == {}
