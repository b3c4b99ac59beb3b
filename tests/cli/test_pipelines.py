"""`shipyard pipeline run|ls|show` and `shipyard lineage`, on a pipeline module imported for
real from the folder the command runs in."""

from __future__ import annotations

import io
import sys
import textwrap
from types import SimpleNamespace

import pytest
from rich.console import Console

from shipyard.cli.pipeline_loading import parse_params
from shipyard.cli.pipelines import Progress, error_line

FLOWS = """
import shipyard as sy

N = 3


@sy.step
def load(n: int) -> list:
    return list(range(n))


@sy.step
def split(xs: list, frac: float = 0.5) -> tuple[list, list]:
    cut = int(len(xs) * frac)
    return xs[:cut], xs[cut:]


@sy.step
def total(xs: list) -> int:
    return sum(xs)


@sy.step
def report(a: int, b: int, label: str, extra) -> dict:
    if label == "boom":
        raise ValueError("bad label")
    return {"label": label, "a": a, "b": b, "extra": extra}


@sy.step
def publish(summary: dict) -> dict:
    return summary


@sy.pipeline
def training(n: int = 10, frac: float = 0.5, loud: bool = False, label="x", extra=None):
    left, right = split(load(n), frac)
    return publish(report(total(left), total(right), label, extra))


def plain():
    pass
"""
NODES = ["load", "split", "total", "total_2", "report", "publish"]


@pytest.fixture
def flows(tracking, tmp_path):  # type: ignore[no-untyped-def]
    """flows.py in the folder the CLI runs in; forgotten again after the test."""
    (tmp_path / "flows.py").write_text(FLOWS)
    before = set(sys.modules)
    yield tmp_path / "flows.py"
    for name in set(sys.modules) - before:
        if str(tmp_path) in str(getattr(sys.modules[name], "__file__", "") or ""):
            del sys.modules[name]


def run_json(cli, *args: str):  # type: ignore[no-untyped-def]
    result = cli("pipeline", "run", "flows:training", "--json", *args)
    assert result.stdout.strip(), result.stderr
    return result, result.json()


def test_run_prints_steps_then_a_rerun_is_all_cached(cli, flows) -> None:  # type: ignore[no-untyped-def]
    first = cli("pipeline", "run", "flows:training")
    assert first.exit_code == 0, first.stderr
    assert "load: finished in" in first.stdout  # a plain line per step: stdout is no terminal
    header = next(line for line in first.stdout.splitlines() if line.startswith("step"))
    assert header.split() == ["step", "status", "duration", "run", "cached", "from"]
    assert "pipeline training finished" in first.stdout and "6 steps (0 cached)" in first.stdout
    assert first.stderr == ""
    again, data = run_json(cli)
    assert again.exit_code == 0
    assert [s["node"] for s in data["steps"]] == NODES
    assert {s["status"] for s in data["steps"]} == {"cached"}
    shown = cli("pipeline", "show", data["run_id"], "--json").json()
    assert all(s["cached_from"] for s in shown["steps"])
    _, fresh = run_json(cli, "--no-cache")
    assert {s["status"] for s in fresh["steps"]} == {"finished"}
    assert all(s["cached_from"] is None and s["duration"] >= 0 for s in fresh["steps"])


def test_params_are_converted_to_the_declared_types(cli, flows) -> None:  # type: ignore[no-untyped-def]
    result, data = run_json(
        cli, "-p", "n=4", "-p", "frac=0.25", "-p", "loud=yes", "-p", "label=007",
        "-p", "extra=[1,2]",
    )  # fmt: skip
    assert result.exit_code == 0 and data["status"] == "finished", result.stderr
    params = cli("pipeline", "show", data["run_id"], "--json").json()["params"]
    # logged as repr() for what is not text: an int, a float, a bool, a string kept, JSON
    assert params == {"n": "4", "frac": "0.25", "loud": "True", "label": "007", "extra": "[1, 2]"}


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["n=3", "frac=1e-1", "loud=No"], {"n": 3, "frac": 0.1, "loud": False}),
        (["loud=1", "label=true", "extra=true"], {"loud": True, "label": "true", "extra": True}),
        (['extra={"a": [1]}', "label=a=b"], {"extra": {"a": [1]}, "label": "a=b"}),
        (["extra=not json", "nope=2"], {"extra": "not json", "nope": 2}),
    ],
)
def test_parse_params(flows, monkeypatch, items, expected) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(flows.parent))
    import flows as module

    assert parse_params(module.training, items) == expected


