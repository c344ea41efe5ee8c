"""A sign-in as an unknown name costs what a wrong password costs: the same Argon2id work."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters

from workflow import users

# The product's own parameters here, not the light ones the rest of the suite signs in with.
pytestmark = pytest.mark.usefixtures("real_password_hashing")


def test_passwords_are_hashed_with_the_librarys_recommended_parameters() -> None:
    """Argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile)."""
    made = extract_parameters(users.hash_password("another-long-passphrase"))
    assert made == extract_parameters(PasswordHasher().hash("x"))
    assert (made.type.name, made.time_cost, made.memory_cost) == ("ID", 3, 65536)


def test_the_decoy_has_the_parameters_of_a_real_hash() -> None:
    assert extract_parameters(users.decoy_hash()) == extract_parameters(
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
    assert checked == [users.decoy_hash()]


def test_the_stored_decoy_serves_while_its_parameters_are_the_hashers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No Argon2 work at import or at the first unknown name: the stored decoy is used, and
    it is what it says (the hash of the decoy text)."""
    assert users.decoy_hash() == users._DECOY
    assert users.HASHER.verify(users._DECOY, "dummy-password-for-timing")
    newer = PasswordHasher(time_cost=4)  # a release with new defaults: the decoy follows
    monkeypatch.setattr(users, "HASHER", newer)
    users.decoy_hash.cache_clear()
    assert extract_parameters(users.decoy_hash()).time_cost == 4
