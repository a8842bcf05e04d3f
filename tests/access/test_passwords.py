"""Argon2id hashing at OWASP parameters and NIST SP 800-63B password rules."""

from __future__ import annotations

import pytest

from sciti.access import WeakPassword, check_password, hash_password, one_time_password, verify_password
from sciti.access.passwords import blocklist, needs_rehash, password_problems


def test_hash_is_argon2id_with_owasp_parameters():
    h = hash_password("a perfectly fine phrase")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(h, "a perfectly fine phrase")
    assert not verify_password(h, "a perfectly fine phrasE")
    assert hash_password("same") != hash_password("same")  # salted
    assert not needs_rehash(h)


@pytest.mark.parametrize("stored", [None, "", "plaintext", "$argon2id$garbage"])
def test_unusable_stored_hash_never_verifies(stored):
    assert verify_password(stored, "anything") is False


def test_weaker_hash_is_flagged_for_upgrade():
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")
    assert needs_rehash(weak)


@pytest.mark.parametrize(
    ("password", "username", "problems"),
    [
        ("short-one", None, ["it is shorter than 12 characters"]),
        (
            "passwordpassword",
            None,
            ["it is a commonly used or breached password", "it is one word or group of characters repeated"],
        ),
        ("Password2024!", None, ["it is a commonly used or breached password"]),  # edge noise stripped
        (
            "QWERTYUIOP",
            None,
            ["it is shorter than 12 characters", "it is a commonly used or breached password"],
        ),
        (
            "customs123",
            None,
            ["it is shorter than 12 characters", "it is a commonly used or breached password"],
        ),
        ("zzzzzzzzzzzzzzz", None, ["it repeats the same characters"]),
        ("abababababababab", None, ["it repeats the same characters"]),
        ("abcdefghijklmnop", None, ["it is a simple sequence of characters"]),
        ("9876543210987", None, ["it is a simple sequence of characters"]),
        ("my name is mallory!", "mallory", ["it contains the username"]),
        ("x" * 300, None, ["it is longer than 256 characters", "it repeats the same characters"]),
        ("correct horse battery", None, []),
        ("harbour-lantern-quietly-7", "alice", []),
        ("passwordmanagers are good", None, []),  # a blocklisted word inside a longer phrase is fine
        # One word (or chunk) said again and again: separators and case change nothing.
        ("customs customs customs", None, ["it is one word or group of characters repeated"]),
        ("Customs-CUSTOMS_customs", None, ["it is one word or group of characters repeated"]),
        ("customscustomscustoms", None, ["it is one word or group of characters repeated"]),
        ("harbour lantern harbour lantern", None, ["it is one word or group of characters repeated"]),
        ("customs customs customs 2024!", None, ["it is one word or group of characters repeated"]),
        ("849184918491", None, ["it is one word or group of characters repeated"]),
        ("customs customs lantern", None, []),  # a repeated word inside a phrase is fine
        ("lantern customs lantern", None, []),
    ],
)
def test_password_rules(password, username, problems):
    assert password_problems(password, username=username) == problems


def test_check_password_raises_with_every_problem():
    with pytest.raises(WeakPassword) as info:
        check_password("password", username="bob")
    assert info.value.http_status == 422
    assert info.value.details["problems"] == [
        "it is shorter than 12 characters",
        "it is a commonly used or breached password",
    ]


def test_blocklist_is_loaded_from_data():
    words = blocklist()
    assert "password" in words and "qwertyuiop" in words and len(words) > 5000
    assert not any(w.startswith("#") for w in words)


@pytest.mark.parametrize(
    "password",
    [
        "P@ssw0rd2024!",  # leet spelling, edge noise
        "monkeymonkey",  # doubled word
        "1qaz2wsx3edc",  # keyboard walk
        "ILoveJennifer",  # "ilove" + a common name
        "Customs@2025!!",  # context word of the platform
        "qwerty123456",
        "Barcelona1899",
        "mypasswordis",
    ],
)
def test_common_patterns_are_refused(password):
    assert "it is a commonly used or breached password" in password_problems(password)


def test_one_time_passwords_are_random_and_pass_the_rules():
    seen = {one_time_password() for _ in range(50)}
    assert len(seen) == 50
    for p in seen:
        assert len(p) == 23 and p.count("-") == 3
        assert password_problems(p) == []
