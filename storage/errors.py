"""Errors raised by the storage package.

Every error carries an HTTP-ish ``status``, a stable ``code`` slug and a Chinese ``message`` that
may be shown to users, so the web layer can map all of them in one place::

    except StorageError as exc:
        abort(exc.status, exc.message)

``str(exc)`` is the developer detail (for logs); ``exc.message`` is the user-facing text, in
the current request's language: the Chinese ``message`` is a catalog template with named
``params``, rendered by the translator the web layer installs (``set_translator``, the same
one as ``workflow.messages``); without one it is formatted in Chinese.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

#: (template, params, code) → the text in the current language, or None for "as it is".
Translator = Callable[[str, Mapping[str, object], str], "str | None"]
_translator: Translator | None = None


def N_(text: str) -> str:
    """Mark a text for extraction into the message catalog; translated where it is shown."""
    return text


class Term(str):
    """A Chinese word put into a message (a kind of file), translated together with it."""

    __slots__ = ()


def set_translator(translator: Translator | None) -> None:
    """Install the function that renders messages in the request's language (web layer)."""
    global _translator
    _translator = translator


def _format(template: str, params: Mapping[str, object]) -> str:
    return template % dict(params) if params else template


class StorageError(Exception):
    """Base class of every error the storage package raises on purpose."""

    status: int = 500
    code: str = "storage_error"
    default_message: str = N_("文件存储出错")

    def __init__(
        self,
        detail: str | None = None,
        *,
        message: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        self.template: str = message or self.default_message
        self.params: dict[str, object] = dict(params or {})
        self.detail: str = detail or _format(self.template, self.params)
        super().__init__(self.detail)

    @property
    def message(self) -> str:
        """The text for a person, in the current request's language (Chinese by default)."""
        text = _translator(self.template, self.params, self.code) if _translator else None
        return text if text is not None else _format(self.template, self.params)


class InvalidKey(StorageError, ValueError):
    """An object key is malformed or would escape the store (``..``, absolute, control chars)."""

    status = 400
    code = "invalid_key"
    default_message = N_("文件标识无效")


class ObjectNotFound(StorageError):
    """The requested object does not exist in the store."""

    status = 404
    code = "object_not_found"
    default_message = N_("文件不存在")


class ObjectAltered(StorageError):
    """A stored object no longer matches the SHA-256 or size its row recorded at upload.

    409: the file is there, but it is not the one the item's reviewers saw; it is withheld
    rather than served as if it were (an administrator checks it with `storage verify`).
    """

    status = 409
    code = "object_altered"
    default_message = N_(
        "该文件与上传时登记的内容不一致（可能已被改动或损坏），不能提供；请联系管理员核查"
    )


class StorageUnavailable(StorageError):
    """The backend is unreachable, timed out, refused us or failed; retrying later may work."""

    status = 503
    code = "storage_unavailable"
    default_message = N_("文件存储服务暂时不可用，请稍后重试")


class IngestRejected(StorageError):
    """An upload was refused before anything was stored; the client must fix the file."""

    status = 422
    code = "ingest_rejected"
    default_message = N_("文件被拒绝")


class EmptyFile(IngestRejected):
    """The upload contained zero bytes."""

    status = 422
    code = "empty_file"
    default_message = N_("文件为空")


class EmptyFilename(IngestRejected):
    """The file name is blank, or nothing but an extension ("   .pdf")."""

    status = 422
    code = "empty_filename"
    default_message = N_("文件名为空，请重命名后重新上传")


class FileTooLarge(IngestRejected):
    """The upload exceeded the configured maximum size; reading stopped at the first extra byte."""

    status = 413
    code = "file_too_large"
    default_message = N_("文件超过大小上限")

    def __init__(self, max_size: int, detail: str | None = None) -> None:
        self.max_size = max_size
        super().__init__(
            detail or f"upload exceeds {max_size} bytes",
            message=N_("文件超过大小上限（%(limit)s）"),
            params={"limit": human_size(max_size)},
        )


class UnsupportedFileType(IngestRejected):
    """The file type is not on the allow-list, or the content does not match the extension."""

    status = 415
    code = "unsupported_file_type"
    default_message = N_("不支持的文件类型")


class ZipBombSuspected(IngestRejected):
    """A ZIP-based file declares sizes, ratios or entry counts typical of a decompression bomb.

    Status 422 rather than 415: the *type* (DOCX, XLSX, OFD, ZIP…) is acceptable, it is this
    particular content that is refused, and a different file of the same type would pass.
    """

    status = 422
    code = "zip_bomb_suspected"
    default_message = N_("压缩内容异常（疑似压缩炸弹），已拒绝")


def human_size(size: int) -> str:
    """Format a limit the way users read it in the upload form and in its refusal: binary MB
    or KB, at most one decimal, rounded down (a file "不超过 1.9 MB" is never refused)."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{(size * 10 // factor) / 10:g} {unit}"
    return f"{size} 字节"
