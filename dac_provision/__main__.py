"""``python -m dac_provision`` is the ``dac-provision`` command."""

from .cli import main

main(prog_name="dac-provision")
