"""A stand-in for Claude Code: writes its stream-json dialect and obeys directives in the prompt.

Use it as the worker's agent command (``{python} -m dac_runtime.standin -p -- {prompt}``) to see the whole system
work without an Anthropic account, and in tests to make runs that sleep, fail, flood or hang.

Directives (whitespace-separated words anywhere in the prompt; everything else is echoed):

    lines:N        print N numbered lines ``line 1`` .. ``line N``
    sleep:S        sleep S seconds (float) before finishing
    pace:S         sleep S seconds after each numbered line (a run that streams for a while)
    then:A,B,...   ask for persona A to run this prompt with ``then:B,...`` (a persona_action; a chain)
    loop:P         ask for persona P to run this very prompt again (a chain that never ends by itself)
    fail           finish with ``is_error: true`` and exit code 1
    exit:N         exit with code N
    flood:BYTES    write BYTES bytes of output as fast as possible
    hang           print one line, then go silent forever (trips the inactivity watchdog)
    env:NAME       print the value of environment variable NAME (redaction tests); JSON-escaped
                   in stream-json, with ``\\u`` escapes unless ``node`` is given (Node writes them raw)
    env64:NAME     print ``Basic`` and the base64 of ``user:`` + the value
    envurl:NAME    print the value percent-encoded in a URL query
    stderr:TEXT    write TEXT to stderr
    event:TYPE     emit a persona event of TYPE (default: one ``persona_action`` is always emitted)
    child:S        start a child process that sleeps S seconds, and do not wait for it
    plain          write plain text instead of stream-json
    node           stream-json with non-ASCII characters unescaped, as Node's JSON.stringify writes it
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse


def main(argv: list[str]) -> int:
    # The prompt follows ``--`` (the end of options), as the agent command places it; else stdin.
    prompt = argv[argv.index("--") + 1] if "--" in argv[:-1] else sys.stdin.read()
    words = prompt.split()
    plain = "plain" in words
    ascii_only = "node" not in words
    session = f"echo-{os.getpid()}"

    def say(text: str) -> None:
        if plain:
            print(text, flush=True)
        else:
            message = {
                "type": "assistant",
                "session_id": session,
                "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
            }
            print(json.dumps(message, ensure_ascii=ascii_only), flush=True)

    if not plain:
        print(json.dumps({"type": "system", "subtype": "init", "session_id": session, "tools": []}), flush=True)
    say(f"echo: {prompt}")
    started = time.monotonic()
    exit_code, is_error = 0, False
    chained = any(w.startswith(("then:", "loop:")) for w in words)
    events = [w.split(":", 1)[1] for w in words if w.startswith("event:")] or ([] if chained else ["persona_action"])
    pace = next((float(w.split(":", 1)[1]) for w in words if w.startswith("pace:")), 0.0)
    for event_type in events:
        say(f'::persona:: {event_type} {{"source": "stand-in", "prompt_words": {len(words)}}}')
    for word in words:
        name, _, arg = word.partition(":")
        if name == "then" and arg:
            first, _, rest = arg.partition(",")
            follow = " ".join(w if w != word else f"then:{rest}" for w in words)  # "then:" at the end: no ask
            say("::persona:: persona_action " + json.dumps({"persona": first, "prompt": follow}))
        elif name == "loop" and arg:
            say("::persona:: persona_action " + json.dumps({"persona": arg, "prompt": prompt}))
    for word in words:
        name, _, arg = word.partition(":")
        if name == "lines":
            for i in range(1, int(arg) + 1):
                say(f"line {i}")
                time.sleep(pace)
        elif name == "sleep":
            time.sleep(float(arg))
        elif name == "fail":
            exit_code, is_error = 1, True
        elif name == "exit":
            exit_code = int(arg)
        elif name == "flood":
            block = "x" * 8191 + "\n"
            for _ in range(int(arg) // len(block) + 1):
                sys.stdout.write(block)
            sys.stdout.flush()
        elif name == "hang":
            say("hanging")
            while True:
                time.sleep(3600)
        elif name == "child":
            subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({float(arg)})"])
        elif name == "env":
            say(f"{arg}={os.environ.get(arg, '')}")
        elif name == "env64":
            say("Authorization: Basic " + base64.b64encode(f"user:{os.environ.get(arg, '')}".encode()).decode())
        elif name == "envurl":
            say("https://example.invalid/?key=" + urllib.parse.quote(os.environ.get(arg, ""), safe=""))
        elif name == "stderr":
            print(arg, file=sys.stderr, flush=True)
    if not plain:
        result = {
            "type": "result",
            "subtype": "error_during_execution" if is_error else "success",
            "is_error": is_error,
            "duration_ms": int((time.monotonic() - started) * 1000),
            "num_turns": 1,
            "result": prompt,
            "session_id": session,
            "total_cost_usd": 0.0012,
            "usage": {
                "input_tokens": len(words),
                "output_tokens": 7,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            },
        }
        print(json.dumps(result), flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
