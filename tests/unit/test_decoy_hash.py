"""A sign-in as an unknown name costs what a wrong password costs: the same Argon2id work."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters

from workflow import users


def test_the_decoy_has_the_parameters_of_a_real_hash() -> None:
    assert extract_parameters(users._DUMMY_HASH) == extract_parameters(
        users.hash_password("another-long-passphrase")
    )


def test_an_unknown_user_is_verified_against_the_decoy(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []

    class Spy(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            checked.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(users, "HASHER", Spy())
    assert users.check_password(None, "dummy-password-for-timing") is False  # even if it matches
    assert checked == [users._DUMMY_HASH]
