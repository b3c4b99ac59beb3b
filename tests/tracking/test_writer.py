"""The writer keeps what a failing write could not store, and reports only what is still
not stored: a passing outage that a later write recovered from raises nothing."""

from __future__ import annotations

import pytest

import shipyard as sy
from shipyard.errors import StoreError


def _outage(tracking, monkeypatch, failures: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The store's writes fail ``failures`` times (the database unreachable), then work."""
    write, calls = tracking.store.write, []

    def flaky(batch):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) <= failures:
            raise StoreError("the database is unreachable")
        return write(batch)

    monkeypatch.setattr(tracking.store, "write", flaky)
    return calls


def test_a_recovered_outage_raises_nothing_and_loses_nothing(tracking, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    run = sy.start_run()
    for step in range(10):
        run.log_metric("m", float(step), step=step)
    _outage(tracking, monkeypatch, failures=1)
    tracking.writer._write_once()  # the background write meets the outage: data kept
    run.end()  # its flush writes everything: the old error is not raised
    assert len(sy.get_metric_history(run.id, "m")) == 10
    assert sy.get_run(run.id).status == "finished"


def test_an_outage_still_on_is_raised_at_the_run_end(tracking, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    run = sy.start_run()
    run.log_metric("m", 1.0)
    _outage(tracking, monkeypatch, failures=2)
    tracking.writer._write_once()
    with pytest.raises(StoreError, match="not stored yet: the database is unreachable"):
        run.end()
    sy.flush()  # the outage is over: the kept data is stored
    assert sy.get_run(run.id).status == "finished"
