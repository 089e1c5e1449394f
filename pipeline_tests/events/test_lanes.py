"""Background runs give way on the CPU; runs executed in process leave their caller alone."""

import os
import threading
from types import SimpleNamespace

import dagster as dg

from pipeline.events import lanes


def _in_thread(fn) -> int:
    """Run ``fn`` on a new thread and return that thread's nice value afterwards (per thread on Linux)."""
    seen = {}

    def body():
        fn()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, 0)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    return seen["nice"]


def test_backlog_and_housekeeping_are_background_live_is_not():
    assert lanes.is_background({"backlog": "true", "clickflow/hour": "backlog"})
    assert lanes.is_background({"clickflow/lane": "housekeeping"})
    assert not lanes.is_background({"backlog": "false", "clickflow/hour": "2019-10-01-00:00"})
    assert not lanes.is_background({})


def test_a_launched_background_run_lowers_its_own_priority_only():
    before = os.getpriority(os.PRIO_PROCESS, 0)
    launched = SimpleNamespace(remote_job_origin=object(), tags={"backlog": "true"})
    in_process = SimpleNamespace(remote_job_origin=None, tags={"backlog": "true"})
    live = SimpleNamespace(remote_job_origin=object(), tags={"backlog": "false"})
    assert _in_thread(lambda: lanes.give_way_if_background(launched)) == max(before, lanes.BACKGROUND_NICE)
    assert _in_thread(lambda: lanes.give_way_if_background(in_process)) == before
    assert _in_thread(lambda: lanes.give_way_if_background(live)) == before
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the caller's thread is untouched


def test_runs_executed_in_process_have_no_origin_of_their_own():
    seen = {}

    @dg.op
    def probe(context: dg.OpExecutionContext):
        seen["own"] = lanes.in_own_process(context.run)

    @dg.job
    def one():
        probe()

    assert one.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    assert seen == {"own": False}
