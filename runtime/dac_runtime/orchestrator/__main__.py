"""``python -m dac_runtime.orchestrator``: validate the environment, then serve until SIGTERM.

See :mod:`dac_runtime.orchestrator.config` for every variable.
"""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from ..envconfig import ConfigError, EnvReader
from .app import Orchestrator
from .config import load_settings
from .kafka_health import RateLimit


def main() -> int:
    reader = EnvReader()
    logging.basicConfig(
        level=(reader.str("DAC_LOG_LEVEL", "INFO") or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RateLimit(prefixes=("aiokafka",)))
    try:
        settings = load_settings(reader)
    except ConfigError as exc:
        print(f"dac orchestrator: {exc}", file=sys.stderr)
        return 2
    orchestrator = Orchestrator(settings)
    web.run_app(
        orchestrator.app(),
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=10,
        access_log=None,
        # Thousands of workers reconnect at once after a restart; aiohttp's default of 128 pending
        # connections resets the rest (the kernel caps this at net.core.somaxconn).
        backlog=4096,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
