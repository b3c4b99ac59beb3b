from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.artifacts import iter_local_files, normalize_artifact_path
from shipyard.errors import InvalidInput, NotFound


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b.txt", "a/b.txt"),
        ("model.pkl", "model.pkl"),
        ("./a/./b", "a/b"),
        ("a\\b\\c.txt", "a/b/c.txt"),
        ("a//b/", "a/b"),
        ("a/.hidden", "a/.hidden"),
        ("...", "..."),
        ("a/..b/c..", "a/..b/c.."),
        ("x" * 1000, "x" * 1000),
    ],
)
def test_normalize_valid(path: str, expected: str) -> None:
    assert normalize_artifact_path(path) == expected


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("\0", "NUL"),
        ("a/b\0.txt", "NUL"),
        ("/x", "absolute"),
        ("/", "absolute"),
        ("C:\\x", "absolute"),
        ("C:/x", "absolute"),
        ("c:x", "absolute"),
        ("\\\\server\\x", "absolute"),
        ("\\x", "absolute"),
        ("..", r"'\.\.'"),
        ("../x", r"'\.\.'"),
        ("a/../b", r"'\.\.'"),
        ("a/..", r"'\.\.'"),
        ("a\\..\\b", r"'\.\.'"),
        ("a/..\\..\\b", r"'\.\.'"),
        (".", "names no file"),
        ("./", "names no file"),
        ("././/.", "names no file"),
        ("x" * 1001, "longer than 1000"),
        ("a/" + "x" * 1000, "longer than 1000"),
    ],
)
def test_normalize_invalid(path: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as info:
        normalize_artifact_path(path)
    assert repr(path)[:40] in info.value.message


def _tree(root: Path, files: list[str]) -> None:
    for rel in files:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rel)


NESTED = ["a.txt", ".hidden", "sub/b.txt", "sub/deeper/c.txt", "z/empty.bin"]


def test_iter_local_files_nested_directory(tmp_path: Path) -> None:
    _tree(tmp_path / "data", NESTED)
    result = iter_local_files(tmp_path / "data", None)
    assert [a for a, _ in result] == sorted(f"data/{rel}" for rel in NESTED)
    for artifact_path, local in result:
        assert local.is_absolute()
        assert local.read_text() == artifact_path.removeprefix("data/")


def test_iter_local_files_dest_prefix(tmp_path: Path) -> None:
    _tree(tmp_path / "data", NESTED)
    result = iter_local_files(str(tmp_path / "data"), "out\\run/")
    assert [a for a, _ in result] == sorted(f"out/run/{rel}" for rel in NESTED)


@pytest.mark.parametrize("dest", ["", "."])
def test_iter_local_files_directory_at_root(tmp_path: Path, dest: str) -> None:
    _tree(tmp_path / "data", NESTED)
    assert [a for a, _ in iter_local_files(tmp_path / "data", dest)] == sorted(NESTED)


def test_iter_local_files_single_file(tmp_path: Path) -> None:
    _tree(tmp_path, ["dir/model.pkl"])
    src = tmp_path / "dir" / "model.pkl"
    assert iter_local_files(src, None) == [("model.pkl", src)]
    assert iter_local_files(src, "") == [("model.pkl", src)]
    assert iter_local_files(src, "models/./best.pkl") == [("models/best.pkl", src)]


def test_iter_local_files_relative_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path / "data", ["a.txt"])
    monkeypatch.chdir(tmp_path)
    assert iter_local_files("data", None) == [("data/a.txt", tmp_path / "data" / "a.txt")]
    assert iter_local_files("./data/a.txt", None) == [("a.txt", tmp_path / "data" / "a.txt")]


def test_iter_local_files_does_not_follow_symlinked_dirs(tmp_path: Path) -> None:
    _tree(tmp_path / "outside", ["secret.txt"])
    _tree(tmp_path / "data", ["a.txt"])
    os.symlink(tmp_path / "outside", tmp_path / "data" / "link", target_is_directory=True)
    assert [a for a, _ in iter_local_files(tmp_path / "data", None)] == ["data/a.txt"]


def test_iter_local_files_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert iter_local_files(tmp_path / "empty", None) == []


def test_iter_local_files_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="missing-thing"):
        iter_local_files(tmp_path / "missing-thing", None)


@pytest.mark.parametrize("dest", ["../escape", "/abs", "a/../../b"])
def test_iter_local_files_bad_dest(tmp_path: Path, dest: str) -> None:
    _tree(tmp_path / "data", ["a.txt"])
    with pytest.raises(InvalidInput):
        iter_local_files(tmp_path / "data", dest)
    with pytest.raises(InvalidInput):
        iter_local_files(tmp_path / "data" / "a.txt", dest)
