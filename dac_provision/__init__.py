"""dac-provision: deploy, run and tear down the DAC persona-execution system.

from dac_provision import DeploySpec, deploy, destroy, Client

deployment = deploy(load_spec(workers=2, agent_command="stand-in"))
async with deployment.client() as client:
    execution = await client.execute("reviewer", "lines:3")
    async for item in execution:
        print(item.text, end="")
destroy(deployment.name)
"""

from .agent_text import AgentText
from .client import Client, ClientError, Execution, Output, Result
from .engine import DeployError, Deployment, Progress, connect, deploy, deploy_async, destroy, destroy_async
from .fleet import burst_async, scale, scale_async, sweep_async, worker_log_async
from .spec import DeploySpec, SpecError, load_spec, load_spec_file
from .state import StateError, StateStore
from .status import DeploymentStatus, status, status_async

__version__ = "0.1.0"

__all__ = [
    "AgentText",
    "Client",
    "ClientError",
    "DeployError",
    "DeploySpec",
    "Deployment",
    "DeploymentStatus",
    "Execution",
    "Output",
    "Progress",
    "Result",
    "SpecError",
    "StateError",
    "StateStore",
    "burst_async",
    "connect",
    "deploy",
    "deploy_async",
    "destroy",
    "destroy_async",
    "load_spec",
    "load_spec_file",
    "scale",
    "scale_async",
    "status",
    "status_async",
    "sweep_async",
    "worker_log_async",
]
