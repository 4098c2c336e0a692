"""The executor against real child processes: output, limits, cancel, isolation, cleanup."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from dac_runtime.agent import UnsafeCommand, build_argv
from dac_runtime.protocol import Assign, Event, ExecConfig, Stderr, Stdout
from dac_runtime.worker.executor import Run
from dac_runtime.worker.parser import LineSplitter, OutputParser
from dac_runtime.worker.redact import MASK, Redactor

SECRET = "sk-ant-oat01-" + "Q" * 40


def make_assign(prompt: str, env: dict[str, str] | None = None, **config) -> Assign:
    defaults = {"timeout_ms": 20_000, "max_output_bytes": 10_000_000, "cancel_grace_ms": 500}
    defaults.update(config)
    return Assign(
        execution_id="e-1", persona_id="p-1", prompt=prompt, env=dict(env or {}), config=ExecConfig(**defaults)
    )


async def run(assign: Assign, command: list[str], tmp_path: Path, on_run=None):
    frames = []

    async def send(frame):
        frames.append(frame)

    r = Run(assign, command, tmp_path, send)
    task = asyncio.create_task(r.execute())
    if on_run:
        await on_run(r, frames)
    complete = await task
    return complete, frames


def is_running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may wait a moment for its new parent to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def text_of(frames, kind=Stdout) -> str:
    return "".join(f.chunk for f in frames if isinstance(f, kind))


async def test_completes_with_ordered_output_events_and_usage(echo_command, tmp_path):
    complete, frames = await run(make_assign("lines:200"), echo_command, tmp_path)
    assert complete.status == "completed" and complete.exit_code == 0
    seqs = [f.seq for f in frames]
    assert seqs == list(range(1, len(frames) + 1))
    out = text_of(frames)
    positions = [out.index(f'"line {i}"') for i in range(1, 201)]
    assert positions == sorted(positions)
    events = [f for f in frames if isinstance(f, Event)]
    assert [e.event_type for e in events] == ["persona_action"]
    assert events[0].payload["source"] == "stand-in"
    assert complete.usage is not None and complete.usage.output_tokens == 7
    assert complete.usage.cost_usd == pytest.approx(0.0012)
    assert list(tmp_path.iterdir()) == []  # temp tree wiped


async def test_agent_error_is_failed(echo_command, tmp_path):
    complete, frames = await run(make_assign("fail stderr:boom"), echo_command, tmp_path)
    assert complete.status == "failed" and complete.exit_code == 1
    assert "boom" in text_of(frames, Stderr)


async def test_is_error_with_exit_zero_is_failed(tmp_path):
    script = 'import json; print(json.dumps({"type": "result", "is_error": True, "subtype": "error_max_turns"}))'
    complete, _ = await run(make_assign("x"), [sys.executable, "-c", script], tmp_path)
    assert complete.status == "failed" and complete.reason == "agent_error"


async def test_timeout_kills_the_process_group(tmp_path):
    marker = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time;"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(marker)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)"
    )
    work = tmp_path / "work"
    work.mkdir()
    complete, _ = await run(make_assign("x", timeout_ms=1500), [sys.executable, "-c", script], work)
    assert complete.status == "timed_out" and complete.reason == "timeout"
    grandchild = int(marker.read_text())
    for _ in range(50):
        if not is_running(grandchild):
            break
        await asyncio.sleep(0.05)
    assert not is_running(grandchild)


async def test_inactivity_watchdog(echo_command, tmp_path):
    complete, frames = await run(make_assign("hang", inactivity_timeout_ms=800), echo_command, tmp_path)
    assert complete.status == "timed_out" and complete.reason == "inactivity"
    assert "hanging" in text_of(frames)


async def test_output_cap(echo_command, tmp_path):
    complete, frames = await run(make_assign("plain flood:5000000", max_output_bytes=100_000), echo_command, tmp_path)
    assert complete.status == "failed" and complete.reason == "output_limit"
    assert len(text_of(frames).encode()) <= 100_000


async def test_cancel_term_then_kill(tmp_path):
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )

    async def cancel_when_up(r, frames):
        while not frames:
            await asyncio.sleep(0.02)
        r.cancel()

    complete, _ = await run(
        make_assign("x", cancel_grace_ms=300), [sys.executable, "-c", script], tmp_path, cancel_when_up
    )
    assert complete.status == "cancelled" and complete.duration_ms < 5000


async def test_environment_is_minimal_and_secrets_redacted(echo_command, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKER_ONLY_VAR", "leak-me-please")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "should-not-pass")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "would-take-precedence")  # over CLAUDE_CODE_OAUTH_TOKEN
    script = "import os, json; print(json.dumps(dict(os.environ))); print(os.environ['CLAUDE_CODE_OAUTH_TOKEN'])"
    assign = make_assign("x", env={"CLAUDE_CODE_OAUTH_TOKEN": SECRET})
    complete, frames = await run(assign, [sys.executable, "-c", script], tmp_path)
    assert complete.status == "completed"
    out = text_of(frames)
    assert SECRET not in out and MASK in out
    assert "WORKER_ONLY_VAR" not in out and "ANTHROPIC_API_KEY" not in out and "ANTHROPIC_AUTH_TOKEN" not in out
    assert assign.env == {}  # dropped after the run


async def test_missing_binary_fails_cleanly(tmp_path):
    complete, _ = await run(make_assign("x"), ["/nonexistent/agent", "--", "{prompt}"], tmp_path)
    assert complete.status == "failed" and complete.reason.startswith("spawn_failed")
    assert list(tmp_path.iterdir()) == []


async def test_prompt_goes_to_stdin_without_placeholder(tmp_path):
    script = "import sys; print(sys.stdin.read().upper())"
    complete, frames = await run(make_assign("hello"), [sys.executable, "-c", script], tmp_path)
    assert complete.status == "completed" and "HELLO" in text_of(frames)


def test_build_argv_keeps_prompt_as_one_argument_after_the_end_of_options():
    argv, stdin = build_argv(["claude", "-p", "--", "{prompt}"], "--settings=x.json; rm -rf /")
    assert argv == ["claude", "-p", "--", "--settings=x.json; rm -rf /"] and not stdin


def test_build_argv_python_placeholder_is_this_interpreter_and_prompt_text_is_not_expanded():
    argv, stdin = build_argv(["{python}", "-m", "dac_runtime.standin", "-p", "--", "{prompt}"], "say {python}")
    assert argv == [sys.executable, "-m", "dac_runtime.standin", "-p", "--", "say {python}"] and not stdin


def test_build_argv_refuses_a_prompt_placed_where_it_is_an_option():
    with pytest.raises(UnsafeCommand):
        build_argv(["claude", "-p", "{prompt}"], "--version")


async def test_an_unsafe_command_fails_the_run_without_starting_anything(tmp_path):
    complete, _ = await run(make_assign("--version"), [sys.executable, "{prompt}"], tmp_path)
    assert complete.status == "failed" and "'--' before it" in complete.reason
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("split_at", range(1, 30))
def test_redactor_catches_secrets_split_across_reads(split_at):
    secret = "abcdefghijklmnop"
    text = f"xx{secret}yy {secret}\nzz"
    r = Redactor([secret])
    out = r.feed(text[:split_at]) + r.feed(text[split_at:]) + r.flush()
    assert secret not in out and out == f"xx{MASK}yy {MASK}\nzz"


def test_redactor_ignores_short_values_and_handles_multiline():
    pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----"
    r = Redactor(["1", pem])
    out = r.feed("value 1 and MIIEvQIBADANBgkq\n") + r.flush()
    assert out == f"value 1 and {MASK}\n"


def test_parser_stream_json_and_plain():
    parser = OutputParser()
    assistant = (
        '{"type": "assistant", "message": {"content": [{"type": "text", "text": '
        '"hi\\n::persona:: manual_review {\\"why\\": \\"x\\"}"}]}}'
    )
    assert parser.feed_line(assistant) == [("manual_review", {"why": "x"})]
    assert parser.feed_line("::persona:: user_message") == [("user_message", {})]
    assert parser.feed_line('{"type": "future_type", "x": 1}') == []
    result = (
        '{"type": "result", "is_error": false, "total_cost_usd": 0.5, "num_turns": 3, '
        '"usage": {"input_tokens": 10, "output_tokens": "bad"}}'
    )
    assert parser.feed_line(result) == []
    assert parser.usage.cost_usd == 0.5 and parser.usage.input_tokens == 10 and parser.usage.output_tokens == 0


def test_line_splitter():
    s = LineSplitter()
    assert s.feed("ab") == []
    assert s.feed("c\nde\n") == ["abc", "de"]
    assert s.feed("f") == [] and s.finish() == ["f"]


TRICKY = 'pa"ss\\wörd\nS3cr3t-😀-tail'


def _encodings(value: str) -> dict[str, str]:
    """How output may carry ``value``, computed here independently of the redactor."""
    import base64
    import json
    import re
    import urllib.parse

    return {
        "raw": value,
        "json": json.dumps(value)[1:-1],
        "json-unescaped": json.dumps(value, ensure_ascii=False)[1:-1],
        "json-upper-hex": re.sub(
            r"\\u[0-9a-f]{4}", lambda m: m.group().upper().replace("\\U", "\\u"), json.dumps(value)[1:-1]
        ),
        "json-twice": json.dumps(json.dumps(value)[1:-1])[1:-1],
        "url": urllib.parse.quote(value, safe=""),
        "form": urllib.parse.quote_plus(value),
        "basic-auth": base64.b64encode(b"user:" + value.encode()).decode(),
        "base64-offset-1": base64.b64encode(b"x" + value.encode()).decode(),
        "base64-urlsafe": base64.urlsafe_b64encode(b"ab" + value.encode()).decode(),
    }


@pytest.mark.parametrize("form", list(_encodings(TRICKY)))
@pytest.mark.parametrize("value", [TRICKY, 'only"quotes"here', "back\\slash\\path", "ünïcödé-välüe", "🔑🔑🔑🔑🔑🔑"])
def test_redactor_masks_every_encoding_at_every_chunk_boundary(form, value):
    encoded = _encodings(value)[form]
    text = f'{{"text":"before {encoded} after"}}\n'
    for split in range(1, len(text)):
        r = Redactor([value])
        out = r.feed(text[:split]) + r.feed(text[split:]) + r.flush()
        assert encoded not in out, (form, split, out)
        assert out.startswith('{"text":"before ') and out.endswith(' after"}\n')
    # and the distinctive middle of a base64 form is gone too, not just the exact run
    if form.startswith("base64") or form == "basic-auth":
        assert encoded[4:-4] not in out


def test_redactor_leaves_ordinary_text_alone():
    r = Redactor([TRICKY, "short"])
    text = "nothing secret here: pass word, S3cr3t is a word, user:pa\n"
    assert r.feed(text) + r.flush() == text
