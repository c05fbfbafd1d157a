from __future__ import annotations

from collections.abc import Callable

import yaml

from shipyard.settings import Settings
from shipyard.stack.components import build_components


def test_default_profile_runs_the_core_components_with_two_triton_pools(
    settings_factory: Callable[..., Settings],
) -> None:
    specs = build_components(settings_factory())
    assert [s.name for s in specs] == [
        "mlflow",
        "triton",
        "triton-cpu",
        "gateway",
        "rollout",
        "prometheus",
    ]


def test_redis_profile_adds_redis_and_its_exporter_first(
    settings_factory: Callable[..., Settings],
) -> None:
    specs = build_components(settings_factory(profile="redis"))
    assert [s.name for s in specs][:2] == ["redis", "redis-exporter"]


def test_every_process_binds_loopback_only(settings_factory: Callable[..., Settings]) -> None:
    for spec in build_components(settings_factory(profile="redis")):
        command = " ".join(spec.argv)
        assert "0.0.0.0" not in command
        assert "127.0.0.1" in command, spec.name


def test_ports_come_from_settings(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(profile="redis")
    used = {port for spec in build_components(settings) for port in spec.ports.values()}
    assert used == set(settings.ports.model_dump().values())


def test_prometheus_scrapes_every_component_with_metrics(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(profile="redis")
    specs = build_components(settings)
    prometheus = specs[-1]
    assert prometheus.prepare is not None
    prometheus.prepare()
    config = yaml.safe_load((settings.state_dir / "prometheus" / "prometheus.yml").read_text())
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    assert jobs == {
        "prometheus": f"127.0.0.1:{settings.ports.prometheus}",
        "redis": f"127.0.0.1:{settings.ports.redis_exporter}",
        "mlflow": f"127.0.0.1:{settings.ports.mlflow}",
        "triton": f"127.0.0.1:{settings.ports.triton_metrics}",
        "triton-cpu": f"127.0.0.1:{settings.ports.triton_cpu_metrics}",
        "gateway": f"127.0.0.1:{settings.ports.gateway}",
        "rollout": f"127.0.0.1:{settings.ports.rollout}",
    }


def test_triton_runs_explicit_model_control_with_the_stub_environment_first_on_path(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    triton = next(s for s in build_components(settings) if s.name == "triton")
    assert "--model-control-mode=explicit" in triton.argv
    assert f"--model-repository={settings.state_dir / 'triton' / 'models'}" in triton.argv
    assert triton.env["PATH"].startswith(str(settings.triton_stub_env / "bin"))
    assert "nvidia_pytriton.libs" in triton.env["LD_LIBRARY_PATH"].split(":")[0]


def test_mlflow_starts_with_an_empty_metrics_folder(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    spec = next(s for s in build_components(settings) if s.name == "mlflow")
    stale = settings.state_dir / "mlflow" / "prometheus-multiproc" / "counter_4242.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from a dead process")
    assert spec.prepare is not None
    spec.prepare()
    assert list(stale.parent.iterdir()) == []
