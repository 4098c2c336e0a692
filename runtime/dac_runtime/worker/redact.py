"""Remove assigned secret values from agent output before it leaves the machine.

A secret can straddle two reads, so the redactor holds back a tail shorter than the longest secret
until the next read, a newline, or end of stream shows it cannot be the start of one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_SECRET_LENGTH = 6
MASK = "[REDACTED]"


class Redactor:
    def __init__(self, values: Iterable[str]) -> None:
        candidates: set[str] = set()
        for value in values:
            candidates.add(value)
            candidates.update(line for line in value.splitlines() if line.strip())
        secrets = sorted((v for v in candidates if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in secrets)) if secrets else None
        self._hold = max((len(s) for s in secrets), default=1) - 1
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