def test_a_failing_step_exits_1_with_one_error_line(cli, flows) -> None:  # type: ignore[no-untyped-def]
    result = cli("pipeline", "run", "flows:training", "-p", "label=boom")
    assert result.exit_code == 1
    # the runner prints the step's traceback once; the command ends with one line saying why
    assert result.stderr.count("Traceback") == 1 and "Traceback" not in result.stdout
    assert result.stderr.splitlines()[-1] == (
        "error: pipeline 'training' failed: step report (ValueError: bad label)"
    )
    assert "report: failed: ValueError: bad label" in result.stdout
    assert "publish: skipped (upstream failed: report)" in result.stdout
    failed, data = run_json(cli, "-p", "label=boom")
    assert failed.exit_code == 1 and data["status"] == "failed"
    statuses = {s["node"]: s["status"] for s in data["steps"]}
    assert statuses["report"] == "failed" and statuses["publish"] == "skipped"
    shown = cli("pipeline", "show", data["run_id"], "--json").json()
    by_node = {s["node"]: s for s in shown["steps"]}
    assert by_node["report"]["error"] == "ValueError: bad label"
    assert by_node["publish"]["status"] == "skipped" and by_node["publish"]["run_id"] is None
    assert by_node["publish"]["error"] == "upstream failed: report"
    resumed = sys.modules["flows"].training.resume(data["run_id"])  # fails the same way
    again = cli("pipeline", "show", resumed.run_id, "--json").json()
    assert again["resumed_from"] == data["run_id"]
    assert {s["node"]: s["status"] for s in again["steps"]}["load"] == "cached"


def test_ls_and_show(cli, flows) -> None:  # type: ignore[no-untyped-def]
    _, first = run_json(cli)
    _, second = run_json(cli)
    listing = cli("pipeline", "ls", "--json").json()
    assert [r["run_id"] for r in listing] == [second["run_id"], first["run_id"]]
    assert [(r["pipeline"], r["steps"], r["cached"]) for r in listing] == [
        ("training", 6, 6),
        ("training", 6, 0),
    ]
    assert [r["run_id"] for r in cli("pipeline", "ls", "-n", "1", "--json").json()] == [
        second["run_id"]
    ]
    assert "training" in cli("pipeline", "ls").stdout
    shown = cli("pipeline", "show", first["run_id"][:8], "--json").json()
    assert shown["pipeline"] == "training" and shown["status"] == "finished"
    assert shown["executor"] == "inline"
    steps = {s["node"]: s for s in shown["steps"]}
    assert steps["split"]["upstream"] == ["load"]
    assert steps["report"]["upstream"] == ["total", "total_2"]
    assert steps["total_2"]["step"] == "total" and steps["load"]["cache_key"]
    text = cli("pipeline", "show", second["run_id"]).stdout
    assert "report  ← total, total_2" in text and "↺ load" in text
    for part in ("DAG", "steps", "cached from", first["steps"][0]["run_id"][:8]):
        assert part in text


def test_lineage_of_runs_and_digests(cli, flows, db) -> None:  # type: ignore[no-untyped-def]
    _, first = run_json(cli)
    _, second = run_json(cli)
    made = {s["node"]: s["run_id"] for s in first["steps"]}
    reused = {s["node"]: s["run_id"] for s in second["steps"]}

    split = cli("lineage", made["split"], "--json").json()
    assert split["run"]["step"] == "split" and split["run"]["pipeline_run"] == first["run_id"]
    assert [(r["name"], r["relation"]) for r in split["inputs"]] == [("load", "upstream")]
    assert [(r["run_id"], r["relation"]) for r in split["used_by"]] == [
        (made["total"], "downstream"),
        (made["total_2"], "downstream"),
        (reused["split"], "cache hit"),
    ]
    hit = cli("lineage", reused["split"], "--json").json()
    assert hit["outputs_from"] == made["split"] and hit["run"]["status"] == "cached"
    assert [r["run_id"] for r in hit["inputs"]] == [reused["load"]]

    pipeline = cli("lineage", second["run_id"], "--json").json()
    assert [s["name"] for s in pipeline["steps"]] == NODES
    assert {r["cached_from"] for r in pipeline["inputs"]} == set(made.values())
    assert len(cli("lineage", first["run_id"], "--json").json()["used_by"]) == 6

    digest = db.list_artifacts(made["load"], "outputs")[0].digest
    held = cli("lineage", digest[:12], "--json").json()
    assert held["kind"] == "digest" and held["digest"] == digest
    assert [(h["run_id"], h["cached_from"]) for h in held["runs"]] == [
        (made["load"], None),
        (reused["load"], made["load"]),
    ]
    assert cli("lineage", f"sha256:{digest}", "--json").json()["runs"] == held["runs"]
    text = cli("lineage", made["split"]).stdout
    assert "inputs from" in text and "cache hit" in text and "downstream" in text
    assert "held by" in cli("lineage", digest).stdout


