"""Storage test configuration: shared samples.

The storage fixtures themselves (tests/storage/fixtures.py) are loaded for every package by
tests/conftest.py; modules whose tests should run on each object store say
``pytestmark = pytest.mark.every_store``.
"""

from __future__ import annotations

import pytest

from tests.storage import samples


@pytest.fixture(scope="session")
def zip_bomb() -> bytes:
    """A ~200 KB DOCX-shaped ZIP whose member inflates to 200 MB (built once per session)."""
    return samples.zip_bomb(200)
