"""A file replaced or edited in the object store after review is withheld, never served as the
department's file: evidence (portal download and preview, API), routine files, renditions."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.checked import open_checked
from storage.convert import pdf_rendition, rendition_key
from storage.errors import ObjectAltered
from storage.ingest import object_key_for
from storage.local import LocalStore
from tests.factories import World
from tests.web.conftest import text
from workflow.actions import review_item, submit_item
from workflow.demo import demo_pdf
from workflow.evidence import attach_evidence
from workflow.routine import submit_routine
from workflow.users import issue_token

Login = Callable[[str], FlaskClient]
ORIGINAL = demo_pdf("甲乙")
SAME_SIZE = demo_pdf("丙丁")  # another file of exactly the same length


def _object(store: LocalStore, key: str) -> Path:
    return store.root / key


def _reviewed_evidence(session: Session, store: LocalStore, world: World) -> tuple[int, str]:
    """A reviewed item's only file, as the reviewer saw it; return its id and object key."""
    item = world.item(session, world.dep_a, "1")
    row = attach_evidence(session, store, item.id, world.member_a, io.BytesIO(ORIGINAL),
                          "领导小组.pdf", max_size=10**6)  # fmt: skip
    item = submit_item(session, item.id, world.member_a, item.version)
    review_item(session, item.id, world.reviewer, item.version)
    session.commit()
    return row.id, row.storage_key


@pytest.mark.parametrize("replacement", [SAME_SIZE, ORIGINAL + b"%appended\n"])
def test_altered_evidence_is_withheld_from_the_verifier(
    app: Flask,
    session: Session,
    world: World,
    store: LocalStore,
    login: Login,
    replacement: bytes,
) -> None:
    assert len(SAME_SIZE) == len(ORIGINAL) and SAME_SIZE != ORIGINAL
    evidence_id, key = _reviewed_evidence(session, store, world)
    _object(store, key).write_bytes(replacement)  # behind everyone's back, in the store
    verifier = login("verifier")
    for url in (f"/portal/evidence/{evidence_id}/download",
                f"/portal/evidence/{evidence_id}/preview"):  # fmt: skip
        refused = verifier.get(url)
        assert refused.status_code == 409, url
        assert replacement not in refused.data
        assert "与上传时登记的内容不一致" in text(refused)
    token, _ = issue_token(session, world.verifier)
    session.commit()
    api = app.test_client().get(
        f"/api/v1/evidence/{evidence_id}/content", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 409 and api.get_json()["error"]["code"] == "object_altered"

    _object(store, key).write_bytes(ORIGINAL)  # put back as it was: served again
    served = verifier.get(f"/portal/evidence/{evidence_id}/download")
    assert served.status_code == 200 and served.data == ORIGINAL


def test_altered_routine_file_is_withheld(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    record = submit_routine(
        session, store, world.assessment, world.member_a, kind="monthly_info", period="2018-08",
        title="八月信息", stream=io.BytesIO(ORIGINAL), filename="八月信息.pdf", max_size=10**6,
    )  # fmt: skip
    session.commit()
    routine_file = record.files[0]
    url = f"/portal/routine/files/{routine_file.id}/download"
    reviewer = login("reviewer")
    assert reviewer.get(url).data == ORIGINAL
    _object(store, routine_file.storage_key).write_bytes(SAME_SIZE)
    refused = reviewer.get(url)
    assert refused.status_code == 409 and SAME_SIZE not in refused.data


def test_open_checked_serves_exactly_what_it_checked(store: LocalStore) -> None:
    stored = store_bytes(store, ORIGINAL)
    with open_checked(store, stored.key, sha256=stored.sha256, size=len(ORIGINAL)) as reader:
        _object(store, stored.key).write_bytes(SAME_SIZE)  # changed after the check
        assert reader.read() == ORIGINAL  # the spool, not the object
    with pytest.raises(ObjectAltered):
        open_checked(store, stored.key, sha256=stored.sha256, size=len(ORIGINAL))


def test_no_rendition_is_made_of_an_altered_source(store: LocalStore) -> None:
    stored = store_bytes(store, ORIGINAL)
    _object(store, stored.key).write_bytes(SAME_SIZE)
    with pytest.raises(ObjectAltered):
        pdf_rendition(
            store,
            source_key=stored.key,
            source_sha256=stored.sha256,
            content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            binary="/bin/false",  # never reached: the source is checked first
        )
    assert not store.exists(rendition_key(stored.sha256))


class _Stored:
    def __init__(self, key: str, sha256: str) -> None:
        self.key, self.sha256 = key, sha256


def store_bytes(store: LocalStore, data: bytes) -> _Stored:
    """Put *data* under its content address; return the key and SHA-256."""
    sha = hashlib.sha256(data).hexdigest()
    key = object_key_for(sha)
    store.put(key, io.BytesIO(data), len(data), "application/pdf")
    return _Stored(key, sha)
