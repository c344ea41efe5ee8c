"""A local-folder object store: the embedded default (``instance/evidence``)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_module
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Readable,
    copy_stream,
    validate_key,
    validate_prefix,
)
from storage.errors import InvalidKey, ObjectNotFound, StorageError, StorageUnavailable

#: Why an operation on a file failed, in the words of the operator (errno → Chinese).
OS_REASONS = {
    errno.ENOENT: "文件或目录不存在",
    errno.EACCES: "没有权限",
    errno.EPERM: "没有权限",
    errno.ENOSPC: "磁盘空间不足",
    errno.EDQUOT: "超出磁盘配额",
    errno.EISDIR: "这是一个目录，不是文件",
    errno.ENOTDIR: "路径中有一项不是目录",
    errno.EROFS: "文件系统只读",
    errno.EEXIST: "文件已存在",
    errno.ENAMETOOLONG: "文件名太长",
    errno.EIO: "磁盘读写错误",
}


def os_reason(exc: OSError) -> str:
    """Say in Chinese why a file operation failed (the errno's text when it is not listed)."""
    return OS_REASONS.get(exc.errno or 0) or exc.strerror or str(exc)


#: Temporary files are named ``.tmp-*`` beside their target; keys may not start a segment with "."
#: so a temporary file can never collide with, or be listed as, an object.
_TEMP_PREFIX = ".tmp-"


class LocalStore(ObjectStore):
    """Store objects as files under *root*; the key's segments become directories.

    Writes go to a temporary file in the target directory, are fsynced and then renamed over the
    target, so a crash leaves either the old object, the new one, or a stray ``.tmp-*`` file —
    never a truncated object.
    """

    #: Whether a write waits for the disk (fsync of the file and of its directory). Always in
    #: the product; the test suite turns it off (tests/conftest.py), as it runs PostgreSQL
    #: without `synchronous_commit`: crash safety is not what those tests check, and the waits
    #: cost the suite tens of seconds. tests/storage/test_local.py checks that it is on.
    sync_to_disk: ClassVar[bool] = True

    def __init__(self, root: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE) -> None:
        self.root = Path(root).resolve()
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def put(self, key: str, stream: Readable, length: int | None, content_type: str) -> None:
        """Write *stream* to the key's file atomically (temp file, fsync, rename, fsync dir).

        *content_type* is not kept: the database row records it, and a folder has nowhere to put
        it that survives copying.
        """
        path = self._path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create {path.parent}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                copy_stream(stream, _disk_writer(out.write), length, self.chunk_size)
                try:
                    out.flush()
                    if self.sync_to_disk:
                        os.fsync(out.fileno())
                except OSError as exc:
                    raise StorageUnavailable(f"cannot flush {temp_name}: {exc}") from exc
            try:
                os.replace(temp_name, path)
            except IsADirectoryError as exc:
                raise InvalidKey(f"key names a directory: {key!r}") from exc
            except OSError as exc:
                raise StorageUnavailable(f"cannot rename into {path}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        if self.sync_to_disk:
            fsync_directory(path.parent)

    def open(self, key: str) -> ObjectReader:
        """Open the key's file for streaming reads."""
        path = self._path_for(key)
        try:
            file = open(path, "rb", buffering=0)  # noqa: SIM115 - ObjectReader owns and closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot open {path}: {exc}") from exc
        size = os.fstat(file.fileno()).st_size
        return ObjectReader(file, size=size, translate=_translate_os_error)

    def stat(self, key: str) -> ObjectInfo:
        """Return the size and mtime (UTC) of the key's file."""
        path = self._path_for(key)
        try:
            result = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot stat {path}: {exc}") from exc
        if not stat_module.S_ISREG(result.st_mode):
            raise ObjectNotFound(key)
        return _info(key, result)

    def ping(self) -> None:
        """The root is a folder this process may write into (it is made on the first write)."""
        probe = self.root if self.root.exists() else self.root.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"{self.root} is not a writable folder")

    def exists(self, key: str) -> bool:
        """Return whether the key's file exists."""
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove the key's file; empty directories are kept (they are few and reused)."""
        path = self._path_for(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete {path}: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield objects under *prefix* in key order, walking only the directories that match."""
        validate_prefix(prefix)
        # Start at the deepest directory the prefix fully names; filter the rest by string.
        directory, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*directory.split("/")) if directory else self.root
        base = f"{directory}/" if directory else ""
        yield from self._walk(start, base, prefix)

    def list_leftovers(self) -> Iterator[ObjectInfo]:
        """Yield the ``.tmp-*`` files of interrupted writes (a SIGKILL, a power cut), by path.

        A write in progress has one too, and its modification time keeps moving: callers
        spare the young ones (``storage gc`` uses its grace period).
        """
        for directory, subdirs, files in os.walk(self.root, onerror=_raise_unavailable):
            subdirs.sort()
            base = Path(directory).relative_to(self.root)
            for name in sorted(files):
                if not name.startswith(_TEMP_PREFIX):
                    continue
                path = Path(directory, name)
                try:
                    result = path.lstat()
                except FileNotFoundError:
                    continue  # the write finished (renamed) or was cleaned up meanwhile
                except OSError as exc:
                    raise StorageUnavailable(f"cannot stat {path}: {exc}") from exc
                if stat_module.S_ISREG(result.st_mode):
                    yield _info((base / name).as_posix(), result)

    def delete_leftover(self, key: str) -> None:
        """Remove one ``.tmp-*`` file named by :meth:`list_leftovers`; nothing else."""
        validate_key(key)
        *parents, name = key.split("/")
        if not name.startswith(_TEMP_PREFIX) or any(p.startswith(".") for p in parents):
            raise InvalidKey(f"not a temporary file of this store: {key!r}")
        path = self.root.joinpath(*parents, name)
        if not path.parent.resolve().is_relative_to(self.root):
            raise InvalidKey(f"key escapes the store root: {key!r}")
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete {path}: {exc}") from exc

    def presigned_url(
        self, key: str, expires: timedelta, filename: str | None = None
    ) -> str | None:
        """Return ``None``: a folder cannot sign URLs, so the web layer streams the file itself."""
        validate_key(key)
        return None

    def _walk(self, directory: Path, base: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as scan:
                entries = [entry for entry in scan if not entry.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StorageUnavailable(f"cannot list {directory}: {exc}") from exc
        # Sorting directories as "name/" yields exactly S3's lexicographic key order.
        entries.sort(key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name)
        for entry in entries:
            key = base + entry.name
            if entry.is_dir(follow_symlinks=False):
                child = key + "/"
                if child.startswith(prefix):
                    yield from self._walk(Path(entry.path), child, prefix)
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                try:
                    yield _info(key, entry.stat(follow_symlinks=False))
                except FileNotFoundError:
                    continue  # deleted while we were listing

    def _path_for(self, key: str) -> Path:
        validate_key(key)
        segments = key.split("/")
        if any(segment.startswith(".") for segment in segments):
            raise InvalidKey(f"segments starting with '.' are reserved: {key!r}")
        path = self.root.joinpath(*segments)
        # validate_key already rules out "..", this also catches symlinks planted inside the root.
        if not path.parent.resolve().is_relative_to(self.root):
            raise InvalidKey(f"key escapes the store root: {key!r}")
        return path


def _info(key: str, result: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=result.st_size,
        modified_at=datetime.fromtimestamp(result.st_mtime, tz=UTC),
    )


def _raise_unavailable(exc: OSError) -> None:
    """Let ``os.walk`` fail loudly: an unreadable folder is not an empty one."""
    if not isinstance(exc, FileNotFoundError):  # no root yet: nothing was ever written
        raise StorageUnavailable(f"cannot list {exc.filename}: {exc}") from exc


def _disk_writer(write: Callable[[bytes], object]) -> Callable[[bytes], None]:
    """Wrap a file's ``write`` so disk errors (ENOSPC, EIO) become StorageUnavailable."""

    def guarded(chunk: bytes) -> None:
        """Write *chunk*, translating disk errors."""
        try:
            write(chunk)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write: {exc}") from exc

    return guarded


def _translate_os_error(exc: Exception) -> StorageError | None:
    if isinstance(exc, OSError):
        return StorageUnavailable(f"cannot read: {exc}")
    return None


def fsync_directory(directory: Path) -> None:
    """Persist the rename itself; without this a power cut can lose a completed write."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open directories; the rename is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; nothing more we can do
    finally:
        os.close(fd)
