"""The root command: global options, --version, error reporting, and help on everything."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from shipyard.cli.main import app


def walk(command, path=()):  # type: ignore[no-untyped-def]
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


def test_every_command_and_option_has_help() -> None:
    root = typer.main.get_command(app)
    missing = []
    commands = list(walk(root))
    assert len(commands) > 15  # the walk reached the leaves
    for path, command in commands:
        name = " ".join(("shipyard", *path))
        if not (command.help or command.short_help):
            missing.append(name)
        for param in command.params:
            if not getattr(param, "help", None):
                missing.append(f"{name} {param.name}")
    assert missing == []


def test_every_command_is_documented() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    leaves = [p for p, c in walk(typer.main.get_command(app)) if p and not hasattr(c, "commands")]
    assert len(leaves) >= 14
    assert [p for p in leaves if f"shipyard {' '.join(p)}" not in docs] == []


def test_the_help_test_can_fail() -> None:
    bare = typer.Typer()

    @bare.command()
    def undocumented(x: int = typer.Option(1)) -> None:
        pass

    @bare.command()
    def other() -> None:
        """Has help."""

    missing = [
        p.name
        for _, c in walk(typer.main.get_command(bare))
        for p in c.params
        if not getattr(p, "help", None)
    ]
    assert "x" in missing


def test_version(cli) -> None:
    from shipyard import __version__

    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"shipyard {__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "ls", "--no-such-option"],
        ["no-such-command"],
        ["runs", "show"],
        ["runs", "ls", "--limit", "many"],
    ],
)
def test_usage_errors_exit_2(cli, args) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr + result.stdout


def test_no_arguments_prints_help(cli) -> None:
    result = cli()
    assert "runs" in result.stdout + result.stderr
    assert "experiments" in result.stdout + result.stderr


def test_uri_option_overrides_the_environment(cli, tmp_path) -> None:
    from shipyard.store import open_store

    other = f"sqlite:///{tmp_path / 'other.db'}"
    store = open_store(other)
    store.create_experiment("only-in-other")
    store.close()
    names = [e["name"] for e in cli("--uri", other, "experiments", "ls", "--json").json()]
    assert names == ["only-in-other"]
    assert "only-in-other" not in cli("experiments", "ls").stdout


def test_artifacts_option_overrides_the_environment(cli, tmp_path) -> None:
    import shipyard as sy

    elsewhere = tmp_path / "elsewhere"
    with sy.start_run("r") as run:
        run.log_text("x", "a.txt")
    # the blob lives under the default root, so a different root does not have it
    result = cli("--artifacts", str(elsewhere), "artifacts", "get", run.id, "--stdout")
    assert result.exit_code == 1
    assert "not found" in result.stderr


def test_bad_store_uri_is_one_line(cli) -> None:
    result = cli("--uri", "nosuch://x", "runs", "ls")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no store for URI") and result.stderr.count("\n") == 1


def test_console_script_reports_errors_without_traceback(tmp_path) -> None:
    env = {
        **os.environ,
        "SHIPYARD_URI": f"sqlite:///{tmp_path / 's.db'}",
        "SHIPYARD_ARTIFACTS": str(tmp_path),
    }
    from shipyard.store import open_store

    open_store(env["SHIPYARD_URI"]).close()
    proc = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "runs", "show", "f" * 32],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr == f"error: run '{'f' * 32}' does not exist\n"
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "ls", "--bogus"],
        ["runs", "ls", "-n", "0"],
        ["nosuchcommand"],
        ["experiments", "create"],
        ["gc", "--grace", "-1"],
    ],
)
def test_usage_errors_are_one_line(cli, args) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "--help" in result.stderr


def test_read_commands_do_not_create_a_store(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shipyard.cli.main import main

    db = tmp_path / "nowhere" / "s.db"
    monkeypatch.setenv("SHIPYARD_URI", f"sqlite:///{db}")
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "ls"])
    assert exit_info.value.code == 1 and not db.exists()


def test_a_file_that_is_not_a_database(cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    result = cli("--uri", f"sqlite:///{bad}", "runs", "ls")
    assert result.exit_code == 1
    assert "not a database" in result.stderr and result.stderr.count("\n") == 1
