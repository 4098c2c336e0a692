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
    """The runtime wheel in ``out_dir``, built from the runtime source or copied from ``DAC_RUNTIME_WHEEL``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prebuilt = os.environ.get("DAC_RUNTIME_WHEEL")
    if prebuilt:
        source = Path(prebuilt)
        if not source.is_file() or source.suffix != ".whl":
            raise BundleError(f"DAC_RUNTIME_WHEEL={prebuilt} is not a wheel file")
        target = out_dir / source.name
        if not target.exists() or sha256_of(target) != sha256_of(source):
            _publish(source, target)
        return Bundle(target, sha256_of(target))
    if not (RUNTIME_SOURCE / "pyproject.toml").is_file():
        raise BundleError(
            "the runtime source is not beside dac_provision; set DAC_RUNTIME_WHEEL to a dac_runtime wheel"
        )
    with tempfile.TemporaryDirectory() as tmp:
        # pip builds a local tree in place, leaving build/ and *.egg-info beside the source: two deploys
        # building at once then race in the same build/, and a file deleted from the source lives on
        # there and ships. A private copy of the tree avoids both and leaves the checkout untouched.
        source = Path(tmp) / "src"
        shutil.copytree(RUNTIME_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        # A fixed timestamp makes the build reproducible: the same source gives the same sha256, so a
        # deploy that changed nothing in the runtime does not roll the orchestrator.
        env = dict(os.environ, SOURCE_DATE_EPOCH=REPRODUCIBLE_EPOCH, PYTHONHASHSEED="0")
        wheels = Path(tmp) / "wheels"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels), str(source)],
            capture_output=True,
            text=True,
            env=env,
        )
        built = sorted(wheels.glob("dac_runtime-*.whl"))
        if result.returncode != 0 or not built:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise BundleError(f"building the runtime wheel failed: {last}")
        target = out_dir / built[0].name
        _publish(built[0], target)
    return Bundle(target, sha256_of(target))


def _publish(source: Path, target: Path) -> None:
    """Copy then rename, so a reader (the orchestrator serving the bundle, a second deploy) never sees
    half a wheel."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as handle:
        partial = Path(handle.name)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
