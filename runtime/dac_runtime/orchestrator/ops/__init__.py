"""Operating the orchestrator: ``metrics`` for Prometheus, ``alarms`` (the alert rules' conditions),
``capacity`` (scaling signals, the scaler's lease, worker time), ``kafka_health``, ``usage`` (cost and
tokens), ``dead_letters`` (the operator's worklist), the task ``supervisor`` and ``gc_tuning``."""
