"""`shipyard runs ...` against a real SQLite store filled through the Python API."""

from __future__ import annotations

import math
import re

import pytest

import shipyard as sy


def make_run(name, *, experiment=None, params=None, metrics=None, tags=None):  # type: ignore[no-untyped-def]
    with sy.start_run(name, experiment=experiment, params=params, tags=tags) as run:
        for key, value in (metrics or {}).items():
            run.log_metric(key, value)
    return run.id


@pytest.fixture
def two_runs(cli):  # type: ignore[no-untyped-def]
    a = make_run("alpha", params={"lr": 0.1, "model": "rf"}, metrics={"acc": 0.8, "loss": 0.5})
    b = make_run("beta", params={"lr": 0.01, "model": "rf"}, metrics={"acc": 0.9, "loss": 0.7})
    return a, b


# -- ls ----------------------------------------------------------------------------------------


def test_ls_lists_runs_with_their_most_common_keys(cli, two_runs) -> None:
    a, b = two_runs
    result = cli("runs", "ls")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in (
        a[:8],
        b[:8],
        "alpha",
        "beta",
        "Default",
        "finished",
        "acc",
        "loss",
        "lr",
        "model",
        "0.8",
        "0.01",
    ):
        assert text in out
    assert a not in out  # short ids in the table


def test_ls_json_has_full_records(cli, two_runs) -> None:
    a, b = two_runs
    nan_run = make_run("gamma", metrics={"acc": math.nan, "up": math.inf})
    result = cli("runs", "ls", "--json")
    assert result.exit_code == 0, result.stderr
    runs = {r["id"]: r for r in result.json()}
    assert set(runs) == {a, b, nan_run}
    assert runs[a]["params"] == {"lr": "0.1", "model": "rf"}
    assert runs[a]["metrics"] == {"acc": 0.8, "loss": 0.5}
    assert runs[a]["experiment_name"] == "Default"
    assert runs[a]["status"] == "finished"
    assert runs[nan_run]["metrics"] == {"acc": "NaN", "up": "Infinity"}


def test_ls_filter_and_order(cli, two_runs) -> None:
    a, b = two_runs
    result = cli("runs", "ls", "--json", "-f", "metrics.acc > 0.85")
    assert [r["id"] for r in result.json()] == [b]
    ascending = cli("runs", "ls", "--json", "-o", "metrics.acc ASC").json()
    descending = cli("runs", "ls", "--json", "-o", "metrics.acc DESC").json()
    assert [r["id"] for r in ascending] == [a, b]
    assert [r["id"] for r in descending] == [b, a]


def test_malformed_filter_exits_2_with_the_position(cli, two_runs) -> None:
    result = cli("runs", "ls", "-f", "metrics.acc >> 1")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert any(ch.isdigit() for ch in lines[0])  # "at position N" / "column N"
    assert result.stdout == ""


def test_ls_by_experiment(cli, two_runs) -> None:
    other = make_run("elsewhere", experiment="other")
    result = cli("runs", "ls", "--json", "-e", "other")
    assert [r["id"] for r in result.json()] == [other]
    both = cli("runs", "ls", "--json", "-e", "other", "-e", "Default").json()
    assert len(both) == 3
    missing = cli("runs", "ls", "-e", "nope")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: experiment 'nope' does not exist"


def test_ls_all_includes_deleted_runs(cli, two_runs, db) -> None:
    a, b = two_runs
    db.delete_run(a)
    assert [r["id"] for r in cli("runs", "ls", "--json").json()] == [b]
    listed = cli("runs", "ls", "--all")
    assert a[:8] in listed.stdout and "deleted" in listed.stdout


def test_ls_pages_with_a_token(cli, two_runs) -> None:
    make_run("third")
    first = cli("runs", "ls", "--json", "-n", "2")
    assert len(first.json()) == 2
    assert "--page-token" in first.stderr
    token = first.stderr.split("--page-token", 1)[1].split()[0]
    second = cli("runs", "ls", "--json", "-n", "2", "--page-token", token)
    assert len(second.json()) == 1
    assert {r["id"] for r in first.json()}.isdisjoint(r["id"] for r in second.json())
    assert "--page-token" not in second.stderr


def test_ls_named_columns(cli, two_runs) -> None:
    result = cli("runs", "ls", "--columns", "params.model,acc")
    header = result.stdout.splitlines()[0]
    assert "model" in header and "acc" in header
    assert "loss" not in header and "lr" not in header


def test_ls_with_no_runs(cli) -> None:
    result = cli("runs", "ls")
    assert result.exit_code == 0
    assert "no runs" in result.stdout
    assert cli("runs", "ls", "--json").json() == []


def test_bad_limit_is_a_usage_error(cli) -> None:
    result = cli("runs", "ls", "--limit", "0")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


# -- show --------------------------------------------------------------------------------------


