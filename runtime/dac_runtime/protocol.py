"""The worker <-> orchestrator contract: typed JSON frames over a WebSocket, plus the persona line format.

Every frame is a tagged msgspec struct, so decoding *is* validation: an unknown ``type``, a missing
field or a wrong type raises :class:`ProtocolError` with a message that names the offending path, and
the connection loop answers with an ``error`` frame instead of dying. Unknown extra fields are ignored
so that a newer peer can add fields without breaking an older one; incompatible changes bump
:data:`PROTOCOL_VERSION`, which ``hello`` carries and the orchestrator checks.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

PROTOCOL_VERSION = 1
#: Versions this build can speak. A worker outside this range is refused at ``hello``.
SUPPORTED_PROTOCOLS = frozenset({1})
#: Frames larger than this are rejected before parsing (a worker chunk is at most 64 KiB of text,
#: which JSON-escapes to well under this).
MAX_FRAME_BYTES = 1 << 20

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
Seq = Annotated[int, msgspec.Meta(ge=0)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "timed_out"})
CompletionStatus = Literal["completed", "failed", "cancelled", "timed_out"]
PERSONA_EVENT_TYPES = ("manual_review", "user_message", "persona_action", "emit_event")
PersonaEventType = Literal["manual_review", "user_message", "persona_action", "emit_event"]


class ProtocolError(Exception):
    """A frame that cannot be accepted; ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Frame(msgspec.Struct, tag_field="type", rename="camel", kw_only=True, omit_defaults=True):
    pass


# --- worker -> orchestrator -------------------------------------------------------------------


