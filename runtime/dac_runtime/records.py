"""Kafka topics and the records that travel on them.

Host applications produce :class:`ExecRequest` to the exec topic directly or through the
orchestrator's ``POST /api/execute``; both paths carry the same record, so the orchestrator has one
intake. Output is keyed by execution id (one partition per execution, so order holds) and carries a
per-execution ``seq`` so consumers can order and de-duplicate under at-least-once delivery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from .protocol import Id, NonNegInt, PositiveInt, ProtocolError, Usage

Status = Literal["queued", "dispatched", "running", "completed", "failed", "cancelled", "timed_out"]
CredentialName = Annotated[str, msgspec.Meta(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]


@dataclass(frozen=True)
class Topics:
    """Topic names for one deployment; a prefix keeps several deployments on one cluster apart."""

    exec: str
    output: str
    lifecycle: str
    events: str
    dead_letter: str

    @classmethod
    def with_prefix(cls, prefix: str = "") -> Topics:
        return cls(
            exec=f"{prefix}persona.exec.v1",
            output=f"{prefix}persona.output.v1",
            lifecycle=f"{prefix}persona.lifecycle.v1",
            events=f"{prefix}persona.events.v1",
            dead_letter=f"{prefix}persona.exec.dlq.v1",
        )

    def all(self) -> tuple[str, ...]:
        return (self.exec, self.output, self.lifecycle, self.events, self.dead_letter)


class _Record(msgspec.Struct, rename="camel", kw_only=True):
    """Kafka records always carry every field, so consumers never need to know our defaults."""

    pass


class ExecRequest(_Record):
    execution_id: Id
    persona_id: Id
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]
    #: Names of vault credentials to decrypt into the agent's environment.
    credentials: list[CredentialName] = []
    timeout_ms: PositiveInt | None = None
    max_output_bytes: PositiveInt | None = None
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] | None = None
    metadata: dict[str, str] = {}
    #: Bumped by the orchestrator each time it re-queues the execution; a request whose generation
    #: is not the stored one is a stale duplicate and is skipped.
    generation: NonNegInt = 0
    attempt: Annotated[int, msgspec.Meta(ge=1)] = 1
    submitted_at: float | None = None
    #: Set by the orchestrator on an execution a ``persona_action`` started: the execution that asked,
    #: how many links from the chain's root (0: the root), and the root's id.
    parent_id: Id | None = None
    depth: NonNegInt = 0
    chain_id: Id | None = None


class OutputRecord(_Record):
    execution_id: str
    seq: int
    stream: Literal["stdout", "stderr"]
    chunk: str
    timestamp: float


class LifecycleRecord(_Record):
    execution_id: str
    persona_id: str
    status: Status
    timestamp: float
    attempt: int = 1
    worker_id: str | None = None
    exit_code: int | None = None
    duration_ms: int | None = None
    usage: Usage | None = None
    reason: str | None = None
    #: On a terminal record: the ``seq`` of the execution's last output or event record (0: none), so a
    #: consumer of those topics (another partition, another pace) knows when it has every one.
    last_seq: NonNegInt | None = None
    parent_id: str | None = None
    depth: NonNegInt = 0


class EventRecord(_Record):
    execution_id: str
    persona_id: str
    event_type: str
    payload: dict[str, Any]
    seq: int
    timestamp: float


class DeadLetter(_Record):
    error: str
    attempts: int
    timestamp: float
    #: The original request when it parsed, else the raw bytes as text so nothing is lost.
    request: ExecRequest | None = None
    raw: str | None = None


_encoder = msgspec.json.Encoder()
_request_decoder = msgspec.json.Decoder(ExecRequest)


def encode(record: _Record) -> bytes:
    return _encoder.encode(record)


#: Control characters a prompt may not hold: every C0 control except tab, newline and carriage return,
#: and DEL. U+0000 cannot be passed in an argv at all; the others have no place in a prompt and would
#: reach operators' terminals (ESC sequences) through logs and ``exec``. Lone surrogates cannot be
#: encoded for the agent. C1 controls and every other Unicode character are allowed.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def prompt_problem(prompt: str) -> str | None:
    """Why a prompt cannot be run (a control character and where it is), or ``None`` when it can."""
    match = _FORBIDDEN.search(prompt)
    if match is None:
        return None
    char = match.group()
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return (
        f"prompt holds {kind} U+{ord(char):04X} at position {match.start()}; "
        "only tab, newline and carriage return are allowed among control characters"
    )


def decode_request(data: bytes) -> ExecRequest:
    """Parse an exec request; anything unreadable raises :class:`ProtocolError` (it goes to the DLQ).

    Every failure becomes a ProtocolError: a record is untrusted input, and an exception of any other
    type escaping here would end the consumer loop that called it.
    """
    try:
        request = _request_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError("invalid_request", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError("malformed_json", str(exc)) from None
    except UnicodeDecodeError as exc:
        raise ProtocolError("invalid_utf8", f"record is not valid UTF-8 at byte {exc.start}") from None
    except Exception as exc:
        raise ProtocolError("unreadable_request", f"{type(exc).__name__}: {exc}"[:500]) from None
    problem = prompt_problem(request.prompt)
    if problem is not None:
        raise ProtocolError("invalid_prompt", problem)
    return request


def decode(data: bytes, kind: type[Any]) -> Any:
    """Decode any record type (consumers and tests)."""
    return msgspec.json.decode(data, type=kind)
