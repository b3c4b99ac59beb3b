"""Capture of git state, entry point, system and environment, against real git and Pythons."""

from __future__ import annotations

import builtins
import dataclasses
import getpass
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.tracking import capture
from shipyard.tracking.capture import (
    EntryPoint,
    GitInfo,
    capture_entry_point,
    capture_environment,
    capture_git,
    capture_system,
    normalize_name,
    run_tags,
    strip_credentials,
)

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config, and no repository above tmp_path can leak in."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on branch main with one commit of train.py."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text("print('v1')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root


# --- git -----------------------------------------------------------------------------------


def test_clean_repo(repo: Path) -> None:
    info = capture_git(str(repo))
    assert info == GitInfo(
        commit=git(repo, "rev-parse", "HEAD"),
        branch="main",
        remote=None,
        dirty=False,
        diff="",
        root=os.path.realpath(repo),
    )


def test_root_is_the_top_level_from_a_subfolder(repo: Path) -> None:
    sub = repo / "a" / "b"
    sub.mkdir(parents=True)
    info = capture_git(str(sub))
    assert info is not None
    assert info.root == os.path.realpath(repo)


def test_default_cwd_is_the_process_cwd(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    info = capture_git()
    assert info is not None
    assert info.commit == git(repo, "rev-parse", "HEAD")


def test_unstaged_change_is_dirty_with_diff(repo: Path) -> None:
    (repo / "train.py").write_text("print('v2')\n")
    info = capture_git(str(repo))
    assert info is not None
    assert info.dirty is True
    assert "-print('v1')" in info.diff
    assert "+print('v2')" in info.diff
    assert "untracked" not in info.diff


def test_staged_change_is_in_diff(repo: Path) -> None:
    (repo / "train.py").write_text("print('staged')\n")
    git(repo, "add", "train.py")
    info = capture_git(str(repo))
    assert info is not None
    assert info.dirty is True
    assert "+print('staged')" in info.diff


def test_staged_rename_is_a_change_not_untracked(repo: Path) -> None:
    git(repo, "mv", "train.py", "fit.py")
    info = capture_git(str(repo))
    assert info is not None
    assert info.dirty is True
    assert "fit.py" in info.diff
    assert "untracked" not in info.diff


def test_untracked_files_are_listed_but_ignored_ones_are_not(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")
    (repo / "notes").mkdir()
    (repo / "notes" / "todo.txt").write_text("x\n")
    (repo / "run.log").write_text("noise\n")
    info = capture_git(str(repo))
    assert info is not None
    assert info.dirty is True
    assert "notes/todo.txt" in info.diff
    assert "run.log" not in info.diff
    assert "diff --git" not in info.diff  # no tracked file changed


@pytest.mark.parametrize(
    ("porcelain", "changed", "untracked"),
    [
        (b"", False, []),
        (b"?? new.txt\0?? dir/a b.txt\0", False, ["new.txt", "dir/a b.txt"]),
        (b" M train.py\0", True, []),
        # A rename's source path is its own field, even when it looks like an entry.
        (b"R  fit.py\0?? odd name\0", True, []),
        (b"C  copy.py\0orig.py\0?? new.txt\0", True, ["new.txt"]),
        (b"!! ignored.log\0", False, []),
    ],
)
def test_parse_status(porcelain: bytes, changed: bool, untracked: list[str]) -> None:
    assert capture._parse_status(porcelain) == (changed, untracked)


def test_huge_diff_is_truncated_with_a_marker(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "MAX_DIFF_BYTES", 2000)
    (repo / "train.py").write_text("".join(f"print({i})\n" for i in range(5000)))
    info = capture_git(str(repo))
    assert info is not None
    assert info.diff.endswith("[shipyard: diff truncated at 2000 bytes]\n")
    assert len(info.diff) < 2100


def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    info = capture_git(str(repo))
    assert info is not None
    assert info.branch is None
    assert info.commit == git(repo, "rev-parse", "HEAD")


def test_remote_credentials_are_stripped(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://user:secret@example.com/x.git")
    info = capture_git(str(repo))
    assert info is not None
    assert info.remote == "https://example.com/x.git"
    assert "secret" not in repr(info)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:secret@example.com/x.git", "https://example.com/x.git"),
        ("https://ghp_token123@github.com/o/r.git", "https://github.com/o/r.git"),
        ("HTTP://u:p@host:8080/r", "HTTP://host:8080/r"),
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://host/path@v1", "https://host/path@v1"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("ssh://git@host/r.git", "ssh://git@host/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_not_a_repo_is_none(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert capture_git(str(plain)) is None


def test_repo_without_commits_is_none(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    (empty / "a.txt").write_text("a\n")
    assert capture_git(str(empty)) is None


def test_missing_git_is_none(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert capture_git(str(repo)) is None


def test_missing_folder_is_none(tmp_path: Path) -> None:
    assert capture_git(str(tmp_path / "gone")) is None


def test_no_time_left_is_none_not_an_error(repo: Path) -> None:
    assert capture_git(str(repo), timeout=0) is None


def test_takes_no_index_lock(repo: Path) -> None:
    # Stat changes make a plain `git status` refresh and rewrite the index; ours must not.
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    os.utime(repo / "train.py", ns=(before + 10**9, before + 10**9))
    info = capture_git(str(repo))
    assert info is not None
    assert info.dirty is False
    assert index.stat().st_mtime_ns == before


# --- entry point ---------------------------------------------------------------------------

PRINT_ENTRY = (
    "import dataclasses, json\n"
    "from shipyard.tracking.capture import capture_entry_point\n"
    "print(json.dumps(dataclasses.asdict(capture_entry_point())))\n"
)


def run_python(args: list[str], cwd: Path, stdin: str | None = None) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(cwd)])}
    # Inherited from this test; the child must not mistake itself for a pytest run.
    env["PYTEST_CURRENT_TEST"] = "tests/x.py::test_x (call)"
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_script(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(PRINT_ENTRY)
    out = run_python(["job.py"], tmp_path)
    assert out == {
        "kind": "script",
        "name": "job.py",
        "source_path": os.path.realpath(tmp_path / "job.py"),
    }


def test_module(tmp_path: Path) -> None:
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "job.py").write_text(PRINT_ENTRY)
    out = run_python(["-m", "pkgx.job"], tmp_path)
    assert out == {
        "kind": "module",
        "name": "pkgx.job",
        "source_path": os.path.realpath(pkg / "job.py"),
    }


def test_package_main_is_named_by_the_package(tmp_path: Path) -> None:
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(PRINT_ENTRY)
    out = run_python(["-m", "pkgx"], tmp_path)
    assert out["kind"] == "module"
    assert out["name"] == "pkgx"
    assert out["source_path"] == os.path.realpath(pkg / "__main__.py")


def test_command(tmp_path: Path) -> None:
    out = run_python(["-c", PRINT_ENTRY], tmp_path)
    assert out == {"kind": "command", "name": "-c", "source_path": None}


def test_stdin(tmp_path: Path) -> None:
    out = run_python(["-"], tmp_path, stdin=PRINT_ENTRY)
    assert out == {"kind": "interactive", "name": "<stdin>", "source_path": None}


def test_inside_pytest() -> None:
    entry = capture_entry_point()
    assert entry.kind == "pytest"
    assert entry.name.endswith("test_capture.py::test_inside_pytest")
    assert entry.source_path == os.path.realpath(__file__)


def outside_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest sets this at the start of each phase, so only a test body can remove it.
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)


class FakeShell:
    def __init__(self, user_ns: dict[str, object]) -> None:
        self.user_ns = user_ns


@pytest.fixture
def jupyter(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeShell]:
    """A fake ipykernel: get_ipython in builtins and ipykernel imported."""
    shell = FakeShell({})
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(builtins, "get_ipython", lambda: shell, raising=False)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    yield shell


def test_notebook_path_from_session_global(
    jupyter: FakeShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside_pytest(monkeypatch)
    nb = tmp_path / "eda.ipynb"
    nb.write_text("{}")
    jupyter.user_ns["__session__"] = str(nb)
    assert capture_entry_point() == EntryPoint("notebook", str(nb), str(nb))


def test_notebook_path_from_env(
    jupyter: FakeShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside_pytest(monkeypatch)
    monkeypatch.setenv("JPY_SESSION_NAME", "remote/elsewhere.ipynb")
    monkeypatch.chdir(tmp_path)
    # The name is kept; no source_path since that file is not here.
    assert capture_entry_point() == EntryPoint("notebook", "remote/elsewhere.ipynb", None)


def test_notebook_without_a_path(jupyter: FakeShell, monkeypatch: pytest.MonkeyPatch) -> None:
    outside_pytest(monkeypatch)
    assert capture_entry_point() == EntryPoint("notebook", "<notebook>", None)


class HostileMain(types.ModuleType):
    def __getattribute__(self, name: str) -> object:
        raise RuntimeError(name)


def test_odd_main_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    outside_pytest(monkeypatch)
    monkeypatch.setitem(sys.modules, "__main__", HostileMain("__main__"))
    assert capture_entry_point() == EntryPoint("unknown", "", None)


# --- system --------------------------------------------------------------------------------


def test_system_values() -> None:
    system = capture_system()
    assert set(system) == {
        "python",
        "python_implementation",
        "platform",
        "machine",
        "hostname",
        "user",
        "pid",
    }
    assert system["python"] == platform.python_version()
    assert system["platform"] == platform.platform()
    assert system["pid"] == str(os.getpid())
    assert all(isinstance(v, str) for v in system.values())


def test_system_is_fast_after_the_first_call() -> None:
    capture_system()
    timings = []
    for _ in range(50):
        start = time.perf_counter()
        capture_system()
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.001


def test_system_copies_are_independent() -> None:
    capture_system()["user"] = "changed"
    assert capture_system()["user"] != "changed" or getpass.getuser() == "changed"


def test_unknown_user_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_user)
    capture._static_system.cache_clear()
    try:
        assert capture_system()["user"] == ""
    finally:
        capture._static_system.cache_clear()


# --- environment ---------------------------------------------------------------------------


def test_environment_packages() -> None:
    env = capture_environment()
    assert f"sqlalchemy=={importlib.metadata.version('sqlalchemy')}" in env.packages
    assert f"pydantic-settings=={importlib.metadata.version('pydantic-settings')}" in env.packages
    assert env.packages == sorted(set(env.packages))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*==.+", p) for p in env.packages)
    assert env.python == platform.python_version()


def test_environment_digest_is_the_canonical_hash() -> None:
    env = capture_environment()
    canonical = json.dumps(
        {"packages": env.packages, "platform": env.platform, "python": env.python},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert env.digest == hashlib.sha256(canonical.encode()).hexdigest()


def test_environment_digest_is_stable_across_calls_and_processes(tmp_path: Path) -> None:
    first = capture_environment()
    first.packages.append("mutated==1")  # the caller's copy; the cache must not see it
    second = capture_environment()
    assert second.digest == first.digest
    assert "mutated==1" not in second.packages
    code = "from shipyard.tracking.capture import capture_environment as c; print(c().digest)"
    digests = {str(run_python_text(["-c", code], tmp_path)) for _ in range(2)}
    assert digests == {first.digest}


def run_python_text(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@dataclasses.dataclass
class FakeDist:
    metadata: dict[str, str]
    version: str | None


class BrokenDist:
    @property
    def metadata(self) -> dict[str, str]:
        raise OSError("unreadable METADATA")


def test_installed_packages_skip_nameless_and_broken_first_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dists = [
        FakeDist({"Name": "Foo_Bar"}, "2.0"),
        FakeDist({}, "1.0"),
        BrokenDist(),
        FakeDist({"Name": "foo.bar"}, "1.0"),  # shadowed by the first copy on sys.path
        FakeDist({"Name": "Zope.Interface"}, "6.1"),
        FakeDist({"Name": "noversion"}, None),
    ]
    monkeypatch.setattr(importlib.metadata, "distributions", lambda path=None: iter(dists))
    assert capture._installed_packages() == [
        "foo-bar==2.0",
        "noversion==unknown",
        "zope-interface==6.1",
    ]


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("SQLAlchemy", "sqlalchemy"), ("Foo.Bar__baz", "foo-bar-baz"), ("a-_-.b", "a-b")],
)
def test_normalize_name(raw: str, normal: str) -> None:
    assert normalize_name(raw) == normal


# --- tags ----------------------------------------------------------------------------------

SYSTEM = {
    "python": "3.11.7",
    "python_implementation": "CPython",
    "platform": "Linux-6.1-x86_64",
    "machine": "x86_64",
    "hostname": "box",
    "user": "ana",
    "pid": "42",
}


def test_run_tags_all_present() -> None:
    info = GitInfo("abc123", "main", "https://example.com/x.git", False, "", "/r")
    entry = EntryPoint("script", "train.py", "/r/train.py")
    assert run_tags(info, entry, SYSTEM) == {
        "shipyard.git.commit": "abc123",
        "shipyard.git.branch": "main",
        "shipyard.git.remote": "https://example.com/x.git",
        "shipyard.git.dirty": "false",
        "shipyard.source.kind": "script",
        "shipyard.source.name": "train.py",
        "shipyard.source.file": "/r/train.py",
        "shipyard.python": "3.11.7",
        "shipyard.platform": "Linux-6.1-x86_64",
        "shipyard.hostname": "box",
        "shipyard.user": "ana",
    }


def test_run_tags_omit_missing_values() -> None:
    entry = EntryPoint("interactive", "<stdin>", None)
    tags = run_tags(None, entry, {**SYSTEM, "user": ""})
    assert tags == {
        "shipyard.source.kind": "interactive",
        "shipyard.source.name": "<stdin>",
        "shipyard.python": "3.11.7",
        "shipyard.platform": "Linux-6.1-x86_64",
        "shipyard.hostname": "box",
    }
    detached = GitInfo("abc123", None, None, True, "diff", "/r")
    tags = run_tags(detached, entry, SYSTEM)
    assert tags["shipyard.git.dirty"] == "true"
    assert "shipyard.git.branch" not in tags
    assert "shipyard.git.remote" not in tags


def test_run_tags_are_capped() -> None:
    entry = EntryPoint("script", "x" * 9000, None)
    assert len(run_tags(None, entry, SYSTEM)["shipyard.source.name"]) == 8000


def test_vendored_folders_put_on_sys_path_do_not_count(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Ray puts ray/thirdparty_files on sys.path when imported: the environment must not
    change with what the program imported."""
    import site

    from shipyard.tracking import capture

    vendored = tmp_path / "somepkg" / "thirdparty_files"
    (vendored / "vendoredthing-1.0.dist-info").mkdir(parents=True)
    (vendored / "vendoredthing-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vendoredthing\nVersion: 1.0\n"
    )
    real_sites = site.getsitepackages()
    monkeypatch.setattr(site, "getsitepackages", lambda: [*real_sites, str(tmp_path)])
    monkeypatch.syspath_prepend(str(vendored))
    assert not any(p.startswith("vendoredthing==") for p in capture._installed_packages())
    monkeypatch.setattr(site, "getsitepackages", lambda: real_sites)
    assert "vendoredthing==1.0" in capture._installed_packages()
