"""What exactly ran: git state, entry point, host and installed distributions.

Every capture function returns None or empty values on an odd environment (no git, no
repository, no ``__main__.__file__``, a deleted working folder...) instead of raising:
recording a run must never break it.
"""

from __future__ import annotations

import builtins
import functools
import getpass
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.store.entities import Environment

MAX_DIFF_BYTES = 5 * 1024 * 1024
_MAX_UNTRACKED_LISTED = 1000
_CREDENTIALS = re.compile(r"^(https?://)[^/?#]*@", re.IGNORECASE)
_NAME_RUNS = re.compile(r"[-_.]+")


@dataclass(frozen=True)
class GitInfo:
    """The state of the git work tree a run started in."""

    commit: str
    branch: str | None  # None when HEAD is detached
    remote: str | None  # origin's URL, credentials removed
    dirty: bool
    diff: str  # `git diff HEAD`, then a note listing untracked files; "" when clean
    root: str


@dataclass(frozen=True)
class EntryPoint:
    """How the run's code was started."""

    kind: str  # script | module | notebook | pytest | command | interactive | unknown
    name: str
    source_path: str | None  # absolute, and only when the file exists


# --- git -----------------------------------------------------------------------------------


def capture_git(cwd: str | None = None, timeout: float = 5.0) -> GitInfo | None:
    """The repository state at ``cwd``; None without git, outside a repo, or before a commit."""
    try:
        return _capture_git(cwd, timeout)
    except Exception:  # capture must never break a run, whatever git does
        return None


def _capture_git(cwd: str | None, timeout: float) -> GitInfo | None:
    # Optional locks off: a run starting must never block (or fail) the user's own git commands.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    deadline = _Deadline(timeout)
    # One call for root, commit and branch; it fails outside a repo and before a first commit.
    head = _git(
        ["rev-parse", "--show-toplevel", "HEAD", "--symbolic-full-name", "HEAD"],
        cwd,
        env,
        deadline,
    )
    if head is None:
        return None
    root, commit, ref = _text(head).rstrip("\n").rsplit("\n", 2)
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    url = _git(["config", "--get", "remote.origin.url"], cwd, env, deadline)
    remote = strip_credentials(_text(url).strip()) if url is not None else ""
    status = _git(["status", "--porcelain=v1", "-z", "-uall"], cwd, env, deadline)
    if status is None:
        # Commit and branch are still worth keeping; claiming "clean" would not be honest.
        diff = "[shipyard: git status failed or timed out; work tree state unknown]\n"
        return GitInfo(commit, branch, remote or None, dirty=True, diff=diff, root=root)
    changed, untracked = _parse_status(status)
    diff = _git_diff(cwd, env, deadline) if changed else ""
    if untracked:
        diff += _untracked_note(untracked)
    return GitInfo(
        commit=commit,
        branch=branch,
        remote=remote or None,
        dirty=bool(changed or untracked),
        diff=diff,
        root=root,
    )


class _Deadline:
    """One time budget shared by all the git calls of one capture."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return max(self._end - time.monotonic(), 0.0)


def _git(args: list[str], cwd: str | None, env: dict[str, str], dl: _Deadline) -> bytes | None:
    """Stdout of one git command, or None if it failed, timed out or git is missing."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=dl.left(),
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_diff(cwd: str | None, env: dict[str, str], dl: _Deadline) -> str:
    """`git diff HEAD`, read no further than the cap so a huge diff costs no memory."""
    args = ["git", "-c", "core.quotepath=off", "diff", "--no-ext-diff", "--no-color", "HEAD"]
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, ValueError):
        return "[shipyard: git diff could not run]\n"
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    # A blocking read cannot time out by itself; killing git ends it at the deadline.
    killer = threading.Timer(dl.left(), kill)
    killer.daemon = True
    killer.start()
    try:
        data = proc.stdout.read(MAX_DIFF_BYTES + 1) if proc.stdout else b""
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()  # past the cap: the rest is not wanted
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    text = _text(data[:MAX_DIFF_BYTES])
    if len(data) > MAX_DIFF_BYTES:
        return text + f"\n[shipyard: diff truncated at {MAX_DIFF_BYTES} bytes]\n"
    if timed_out.is_set():
        return text + "\n[shipyard: git diff timed out; diff incomplete]\n"
    return text


