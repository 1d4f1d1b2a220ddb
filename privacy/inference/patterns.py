"""What column values look like: emails, URLs, IP addresses, IBANs and card numbers (with
their checksums), national ids, phone numbers and first names.

>>> _is_iban("DE89 3704 0044 0532 0130 00"), _is_card("4111 1111 1111 1111"), _is_phone("42")
(True, True, False)
>>> [label for label, check, _ in _CONTENT_CHECKS if check("jane@example.org")]
['an email address']
"""

from __future__ import annotations

import ipaddress
import re

from privacy.inference.lexicons import _FIRST_NAMES

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_URL = re.compile(r"^(?:(?:https?|ftp)://|www\.)\S+$", re.IGNORECASE)
_PHONE = re.compile(r"^\+?[\d\s().\-/]{7,24}$")
_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$")
_NINO = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$")
_DNI = re.compile(r"^(\d{8})-?([A-Z])$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_CARD = re.compile(r"^\d{13,19}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(v: str) -> bool:
    d = re.sub(r"[ -]", "", v)
    return bool(_CARD.match(d)) and d[0] in "3456" and _luhn(d)


def _is_iban(v: str) -> bool:
    s = v.replace(" ", "").upper()
    if not _IBAN.match(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _is_ip(v: str) -> bool:
    if not any(c in v for c in ".:") or len(v) > 45:
        return False
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _is_phone(v: str) -> bool:
    if not _PHONE.match(v) or _ISO_DATE.match(v):
        return False
    digits = sum(c.isdigit() for c in v)
    formatted = v.startswith(("+", "0", "(")) or any(c in v for c in " -().")
    return 7 <= digits <= 15 and formatted and not re.fullmatch(r"-?\d+(\.\d+)?", v)


def _is_national_id(v: str) -> bool:
    if _SSN.match(v) or _NINO.match(v.replace(" ", "").upper()):
        return True
    m = _DNI.match(v.upper())
    return m is not None and "TRWAGMYFPDXBNJZSQVHLCKE"[int(m.group(1)) % 23] == m.group(2)


def _is_first_name(v: str) -> bool:
    first = v.split()[0].lower() if v.split() else ""
    return first in _FIRST_NAMES and all(p.isalpha() for p in v.replace("-", " ").split())


_CONTENT_CHECKS = (
    ("an email address", _EMAIL.match, 0.8),
    ("a URL", _URL.match, 0.8),
    ("an IP address", _is_ip, 0.8),
    ("an IBAN (checksum valid)", _is_iban, 0.8),
    ("a card number (Luhn valid)", _is_card, 0.8),
    ("a national id (US SSN, UK NINO or Spanish DNI)", _is_national_id, 0.8),
    ("a phone number", _is_phone, 0.8),
    ("a person's first name (name list)", _is_first_name, 0.5),
)
