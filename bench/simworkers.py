#!/usr/bin/env python3
"""Lightweight simulated workers for bench/scale.py: many WebSocket connections in one process, each
speaking the real protocol through ``dac_runtime.protocol`` (hello, ready, heartbeats, accepted,
complete), with no agent behind them.

    python bench/simworkers.py URL TOKEN PREFIX COUNT

Prints ``ready`` once every connection has its ack and said ready, then one line per assignment,
``a EXECUTION_ID RECEIVED_AT`` (epoch seconds), so the parent can time dispatch with its own produce
times. Each assignment is accepted and completed at once. Stops on SIGTERM, or when its parent dies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "runtime"))
from dac_runtime import protocol as p

CONNECT_AT_ONCE = 200


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    worker_id: str,
    gate: asyncio.Semaphore,
    ready: asyncio.Queue[str],
    out: list[str],
) -> None:
    for attempt in range(20):  # like a real worker: a refused or reset connection is tried again
        try:
            async with gate:
                ws = await session.ws_connect(
                    url,
                    headers={"Authorization": f"Bearer {token}"},
                    compress=0,
                    heartbeat=None,
                    max_msg_size=4 * p.MAX_FRAME_BYTES,
                )
                await ws.send_str(p.encode(p.Hello(worker_id=worker_id, version="sim", protocol=p.PROTOCOL_VERSION)))
                ack = p.decode_orchestrator_frame((await ws.receive(timeout=60)).data)
                if not isinstance(ack, p.Ack):
                    raise SystemExit(f"{worker_id} refused: {ack}")
                await ws.send_str(p.encode(p.Ready()))
            break
        except (aiohttp.ClientError, OSError, TimeoutError):
            await asyncio.sleep(min(5.0, 0.1 * 2**attempt))
    else:
        raise SystemExit(f"{worker_id} could not connect")
    ready.put_nowait(worker_id)
    interval = ack.heartbeat_interval_ms / 1000
    beats = asyncio.create_task(heartbeats(ws, interval))
    try:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = p.decode_orchestrator_frame(message.data)
            if isinstance(frame, p.Assign):
                out.append(f"a {frame.execution_id} {time.time():.6f}")
                await ws.send_str(p.encode(p.Accepted(execution_id=frame.execution_id)))
                await ws.send_str(
                    p.encode(p.Complete(execution_id=frame.execution_id, status="completed", exit_code=0))
                )
                await ws.send_str(p.encode(p.Ready()))
    finally:
        beats.cancel()


async def heartbeats(ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
    await asyncio.sleep(interval * (hash(id(ws)) % 1000) / 1000)  # spread over the interval
    while True:
        await ws.send_str(p.encode(p.Heartbeat(timestamp=time.time())))
        await asyncio.sleep(interval)


async def printer(out: list[str]) -> None:
    while True:
        if out:
            lines, out[:] = "\n".join(out), []
            print(lines, flush=True)
        await asyncio.sleep(0.01)


async def all_ready(ready: asyncio.Queue[str], count: int) -> None:
    for _ in range(count):
        await ready.get()
    print("ready", flush=True)


async def orphaned() -> None:
    """Returns once the bench that started this process is gone (killed, not stopped): the simulated
    workers must not outlive it."""
    parent = os.getppid()
    while os.getppid() == parent:  # noqa: ASYNC110 - nothing to await: the kernel reparents us
        await asyncio.sleep(1)


async def main(url: str, token: str, prefix: str, count: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    gate, ready, out = asyncio.Semaphore(CONNECT_AT_ONCE), asyncio.Queue[str](), []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(worker(session, url, token, f"{prefix}-{i}", gate, ready, out)) for i in range(count)
        ]
        helpers = [
            asyncio.create_task(all_ready(ready, count)),
            asyncio.create_task(printer(out)),
            asyncio.create_task(orphaned()),
        ]
        stopped = asyncio.create_task(stop.wait())
        # SIGTERM or a dead parent ends it, also while some workers are still connecting
        await asyncio.wait([stopped, helpers[2]], return_when=asyncio.FIRST_COMPLETED)
        for task in (*helpers, stopped, *tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