def _parse_status(out: bytes) -> tuple[bool, list[str]]:
    """Whether tracked files changed, and the untracked paths, from `status --porcelain -z`."""
    changed = False
    untracked: list[str] = []
    fields = iter(out.split(b"\0"))
    for field in fields:
        if len(field) < 4:
            continue
        if field.startswith(b"?? "):
            untracked.append(_text(field[3:]))
        elif field[:2] != b"!!":
            changed = True
            if b"R" in field[:2] or b"C" in field[:2]:
                next(fields, None)  # a rename's original path comes as its own field
    return changed, untracked


def _untracked_note(paths: list[str]) -> str:
    shown = sorted(paths)[:_MAX_UNTRACKED_LISTED]
    lines = ["# shipyard: untracked files (not in the diff):", *(f"#   {p}" for p in shown)]
    if len(paths) > len(shown):
        lines.append(f"#   ... and {len(paths) - len(shown)} more")
    return "\n".join(lines) + "\n"


def strip_credentials(url: str) -> str:
    """The URL without ``user:password@`` or ``token@`` before the host of http(s) URLs."""
    return _CREDENTIALS.sub(r"\1", url)


def _text(data: bytes) -> str:
    # Replacement, not surrogates: these strings go into a database and JSON as they are.
    return data.decode("utf-8", errors="replace")


# --- entry point ---------------------------------------------------------------------------


def capture_entry_point() -> EntryPoint:
    """The script, module, notebook or test that started this process."""
    try:
        return _capture_entry_point()
    except Exception:  # an exotic __main__ must not break a run
        return EntryPoint(kind="unknown", name="", source_path=None)


def _capture_entry_point() -> EntryPoint:
    main = sys.modules.get("__main__")
    argv = getattr(sys, "argv", None) or [""]
    test = os.environ.get("PYTEST_CURRENT_TEST")
    # The env var leaks into subprocesses of a test; only trust it when pytest runs here.
    if test and "pytest" in sys.modules:
        node = test.rsplit(" (", 1)[0]
        return EntryPoint("pytest", node, _existing(node.split("::", 1)[0]))
    notebook = _notebook(main)
    if notebook is not None:
        return notebook
    file = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name != "__main__":
        # `python -m pkg` runs pkg.__main__; the user typed `pkg`.
        module = name.removesuffix(".__main__")
        return EntryPoint("module", module, _existing(file or getattr(spec, "origin", None)))
    # `python - < file.py` sets __file__ to "<stdin>": there is no file to point at.
    if isinstance(file, str) and file and not file.startswith("<"):
        return EntryPoint("script", os.path.basename(file), _existing(file))
    if argv[0] == "-c":
        return EntryPoint("command", "-c", None)
    return EntryPoint("interactive", "<stdin>", None)


def _notebook(main: object) -> EntryPoint | None:
    """A Jupyter kernel's notebook, when this is one; None otherwise."""
    get_ipython = getattr(builtins, "get_ipython", None)
    if get_ipython is None or "ipykernel" not in sys.modules:
        return None
    path = os.environ.get("JPY_SESSION_NAME") or ""
    if not path:
        # JupyterLab sets __session__ and VS Code __vsc_ipynb_file__ in the user namespace.
        user_ns = getattr(get_ipython(), "user_ns", None) or getattr(main, "__dict__", {})
        for key in ("__session__", "__vsc_ipynb_file__"):
            value = user_ns.get(key)
            if isinstance(value, str) and value:
                path = value
                break
    return EntryPoint("notebook", path or "<notebook>", _existing(path))


def _existing(path: object) -> str | None:
    if not isinstance(path, str) or not path:
        return None
    try:
        full = os.path.abspath(path)
        return full if os.path.isfile(full) else None
    except (OSError, ValueError):  # a deleted working folder, or a NUL in the path
        return None


# --- system and environment ----------------------------------------------------------------


def capture_system() -> dict[str, str]:
    """Interpreter, OS, machine, host, user and process id of this process."""
    return {**_static_system(), "pid": str(os.getpid())}