def test_show_everything_about_a_run(cli, db) -> None:
    with sy.start_run("parent", params={"lr": 0.1}, tags={"team": "vision"}) as parent:
        parent.log_metric("acc", 0.5)
        parent.log_metric("acc", 0.75)
        parent.set_tag("shipyard.git.commit", "abc123")
        parent.log_text("hello", "notes/readme.txt")
        with sy.start_run("child", nested=True) as child:
            pass
    result = cli("runs", "show", parent.id)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in (
        parent.id,
        "parent",
        "Default",
        "finished",
        "lr",
        "0.1",
        "0.75",
        "team",
        "vision",
        "system",
        "git.commit",
        "abc123",
        "notes/readme.txt",
        "5 B",
        child.id[:8],
        "child",
    ):
        assert text in out, text
    data = cli("runs", "show", parent.id, "--json").json()
    assert data["id"] == parent.id
    assert data["metrics"] == {"acc": 0.75}
    assert data["tags"]["shipyard.git.commit"] == "abc123"
    assert data["artifacts"] == [
        {"path": "notes/readme.txt", "digest": data["artifacts"][0]["digest"], "size": 5}
    ]
    assert data["children"] == [{"id": child.id, "name": "child", "status": "finished"}]


def test_show_prints_the_error_of_a_failed_run(cli) -> None:
    with pytest.raises(RuntimeError), sy.start_run("broken") as run:
        raise RuntimeError("the data loader fell over")
    result = cli("runs", "show", run.id[:6])
    assert result.exit_code == 0, result.stderr
    assert "failed" in result.stdout
    assert "the data loader fell over" in result.stdout
    assert cli("runs", "show", run.id, "--json").json()["status"] == "failed"


def test_show_lists_datasets(cli, db) -> None:
    from shipyard.store.entities import Dataset

    run_id = make_run("with-data")
    db.log_dataset(run_id, Dataset("train", "f" * 64, 120, {"x": "float"}, context="training"))
    result = cli("runs", "show", run_id)
    assert "datasets" in result.stdout and "train" in result.stdout and "120" in result.stdout
    assert cli("runs", "show", run_id, "--json").json()["datasets"][0]["rows"] == 120


# -- run references ----------------------------------------------------------------------------


def test_unknown_run_is_one_line_exit_1(cli) -> None:
    result = cli("runs", "show", "0" * 32)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    prefix = cli("runs", "show", "abcd")
    assert prefix.exit_code == 1
    assert prefix.stderr.strip() == "error: no run id starts with 'abcd'"


@pytest.mark.parametrize("ref", ["abc", "xyz123", "abcd'--", "a" * 33, "../etc"])
def test_malformed_run_reference_is_invalid_input(cli, ref) -> None:
    result = cli("runs", "show", ref)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: not a run id or id prefix")


def test_ambiguous_prefix_lists_the_matches(cli, db) -> None:
    exp = db.get_or_create_experiment("Default")
    one = db.create_run(exp.id, "one", run_id="abcd" + "0" * 28)
    two = db.create_run(exp.id, "two", run_id="abcd" + "1" * 28)
    result = cli("runs", "show", "abcd")
    assert result.exit_code == 2
    assert one.id in result.stderr and two.id in result.stderr
    unique = cli("runs", "show", "ABCD1", "--json")  # prefixes are case-insensitive
    assert unique.json()["id"] == two.id


# -- compare -----------------------------------------------------------------------------------


def test_compare_flags_differences_and_best_values(cli, two_runs) -> None:
    a, b = two_runs
    result = cli("runs", "compare", a[:8], b, "--json")
    assert result.exit_code == 0, result.stderr
    rows = {(r["kind"], r["key"]): r for r in result.json()}
    assert rows["param", "model"]["differs"] is False
    assert rows["param", "lr"]["differs"] is True
    assert rows["param", "lr"]["values"] == {a: "0.1", b: "0.01"}
    assert rows["metric", "acc"]["best"] == b  # higher is better
    assert rows["metric", "loss"]["best"] == a  # a loss: lower is better
    assert rows["metric", "loss"]["goal"] == "min"
    overridden = cli("runs", "compare", a, b, "--json", "--maximize", "loss").json()
    assert next(r for r in overridden if r["key"] == "loss")["best"] == b


def test_compare_only_diff_and_table(cli, two_runs) -> None:
    a, b = two_runs
    rows = cli("runs", "compare", a, b, "--only-diff", "--json").json()
    assert {r["key"] for r in rows} == {"lr", "acc", "loss"}
    table = cli("runs", "compare", a, b, "--only-diff").stdout
    assert "lr" in table and "model" not in table
    assert table.count("★") == 2  # best acc and best loss
    assert a[:8] in table and "alpha" in table


def test_compare_needs_two_distinct_runs(cli, two_runs) -> None:
    a, _ = two_runs
    assert cli("runs", "compare", a).exit_code == 2
    assert cli("runs", "compare", a, a[:6]).exit_code == 2


