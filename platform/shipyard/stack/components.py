"""What the embedded stack runs: one ComponentSpec per process, built from the settings.

The supervisor and ``shipyard up`` build the same list from the same settings, so what is
checked before starting is exactly what is started.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.errors import MissingDependencyError
from shipyard.observability import rules
from shipyard.observability.prometheus import ScrapeTarget, render_config
from shipyard.settings import Settings
from shipyard.stack import triton
from shipyard.stack.layout import StateLayout
from shipyard.stack.probes import HttpProbe, RedisProbe

Probe = Callable[[], bool]


@dataclass(frozen=True)
class ComponentSpec:
    """Everything needed to start, probe, display and scrape one process."""

    name: str
    argv: list[str]
    probe: Probe
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    scrape: list[ScrapeTarget] = field(default_factory=list)
    # Idempotent set-up run before every start (folders, generated config files).
    prepare: Callable[[], None] | None = None
    # Seconds between SIGTERM and SIGKILL when stopping.
    stop_grace_s: float = 10.0


def _require_program(name: str, apt_package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingDependencyError(
            f"{name} is not installed: run `make install` (or `apt-get install {apt_package}`)"
        )
    return path


def _python_module(module: str, *args: str) -> list[str]:
    # The running interpreter, so components use the same virtual environment as the CLI.
    return [sys.executable, "-m", module, *args]


def mlflow(settings: Settings, layout: StateLayout) -> ComponentSpec:
    home = layout.mlflow
    port = settings.ports.mlflow
    metrics_dir = home / "prometheus-multiproc"

    def prepare() -> None:
        (home / "artifacts").mkdir(parents=True, exist_ok=True)
        # Multiprocess metric files of earlier MLflow processes would be summed into this
        # one's /metrics: prometheus-client wants the folder emptied before every start.
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()

    return ComponentSpec(
        name="mlflow",
        argv=_python_module(
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{home / 'mlflow.db'}",
            # Artifacts go through the server (mlflow-artifacts:/), as on the cluster.
            "--artifacts-destination",
            str(home / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--expose-prometheus",
            str(metrics_dir),
        ),
        env={
            # Job execution would start eight more worker processes (~2 GB) that nothing uses.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        },
        probe=HttpProbe(port, "/health"),
        ports={"http": port},
        urls={"ui": settings.url("mlflow")},
        scrape=[ScrapeTarget("mlflow", port)],
        prepare=prepare,
    )


def triton_server(settings: Settings, layout: StateLayout, pool: str = "primary") -> ComponentSpec:
    """One Triton pool. Embedded there are two on CPU: ``primary`` stands in for a cluster's
    GPU pool and ``cpu`` is the CPU pool, so the gateway's fallback chain is the real one."""
    install = triton.TritonInstall.locate()
    ports = settings.ports
    http, grpc, metrics = (
        (ports.triton_http, ports.triton_grpc, ports.triton_metrics)
        if pool == "primary"
        else (ports.triton_cpu_http, ports.triton_cpu_grpc, ports.triton_cpu_metrics)
    )
    name = "triton" if pool == "primary" else f"triton-{pool}"
    backends = layout.triton / "backends"
    return ComponentSpec(
        name=name,
        argv=[
            str(install.server_binary),
            f"--model-repository={layout.triton_models}",
            f"--backend-directory={backends}",
            f"--cache-directory={layout.triton / 'caches'}",
            "--model-control-mode=explicit",
            # Start with every model of the repository, at the versions `shipyard serve
            # publish` wrote into its policy: a restarted pool serves what it served before.
            "--load-model=*",
            "--http-address=127.0.0.1",
            f"--http-port={http}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={grpc}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={metrics}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            "--pinned-memory-pool-byte-size=0",
            "--exit-timeout-secs=5",
        ],
        env=triton.server_env(install, settings.triton_stub_env),
        probe=HttpProbe(http, "/v2/health/ready"),
        ports={"http": http, "grpc": grpc, "metrics": metrics},
        urls={"http": f"http://127.0.0.1:{http}", "grpc": f"127.0.0.1:{grpc}"},
        scrape=[ScrapeTarget(name, metrics)],
        prepare=lambda: triton.prepare_backend_dir(install, backends) and None,
    )


