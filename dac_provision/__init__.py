"""dac-provision: deploy, run and tear down the DAC persona-execution system."""

__version__ = "0.1.0"
