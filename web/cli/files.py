"""Files the commands write (checkpoints, archives, job results, CSV): new, whole, owner-only.

A command never replaces a file the operator already has (last month's checkpoint or archive)
unless asked (`--overwrite`), and never leaves a half-written file in its place: it writes a
temporary file beside the target (mode 0600: these files hold evidence and the audit trail),
flushes it to disk, and only then puts it in place. Without `--overwrite` that last step is a
hard link, which fails when the name exists, so a file that appeared meanwhile is kept too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

import click

from storage.local import fsync_directory

F = TypeVar("F", bound=Callable[..., object])

#: A hard link these errors refuse is replaced by a look, then a rename (FAT, some shares).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def overwrite_option(command: F) -> F:
    """Add `--overwrite` to a command that writes a file."""
    return click.option(
        "--overwrite",
        is_flag=True,
        help="Replace an existing output file (default: refuse, the file is kept).",
    )(command)


def exists_message(path: Path) -> str:
    """The refusal for an output file that exists."""
    return f"文件已存在：{path}（未覆盖，原文件保留）；请换一个文件名，或加 --overwrite 覆盖"


def refuse_existing(path: Path, *, overwrite: bool) -> None:
    """Refuse, before any work, an output file that exists (unless `overwrite`)."""
    if not overwrite and (path.exists() or path.is_symlink()):
        raise click.ClickException(exists_message(path))


@contextlib.contextmanager
def new_file(path: Path, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Yield a stream whose bytes become `path` (0600) once the block ends without an error.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the file is
    then linked (or, with `overwrite`, renamed) into place; on any error the temporary file is
    removed and `path` is as it was. An existing `path` without `overwrite` is a ClickException
    naming it, before and after the block. Other OSErrors are the caller's to put in words
    (`os_reason`).
    """
    path = Path(path)
    refuse_existing(path, overwrite=overwrite)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        _put_in_place(temp, path, overwrite=overwrite)
        fsync_directory(path.parent)
    finally:
        temp.unlink(missing_ok=True)


def free_name(folder: Path, filename: str) -> Path:
    """Return `folder/filename`, or `name (2).ext`, `name (3).ext`… the first that is free."""
    candidate = folder / filename
    stem, suffix = Path(filename).stem, Path(filename).suffix
    number = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = folder / f"{stem} ({number}){suffix}"
        number += 1
    return candidate


def _put_in_place(temp: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # atomic: fails when the name exists, whoever made it
    except FileExistsError:
        raise click.ClickException(exists_message(path)) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        refuse_existing(path, overwrite=False)
        os.replace(temp, path)
