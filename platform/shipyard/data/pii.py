"""PII redaction and the scanner that proves it worked.

Policy per raw PII column (settings ``pii.columns``): ``drop`` removes the column; ``tokenize``
replaces it with ``<column>_token``, an HMAC-SHA256 of the value under a secret key. Tokens are
stable for one key, so records of one card still join, but they cannot be reversed or
recomputed without the key. The key comes from a secret (``SHIPYARD_PII__KEY``); without one, a
random key is created once in the state directory with mode 0600.

The scanner looks for what raw PII looks like (e-mail addresses, phone numbers, Luhn-valid card
numbers) and, given the raw data set, for the exact values seeded in it (names included).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from shipyard.errors import ShipyardError
from shipyard.keyfiles import read_or_create
from shipyard.settings import PII_COLUMNS, Settings

TOKEN_PREFIX = "tok_"
KEY_FILE = "pii.key"


def pii_key(settings: Settings, secrets_dir: Path) -> bytes:
    """The tokenization key: the configured secret, else the state directory's own key."""
    if settings.pii.key is not None:
        return settings.pii.key.get_secret_value().encode()
    return read_or_create(secrets_dir / KEY_FILE).encode()


def token_column(column: str) -> str:
    return f"{column}_token"


def redact(frame: pl.DataFrame, policy: dict[str, str], key: bytes) -> pl.DataFrame:
    """``frame`` without raw PII: dropped or tokenized column by column, as ``policy`` says."""
    for column in PII_COLUMNS:
        if column not in frame.columns:
            continue
        action = policy[column]
        if action == "tokenize":
            # Hash each distinct value once: far fewer customers than transactions.
            distinct = frame.get_column(column).unique().drop_nulls()
            tokens = pl.DataFrame(
                {
                    column: distinct,
                    token_column(column): [_token(key, value) for value in distinct.to_list()],
                },
                schema={column: frame.schema[column], token_column(column): pl.String},
            )
            frame = frame.join(tokens, on=column, how="left", maintain_order="left")
        frame = frame.drop(column)
    return frame


def _token(key: bytes, value: str) -> str:
    digest = hmac.new(key, str(value).encode(), hashlib.sha256).digest()
    # Base32 (letters and 2-7), not hex: a token must never contain a run of digits that looks
    # like a card or phone number to the scanner. 26 characters keep 130 bits.
    return TOKEN_PREFIX + base64.b32encode(digest).decode()[:26].lower()


# What raw PII looks like. Card numbers must also pass the Luhn check, carry a card-network
# prefix, not be the fraction of a decimal number and not be a run of digits inside a longer
# token, so that epoch microseconds, ids, printed floats ("28.450526315789478") and hex digests
# ("sha256:…a4916…46e…", as every manifest carries) are not mistaken for cards.
PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    "phone": re.compile(r"\+\d{1,3}[-\s]?\d{2,4}[-\s]?\d{3,8}(?:[-\s]?\d{2,4})?"),
    "card_number": re.compile(
        r"(?<![0-9A-Za-z.])(?:4\d{12,18}|5[1-5]\d{14}|3[47]\d{13}|6011\d{12})(?![0-9A-Za-z])"
    ),
}


def luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


@dataclass(frozen=True)
class Finding:
    """PII found somewhere: which file, which column (or line), what kind, how many."""

    path: Path
    where: str
    kind: str
    count: int
    example: str

    def __str__(self) -> str:
        return f"{self.path} [{self.where}]: {self.count} x {self.kind} (e.g. {self.example})"


def mask(value: str) -> str:
    """Enough of a value to recognize it, not enough to leak it."""
    return value[:2] + "…" + value[-2:] if len(value) > 6 else "…"


def scan(paths: Iterable[Path], known_values: set[str] | None = None) -> list[Finding]:
    """Every PII finding in the Parquet, text and JSON files under ``paths``.

    Args:
        paths: files or folders; folders are walked.
        known_values: exact raw PII values to look for as well (e.g. every name in the raw data).
    """
    findings: list[Finding] = []
    for path in _files(paths):
        if path.suffix == ".parquet":
            findings.extend(_scan_parquet(path, known_values or set()))
        else:
            findings.extend(_scan_text(path, known_values or set()))
    return findings


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path
        else:
            raise ShipyardError(f"{path} does not exist: pass files or folders to scan")


def _scan_parquet(path: Path, known: set[str]) -> Iterator[Finding]:
    schema = pq.read_schema(path)
    textual = ("string", "large_string", "dictionary")
    strings = [f.name for f in schema if str(f.type).startswith(textual)]
    if not strings:
        return
    frame = pl.read_parquet(path, columns=strings, hive_partitioning=False)
    for column in strings:
        values = frame.get_column(column).cast(pl.String).drop_nulls().unique().to_list()
        yield from _scan_values(path, f"column {column}", values, known)


def _scan_text(path: Path, known: set[str]) -> Iterator[Finding]:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise ShipyardError(f"cannot read {path}: {exc.strerror}") from None
    yield from _scan_values(path, "text", [text], known)


def _scan_values(path: Path, where: str, values: list[str], known: set[str]) -> Iterator[Finding]:
    hits: dict[str, list[str]] = {}
    for value in values:
        for kind, pattern in PATTERNS.items():
            for match in pattern.findall(value):
                if kind == "card_number" and not luhn_valid(match):
                    continue
                hits.setdefault(kind, []).append(match)
        if known:
            for token in _candidate_values(value, known):
                hits.setdefault("known raw value", []).append(token)
    for kind, matches in hits.items():
        yield Finding(path, where, kind, len(matches), mask(matches[0]))


# Words, and "First Last" pairs: how names, e-mails, phones and card numbers sit in free text.
_TEXT_TOKENS = re.compile(r"[A-Z][a-z]+ [A-Z][a-z]+|[^\s\"',;:()\[\]{}<>=|]+")


def tokens_in(text: str, known: set[str]) -> Iterator[str]:
    """The known raw values that occur in free ``text`` (one pass over its tokens)."""
    for match in _TEXT_TOKENS.finditer(text):
        if match.group() in known:
            yield match.group()


def _candidate_values(value: str, known: set[str]) -> Iterator[str]:
    if value in known:
        yield value
        return
    if len(value) > 64:  # free text
        yield from tokens_in(value, known)


def known_pii_values(raw_dir: Path) -> set[str]:
    """Every raw PII value of a raw data set (from its customer master)."""
    customers = raw_dir / "customers.parquet"
    if not customers.exists():
        raise ShipyardError(f"{raw_dir} has no customers.parquet: pass the raw data set folder")
    frame = pl.read_parquet(customers, columns=list(PII_COLUMNS))
    values: set[str] = set()
    for column in PII_COLUMNS:
        values.update(frame.get_column(column).cast(pl.String).drop_nulls().to_list())
    return values
