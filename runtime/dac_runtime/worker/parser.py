"""Turn agent output into persona events and a usage summary.

Agents speak two dialects: plain text, and Claude Code's ``--output-format stream-json`` NDJSON
(``system``/``assistant``/``user``/``result`` messages, unknown types kept and ignored here). Persona
lines (:mod:`dac_runtime.protocol`) are recognised in plain stdout lines and inside the text blocks of
``assistant`` messages; the ``result`` message supplies usage, cost and ``is_error``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..protocol import Usage, parse_persona_line


class OutputParser:
    """Fed stdout one line at a time (after redaction); collects persona events and the result."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.is_error = False
        self.result_subtype: str | None = None

    def feed_line(self, line: str) -> list[tuple[str, dict[str, Any]]]:
        stripped = line.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                message = msgspec.json.decode(stripped)
            except msgspec.DecodeError:
                message = None
            if isinstance(message, dict) and isinstance(message.get("type"), str):
                return self._stream_json(message)
        event = parse_persona_line(line)
        return [event] if event else []

    def _stream_json(self, message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        kind = message["type"]
        if kind == "result":
            self._take_result(message)
            return []
        if kind != "assistant":
            return []
        events: list[tuple[str, dict[str, Any]]] = []
        content = (message.get("message") or {}).get("content")
        if not isinstance(content, list):
            return events
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                for text_line in block["text"].splitlines():
                    event = parse_persona_line(text_line)
                    if event:
                        events.append(event)
        return events

    def _take_result(self, message: dict[str, Any]) -> None:
        self.is_error = bool(message.get("is_error"))
        subtype = message.get("subtype")
        self.result_subtype = subtype if isinstance(subtype, str) else None
        raw_usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}

        def count(key: str) -> int:
            value = raw_usage.get(key)
            return value if isinstance(value, int) and value >= 0 else 0

        cost = message.get("total_cost_usd")
        turns = message.get("num_turns")
        session = message.get("session_id")
        self.usage = Usage(
            input_tokens=count("input_tokens"),
            output_tokens=count("output_tokens"),
            cache_read_input_tokens=count("cache_read_input_tokens"),
            cache_creation_input_tokens=count("cache_creation_input_tokens"),
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
            num_turns=turns if isinstance(turns, int) else None,
            session_id=session if isinstance(session, str) else None,
        )


class LineSplitter:
    """Reassembles lines from arbitrary chunks (a line may straddle two reads)."""

    def __init__(self, max_line: int = 1 << 20) -> None:
        self._partial = ""
        self._max_line = max_line

    def feed(self, text: str) -> list[str]:
        data = self._partial + text
        lines = data.split("\n")
        self._partial = lines.pop()
        if len(self._partial) > self._max_line:  # a runaway line is dropped from parsing, not from output
            self._partial = ""
        return lines

    def finish(self) -> list[str]:
        rest, self._partial = self._partial, ""
        return [rest] if rest else []
