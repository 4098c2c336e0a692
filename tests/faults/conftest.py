"""The fault suite shares the integration fixtures: a real broker, real orchestrator and worker processes."""

from tests.integration.conftest import store_backend, store_env, system, topics  # noqa: F401 - fixtures
