"""Password hashing (Argon2id) and password rules (NIST SP 800-63B: length and blocklist, no
composition rules).

Hashing parameters are the OWASP Password Storage minimum for Argon2id: 19 MiB of memory, two
iterations, one lane. They keep a login near a few tens of milliseconds on a small server while
making each offline guess cost the same memory.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sciti.access.errors import WeakPassword

MIN_LENGTH = 12
MAX_LENGTH = 256  # NIST asks for at least 64; a cap stops hashing megabyte "passwords"
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

_hasher = PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_KIB,
    parallelism=ARGON2_PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)
# Letters and digits a person can read aloud and type without confusing 0/O or 1/l.
_ONE_TIME_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_EDGE_NOISE = "0123456789!@#$%^&*()_-+=.,;:?~ "
_SEPARATORS = re.compile(r"[\W_]+")  # spaces, punctuation, symbols: what joins the words of a phrase


def hash_password(password: str) -> str:
    """Argon2id hash in PHC string form (parameters and salt travel inside the string)."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; False for a mismatch or an unusable stored hash."""
    if not stored_hash:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether a hash was made with weaker parameters than today's (upgrade it at next login)."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


_DUMMY_HASH: str | None = None


def burn_verify(password: str) -> None:
    """Spend the time of one verification: a login for an unknown user costs as much as a real one."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    verify_password(_DUMMY_HASH, password)


def one_time_password() -> str:
    """A random password for first login or reset, about 99 bits: ``xxxxx-xxxxx-xxxxx-xxxxx``."""
    chars = "".join(secrets.choice(_ONE_TIME_ALPHABET) for _ in range(20))
    return "-".join(chars[i : i + 5] for i in range(0, 20, 5))


@lru_cache(maxsize=1)
def blocklist() -> frozenset[str]:
    """Common and breached passwords shipped as data (data/password-blocklist.txt)."""
    text = resources.files("sciti.access").joinpath("data/password-blocklist.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def password_problems(password: str, *, username: str | None = None) -> list[str]:
    """Every reason ``password`` is refused, in words a person understands (empty list: accepted)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"it is shorter than {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"it is longer than {MAX_LENGTH} characters")
    lowered = password.lower()
    core = lowered.strip(_EDGE_NOISE)
    words = blocklist()
    if lowered in words or core in words:
        problems.append("it is a commonly used or breached password")
    if username and len(username) >= 3 and username.lower() in lowered:
        problems.append("it contains the username")
    if password and len(set(password)) <= 2:
        problems.append("it repeats the same characters")
    elif _is_repetition(core) or _is_repetition(lowered):
        problems.append("it is one word or group of characters repeated")
    elif _is_sequence(lowered):
        problems.append("it is a simple sequence of characters")
    return problems


def check_password(password: str, *, username: str | None = None) -> None:
    """Raise WeakPassword listing every problem, or return if the password is acceptable."""
    problems = password_problems(password, username=username)
    if problems:
        raise WeakPassword(
            "password refused: " + "; ".join(problems),
            remedy=f"choose a passphrase of at least {MIN_LENGTH} characters, e.g. several unrelated words",
            details={"problems": problems},
        )


def _is_repetition(text: str) -> bool:
    """One chunk said several times, with or without separators: 'customs customs customs',
    'Blue-Sky.blue-sky', 'abc123abc123abc123' (case is already folded)."""
    squashed = _SEPARATORS.sub("", text)
    # A string is a repetition of a shorter chunk exactly when it occurs inside itself doubled,
    # other than at the start and the middle.
    return len(squashed) >= 2 and (squashed + squashed).find(squashed, 1) < len(squashed)


def _is_sequence(text: str) -> bool:
    """Runs like 'abcdefghijkl' or '987654321098' (each step +1 or each step -1, wrapping 9->0)."""
    if len(text) < 4:
        return False
    steps = {(ord(b) - ord(a)) for a, b in zip(text, text[1:], strict=False)}
    wraps = {1, -1, 9, -9}  # '9'->'0' is -9, '0'->'9' is +9
    return steps <= wraps and (steps <= {1, -9} or steps <= {-1, 9})