class Resume(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """An execution a reconnecting worker still holds: running, or finished with its result not yet
    acknowledged. Its unacknowledged frames follow the ``ack``, in order."""

    execution_id: Id
    last_seq: Seq = 0
    finished: bool = False


class Hello(_Frame, tag="hello"):
    worker_id: Id
    version: str
    protocol: int
    capabilities: list[str] = []
    #: Where it runs, as its deployment says (``local``, ``droplet``, ``fly``, ``pod``): shown to operators.
    place: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    #: Set by a reconnecting worker that is still running an execution, so the orchestrator
    #: re-attaches it instead of failing it (kept for orchestrators that predate ``resumes``).
    active_execution_id: Id | None = None
    #: Highest output seq the worker has sent for ``active_execution_id``.
    last_seq: int | None = None
    #: Every execution the worker holds, running or finished-but-unacknowledged.
    resumes: Annotated[list[Resume], msgspec.Meta(max_length=64)] = []


class Ready(_Frame, tag="ready"):
    pass


class Accepted(_Frame, tag="accepted"):
    execution_id: Id


class Rejected(_Frame, tag="rejected"):
    execution_id: Id
    reason: str


class Stdout(_Frame, tag="stdout"):
    execution_id: Id
    seq: Seq
    chunk: str
    timestamp: float


class Stderr(_Frame, tag="stderr"):
    execution_id: Id
    seq: Seq
    chunk: str
    timestamp: float


class Event(_Frame, tag="event"):
    execution_id: Id
    event_type: PersonaEventType
    payload: dict[str, Any] = {}
    seq: Seq = 0


class Usage(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    input_tokens: NonNegInt = 0
    output_tokens: NonNegInt = 0
    cache_read_input_tokens: NonNegInt = 0
    cache_creation_input_tokens: NonNegInt = 0
    cost_usd: float | None = None
    num_turns: int | None = None
    session_id: str | None = None


class Complete(_Frame, tag="complete"):
    execution_id: Id
    status: CompletionStatus
    exit_code: int | None = None
    duration_ms: NonNegInt = 0
    usage: Usage | None = None
    #: Why a non-completed run ended (``timeout``, ``inactivity``, ``output_limit``, ``spawn_failed``,
    #: ``agent_error``, ``cancelled``...). Never contains secret values.
    reason: str | None = None


class Heartbeat(_Frame, tag="heartbeat"):
    timestamp: float
    executing: Id | None = None


# --- orchestrator -> worker -------------------------------------------------------------------


class Ack(_Frame, tag="ack"):
    worker_id: Id
    session_token: str
    heartbeat_interval_ms: PositiveInt
    #: Per-worker credential issued when the worker authenticated with a registration token;
    #: the worker stores it and uses it for every later connection.
    credential: str | None = None
    #: The orchestrator's clock (epoch seconds) when it sent the ack, so a worker can compare
    #: ``Assign.not_after`` across machines whose clocks differ.
    server_time: float | None = None


class ExecConfig(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    timeout_ms: PositiveInt
    max_output_bytes: PositiveInt
    inactivity_timeout_ms: PositiveInt | None = None
    cancel_grace_ms: NonNegInt = 5000


class Assign(_Frame, tag="assign"):
    execution_id: Id
    persona_id: Id
    prompt: str
    env: dict[str, str]
    config: ExecConfig
    #: The orchestrator's clock (epoch seconds) after which it has given up on an ``accepted`` and
    #: dispatched the request elsewhere; a worker that reads the assign later (it was stopped, or its
    #: socket stalled) must not start it. Compared through the clock offset learnt from ``ack``.
    not_after: float | None = None


class Cancel(_Frame, tag="cancel"):
    execution_id: Id


class Received(_Frame, tag="received"):
    """The orchestrator has recorded ``execution_id``'s frames up to ``seq`` (and, with ``final``, its
    completion): the worker may forget them. Until then it keeps them, to send again after a reconnect."""

    execution_id: Id
    seq: Seq = 0
    final: bool = False


class Shutdown(_Frame, tag="shutdown"):
    reason: str
    grace_period_ms: NonNegInt = 30000


class Error(_Frame, tag="error"):
    code: str
    message: str


# --- connecting the Claude subscription: ``claude setup-token`` driven on a worker (capability
# ``setup-token``). The orchestrator starts a login, the worker answers with the URL the CLI printed,
# the orchestrator passes on the code the user pasted (its state already checked), the worker answers
# with the token or why there is none. ``login_end`` abandons a login.

LoginText = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class LoginStart(_Frame, tag="login_start"):
    session: Id


class LoginCode(_Frame, tag="login_code"):
    session: Id
    code: LoginText


class LoginEnd(_Frame, tag="login_end"):
    session: Id


class LoginUrl(_Frame, tag="login_url"):
    session: Id
    url: LoginText


class LoginToken(_Frame, tag="login_token"):
    session: Id
    token: LoginText


class LoginFailed(_Frame, tag="login_failed"):
    session: Id
    reason: Annotated[str, msgspec.Meta(max_length=1000)]


WorkerFrame = (
    Hello
    | Ready
    | Accepted
    | Rejected
    | Stdout
    | Stderr
    | Event
    | Complete
    | Heartbeat
    | LoginUrl
    | LoginToken
    | LoginFailed
)
OrchestratorFrame = Ack | Assign | Cancel | Received | Shutdown | Error | LoginStart | LoginCode | LoginEnd

_encoder = msgspec.json.Encoder()
_worker_decoder = msgspec.json.Decoder(WorkerFrame)
_orchestrator_decoder = msgspec.json.Decoder(OrchestratorFrame)


def encode(frame: _Frame) -> str:
    """Serialise a frame to the JSON text sent over the socket."""
    return _encoder.encode(frame).decode()


def _decode(decoder: msgspec.json.Decoder, data: str | bytes) -> Any:
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError("frame_too_large", f"frame of {len(data)} bytes exceeds the {MAX_FRAME_BYTES} cap")
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError("invalid_frame", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError("malformed_json", str(exc)) from None


def decode_worker_frame(data: str | bytes) -> WorkerFrame:
    """Parse a frame a worker sent; raises :class:`ProtocolError` on anything off-contract."""
    return _decode(_worker_decoder, data)


def decode_orchestrator_frame(data: str | bytes) -> OrchestratorFrame:
    """Parse a frame the orchestrator sent; raises :class:`ProtocolError` on anything off-contract."""
    return _decode(_orchestrator_decoder, data)


def check_protocol(hello: Hello) -> None:
    """Refuse a worker whose protocol version this build cannot speak."""
    if hello.protocol not in SUPPORTED_PROTOCOLS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_PROTOCOLS))
        raise ProtocolError(
            "incompatible_protocol",
            f"worker speaks protocol {hello.protocol}; this orchestrator supports {supported}",
        )


# --- persona line format -----------------------------------------------------------------------
#
# An agent announces a persona event by writing one line of the form
#
#     ::persona:: <event_type> <JSON object>
#
# e.g. ``::persona:: manual_review {"reason": "needs a human"}``. The JSON object is optional
# (``::persona:: user_message`` alone is an event with an empty payload). The line may appear on plain
# stdout or inside the text of a Claude Code stream-json ``assistant`` message; the worker's parser
# looks in both places. Leading whitespace is allowed; anything else on the line is not.

PERSONA_PREFIX = "::persona::"
_PERSONA_LINE = re.compile(r"^\s*::persona::\s+([a-z_]+)(?:\s+(\{.*\}))?\s*$")


def parse_persona_line(line: str) -> tuple[str, dict[str, Any]] | None:
    """Return ``(event_type, payload)`` for a persona line, ``None`` for any other line.

    A line that starts with the prefix but is malformed (unknown type, payload not a JSON object)
    returns ``None`` too: agent output is untrusted text and must never break the stream.
    """
    if PERSONA_PREFIX not in line:
        return None
    match = _PERSONA_LINE.match(line)
    if match is None or match.group(1) not in PERSONA_EVENT_TYPES:
        return None
    payload: dict[str, Any] = {}
    if match.group(2):
        try:
            decoded = msgspec.json.decode(match.group(2))
        except msgspec.DecodeError:
            return None
        if not isinstance(decoded, dict):
            return None
        payload = decoded
    return match.group(1), payload


def format_persona_line(event_type: str, payload: dict[str, Any] | None = None) -> str:
    """The line an agent writes to emit a persona event (used by the example agent and tests)."""
    if event_type not in PERSONA_EVENT_TYPES:
        raise ValueError(f"unknown persona event type {event_type!r}")
    body = "" if not payload else " " + msgspec.json.encode(payload).decode()
    return f"{PERSONA_PREFIX} {event_type}{body}"
