"""The runtime as a payload the machines install: a wheel of ``dac-runtime``, identified by its sha256.

Machines never trust where the wheel came from, only its checksum, which travels in their user data
or machine config. The wheel is built from the runtime's source tree beside this package (a checkout or
an sdist); an installation without that tree names a prebuilt wheel with ``DAC_RUNTIME_WHEEL``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
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
    # A wheel already built from this very source is reused: building takes seconds of pip, and a
    # scaling action or a burst must not wait for (or block its event loop on) a build it has done.
    source_digest = _tree_digest(RUNTIME_SOURCE)
    stamp = out_dir / "runtime-source.sha256"
    if stamp.is_file():
        recorded, _, name = stamp.read_text().partition(" ")
        if recorded == source_digest and (out_dir / name).is_file():
            return Bundle(out_dir / name, sha256_of(out_dir / name))
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
    stamp.write_text(f"{source_digest} {target.name}")
    return Bundle(target, sha256_of(target))


@functools.cache
def runtime_digest() -> str:
    """What the local processes run: a digest of the installed ``dac_runtime`` package's files. A
    deploy that finds an orchestrator started from another one replaces it (one at a time)."""
    import dac_runtime

    return _tree_digest(Path(dac_runtime.__file__).resolve().parent)


def _tree_digest(root: Path) -> str:
    """What a build of ``root`` depends on: every file's path and bytes (build leftovers excluded)."""
    digest = hashlib.sha256()
    skip = {"build", "__pycache__"}
    for path in sorted(root.rglob("*")):
        leftover = skip.intersection(path.parts) or any(p.endswith(".egg-info") for p in path.parts)
        if path.is_file() and not leftover:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


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


PROVISION_ROOT = Path(__file__).resolve().parent.parent


def controller_source(out_dir: Path) -> Bundle:
    """``dac_provision`` with the templates it renders and its pyproject, as a reproducible tar.gz: what
    a scaling controller on a cloud machine runs (beside the runtime wheel). Same source, same sha256,
    so a deploy that changed nothing leaves the controller's machine alone."""
    parts = [PROVISION_ROOT / "dac_provision", PROVISION_ROOT / "templates", PROVISION_ROOT / "pyproject.toml"]
    if not all(p.exists() for p in parts):
        raise BundleError("a controller machine is built from a dac-provision checkout (templates/ beside the package)")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = sorted(
        path
        for part in parts
        for path in ([part] if part.is_file() else part.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=int(REPRODUCIBLE_EPOCH)) as zipped:
        with tarfile.open(fileobj=zipped, mode="w") as tar:
            for path in files:
                info = tarfile.TarInfo(str(path.relative_to(PROVISION_ROOT)))
                data = path.read_bytes()
                info.size, info.mtime, info.mode = len(data), int(REPRODUCIBLE_EPOCH), 0o644
                tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    target = out_dir / f"dac_provision-{hashlib.sha256(data).hexdigest()[:12]}.tar.gz"
    if not target.exists():
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
            (Path(tmp) / "src").write_bytes(data)
            _publish(Path(tmp) / "src", target)
    return Bundle(target, sha256_of(target))
