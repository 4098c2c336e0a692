"""Claude Code's ``stream-json`` output as text a person reads; for the CLI and host applications alike."""

from __future__ import annotations

import json


class AgentText:
    """Turns Claude Code's ``stream-json`` lines into what a person wants to read; other text passes through.

    Chunks split lines anywhere, so a partial line waits for its end. Assistant text is printed as is,
    tool calls as one ``→ tool`` line, the final ``result`` as a one-line summary (turns, cost).
    """

    def __init__(self) -> None:
        self.partial = ""

    def feed(self, chunk: str) -> str:
        text = self.partial + chunk
        lines = text.split("\n")
        self.partial = lines.pop()
        return "".join(self._line(line) for line in lines)

    def flush(self) -> str:
        rest, self.partial = self.partial, ""
        return self._line(rest).rstrip("\n") + "\n" if rest else ""

    @staticmethod
    def _line(line: str) -> str:
        try:
            message = json.loads(line)
        except ValueError:
            return line + "\n"
        if not isinstance(message, dict) or message.get("type") not in {"system", "assistant", "user", "result"}:
            return line + "\n"
        kind = message["type"]
        if kind == "assistant":
            parts = []
            for block in (message.get("message") or {}).get("content") or []:
                if block.get("type") == "text":
                    parts.append(block.get("text", "") + "\n")
                elif block.get("type") == "tool_use":
                    parts.append(f"→ {block.get('name', 'tool')}\n")
            return "".join(parts)
        if kind == "result":
            cost = message.get("total_cost_usd")
            summary = f"[{message.get('subtype', 'result')}, {message.get('num_turns', '?')} turns"
            return summary + (f", ${cost:.4f}]\n" if isinstance(cost, int | float) else "]\n")
        return ""
