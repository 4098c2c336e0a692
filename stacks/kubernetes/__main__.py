"""``pulumi up``: the DAC system on the Kubernetes cluster of the current kubeconfig context.

Stack config: the dac-cloud stack's spec keys (dac:name, dac:workers, dac:agentCommand, dac:kafka,
dac:limits, dac:orchestrator, dac:store), plus dac:image and dac:workerImage
(templates/docker/Dockerfile.orchestrator and Dockerfile.worker), dac:maxWorkers, dac:keda (the
cluster runs KEDA: scale workers on the request topic's consumer lag), dac:namespace; secrets
dac:masterKey, dac:ownerApiKey, dac:workerToken, dac:kafkaPassword, dac:storeUrl (with
dac:store = {"backend": "postgres"}: the database several orchestrators share).
"""

import pulumi
from cluster import DacCluster, Settings

from dac_provision.providers.pulumi_stack import spec_from_config

config = pulumi.Config("dac")
spec = spec_from_config(config, provider="pulumi")
settings = Settings.from_config(config, spec)
system = DacCluster(
    "dac",
    spec,
    settings,
    master_key=config.require_secret("masterKey"),
    owner_api_key=config.require_secret("ownerApiKey"),
    worker_token=config.require_secret("workerToken"),
    kafka_password=config.get_secret("kafkaPassword"),
    store_url=config.get_secret("storeUrl"),
)
pulumi.export("namespace", system.namespace.metadata["name"])
pulumi.export("orchestratorService", system.service.metadata["name"])
pulumi.export("ownerApiKey", pulumi.Output.secret(config.require_secret("ownerApiKey")))
