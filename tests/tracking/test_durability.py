"""Nothing logged is lost: end_run, exceptions, SIGTERM/SIGINT, interpreter exit, 8 writers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SHIPYARD_URI"] = f"sqlite:///{tmp_path / 'shipyard.db'}"
    env["SHIPYARD_ARTIFACTS"] = str(tmp_path / "artifacts")
    env["SHIPYARD_FLUSH_INTERVAL"] = "0.2"
    return env


def _query(tmp_path: Path, sql: str, *args: object) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(tmp_path / "shipyard.db") as conn:
        return conn.execute(sql, args).fetchall()


def _spawn(tmp_path: Path, code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_line(proc: subprocess.Popen[str], deadline: float = 60.0) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        _, err = proc.communicate(timeout=deadline)
        pytest.fail(f"child ended early: {err}")
    return line.strip()


LOOP = """
    import shipyard as sy
    n = 0
    try:
        with sy.start_run(name="victim") as run:
            print(run.id, flush=True)
            while True:
                run.log_metric("m", float(n), step=n)
                n += 1
                if n == 20000:
                    print("ready", flush=True)
    finally:
        open("count.txt", "w").write(str(n))
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, -signal.SIGINT)])
def test_signal_mid_logging_keeps_every_point(tmp_path: Path, sig: int, code: int) -> None:
    proc = _spawn(tmp_path, LOOP)
    run_id = _read_line(proc)
    assert _read_line(proc) == "ready"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    n = int((tmp_path / "count.txt").read_text())
    [(rows, max_step)] = _query(
        tmp_path,
        "SELECT count(*), max(step) FROM metrics JOIN runs ON runs.id = metrics.run "
        "WHERE runs.run_id = ?",
        run_id,
    )
    assert n >= 20000
    # the point being logged when the signal landed may or may not have been counted
    assert rows in (n, n + 1) and max_step == rows - 1
    [(status,)] = _query(tmp_path, "SELECT status FROM runs WHERE run_id = ?", run_id)
    assert status == "killed"