@functools.cache
def _static_system() -> dict[str, str]:
    # platform.platform() reads files and the hostname may need a syscall; neither changes.
    return {
        "python": _safe(platform.python_version),
        "python_implementation": _safe(platform.python_implementation),
        "platform": _safe(platform.platform),
        "machine": _safe(platform.machine),
        "hostname": _safe(socket.gethostname) or _safe(platform.node),
        "user": _user(),
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no USER/LOGNAME and a uid without a passwd entry, as in containers
        return ""


def _safe(fn: Callable[[], object]) -> str:
    try:
        value = fn()
    except Exception:
        return ""
    return value if isinstance(value, str) else ""


def capture_environment() -> Environment:
    """Interpreter, platform and installed distributions, with a digest that identifies them."""
    env = _environment()
    # The cached record is shared; callers get their own list to mutate.
    return replace(env, packages=list(env.packages))


@functools.cache
def _environment() -> Environment:
    from shipyard.store.entities import Environment

    python = _safe(platform.python_version)
    # The wheel platform, not platform.platform(): a kernel update or another host with
    # the same image must not change the digest.
    plat = _safe(sysconfig.get_platform)
    packages = _installed_packages()
    canonical = json.dumps(
        {"packages": packages, "platform": plat, "python": python},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    return Environment(digest=digest, python=python, platform=plat, packages=packages)


def _installed_packages() -> list[str]:
    """Sorted "name==version" of importable distributions, the first on sys.path winning."""
    import importlib.metadata as md

    found: dict[str, str] = {}
    try:
        dists = list(md.distributions(path=_distribution_paths()))
    except Exception:  # an unreadable sys.path entry
        return []
    for dist in dists:
        try:
            raw = dist.metadata["Name"]
            version = dist.version
        except Exception:  # a broken METADATA file
            continue
        if not raw:
            continue
        name = normalize_name(raw)
        # Shadowed copies further down sys.path are not what `import` loads.
        found.setdefault(name, version or "unknown")
    return sorted(f"{name}=={version}" for name, version in found.items())


def _distribution_paths() -> list[str]:
    """sys.path without folders inside an installed package: some packages put their own
    vendored copies on sys.path when imported (Ray adds ``ray/thirdparty_files``), which would
    make the environment's digest depend on what the program imported before capture."""
    import site

    try:
        roots = [*site.getsitepackages(), site.getusersitepackages()]
    except Exception:  # a stripped-down interpreter without site's helpers
        return list(sys.path)
    sites = {os.path.realpath(r) for r in roots if r}
    kept = []
    for entry in sys.path:
        real = os.path.realpath(entry or ".")
        if not any(real != s and real.startswith(s + os.sep) for s in sites):
            kept.append(entry)
    return kept


def normalize_name(name: str) -> str:
    """A distribution name in PEP 503 form: lowercase, runs of ``-_.`` as one ``-``."""
    return _NAME_RUNS.sub("-", name).lower()


# --- tags ----------------------------------------------------------------------------------


def run_tags(git: GitInfo | None, entry: EntryPoint, system: dict[str, str]) -> dict[str, str]:
    """Flat ``shipyard.*`` system tags for a run; keys with no value are left out."""
    # Imported here: the store package is not needed to capture, only to tag.
    from shipyard.store.validation import MAX_TAG_VALUE

    values: dict[str, str | None] = {
        "shipyard.git.commit": git.commit if git else None,
        "shipyard.git.branch": git.branch if git else None,
        "shipyard.git.remote": git.remote if git else None,
        "shipyard.git.dirty": ("true" if git.dirty else "false") if git else None,
        "shipyard.source.kind": entry.kind,
        "shipyard.source.name": entry.name,
        "shipyard.source.file": entry.source_path,
        "shipyard.python": system.get("python"),
        "shipyard.platform": system.get("platform"),
        "shipyard.hostname": system.get("hostname"),
        "shipyard.user": system.get("user"),
    }
    return {key: str(value)[:MAX_TAG_VALUE] for key, value in values.items() if value}


__all__ = [
    "EntryPoint",
    "GitInfo",
    "capture_entry_point",
    "capture_environment",
    "capture_git",
    "capture_system",
    "normalize_name",
    "run_tags",
    "strip_credentials",
]
