"""The runtime as a payload the machines install: a wheel of ``dac-runtime``, identified by its sha256.

Machines never trust where the wheel came from, only its checksum, which travels in their user data
or machine config. The wheel is built from the runtime's source tree beside this package (a checkout or
an sdist); an installation without that tree names a prebuilt wheel with ``DAC_RUNTIME_WHEEL``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

RUNTIME_SOURCE = Path(__file__).resolve().parent.parent / "runtime"
REPRODUCIBLE_EPOCH = "315532800"  # 1980-01-01, the earliest a zip can say


class BundleError(Exception):
    pass


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str

    @property
    def filename(self) -> str:
        return self.path.name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def runtime_wheel(out_dir: Path) -> Bundle:
    """The runtime wheel in ``out_dir`` (built once per source state; reused while the checksum holds)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prebuilt = os.environ.get("DAC_RUNTIME_WHEEL")
    if prebuilt:
        source = Path(prebuilt)
        if not source.is_file() or source.suffix != ".whl":
            raise BundleError(f"DAC_RUNTIME_WHEEL={prebuilt} is not a wheel file")
        target = out_dir / source.name
        if not target.exists() or sha256_of(target) != sha256_of(source):
            shutil.copyfile(source, target)
        return Bundle(target, sha256_of(target))
    if not (RUNTIME_SOURCE / "pyproject.toml").is_file():
        raise BundleError(
            "the runtime source is not beside dac_provision; set DAC_RUNTIME_WHEEL to a dac_runtime wheel"
        )
    with tempfile.TemporaryDirectory() as tmp:
        # A fixed timestamp makes the build reproducible: the same source gives the same sha256, so a
        # deploy that changed nothing in the runtime does not roll the orchestrator.
        env = dict(os.environ, SOURCE_DATE_EPOCH=REPRODUCIBLE_EPOCH, PYTHONHASHSEED="0")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", tmp, str(RUNTIME_SOURCE)],
            capture_output=True,
            text=True,
            env=env,
        )
        built = sorted(Path(tmp).glob("dac_runtime-*.whl"))
        if result.returncode != 0 or not built:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise BundleError(f"building the runtime wheel failed: {last}")
        target = out_dir / built[0].name
        shutil.copyfile(built[0], target)
    return Bundle(target, sha256_of(target))
