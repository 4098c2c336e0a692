"""``pulumi up``: the same deployment ``dac-provision deploy --provider cloud`` makes, from stack config.

Stack config (``Pulumi.<stack>.yaml``, secrets set with ``pulumi config set --secret``):
    dac:name, dac:workers, dac:agentCommand      the spec's top-level options
    dac:kafka, dac:fly, dac:digitalocean, dac:limits   objects with the spec file's keys
    dac:masterKey, dac:ownerApiKey (secrets)     64 hex digits; a dac_... key
    dac:kafkaPassword (secret)                   with SASL
    dac:orchestrator, dac:store                  replicas; backend = "postgres" for several
    dac:database                                 {size, region, nodes, version}: a DigitalOcean PostgreSQL
                                                 cluster made here as the shared store; else
    dac:storeUrl (secret)                        the URL of a PostgreSQL the team has
    dac:sshPublicKey                             the operator's key, for the workers
    digitalocean:token (secret)                  and FLY_API_TOKEN in the environment
"""

import pulumi
from components import Database, KafkaTopics, Orchestrator, WorkerPool, spec_from_config

config = pulumi.Config("dac")
spec = spec_from_config(config)
kafka_password = config.get_secret("kafkaPassword")
topics = KafkaTopics("topics", spec, kafka_password)
store_url = config.get_secret("storeUrl")
database = None
if spec.store.backend == "postgres" and config.get_object("database") is not None:
    database = Database("store", spec, config.get_object("database") or {})
    store_url = database.url
orchestrator = Orchestrator(
    "orchestrator",
    spec,
    master_key=config.require_secret("masterKey"),
    owner_api_key=config.require_secret("ownerApiKey"),
    kafka_password=kafka_password,
    store_url=store_url,
    opts=pulumi.ResourceOptions(depends_on=[topics] + ([database] if database else [])),
)
pool = WorkerPool("workers", spec, orchestrator, ssh_public_key=config.require("sshPublicKey"))

pulumi.export("orchestratorUrl", orchestrator.url)
pulumi.export("ownerApiKey", pulumi.Output.secret(config.require_secret("ownerApiKey")))
pulumi.export("workerNames", pool.names)
pulumi.export("workerAddresses", pool.addresses)