def test_a_file_path_and_a_module_that_fails_to_import(cli, flows, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "other_flows.py").write_text(FLOWS)
    result = cli("pipeline", "run", "sub/other_flows.py:training", "-p", "n=2")
    assert result.exit_code == 0, result.stderr
    (tmp_path / "broken.py").write_text("import shipyard\n\nundefined_name\n")
    broken = cli("pipeline", "run", "broken:training")
    assert broken.exit_code == 2 and broken.stderr.count("\n") == 1
    assert "importing 'broken' failed: NameError" in broken.stderr and "line 3" in broken.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("pipeline", "run", "flows"), 2, "expected MODULE:ATTR"),
        (("pipeline", "run", "nosuchmodule:training"), 1, "no module named 'nosuchmodule'"),
        (("pipeline", "run", "nope.py:training"), 1, "no file 'nope.py'"),
        (("pipeline", "run", "flows:nothing"), 1, "has no attribute 'nothing'"),
        (("pipeline", "run", "flows:load"), 2, "flows:load is a step"),
        (("pipeline", "run", "flows:plain"), 2, "flows:plain is a plain function, not a pipeline"),
        (("pipeline", "run", "flows:N"), 2, "flows:N is of type int, not a pipeline"),
        (("pipeline", "run", "flows:training", "-p", "n"), 2, "-p takes NAME=VALUE"),
        (("pipeline", "run", "flows:training", "-p", "n=ten"), 2, "-p n: expected a whole number"),
        (("pipeline", "run", "flows:training", "-p", "loud=maybe"), 2, "expected true or false"),
        (("pipeline", "run", "flows:training", "-p", "n=1", "-p", "n=2"), 2, "given twice"),
        (("pipeline", "run", "flows:training", "-p", "bogus=1"), 2, "'bogus'"),
        (("pipeline", "run", "flows:training", "--executor", "nope"), 2, "unknown executor"),
        (("pipeline", "show", "abcd1234"), 1, "no run id starts with 'abcd1234'"),
        (("pipeline", "show", "xyz"), 2, "not a run id"),
        (("lineage", "abcdef12"), 1, "no run id or artifact digest starts with 'abcdef12'"),
        (("lineage", "abcd"), 1, "no run id starts with 'abcd'"),
        (("lineage", "sha256:abcd"), 2, "not a run id"),
        (("lineage", "not-hex"), 2, "not a run id"),
    ],
)
def test_errors_are_one_line_with_exit_codes(cli, flows, args, code, message) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_show_refuses_a_run_that_is_not_a_pipeline_run(cli, flows) -> None:  # type: ignore[no-untyped-def]
    import shipyard as sy

    with sy.start_run("plain") as run:
        pass
    _, data = run_json(cli)
    for ref, message in [
        (run.id, "is not a pipeline run"),
        (data["steps"][0]["run_id"], f"is step 'load' of pipeline run {data['run_id']}"),
    ]:
        result = cli("pipeline", "show", ref)
        assert result.exit_code == 2 and message in result.stderr
    assert cli("lineage", run.id, "--json").json()["inputs"] == []


def test_the_live_view_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    node = SimpleNamespace(id="train", step=SimpleNamespace(name="train"))
    done = SimpleNamespace(node="load", step="load", status="cached", run_id="a" * 32,
                           duration=0.01, cached_from="b" * 32, error=None)  # fmt: skip
    with Progress(console, "training") as progress:
        progress("start", SimpleNamespace(id="load", step=SimpleNamespace(name="load")))
        progress("end", done)
        progress("start", node)
        console.print(progress)
    shown = out.getvalue()
    assert "running" in shown and "cached" in shown and "training: 1 done, 1 running" in shown
    assert "load: cached" not in shown  # no plain lines under the live view


@pytest.mark.parametrize(
    ("stored", "line"),
    [
        (None, None),
        ("steps failed: a, b", "steps failed: a, b"),
        (
            textwrap.dedent("""\
                Traceback (most recent call last):
                  File "x.py", line 1, in f
                    raise ValueError("two\\nlines")
                ValueError: two
                lines
                """),
            "ValueError: two",
        ),
    ],
)
def test_error_line(stored, line) -> None:  # type: ignore[no-untyped-def]
    assert error_line(stored) == line


def test_resume_reruns_what_did_not_finish(cli, flows) -> None:  # type: ignore[no-untyped-def]
    _, data = run_json(cli, "-p", "label=boom")
    resumed = cli("pipeline", "resume", data["run_id"][:8], "--json")
    assert resumed.exit_code == 1  # the same params fail the same step again
    statuses = {s["node"]: s["status"] for s in resumed.json()["steps"]}
    assert statuses == {
        "load": "cached", "split": "cached", "total": "cached", "total_2": "cached",
        "report": "failed", "publish": "skipped",
    }  # fmt: skip
    explicit = cli("pipeline", "resume", data["run_id"], "flows:training", "--json")
    assert explicit.exit_code == 1 and explicit.json()["status"] == "failed"
    not_pipeline = cli("pipeline", "resume", data["steps"][0]["run_id"])
    assert not_pipeline.exit_code == 2 and "is step 'load' of pipeline run" in not_pipeline.stderr
