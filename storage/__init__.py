"""Evidence storage: one small object-store interface, local and S3 backends, upload ingest.

Pure library code: no Flask and no import of the rest of the project, so the web layer, CLI
commands, benchmarks and tests all drive it the same way.
"""

from storage.base import ObjectInfo, ObjectReader, ObjectStore, content_disposition
from storage.config import store_from_settings
from storage.errors import (
    EmptyFile,
    EmptyFilename,
    FileTooLarge,
    IngestRejected,
    InvalidKey,
    ObjectAltered,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    UnsupportedFileType,
    ZipBombSuspected,
)
from storage.ingest import (
    ALLOWED_EXTENSIONS,
    FileKind,
    StoredFile,
    content_type_for,
    ingest_upload,
    object_key_for,
    sanitize_filename,
)
from storage.local import LocalStore
from storage.s3 import S3Store

__all__ = [
    "ALLOWED_EXTENSIONS",
    "EmptyFile",
    "EmptyFilename",
    "FileKind",
    "FileTooLarge",
    "IngestRejected",
    "InvalidKey",
    "LocalStore",
    "ObjectAltered",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectReader",
    "ObjectStore",
    "S3Store",
    "StorageError",
    "StorageUnavailable",
    "StoredFile",
    "UnsupportedFileType",
    "ZipBombSuspected",
    "content_disposition",
    "content_type_for",
    "ingest_upload",
    "object_key_for",
    "sanitize_filename",
    "store_from_settings",
]