def gateway(settings: Settings, layout: StateLayout) -> ComponentSpec:
    port = settings.ports.gateway
    workers = settings.serving.workers
    metrics_dir = layout.serving / "prometheus-multiproc"

    def prepare() -> None:
        layout.serving.mkdir(parents=True, exist_ok=True)
        # Metric files of earlier gateway processes would be summed into this one's /metrics.
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()

    return ComponentSpec(
        name="gateway",
        argv=_python_module(
            "uvicorn",
            "serving.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            settings.log_level,
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "10",
        ),
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)} if workers > 1 else {},
        probe=HttpProbe(port, "/readyz"),
        ports={"http": port},
        urls={"docs": settings.url("gateway", "/docs")},
        scrape=[ScrapeTarget("gateway", port)],
        prepare=prepare,
    )


def rollout(settings: Settings, layout: StateLayout) -> ComponentSpec:
    """The rollout loop: canary analysis, promotion and rollback, drift-triggered retraining."""
    port = settings.ports.rollout
    return ComponentSpec(
        name="rollout",
        argv=_python_module("shipyard.cli", "rollout", "watch", "--host", "127.0.0.1"),
        probe=HttpProbe(port, "/healthz"),
        ports={"http": port},
        urls={"metrics": settings.url("rollout", "/metrics")},
        scrape=[ScrapeTarget("rollout", port)],
        prepare=lambda: layout.rollout.mkdir(parents=True, exist_ok=True),
        # A retraining run in progress is stopped and recorded before the loop exits.
        stop_grace_s=15.0,
    )


def redis(settings: Settings, layout: StateLayout) -> ComponentSpec:
    program = _require_program("redis-server", "redis-server")
    port = settings.ports.redis
    return ComponentSpec(
        name="redis",
        argv=[
            program,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(layout.redis),
            # The online store is rebuilt by materialization; AOF keeps pushes across restarts.
            "--appendonly",
            "yes",
            "--save",
            "",
            "--protected-mode",
            "yes",
        ],
        probe=RedisProbe(port),
        ports={"redis": port},
        urls={"redis": f"redis://127.0.0.1:{port}"},
        prepare=lambda: layout.redis.mkdir(parents=True, exist_ok=True),
    )


def redis_exporter(settings: Settings, layout: StateLayout) -> ComponentSpec:
    program = _require_program("prometheus-redis-exporter", "prometheus-redis-exporter")
    port = settings.ports.redis_exporter
    return ComponentSpec(
        name="redis-exporter",
        argv=[
            program,
            f"-redis.addr=redis://127.0.0.1:{settings.ports.redis}",
            f"-web.listen-address=127.0.0.1:{port}",
        ],
        probe=HttpProbe(port, "/metrics", timeout_s=2.0),
        ports={"http": port},
        scrape=[ScrapeTarget("redis", port)],
    )


def prometheus(
    settings: Settings, layout: StateLayout, scraped: list[ComponentSpec]
) -> ComponentSpec:
    program = _require_program("prometheus", "prometheus")
    port = settings.ports.prometheus
    config_file = layout.prometheus / "prometheus.yml"
    targets = [ScrapeTarget("prometheus", port)]
    targets += [target for spec in scraped for target in spec.scrape]

    def write_config() -> None:
        (layout.prometheus / "data").mkdir(parents=True, exist_ok=True)
        # Referenced where the package ships them: a new release's rules apply on restart.
        extra = [Path(pattern) for pattern in settings.extra_rule_files]
        # The cost model's prices come from the settings (a file of their own when not the
        # defaults), like every other value the rules read.
        packaged = rules.packaged_rule_files(settings.cost, layout.prometheus)
        text = render_config(targets, rule_files=[*packaged, *extra])
        if not config_file.is_file() or config_file.read_text() != text:
            config_file.write_text(text)

    return ComponentSpec(
        name="prometheus",
        argv=[
            program,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={layout.prometheus / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=15d",
            "--web.enable-lifecycle",
        ],
        probe=HttpProbe(port, "/-/ready"),
        ports={"http": port},
        urls={"ui": settings.url("prometheus")},
        prepare=write_config,
    )


def build_components(settings: Settings) -> list[ComponentSpec]:
    """The stack for these settings, in start order (stopped in reverse)."""
    layout = StateLayout(settings.state_dir)
    specs: list[ComponentSpec] = []
    if settings.profile == "redis":
        specs += [redis(settings, layout), redis_exporter(settings, layout)]
    specs += [
        mlflow(settings, layout),
        triton_server(settings, layout, "primary"),
        triton_server(settings, layout, "cpu"),
        gateway(settings, layout),
        rollout(settings, layout),
    ]
    specs.append(prometheus(settings, layout, specs))
    return specs
