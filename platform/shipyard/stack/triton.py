"""How the embedded stack runs a real Triton Inference Server on a machine without containers.

The server binary and the Python backend come from the ``nvidia-pytriton`` wheel (installed
without its dependencies, which pin numpy<2). The backend's stub process runs the first
``python3`` on PATH and imports numpy and onnxruntime from that prefix, so PATH starts with a
small environment of its own (numpy<2): with numpy 2 the stub silently corrupts tensors.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import MissingDependencyError

STUB_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
INSTALL_HINT = "run `make install` (installs nvidia-pytriton and the Triton stub environment)"


@dataclass(frozen=True)
class TritonInstall:
    """Files of the Triton server shipped inside the nvidia-pytriton wheel."""

    package_dir: Path

    @classmethod
    def locate(cls) -> TritonInstall:
        # find_spec does not import pytriton, whose own imports need numpy<2.
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependencyError(
                f"Triton server (nvidia-pytriton) is missing: {INSTALL_HINT}"
            )
        install = cls(Path(next(iter(spec.submodule_search_locations))))
        if not install.server_binary.is_file():
            raise MissingDependencyError(f"{install.server_binary} is missing: {INSTALL_HINT}")
        return install

    @property
    def server_binary(self) -> Path:
        return self.package_dir / "tritonserver" / "bin" / "tritonserver"

    @property
    def bundled_libs(self) -> Path:
        return self.package_dir.parent / "nvidia_pytriton.libs"

    @property
    def backend_files(self) -> list[Path]:
        root = self.package_dir / "tritonserver"
        return [
            root / "backends" / "python" / "libtriton_python.so",
            root / "backends" / "python" / "triton_python_backend_utils.py",
            root / "python_backend_stubs" / STUB_PYTHON / "triton_python_backend_stub",
        ]


def prepare_backend_dir(install: TritonInstall, backends_dir: Path) -> Path:
    """Assemble ``backends/python/`` (library, utils and stub side by side), as Triton expects.

    Idempotent: files already copied with the same size and mtime are left alone.
    """
    target = backends_dir / "python"
    target.mkdir(parents=True, exist_ok=True)
    for source in install.backend_files:
        if not source.is_file():
            raise MissingDependencyError(f"{source} is missing: {INSTALL_HINT}")
        dest = target / source.name
        same = (
            dest.is_file()
            and dest.stat().st_size == source.stat().st_size
            and dest.stat().st_mtime == source.stat().st_mtime
        )
        if not same:
            shutil.copy2(source, dest)
    return backends_dir


def server_env(install: TritonInstall, stub_env: Path) -> dict[str, str]:
    """Environment for tritonserver: bundled libraries first, then the stub's interpreter."""
    stub_python = stub_env / "bin" / "python3"
    if not stub_python.exists():
        raise MissingDependencyError(
            f"Triton stub environment {stub_env} is missing: {INSTALL_HINT}"
        )
    # The stub links libpython: it must find this interpreter's own, not the distribution's.
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    inherited = os.environ.get("LD_LIBRARY_PATH", "")
    return {
        "LD_LIBRARY_PATH": os.pathsep.join(
            p for p in (str(install.bundled_libs), libdir, inherited) if p
        ),
        "PATH": os.pathsep.join((str(stub_env / "bin"), os.environ.get("PATH", ""))),
    }
