"""Frames round-trip, garbage is refused with a specific error, persona lines parse."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dac_runtime import protocol as p

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,40}", fullmatch=True)
text = st.text(max_size=200)
ts = st.floats(min_value=0, max_value=4e9, allow_nan=False)

worker_frames = st.one_of(
    st.builds(
        p.Hello,
        worker_id=ids,
        version=text,
        protocol=st.integers(0, 9),
        capabilities=st.lists(text, max_size=3),
        active_execution_id=st.none() | ids,
    ),
    st.builds(p.Ready),
    st.builds(p.Accepted, execution_id=ids),
    st.builds(p.Stdout, execution_id=ids, seq=st.integers(0, 2**40), chunk=text, timestamp=ts),
    st.builds(p.Stderr, execution_id=ids, seq=st.integers(0, 2**40), chunk=text, timestamp=ts),
    st.builds(
        p.Event,
        execution_id=ids,
        event_type=st.sampled_from(p.PERSONA_EVENT_TYPES),
        payload=st.dictionaries(text, st.integers() | text, max_size=3),
    ),
    st.builds(
        p.Complete,
        execution_id=ids,
        status=st.sampled_from(sorted(p.TERMINAL_STATUSES)),
        exit_code=st.none() | st.integers(-255, 255),
        duration_ms=st.integers(0, 10**9),
    ),
    st.builds(p.Heartbeat, timestamp=ts),
)
orch_frames = st.one_of(
    st.builds(p.Ack, worker_id=ids, session_token=text, heartbeat_interval_ms=st.integers(1, 10**6)),
    st.builds(
        p.Assign,
        execution_id=ids,
        persona_id=ids,
        prompt=text,
        env=st.dictionaries(text, text, max_size=3),
        config=st.builds(p.ExecConfig, timeout_ms=st.integers(1, 10**9), max_output_bytes=st.integers(1, 10**9)),
    ),
    st.builds(p.Cancel, execution_id=ids),
    st.builds(p.Shutdown, reason=text, grace_period_ms=st.integers(0, 10**6)),
)


@given(worker_frames)
def test_worker_frames_round_trip(frame):
    assert p.decode_worker_frame(p.encode(frame)) == frame


@given(orch_frames)
def test_orchestrator_frames_round_trip(frame):
    assert p.decode_orchestrator_frame(p.encode(frame)) == frame


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_garbage_raises_protocol_error_only(data):
    with pytest.raises(p.ProtocolError) as info:
        p.decode_worker_frame(data)
        # a random string can be valid JSON but never a valid frame without a type
    assert info.value.code in {"malformed_json", "invalid_frame"}


@given(
    st.dictionaries(
        st.sampled_from(["type", "executionId", "seq", "chunk", "timestamp", "x"]),
        st.integers() | st.text(max_size=5) | st.none(),
        max_size=6,
    )
)
def test_random_objects_never_escape_as_other_exceptions(obj):
    try:
        p.decode_worker_frame(json.dumps(obj))
    except p.ProtocolError:
        pass


def test_camel_case_wire_names():
    wire = json.loads(p.encode(p.Stdout(execution_id="e1", seq=3, chunk="hi", timestamp=1.0)))
    assert wire == {"type": "stdout", "executionId": "e1", "seq": 3, "chunk": "hi", "timestamp": 1.0}


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ('{"type": "nope"}', "invalid_frame", "$.type"),
        ('{"type": "stdout", "executionId": "e", "seq": 1, "timestamp": 1}', "invalid_frame", "chunk"),
        (
            '{"type": "stdout", "executionId": "e", "seq": "1", "chunk": "", "timestamp": 1}',
            "invalid_frame",
            "$.seq",
        ),
        (
            '{"type": "stdout", "executionId": "e", "seq": -1, "chunk": "", "timestamp": 1}',
            "invalid_frame",
            "$.seq",
        ),
        ('{"type": "accepted", "executionId": "../etc"}', "invalid_frame", "$.executionId"),
        ("{not json", "malformed_json", ""),
    ],
)
def test_specific_errors(raw, code, fragment):
    with pytest.raises(p.ProtocolError) as info:
        p.decode_worker_frame(raw)
    assert info.value.code == code
    assert fragment in info.value.message


def test_oversize_frame_refused_before_parsing():
    big = '{"type": "ready", "pad": "' + "x" * p.MAX_FRAME_BYTES + '"}'
    with pytest.raises(p.ProtocolError) as info:
        p.decode_worker_frame(big)
    assert info.value.code == "frame_too_large"


def test_incompatible_protocol_refused():
    p.check_protocol(p.Hello(worker_id="w", version="1", protocol=p.PROTOCOL_VERSION))
    with pytest.raises(p.ProtocolError) as info:
        p.check_protocol(p.Hello(worker_id="w", version="1", protocol=99))
    assert info.value.code == "incompatible_protocol"
    assert "99" in info.value.message


def test_unknown_fields_are_ignored_for_forward_compatibility():
    frame = p.decode_worker_frame('{"type": "accepted", "executionId": "e1", "newField": 1}')
    assert frame == p.Accepted(execution_id="e1")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('::persona:: manual_review {"reason": "check"}', ("manual_review", {"reason": "check"})),
        ("  ::persona:: user_message", ("user_message", {})),
        ('::persona:: persona_action {"a": [1, 2]}', ("persona_action", {"a": [1, 2]})),
        ("::persona:: unknown_type {}", None),
        ("::persona:: emit_event [1]", None),
        ("::persona:: emit_event {broken", None),
        ('say ::persona:: emit_event {"x": 1}', None),
        ("plain output", None),
    ],
)
def test_persona_lines(line, expected):
    assert p.parse_persona_line(line) == expected


@given(st.sampled_from(p.PERSONA_EVENT_TYPES), st.dictionaries(st.text(max_size=8), st.integers(), max_size=3))
def test_persona_format_round_trip(event_type, payload):
    assert p.parse_persona_line(p.format_persona_line(event_type, payload)) == (event_type, payload)
