"""`shipyard experiments ...`."""

from __future__ import annotations


def test_create_list_rename_delete_restore(cli) -> None:
    created = cli("experiments", "create", "vision")
    assert created.exit_code == 0, created.stderr
    assert "vision" in created.stdout
    listed = cli("experiments", "ls", "--json").json()
    assert [e["name"] for e in listed] == ["vision"]
    exp_id = listed[0]["id"]
    assert listed[0]["lifecycle"] == "active"
    assert "vision" in cli("experiments", "ls").stdout

    assert cli("experiments", "rename", "vision", "vision-v2").exit_code == 0
    assert cli("experiments", "ls", "--json").json()[0]["name"] == "vision-v2"

    assert cli("experiments", "delete", str(exp_id)).exit_code == 0
    assert cli("experiments", "ls", "--json").json() == []
    all_ = cli("experiments", "ls", "--all", "--json").json()
    assert [(e["name"], e["lifecycle"]) for e in all_] == [("vision-v2", "deleted")]
    assert "deleted" in cli("experiments", "ls", "--all").stdout

    assert cli("experiments", "restore", "vision-v2").exit_code == 0
    assert cli("experiments", "ls", "--json").json()[0]["lifecycle"] == "active"


def test_duplicate_and_unknown_experiments(cli) -> None:
    cli("experiments", "create", "a")
    dup = cli("experiments", "create", "a")
    assert dup.exit_code == 1
    assert dup.stderr.startswith("error: experiment 'a' already exists")
    for args in (["rename", "ghost", "x"], ["delete", "ghost"], ["restore", "ghost"]):
        result = cli("experiments", *args)
        assert result.exit_code == 1
        assert result.stderr == "error: experiment 'ghost' does not exist\n"


def test_empty_name_is_invalid(cli) -> None:
    result = cli("experiments", "create", " ")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: experiment name must be a non-empty string")


def test_no_experiments(cli) -> None:
    assert "no experiments" in cli("experiments", "ls").stdout


def test_ls_counts_runs(cli) -> None:
    import shipyard as sy

    sy.set_experiment("counted")
    for _ in range(3):
        with sy.start_run():
            pass
    [row] = [e for e in cli("experiments", "ls", "--json").json() if e["name"] == "counted"]
    assert row["runs"] == 3
    assert "counted" in cli("experiments", "ls").stdout


def test_names_made_of_digits_are_refused(cli) -> None:
    result = cli("experiments", "create", "3")
    assert result.exit_code == 2 and "digits" in result.stderr
