"""`shipyard artifacts ...` and `shipyard gc`."""

from __future__ import annotations

import os
import time

import pytest

import shipyard as sy
from shipyard.store.entities import ArtifactEntry


@pytest.fixture
def run_with_files(cli, tmp_path):  # type: ignore[no-untyped-def]
    payload = bytes(range(256)) * 4  # not valid UTF-8: --stdout must pass bytes through
    with sy.start_run("files") as run:
        run.log_text("hello\n", "notes/readme.txt")
        run.log_dict({"lr": 0.1}, "config.json")
        run.log_bytes(payload, "model/weights.bin")
    return run.id, payload


def test_ls_lists_paths_sizes_and_digests(cli, run_with_files) -> None:
    run_id, _ = run_with_files
    result = cli("artifacts", "ls", run_id[:8])
    assert result.exit_code == 0, result.stderr
    for text in (
        "config.json",
        "model/weights.bin",
        "notes/readme.txt",
        "1.0 KiB",
        "6 B",
        "3 files",
    ):
        assert text in result.stdout
    entries = cli("artifacts", "ls", run_id, "--json").json()
    assert [e["path"] for e in entries] == ["config.json", "model/weights.bin", "notes/readme.txt"]
    assert entries[1]["size"] == 1024 and len(entries[1]["digest"]) == 64
    under = cli("artifacts", "ls", run_id, "notes", "--json").json()
    assert [e["path"] for e in under] == ["notes/readme.txt"]
    missing = cli("artifacts", "ls", run_id, "nothing")
    assert missing.exit_code == 1 and "no artifacts under 'nothing'" in missing.stderr


def test_get_everything_keeps_relative_paths(cli, run_with_files, tmp_path) -> None:
    run_id, payload = run_with_files
    dest = tmp_path / "out"
    result = cli("artifacts", "get", run_id, "--dest", str(dest))
    assert result.exit_code == 0, result.stderr
    assert (dest / "notes" / "readme.txt").read_text() == "hello\n"
    assert (dest / "model" / "weights.bin").read_bytes() == payload
    assert (dest / "config.json").exists()
    assert "downloaded 3 files" in result.stderr


def test_get_one_folder_or_file(cli, run_with_files, tmp_path) -> None:
    run_id, _ = run_with_files
    cli("artifacts", "get", run_id, "notes", "--dest", str(tmp_path / "a"))
    assert sorted(p.name for p in (tmp_path / "a").rglob("*") if p.is_file()) == ["readme.txt"]
    cli("artifacts", "get", run_id, "config.json", "--dest", str(tmp_path / "b"))
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["config.json"]


def test_get_defaults_to_the_current_folder(cli, run_with_files, tmp_path, monkeypatch) -> None:
    run_id, _ = run_with_files
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert cli("artifacts", "get", run_id, "notes/readme.txt").exit_code == 0
    assert (here / "notes" / "readme.txt").read_text() == "hello\n"


def test_get_stdout_is_binary_safe(cli, run_with_files) -> None:
    run_id, payload = run_with_files
    result = cli("artifacts", "get", run_id, "model/weights.bin", "--stdout")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == payload
    several = cli("artifacts", "get", run_id, "--stdout")
    assert several.exit_code == 2 and "single file" in several.stderr


def test_get_missing_path_is_not_found(cli, run_with_files) -> None:
    run_id, _ = run_with_files
    result = cli("artifacts", "get", run_id, "nope.txt")
    assert result.exit_code == 1
    assert result.stderr == f"error: run {run_id} has no artifacts at 'nope.txt'\n"


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/escape.txt", "a/../../escape.txt"])
def test_get_refuses_to_write_outside_dest(cli, db, tmp_path, path) -> None:
    with sy.start_run("evil") as run:
        run.log_text("pwned", "ok.txt")
    good = db.list_artifacts(run.id)[0]
    # a manifest written by something other than Shipyard's own logging
    db.add_artifacts(run.id, [ArtifactEntry(path, good.digest, good.size)])
    dest = tmp_path / "dest" / "inner"
    dest.mkdir(parents=True)
    result = cli("artifacts", "get", run.id, "--dest", str(dest))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid artifact path")
    assert not (tmp_path / "dest" / "escape.txt").exists()
    assert list(dest.iterdir()) == []  # nothing written, not even the good file


def test_get_refuses_a_symlink_leading_out_of_dest(cli, run_with_files, tmp_path) -> None:
    run_id, _ = run_with_files
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "notes").symlink_to(outside)
    result = cli("artifacts", "get", run_id, "--dest", str(dest))
    assert result.exit_code == 2
    assert "outside" in result.stderr
    assert list(outside.iterdir()) == []


# -- gc ----------------------------------------------------------------------------------------


def orphan_blob(tracking, content: bytes, age: float) -> str:
    digest, _ = tracking.blobs.put_bytes(content)
    path = tracking.blobs._blob_path(digest)
    old = time.time() - age
    os.utime(path, (old, old))
    return path


def test_gc_dry_run_keeps_everything(cli, tracking, run_with_files) -> None:
    path = orphan_blob(tracking, b"orphan", age=7200)
    digest = os.path.basename(path)
    result = cli("gc", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert digest in result.stdout
    assert "would delete 1 blob (6 B), kept 3" in result.stdout
    assert os.path.exists(path)
    report = cli("gc", "--dry-run", "--json").json()
    assert report["deleted"] == [digest] and report["dry_run"] is True


def test_gc_deletes_only_old_unreferenced_blobs(cli, tracking, run_with_files) -> None:
    run_id, payload = run_with_files
    old = orphan_blob(tracking, b"old orphan", age=7200)
    young = orphan_blob(tracking, b"young orphan", age=10)
    report = cli("gc", "--json").json()
    assert report["deleted"] == [os.path.basename(old)]
    assert report["freed_bytes"] == len(b"old orphan")
    assert report["kept"] == 4
    assert not os.path.exists(old) and os.path.exists(young)
    # referenced blobs survive: the run's files still download
    again = cli("artifacts", "get", run_id, "model/weights.bin", "--stdout")
    assert again.stdout_bytes == payload
    # with no grace period the young orphan goes too
    result = cli("gc", "--grace", "0")
    assert "deleted 1 blob" in result.stdout
    assert not os.path.exists(young)


def test_gc_rejects_negative_grace(cli) -> None:
    assert cli("gc", "--grace", "-1").exit_code == 2


def test_get_checks_every_target_before_writing(cli, run_with_files, tmp_path) -> None:
    run_id, _ = run_with_files
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "notes").write_text("a file where a folder must go")
    result = cli("artifacts", "get", run_id, "--dest", str(dest))
    assert result.exit_code == 2 and "is a file" in result.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["notes"]  # nothing else written
