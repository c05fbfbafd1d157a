"""One virtual environment per peer, installed from the package registry with ``uv``.

Environments live outside the repository (``$XDG_CACHE_HOME/shipyard/bench-envs/<peer>``, or
``SHIPYARD_BENCH_ENVS``); a stamp holding the hash of the requirement list makes a second call
free. Versions are pinned here, in one place: bump a pin, the environment is rebuilt on the next
run. A peer whose install fails is reported with the installer's last lines, never dropped.

    .venv/bin/python -m bench.peers.envs [PEER ...]     # install (all by default) and report
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".venv" / "bin" / "uv"
PYTHON = sys.executable  # the interpreter the main environment was made with (3.11)

# The model runtime every peer uses, at the same version as the main environment's where the
# peer allows it (PyTriton needs numpy<2).
ORT = "onnxruntime==1.32.0"

# peer -> requirements. The framework is pinned to the newest release installable here.
PEERS: dict[str, list[str]] = {
    "fastapi": ["fastapi==0.163.2", "uvicorn[standard]==0.54.0", ORT, "numpy<3", "orjson"],
    "mlserver": ["mlserver==1.7.1", ORT, "numpy<3", "uvloop<0.22"],
    "bentoml": ["bentoml==1.4.40", ORT, "numpy<3"],
    "kserve": ["kserve==0.21.0", ORT, "numpy<3"],
    "rayserve": ["ray[serve]==2.60.0", ORT, "numpy<3"],
    "pytriton": ["nvidia-pytriton==0.7.0", ORT, "numpy<2"],
}


@dataclass
class PeerEnv:
    peer: str
    path: Path
    ok: bool
    error: str | None = None
    seconds: float = 0.0
    versions: dict[str, str] | None = None

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def envs_dir() -> Path:
    explicit = os.environ.get("SHIPYARD_BENCH_ENVS")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "shipyard" / "bench-envs"


def _stamp(requirements: list[str]) -> str:
    return hashlib.sha256("\n".join([*requirements, PYTHON]).encode()).hexdigest()


def ensure(peer: str, log=lambda message: None) -> PeerEnv:
    """The peer's environment, installed when missing or stale. Never raises for an install
    failure: the result says what went wrong."""
    requirements = PEERS[peer]
    path = envs_dir() / peer
    stamp_file = path / ".shipyard-bench"
    wanted = _stamp(requirements)
    started = time.monotonic()
    if not (stamp_file.is_file() and stamp_file.read_text() == wanted):
        log(f"installing {peer} into {path}: {' '.join(requirements)}")
        steps = [
            [str(UV), "venv", "--quiet", "--allow-existing", "--python", PYTHON, str(path)],
            [str(UV), "pip", "install", "--quiet", "--python", str(path / "bin" / "python"),
             *requirements],
        ]  # fmt: skip
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-6:]
                return PeerEnv(peer, path, False, "install failed: " + " | ".join(tail),
                               time.monotonic() - started)  # fmt: skip
        stamp_file.write_text(wanted)
    return PeerEnv(peer, path, True, None, time.monotonic() - started, _versions(path, peer))


def _versions(path: Path, peer: str) -> dict[str, str]:
    names = {"fastapi": ["fastapi", "uvicorn"], "mlserver": ["mlserver"],
             "bentoml": ["bentoml"], "kserve": ["kserve"], "rayserve": ["ray"],
             "pytriton": ["nvidia-pytriton"]}[peer] + ["onnxruntime", "numpy"]  # fmt: skip
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([str(path / "bin" / "python"), "-c", code, *names],
                          capture_output=True, text=True)  # fmt: skip
    import json

    return json.loads(done.stdout) if done.returncode == 0 else {}


def main() -> None:
    peers = sys.argv[1:] or list(PEERS)
    for peer in peers:
        env = ensure(peer, lambda m: print("…", m, file=sys.stderr, flush=True))
        state = "ok" if env.ok else f"FAILED ({env.error})"
        print(f"{peer:>10}: {state}  {env.seconds:.0f} s  {env.versions or ''}", flush=True)


if __name__ == "__main__":
    main()
