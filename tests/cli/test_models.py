"""`shipyard models ...`: listing, showing, diffing, aliases, policy, promotion, exit codes."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import shipyard as sy

X, Y = load_iris(return_X_y=True, as_frame=True)


@pytest.fixture
def two_versions(tracking, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOGNAME", "alice")
    for c in (1.0, 0.01):
        with sy.start_run(params={"C": c}) as run:
            model = LogisticRegression(C=c, max_iter=500).fit(X, Y)
            run.log_metric("acc", float(model.score(X, Y)))
            run.log_model(model, "iris-clf", input_example=X[:5], description=f"C={c}")
    return tracking


def test_ls_and_show(cli, two_versions) -> None:  # type: ignore[no-untyped-def]
    listing = cli("models", "ls", "--json").json()
    assert [(m["name"], m["latest_version"]) for m in listing] == [("iris-clf", 2)]
    text = cli("models", "ls").stdout
    assert "iris-clf" in text and "2" in text
    model = cli("models", "show", "iris-clf", "--json").json()
    assert [v["version"] for v in model["versions"]] == [1, 2]
    assert model["policy"]["protected_aliases"] == ["production"]
    assert model["policy"]["maintainers"] == ["alice"]
    version = cli("models", "show", "iris-clf/1", "--json").json()
    assert version["uri"] == "models:/iris-clf/1" and version["description"] == "C=1.0"
    assert version["lineage"]["run_status"] == "finished"
    shown = cli("models", "show", "models:/iris-clf@latest").stdout
    for part in ("models:/iris-clf/2", "signature", "petal width (cm)", "lineage", "files"):
        assert part in shown


def test_diff_shows_only_what_differs(cli, two_versions) -> None:  # type: ignore[no-untyped-def]
    rows = cli("models", "diff", "iris-clf/1", "2", "--json").json()
    keys = {(r["kind"], r["key"]) for r in rows}
    assert ("param", "C") in keys and ("metric", "acc") in keys
    assert not any(kind == "signature" for kind, _ in keys)  # same columns
    c_row = next(r for r in rows if r["key"] == "C")
    assert (c_row["a"], c_row["b"]) == ("1.0", "0.01")
    assert "C" in cli("models", "diff", "iris-clf/1", "iris-clf/2").stdout


def test_alias_promote_and_history(cli, two_versions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert cli("models", "alias", "set", "iris-clf/2", "staging").exit_code == 0
    refused = cli("models", "alias", "set", "iris-clf/2", "production")
    assert refused.exit_code == 1 and "protected" in refused.stderr
    gate = cli("models", "promote", "iris-clf/2")
    assert gate.exit_code == 1 and "no passing validation" in gate.stderr
    no_reason = cli("models", "promote", "iris-clf/2", "--force")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr
    monkeypatch.setenv("LOGNAME", "mallory")
    denied = cli("models", "promote", "iris-clf/2", "--force", "--reason", "x")
    assert denied.exit_code == 1 and "maintainers (alice)" in denied.stderr
    monkeypatch.setenv("LOGNAME", "alice")
    forced = cli("models", "promote", "iris-clf/2", "--force", "--reason", "hotfix")
    assert forced.exit_code == 0 and "was unset (forced)" in forced.stdout
    history = cli("models", "history", "iris-clf", "--json").json()
    assert history[0]["action"] == "force_promote" and history[0]["actor"] == "alice"
    assert history[0]["details"]["reason"] == "hotfix"
    assert {e["action"] for e in history} >= {"promote_refused", "set_alias", "create_version"}
    removed = cli("models", "alias", "rm", "iris-clf", "staging")
    assert removed.exit_code == 0 and "held version 2" in removed.stdout


def test_policy(cli, two_versions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    set_ = cli("models", "policy", "iris-clf", "--require", "metric:accuracy", "--json")
    assert set_.exit_code == 0 and set_.json()["required_checks"] == ["metric:accuracy"]
    monkeypatch.setenv("LOGNAME", "mallory")
    denied = cli("models", "policy", "iris-clf", "--maintainer", "mallory")
    assert denied.exit_code == 1 and "not a maintainer" in denied.stderr
    assert "metric:accuracy" in cli("models", "policy", "iris-clf").stdout
    monkeypatch.setenv("LOGNAME", "alice")
    # flags add and remove; a typo adds an alias instead of unprotecting production
    edited = cli("models", "policy", "iris-clf", "--protect", "Production", "--maintainer",
                 "bob", "--unrequire", "metric:accuracy", "--json").json()  # fmt: skip
    assert edited["protected_aliases"] == ["production", "Production"]
    assert edited["maintainers"] == ["alice", "bob"] and edited["required_checks"] == []
    wrong = cli("models", "policy", "iris-clf", "--unprotect", "staging")
    assert wrong.exit_code == 2 and "not a protected alias" in wrong.stderr
    typo = cli("models", "policy", "iris-clf", "--require", "metrc:acc")
    assert typo.exit_code == 2 and "unknown required check" in typo.stderr
    entry = cli("models", "history", "iris-clf", "--json").json()[0]
    assert entry["action"] == "update_model"
    assert entry["details"]["policy_was"]["required_checks"] == ["metric:accuracy"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("models", "show", "nope"), 1, "no registered model named 'nope'"),
        (("models", "show", "iris-clf/9"), 1, "has no version 9"),
        (("models", "show", "iris-clf@prod"), 1, "no alias 'prod'"),
        (("models", "show", "iris-clf/x"), 2, "positive number"),
        (("models", "promote", "a/b/c"), 2, "positive number"),
        (("models", "promote", "bad name/1"), 2, "model name"),
        (("models", "alias", "set", "iris-clf/1", "latest"), 2, "reserved"),
        (("models", "alias", "rm", "iris-clf", "staging"), 1, "no alias 'staging'"),
        (("models", "history", "nope"), 1, "'nope'"),
        (("models", "history", "--limit", "0"), 2, "at least 1"),
    ],
)
def test_errors_are_one_line_with_exit_codes(cli, two_versions, args, code, message) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_read_commands_need_a_store(cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHIPYARD_URI", f"sqlite:///{tmp_path / 'none' / 'x.db'}")
    result = cli("models", "ls")
    assert result.exit_code == 1 and "no Shipyard store" in result.stderr
    assert not (tmp_path / "none").exists()


def test_update_description_and_tags(cli, two_versions) -> None:  # type: ignore[no-untyped-def]
    assert cli("models", "update", "iris-clf", "-d", "iris classifier").exit_code == 0
    assert cli("models", "update", "iris-clf/2", "--tag", "owner=ann", "-d", "v2").exit_code == 0
    model = cli("models", "show", "iris-clf", "--json").json()
    version = cli("models", "show", "iris-clf/2", "--json").json()
    assert model["description"] == "iris classifier"
    assert version["tags"] == {"owner": "ann"} and version["description"] == "v2"
    actions = [e["action"] for e in cli("models", "history", "iris-clf", "--json").json()]
    assert actions[:2] == ["update_version", "update_model"]
    bad = cli("models", "update", "iris-clf", "--tag", "novalue")
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.stderr
    assert cli("models", "update", "iris-clf").exit_code == 2


def test_validate_html_into_a_missing_folder_is_bad_input(cli, two_versions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    X.assign(target=Y).to_csv(tmp_path / "d.csv", index=False)
    result = cli(
        "models", "validate", "iris-clf/1", "--data", str(tmp_path / "d.csv"), "--target",
        "target", "--html", str(tmp_path / "nodir" / "r.html"),
    )  # fmt: skip
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert two_versions.store.list_validations("iris-clf") == []
