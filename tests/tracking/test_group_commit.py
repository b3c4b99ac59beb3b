"""Group commit: the third and later of run ends in quick succession are committed together
by the background writer, within SHIPYARD_GROUP_COMMIT seconds; others commit as they end."""

from __future__ import annotations

import time

import pytest

import shipyard as sy
from shipyard.store import open_store


def _finished_elsewhere(uri: str) -> int:
    """Finished runs as another connection (another process, say) sees them."""
    store = open_store(uri)
    try:
        return len(store.search_runs(None, "status = 'finished'", max_results=10_000).runs)
    finally:
        store.close()


def test_a_few_runs_commit_as_each_ends(tracking) -> None:  # type: ignore[no-untyped-def]
    for expected in (1, 2):
        with sy.start_run():
            pass
        assert _finished_elsewhere(tracking.uri) == expected


def test_a_sweep_is_committed_in_groups_within_the_window(tracking, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    transactions = []
    write = tracking.store.write
    monkeypatch.setattr(
        tracking.store, "write", lambda batch: transactions.append(1) or write(batch)
    )
    for i in range(200):
        with sy.start_run(params={"i": i}) as run:
            run.log_metric("m", float(i))
    deadline = time.monotonic() + 5
    while _finished_elsewhere(tracking.uri) < 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _finished_elsewhere(tracking.uri) == 200
    # far fewer transactions than runs (one per run without group commit)
    assert len(transactions) < 50, len(transactions)
    # and this process reads its own writes at once, whatever is still grouped
    with sy.start_run() as last:
        pass
    assert sy.get_run(last.id).status == "finished"
    assert len(sy.search_runs("params.i >= 0")) == 200


def test_group_commit_can_be_turned_off(tracking, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tracking.writer.group_commit = 0.0
    for expected in range(1, 11):
        with sy.start_run():
            pass
        assert _finished_elsewhere(tracking.uri) == expected


@pytest.mark.parametrize("value", ["0", "0.25"])
def test_the_window_is_a_setting(value: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shipyard.config import get_settings

    monkeypatch.setenv("SHIPYARD_GROUP_COMMIT", value)
    assert get_settings().group_commit == float(value)


def _trials(n: int) -> int:
    for i in range(n):
        with sy.start_run(name=f"trial-{i}"):
            pass
    return n


def test_a_multiprocessing_worker_commits_each_run_end(tracking) -> None:  # type: ignore[no-untyped-def]
    import multiprocessing

    # a pool's workers end with os._exit, past any exit flush: nothing may wait for one
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        assert pool.map(_trials, [25, 25]) == [25, 25]
    assert _finished_elsewhere(tracking.uri) == 50


def test_a_resumed_run_ends_at_once_so_a_conflict_is_its_own(tracking) -> None:  # type: ignore[no-untyped-def]
    from shipyard.errors import Conflict
    from shipyard.store.entities import WriteBatch

    with sy.start_run(name="first") as first:
        pass
    for _ in range(2):  # a burst: the next end would be grouped
        with sy.start_run():
            pass
    resumed = sy.start_run(run_id=first.id)
    other = open_store(tracking.uri)  # someone else sets the param meanwhile
    other.write(WriteBatch(params=[(first.id, "lr", "0.1")]))
    other.close()
    resumed.log_param("lr", 0.2)
    with pytest.raises(Conflict, match="lr"):
        resumed.end()


def test_delete_and_flush_see_a_grouped_end(tracking) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    ids = []
    for _ in range(5):
        with sy.start_run() as run:
            pass
        ids.append(run.id)
    sy.delete_run(ids[-1])  # the last end may still be grouped: it is stored first
    assert sy.get_run(ids[-1]).lifecycle == "deleted"
    for _ in range(5):
        with sy.start_run():
            pass
    sy.flush()  # before another process looks
    code = (
        "from shipyard.store import open_store; import sys; "
        "s = open_store(sys.argv[1]); "
        "print(len(s.search_runs(None, \"status = 'finished'\", max_results=100).runs))"
    )
    seen = subprocess.run(
        [sys.executable, "-c", code, tracking.uri], capture_output=True, text=True, check=True
    )
    assert seen.stdout.strip() == "9"  # the deleted one is not listed


def test_a_forked_child_that_exits_abruptly_keeps_its_run_ends(tracking) -> None:  # type: ignore[no-untyped-def]
    import os

    with sy.start_run(name="parent"):
        pass
    pid = os.fork()
    if pid == 0:  # the child: a quick burst, then os._exit (no exit handlers)
        try:
            for i in range(6):
                with sy.start_run(name=f"child-{i}"):
                    pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    names = {r.name for r in sy.search_runs("name LIKE 'child-%'")}
    assert names == {f"child-{i}" for i in range(6)}