def test_compare_highlights_differences_in_colour(cli, two_runs, monkeypatch) -> None:
    a, b = two_runs
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = cli("runs", "compare", a, b).stdout
    lr_line = next(line for line in coloured.splitlines() if "lr" in line)
    model_line = next(line for line in coloured.splitlines() if "model" in line)
    assert "\x1b[1;33m" in lr_line  # bold yellow
    assert "\x1b[1;33m" not in model_line


# -- metric ------------------------------------------------------------------------------------


def test_metric_sparkline_and_stats(cli) -> None:
    with sy.start_run("curve") as run:
        for step, value in enumerate([1.0, 2.0, math.nan, 4.0, 8.0]):
            run.log_metric("loss", value, step=step)
    result = cli("runs", "metric", run.id, "loss")
    assert result.exit_code == 0, result.stderr
    spark = next(line for line in result.stdout.splitlines() if "▁" in line)
    assert spark.strip() == "▁▂·▄█"
    for text in ("points", "5", "0 .. 4", "min", "max", "8", "NaN"):
        assert text in result.stdout
    points = cli("runs", "metric", run.id, "loss", "--json").json()
    assert [p["step"] for p in points] == [0, 1, 2, 3, 4]
    assert points[2]["value"] == "NaN" and points[4]["value"] == 8.0
    tail = cli("runs", "metric", run.id, "loss", "--tail", "2").stdout
    assert "last 2 points" in tail


def test_metric_of_a_long_run_is_downsampled(cli) -> None:
    with sy.start_run("long") as run:
        for step in range(1000):
            run.log_metric("x", float(step), step=step)
    out = cli("runs", "metric", run.id, "x", "--width", "40").stdout
    spark = next(line for line in out.splitlines() if "▁" in line).strip()
    assert len(spark) == 40 and spark[0] == "▁" and spark[-1] == "█"


def test_unknown_metric_is_not_found(cli, two_runs) -> None:
    a, _ = two_runs
    result = cli("runs", "metric", a, "nope")
    assert result.exit_code == 1
    assert "nope" in result.stderr and "acc" in result.stderr


# -- delete / restore --------------------------------------------------------------------------


def test_delete_and_restore(cli, two_runs) -> None:
    a, b = two_runs
    deleted = cli("runs", "delete", a[:8])
    assert deleted.exit_code == 0 and a in deleted.stdout
    assert [r["id"] for r in cli("runs", "ls", "--json").json()] == [b]
    restored = cli("runs", "restore", a[:8])  # prefixes find deleted runs too
    assert restored.exit_code == 0
    assert len(cli("runs", "ls", "--json").json()) == 2


def test_ls_drops_the_least_common_columns_to_fit(cli, two_runs, monkeypatch) -> None:
    make_run("gamma", params={"lr": 1}, metrics={"acc": 0.1, "rare": 1.0})
    monkeypatch.setenv("COLUMNS", "85")
    piped = cli("runs", "ls").stdout.splitlines()[0]
    assert "rare" in piped  # output to a pipe or file is never cut
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # as in a terminal
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in cli("runs", "ls").stdout.splitlines()]
    header = lines[0]
    assert max(len(line) for line in lines) <= 85
    assert "acc" in header and "lr" in header  # the most common keys stay
    assert "rare" not in header
    named = cli("runs", "ls", "--columns", "rare,acc,loss,lr,model").stdout
    assert "rare" in named and "model" in named  # columns asked for are never dropped


def test_values_are_shown_as_written_not_as_markup(cli) -> None:
    run_id = make_run("[bold]x[/bold]", params={"list": "[/]", "layers": "[relu, tanh]"})
    listed = cli("runs", "ls", "--columns", "list,layers")
    assert listed.exit_code == 0, listed.stderr
    for text in ("[bold]x[/bold]", "[/]", "[relu, tanh]"):
        assert text in listed.stdout
    shown = cli("runs", "show", run_id[:8])
    assert "[relu, tanh]" in shown.stdout and "[bold]x[/bold]" in shown.stdout


def test_numbers_are_never_cut(cli, monkeypatch) -> None:
    make_run("n", params={"a" * 20: "v" * 200}, metrics={"accuracy": 0.987654, "big": 1e300})
    monkeypatch.setenv("COLUMNS", "60")
    out = cli("runs", "ls", "-c", "accuracy,big," + "a" * 20).stdout
    assert "0.987654" in out and "1e+300" in out


@pytest.mark.parametrize("key", ["num_errors", "val_losses", "nll", "runtime_s"])
def test_compare_minimises_error_like_metrics(cli, key) -> None:
    low = make_run("low", metrics={key: 5.0})
    make_run("high", metrics={key: 50.0})
    rows = cli(
        "runs",
        "compare",
        low[:8],
        "--json",
        *[r["id"][:8] for r in cli("runs", "ls", "--json").json() if r["id"] != low],
    ).json()
    [row] = [r for r in rows if r["key"] == key]
    assert row["best"] == low
