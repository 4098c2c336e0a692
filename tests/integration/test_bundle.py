"""The runtime wheel new machines install: built once, checksummed, served by the orchestrator without auth."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dac_provision import bundle as bundle_module
from dac_provision.bundle import BundleError, runtime_wheel

pytestmark = pytest.mark.integration


def test_wheel_is_built_with_its_checksum_and_a_prebuilt_one_can_be_named(tmp_path, monkeypatch):
    bundle = runtime_wheel(tmp_path / "out")
    assert bundle.filename.startswith("dac_runtime-") and bundle.filename.endswith(".whl")
    assert bundle.sha256 == hashlib.sha256(bundle.path.read_bytes()).hexdigest()
    names = zipfile.ZipFile(bundle.path).namelist()
    assert "dac_runtime/worker/__main__.py" in names and not any(n.startswith("dac_provision") for n in names)

    # Reproducible: the same source is the same sha256, so a deploy that changed nothing rolls nothing.
    assert runtime_wheel(tmp_path / "rebuilt").sha256 == bundle.sha256

    monkeypatch.setenv("DAC_RUNTIME_WHEEL", str(bundle.path))
    again = runtime_wheel(tmp_path / "elsewhere")
    assert again.sha256 == bundle.sha256
    monkeypatch.setenv("DAC_RUNTIME_WHEEL", str(tmp_path / "missing.whl"))
    with pytest.raises(BundleError, match="is not a wheel file"):
        runtime_wheel(tmp_path / "x")


async def test_orchestrator_serves_the_bundle_publicly_and_nothing_else(system, tmp_path):
    bundle = runtime_wheel(tmp_path / "bundle")
    (tmp_path / "bundle" / "notes.txt").write_text("not a wheel")
    orch, _ = system(workers=0, DAC_BUNDLE_DIR=str(tmp_path / "bundle"))
    async with httpx.AsyncClient(base_url=orch.url) as anonymous:
        served = await anonymous.get(f"/bundle/{bundle.filename}")
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == bundle.sha256
        for name in ("notes.txt", "..%2Forchestrator.db", "missing.whl"):
            assert (await anonymous.get(f"/bundle/{name}")).status_code == 404
        assert (await anonymous.get("/api/workers")).status_code == 401  # only the bundle is public


def test_concurrent_builds_agree_and_leave_the_source_tree_untouched(tmp_path, monkeypatch):
    # Two deploys from one checkout build at the same time; an in-place build raced in runtime/build.
    source = tmp_path / "runtime"
    shutil.copytree(bundle_module.RUNTIME_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    # A stale build tree holding a module the source no longer has must not leak into the wheel.
    stale = source / "build" / "lib" / "dac_runtime" / "removed_module.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("LEAKED = True\n")
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    monkeypatch.setattr(bundle_module, "RUNTIME_SOURCE", source)

    with ThreadPoolExecutor(max_workers=3) as pool:
        bundles = list(pool.map(runtime_wheel, [tmp_path / "a", tmp_path / "b", tmp_path / "a"]))

    assert len({b.sha256 for b in bundles}) == 1
    names = zipfile.ZipFile(bundles[0].path).namelist()
    assert "dac_runtime/worker/__main__.py" in names and "dac_runtime/removed_module.py" not in names
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before
    left = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert left == sorted([bundles[0].filename, "runtime-source.sha256"])  # no partial copy left


def test_a_wheel_built_from_the_same_source_is_reused_and_a_changed_source_rebuilds(tmp_path, monkeypatch):
    source = tmp_path / "runtime"
    shutil.copytree(bundle_module.RUNTIME_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    monkeypatch.setattr(bundle_module, "RUNTIME_SOURCE", source)
    built = bundle_module.runtime_wheel(tmp_path / "out")
    mtime = built.path.stat().st_mtime_ns
    again = bundle_module.runtime_wheel(tmp_path / "out")  # no pip this time: the stamp names this source
    assert again == built and again.path.stat().st_mtime_ns == mtime
    (source / "dac_runtime" / "added_module.py").write_text("ADDED = True\n")
    changed = bundle_module.runtime_wheel(tmp_path / "out")
    assert changed.sha256 != built.sha256
    with zipfile.ZipFile(changed.path) as wheel:
        assert "dac_runtime/added_module.py" in wheel.namelist()