def test_interpreter_exit_without_end_run(tmp_path: Path) -> None:
    proc = _spawn(
        tmp_path,
        """
        import shipyard as sy
        for i in range(5000):
            sy.log_metric("m", i)
        sy.log_params({"p": 1})
        print(sy.active_run().id)
        """,
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run_id = out.strip()
    [(status,)] = _query(tmp_path, "SELECT status FROM runs WHERE run_id = ?", run_id)
    [(rows,)] = _query(tmp_path, "SELECT count(*) FROM metrics")
    [(params,)] = _query(tmp_path, "SELECT count(*) FROM params")
    assert (status, rows, params) == ("finished", 5000, 1)


def test_unhandled_exception_outside_with_marks_failed(tmp_path: Path) -> None:
    proc = _spawn(
        tmp_path,
        """
        import shipyard as sy
        run = sy.start_run()
        print(run.id, flush=True)
        for i in range(300):
            run.log_metric("m", i)
        raise RuntimeError("boom")
        """,
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "boom" in err
    [(status, error)] = _query(
        tmp_path, "SELECT status, error FROM runs WHERE run_id = ?", out.strip()
    )
    assert status == "failed" and "RuntimeError: boom" in error
    assert _query(tmp_path, "SELECT count(*) FROM metrics") == [(300,)]


def test_eight_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    worker = """
        import shipyard as sy
        for r in range(5):
            with sy.start_run(params={"worker": WORKER, "r": r}) as run:
                for i in range(2000):
                    run.log_metric("m", i)
                run.log_metrics({"a": 1, "b": 2})
                run.set_tags({"t": "x"})
        """
    # create the database first so the eight do not all race to migrate an empty file
    first = _spawn(tmp_path, "import shipyard as sy; sy.set_experiment('Default')")
    first.communicate(timeout=60)
    assert first.returncode == 0
    started = time.monotonic()
    procs = [_spawn(tmp_path, worker.replace("WORKER", str(w))) for w in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "Traceback" not in err
    assert time.monotonic() - started < 300
    assert _query(tmp_path, "SELECT count(*), count(DISTINCT run) FROM metrics") == [(80080, 40)]
    assert _query(tmp_path, "SELECT count(*) FROM params") == [(80,)]
    assert _query(tmp_path, "SELECT count(*) FROM latest_metrics") == [(120,)]
    assert _query(tmp_path, "SELECT DISTINCT status FROM runs") == [("finished",)]


def test_concurrent_first_open_migrates_once(tmp_path: Path) -> None:
    procs = [_spawn(tmp_path, "import shipyard as sy; sy.set_experiment('x')") for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert _query(tmp_path, "SELECT name FROM experiments") == [("x",)]


def test_runs_record_git_source_and_environment(tmp_path: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    script = tmp_path / "train.py"
    script.write_text(
        "import shipyard as sy\n"
        "for i in range(2):\n"
        "    with sy.start_run() as run:\n"
        "        run.log_metric('m', i)\n"
        "    print(run.id, flush=True)\n"
    )
    env = {**_env(tmp_path), "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-qm", "first"]):
        subprocess.run([*git, *args], cwd=tmp_path, check=True, env=env)
    script.write_text(script.read_text() + "# tuned\n")
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.split()
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, env=env
    ).stdout.strip()
    for run_id in (first, second):
        tags = dict(
            _query(
                tmp_path,
                "SELECT key, value FROM tags JOIN runs ON runs.id = tags.run WHERE run_id = ?",
                run_id,
            )
        )
        assert tags["shipyard.git.commit"] == commit
        assert tags["shipyard.git.branch"] == "main"
        assert tags["shipyard.git.dirty"] == "true"
        assert tags["shipyard.source.kind"] == "script"
        [(packages,)] = _query(
            tmp_path,
            "SELECT packages FROM environments WHERE digest = ?",
            tags["shipyard.env.digest"],
        )
        assert "sqlalchemy==" in packages
        paths = {
            path
            for (path,) in _query(
                tmp_path,
                "SELECT path FROM artifacts JOIN runs ON runs.id = artifacts.run WHERE run_id = ?",
                run_id,
            )
        }
        assert paths == {"shipyard/git.diff", "shipyard/source/train.py"}
    [(digest,)] = _query(
        tmp_path,
        "SELECT DISTINCT digest FROM artifacts WHERE path = 'shipyard/git.diff'",
    )
    blob = tmp_path / "artifacts" / "blobs" / "sha256" / digest[:2] / digest
    assert "+# tuned" in blob.read_text()


def test_forked_child_logs_to_the_parents_run(tmp_path: Path) -> None:
    proc = _spawn(
        tmp_path,
        """
        import os
        import shipyard as sy
        with sy.start_run() as run:
            for i in range(100):
                run.log_metric("m", i, step=i)
            pid = os.fork()
            if pid == 0:
                for i in range(100, 150):
                    run.log_metric("m", i, step=i)
                sy.get_run(run.id)  # flushes the child's points
                os._exit(0)
            os.waitpid(pid, 0)
            for i in range(150, 200):
                run.log_metric("m", i, step=i)
        print(run.id)
        """,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    rows = _query(tmp_path, "SELECT step FROM metrics ORDER BY step")
    assert [step for (step,) in rows] == list(range(200))


def test_sigterm_ends_a_module_level_run_as_killed(tmp_path: Path) -> None:
    proc = _spawn(
        tmp_path,
        """
        import time
        import shipyard as sy
        sy.log_metric("m", 1.0)
        print(sy.active_run().id, flush=True)
        while True:
            sy.log_metric("m", 1.0)
            time.sleep(0.001)
        """,
    )
    run_id = _read_line(proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    [(status,)] = _query(tmp_path, "SELECT status FROM runs WHERE run_id = ?", run_id)
    assert status == "killed"


SWEEP = """
    import contextlib
    import shipyard as sy
    with {block}:
        for i in range(100000):
            with sy.start_run(params={{"i": i}}) as run:
                run.log_metric("m", i)
            if i == {ready}:
                print("ready", flush=True)
"""


# inside sy.batched() run ends commit when the block ends; outside it, run ends in quick
# succession are group-committed by the writer: a signal in the middle of either still
# stores every run that ended, with its params and metrics
@pytest.mark.parametrize(
    ("block", "ready"), [("sy.batched()", 50), ("contextlib.nullcontext()", 500)]
)
def test_sigterm_in_a_sweep_keeps_the_ended_runs(tmp_path: Path, block: str, ready: int) -> None:
    proc = _spawn(tmp_path, SWEEP.format(block=block, ready=ready))
    assert _read_line(proc) == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    [(finished,)] = _query(tmp_path, "SELECT count(*) FROM runs WHERE status = 'finished'")
    [(killed,)] = _query(tmp_path, "SELECT count(*) FROM runs WHERE status = 'killed'")
    [(points,)] = _query(tmp_path, "SELECT count(*) FROM metrics")
    [(params,)] = _query(tmp_path, "SELECT count(*) FROM params")
    assert finished >= ready + 1 and killed <= 1
    assert finished <= points <= finished + killed and finished <= params <= finished + killed
