"""Storage test configuration: every backend test runs on the local folder and on S3."""

from __future__ import annotations

import pytest

from storage import ObjectStore
from tests.storage import samples
from tests.storage.fixtures import (  # noqa: F401 - fixtures are found by name
    faulty_link,
    local_store,
    make_s3_store,
    s3_endpoint,
    s3_process_endpoint,
    s3_store,
)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each backend in turn, so every test using it runs on both."""
    backend: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return backend


@pytest.fixture(scope="session")
def zip_bomb() -> bytes:
    """A ~200 KB DOCX-shaped ZIP whose member inflates to 200 MB (built once per session)."""
    return samples.zip_bomb(200)
