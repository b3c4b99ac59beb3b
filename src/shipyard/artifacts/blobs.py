"""Content-addressed blob storage (sha256) on a local folder or any fsspec filesystem."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from shipyard.errors import InvalidInput, MissingDependency, NotFound, StoreError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

CHUNK_SIZE = 1024 * 1024
SMALL_FILE = 8 * CHUNK_SIZE
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
# Extras that provide the fsspec driver for a URL scheme.
_EXTRA_FOR_PROTOCOL = {"s3": "s3", "s3a": "s3"}
# Keys fsspec backends use for a modification time, most specific first.
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified")


@dataclass(frozen=True)
class BlobInfo:
    """One stored blob: its digest, size in bytes and modification time (epoch seconds)."""

    digest: str
    size: int
    mtime: float


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters, else raise InvalidInput."""
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        shown = repr(digest)[:100]
        raise InvalidInput(f"invalid blob digest {shown}: expected 64 lowercase hex characters")
    return digest


class BlobStore:
    """Blobs addressed by sha256 under ``{root}/blobs/sha256/{digest[:2]}/{digest}``."""

    def __init__(self, root: str) -> None:
        if not isinstance(root, str) or not root.strip():
            raise InvalidInput("artifact root must be a non-empty path or URL")
        from fsspec.core import url_to_fs
        from fsspec.implementations.local import LocalFileSystem

        try:
            fs, base = url_to_fs(root)
        except ImportError as exc:
            protocol = root.split("://", 1)[0] if "://" in root else "file"
            extra = _EXTRA_FOR_PROTOCOL.get(protocol)
            hint = f"pip install 'shipyard[{extra}]'" if extra else "the fsspec driver for it"
            raise MissingDependency(
                f"artifact root {root!r} needs a driver that is not installed ({exc}); "
                f"install it with: {hint}"
            ) from exc
        except ValueError as exc:
            raise InvalidInput(f"artifact root {root!r} is not usable: {exc}") from exc
        self.root = root
        self._fs: AbstractFileSystem = fs
        self._base = base.rstrip("/")
        # Local stores write with os.replace so readers never see a half-written blob.
        self._local = isinstance(fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"BlobStore({self.root!r})"

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a local file's content; return (sha256 hex digest, size)."""
        src = os.fspath(path)
        if os.path.isdir(src):
            raise InvalidInput(f"cannot store {src!r} as a blob: it is a directory")
        try:
            f = open(src, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError as exc:
            raise NotFound(f"file {src!r} does not exist") from exc
        except OSError as exc:
            raise InvalidInput(f"cannot read {src!r}: {exc.strerror or exc}") from exc
        with f:
            if os.fstat(f.fileno()).st_size <= SMALL_FILE:
                # Small files are hashed in memory first, so storing one again (a script's
                # source on every run) writes nothing.
                return self.put_bytes(f.read())
            return self._put_chunks(iter(lambda: f.read(CHUNK_SIZE), b""))

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; return (sha256 hex digest, size)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"put_bytes needs bytes, got {type(data).__name__}")
        view = memoryview(data).cast("B")
        digest = hashlib.sha256(view).hexdigest()
        if self._renew(digest):
            return digest, len(view)
        # Slices of a memoryview share memory, so a large payload is not copied again.
        return self._put_chunks(view[i : i + CHUNK_SIZE] for i in range(0, len(view), CHUNK_SIZE))

    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        return bool(self._fs.isfile(self._blob_path(digest)))

    def size(self, digest: str) -> int:
        """Size in bytes of a stored blob."""
        path = self._blob_path(digest)
        try:
            return int(self._fs.size(path))
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found in {self.root}") from exc

    def open(self, digest: str) -> BinaryIO:
        """Open a stored blob for binary reading; the caller closes it."""
        path = self._blob_path(digest)
        try:
            return cast(BinaryIO, self._fs.open(path, "rb"))
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found in {self.root}") from exc

    def read_bytes(self, digest: str) -> bytes:
        """The whole content of a stored blob."""
        with self.open(digest) as f:
            return f.read()

    def copy_to(self, digest: str, dest_path: str | os.PathLike[str]) -> None:
        """Stream a stored blob into a local file, creating parent folders."""
        with self.open(digest) as src:
            dest = os.fspath(dest_path)
            parent = os.path.dirname(dest)
            if parent:
                os.makedirs(parent, exist_ok=True)
            with open(dest, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK_SIZE)

    def delete(self, digest: str) -> None:
        """Remove a stored blob; NotFound if it is not there."""
        path = self._blob_path(digest)
        try:
            self._fs.rm_file(path)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found in {self.root}") from exc

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob, in digest order; files that are not blobs are skipped."""
        for prefix in self._list(f"{self._base}/blobs/sha256"):
            if prefix["type"] != "directory":
                continue
            for entry in self._list(prefix["name"]):
                name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
                if entry["type"] != "file" or not _DIGEST_RE.fullmatch(name):
                    continue
                yield BlobInfo(name, int(entry["size"]), self._mtime(entry))

    def iter_temp_files(self) -> Iterator[tuple[str, float]]:
        """(path, mtime) of every temp upload left in the store."""
        for entry in self._list(f"{self._base}/tmp"):
            if entry["type"] == "file":
                yield entry["name"], self._mtime(entry)

    def remove_temp_file(self, path: str) -> None:
        """Remove a temp upload returned by ``iter_temp_files``; gone already is fine."""
        if not path.startswith(f"{self._base}/tmp/"):
            raise InvalidInput(f"{path!r} is not a temp file of {self.root}")
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(path)

    def _blob_path(self, digest: str) -> str:
        validate_digest(digest)
        return f"{self._base}/blobs/sha256/{digest[:2]}/{digest}"

    def _put_chunks(self, chunks: Iterable[bytes | memoryview]) -> tuple[str, int]:
        tmp_dir = f"{self._base}/tmp"
        tmp = f"{tmp_dir}/{os.urandom(16).hex()}"  # uuid costs ~10 ms to import
        hasher = hashlib.sha256()
        size = 0
        try:
            if self._local:
                os.makedirs(tmp_dir, exist_ok=True)
                out: Any = open(tmp, "xb")  # noqa: SIM115 - closed by the with below
            else:
                self._fs.makedirs(tmp_dir, exist_ok=True)
                out = self._fs.open(tmp, "wb")
            with out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                if self._local:
                    # Without fsync a crash after the rename can leave an empty "valid" blob.
                    out.flush()
                    os.fsync(out.fileno())
            digest = hasher.hexdigest()
            if self._local:
                self._commit_local(tmp, self._blob_path(digest))
            else:
                self._commit_remote(tmp, self._blob_path(digest))
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._fs.rm_file(tmp)
            raise StoreError(f"cannot write to the artifact store {self.root}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                self._fs.rm_file(tmp)
            raise
        return digest, size

    def _renew(self, digest: str) -> bool:
        """Bump an existing blob's mtime (so gc's grace period restarts); False if absent."""
        final = self._blob_path(digest)
        if self._local:
            try:
                os.utime(final)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise StoreError(f"cannot write to the artifact store {self.root}: {exc}") from exc
            return True
        if not self._fs.exists(final):
            return False
        with contextlib.suppress(NotImplementedError, ValueError):
            self._fs.touch(final, truncate=False)
            return True
        return False  # cannot renew in place: the caller rewrites it

    def _commit_local(self, tmp: str, final: str) -> None:
        try:
            # A fresh mtime keeps gc's grace period from deleting a blob just re-referenced.
            os.utime(final)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            # Concurrent puts of the same content may both land here; the content is equal.
            os.replace(tmp, final)
        else:
            os.remove(tmp)

    def _commit_remote(self, tmp: str, final: str) -> None:
        if self._fs.exists(final):
            try:
                self._fs.touch(final, truncate=False)
            except (NotImplementedError, ValueError):
                # No way to bump the mtime in place: overwrite with the identical content.
                self._fs.mv(tmp, final)
            else:
                self._fs.rm_file(tmp)
            return
        self._fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        self._fs.mv(tmp, final)

    def _list(self, path: str) -> list[dict[str, Any]]:
        try:
            entries = self._fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        return sorted(entries, key=lambda e: str(e["name"]))

    def _mtime(self, entry: dict[str, Any]) -> float:
        for key in _MTIME_KEYS:
            if (found := _to_epoch(entry.get(key))) is not None:
                return found
        with contextlib.suppress(NotImplementedError, FileNotFoundError):
            if (found := _to_epoch(self._fs.modified(entry["name"]))) is not None:
                return found
        if (found := _to_epoch(entry.get("created"))) is not None:
            return found
        # Unknown age counts as newest, so gc keeps the blob rather than guessing.
        return float("inf")


def _to_epoch(value: object) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None
