"""dac-runtime: the orchestrator and worker processes that the provisioned machines run.

This package is deliberately small and imports nothing from ``dac_provision``: it is what gets
installed on droplets and Fly machines, so every dependency here is paid for on every boot.
"""

__version__ = "0.1.0"
