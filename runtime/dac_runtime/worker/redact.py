"""Remove assigned secret values from agent output before it leaves the machine, in every form they
are likely to take there.

Claude Code's stream-json is JSON: a value holding ``"``, ``\\``, a newline or non-ASCII text appears
JSON-escaped (``\\"``, ``\\\\``, ``\\n``, ``\\u00e4`` or the raw character), and a tool result that is
itself JSON text is escaped twice. Agents also print values URL-encoded (query strings) and base64
encoded (``Authorization: Basic``, config blobs), where the value may start at any byte offset. So
each value is masked in all of these forms: raw (and each of its lines), JSON-escaped with and without
``\\u`` escapes (either hex case, ``/`` escaped or not), doubly JSON-escaped, percent-encoded, and the
base64 characters its bytes fix at each of the three alignments.

A secret can straddle two reads, so the redactor holds back a tail shorter than the longest form
until the next read, a newline, or end of stream shows it cannot be the start of one.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterable

MIN_SECRET_LENGTH = 6
#: A base64 run shorter than this could match unrelated text by chance.
MIN_BASE64_LENGTH = 8
MASK = "[REDACTED]"


def _json_forms(value: str) -> set[str]:
    forms = {json.dumps(value, ensure_ascii=ascii)[1:-1] for ascii in (True, False)}
    forms |= {re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), f) for f in forms}
    forms |= {f.replace("/", "\\/") for f in forms}
    return forms


def _base64_forms(value: str) -> set[str]:
    """The base64 characters fixed by the value's bytes alone, for each offset the value may start at
    within a longer encoded blob (standard and URL-safe alphabets, padding stripped)."""
    raw = value.encode()
    forms: set[str] = set()
    for shift in range(3):
        body = raw[shift : shift + (len(raw) - shift) // 3 * 3]
        if body:
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                forms.add(encode(body).decode())
    forms.add(base64.b64encode(raw).decode().rstrip("="))
    return {f for f in forms if len(f) >= MIN_BASE64_LENGTH}


def secret_forms(value: str) -> set[str]:
    """Every string that reveals ``value`` in agent output."""
    forms = {value}
    forms.update(line for line in value.splitlines() if line.strip())
    for json_form in _json_forms(value):
        forms.add(json_form)
        forms |= _json_forms(json_form)  # JSON text inside a JSON string
    forms |= {urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    forms = {f for f in forms if len(f) >= MIN_SECRET_LENGTH}
    return forms | _base64_forms(value)


class Redactor:
    def __init__(self, values: Iterable[str]) -> None:
        candidates: set[str] = set()
        for value in values:
            if len(value) >= MIN_SECRET_LENGTH:
                candidates |= secret_forms(value)
        ordered = sorted(candidates, key=len, reverse=True)  # longest first: a form wins over its parts
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
        self._hold = max((len(s) for s in ordered), default=1) - 1
        self._buffer = ""

    def feed(self, text: str) -> str:
        """Return the redacted text that is safe to emit now; keep a possible secret prefix back."""
        if self._pattern is None:
            return text
        self._buffer += text
        if self._buffer.endswith("\n"):
            return self.flush()
        cut = max(0, len(self._buffer) - self._hold)
        for match in self._pattern.finditer(self._buffer):
            if match.start() < cut < match.end():
                cut = match.end()
        safe, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return self._pattern.sub(MASK, safe)

    def flush(self) -> str:
        text, self._buffer = self._buffer, ""
        return self._pattern.sub(MASK, text) if self._pattern else text
