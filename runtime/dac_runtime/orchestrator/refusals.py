"""A request the orchestrator will not take, said the same way by the API, the console and Kafka intake."""

from __future__ import annotations


class Refused(Exception):
    """Not accepted: an HTTP status, an error code, a message, and headers (Retry-After)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers
