"""A step's declared files count by their content, found by glob under the run folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from shipyard.errors import InvalidInput
from shipyard.pipelines.fingerprint import files as fp_files
from shipyard.pipelines.fingerprint import files_fingerprint


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data" / "nested").mkdir(parents=True)
    (tmp_path / "data" / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "data" / "nested" / "b.csv").write_text("x,y\n3,4\n")
    (tmp_path / "data" / "notes.txt").write_text("not data\n")
    return tmp_path


def test_files_are_listed_by_relative_path(data: Path) -> None:
    digest, files = files_fingerprint(["data/**/*.csv"], data)
    assert sorted(files) == ["data/a.csv", "data/nested/b.csv"]
    assert files_fingerprint(["data/**/*.csv"], data)[0] == digest
    assert files_fingerprint(["data/*.csv", "data/nested/*.csv"], data)[0] == digest
    _, whole_folder = files_fingerprint(["data"], data)
    assert sorted(whole_folder) == ["data/a.csv", "data/nested/b.csv", "data/notes.txt"]


def test_changed_content_changes_the_digest_and_a_touch_does_not(data: Path) -> None:
    digest, _ = files_fingerprint(["data/**/*.csv"], data)
    csv = data / "data" / "a.csv"
    os.utime(csv, ns=(1_000_000_000, 1_000_000_000))
    assert files_fingerprint(["data/**/*.csv"], data)[0] == digest
    csv.write_text("x,y\n1,3\n")  # same size
    os.utime(csv, ns=(1_000_000_000, 1_000_000_000))  # and the same mtime as before
    assert files_fingerprint(["data/**/*.csv"], data)[0] != digest


def test_a_new_matching_file_changes_the_digest_and_another_does_not(data: Path) -> None:
    digest, _ = files_fingerprint(["data/**/*.csv"], data)
    (data / "data" / "c.txt").write_text("unrelated\n")
    assert files_fingerprint(["data/**/*.csv"], data)[0] == digest
    (data / "data" / "nested" / "c.csv").write_text("x,y\n")
    assert files_fingerprint(["data/**/*.csv"], data)[0] != digest


@pytest.mark.parametrize(
    ("patterns", "missing"),
    [(["data/*.parquet"], "data/*.parquet"), (["data/*.csv", "missing/**"], "missing/**")],
)
def test_a_pattern_matching_nothing_is_an_error_naming_it(
    data: Path, patterns: list[str], missing: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        files_fingerprint(patterns, data)
    assert f"{missing!r} matches no file" in raised.value.message


@pytest.mark.parametrize("patterns", ["data/*.csv", ["/etc/passwd"], [""]])
def test_malformed_patterns_are_refused(data: Path, patterns: Any) -> None:
    with pytest.raises(InvalidInput):
        files_fingerprint(patterns, data)


def test_unchanged_old_files_are_hashed_once(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp_files, "_RACY_NS", 0)  # written just now, yet trusted
    monkeypatch.setattr(fp_files, "_stat_cache", {})
    hashed: list[Path] = []
    real = fp_files._hash_file
    monkeypatch.setattr(fp_files, "_hash_file", lambda path: hashed.append(path) or real(path))
    first = files_fingerprint(["data/a.csv"], data)
    assert files_fingerprint(["data/a.csv"], data) == first
    assert len(hashed) == 1
