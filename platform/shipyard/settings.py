"""The one settings object: every Shipyard knob, typed, validated and documented here.

Values come from, highest priority first: keyword arguments, ``SHIPYARD_*`` environment
variables (nested fields use ``__``: ``SHIPYARD_PORTS__GATEWAY=8081``), the TOML file named by
``SHIPYARD_CONFIG`` (or ``./shipyard.toml`` when it exists), then the defaults below.

``shipyard config`` prints the resolved values and where each name is set.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from shipyard.errors import ConfigError
from shipyard.routing import Analysis

ENV_PREFIX = "SHIPYARD_"
CONFIG_FILE_ENV = "SHIPYARD_CONFIG"
DEFAULT_CONFIG_FILE = Path("shipyard.toml")

Port = int


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "shipyard"


def _default_tools_dir() -> Path:
    # Tool builds (Go binaries) are slow to make and identical across checkouts: cache them
    # outside the repository, where every clone and CI run on this machine finds them.
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "shipyard" / "tools"


def _default_triton_stub_env() -> Path:
    # The stub environment is installed inside the main virtual environment's folder.
    return Path(sys.prefix) / "triton-stub"


class Ports(BaseModel):
    """Loopback ports of the embedded stack; every one must be distinct."""

    model_config = ConfigDict(extra="forbid")

    mlflow: Port = Field(5000, ge=1, le=65535, description="MLflow tracking server and UI.")
    triton_http: Port = Field(8000, ge=1, le=65535, description="Triton HTTP/REST API.")
    triton_grpc: Port = Field(8001, ge=1, le=65535, description="Triton gRPC API.")
    triton_metrics: Port = Field(8002, ge=1, le=65535, description="Triton Prometheus metrics.")
    triton_cpu_http: Port = Field(
        8010, ge=1, le=65535, description="Triton CPU pool HTTP/REST API (the fallback pool)."
    )
    triton_cpu_grpc: Port = Field(8011, ge=1, le=65535, description="Triton CPU pool gRPC API.")
    triton_cpu_metrics: Port = Field(
        8012, ge=1, le=65535, description="Triton CPU pool Prometheus metrics."
    )
    gateway: Port = Field(8080, ge=1, le=65535, description="Serving gateway (FastAPI).")
    prometheus: Port = Field(9090, ge=1, le=65535, description="Prometheus UI and API.")
    rollout: Port = Field(
        8081,
        ge=1,
        le=65535,
        description="Rollout loop (`shipyard rollout watch`): /healthz, /metrics.",
    )
    redis: Port = Field(6379, ge=1, le=65535, description="Redis online store (redis profile).")
    redis_exporter: Port = Field(
        9121, ge=1, le=65535, description="Redis metrics exporter (redis profile)."
    )

    @model_validator(mode="after")
    def _distinct(self) -> Ports:
        seen: dict[int, str] = {}
        for name, port in self.model_dump().items():
            if port in seen:
                raise ValueError(f"ports.{name} and ports.{seen[port]} are both {port}")
            seen[port] = name
        return self


PII_COLUMNS = ("name", "email", "phone", "card_number")
PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "example"}


class PiiSettings(BaseModel):
    """How raw PII is treated before anything reaches features, training or logs."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, Literal["drop", "tokenize"]] = Field(
        default_factory=lambda: {
            "name": "drop",
            "email": "tokenize",
            "phone": "drop",
            "card_number": "tokenize",
        },
        description="Per raw PII column: 'drop' it, or 'tokenize' it (keyed hash, joinable).",
    )
    key: SecretStr | None = Field(
        None,
        description="Tokenization key (>= 32 chars; from a secret). Unset: a random key is "
        "created once in <state dir>/secrets/pii.key.",
    )

    @field_validator("columns")
    @classmethod
    def _every_pii_column(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(columns) - set(PII_COLUMNS))
        if unknown:
            raise ValueError(f"unknown PII column(s) {unknown}: known are {list(PII_COLUMNS)}")
        missing = sorted(set(PII_COLUMNS) - set(columns))
        if missing:
            raise ValueError(f"no policy for PII column(s) {missing}: add 'drop' or 'tokenize'")
        return columns

    @field_validator("key")
    @classmethod
    def _strong_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None:
            return None
        value = key.get_secret_value()
        if value.lower() in PLACEHOLDER_SECRETS or len(value) < 32:
            raise ValueError("the PII key must be a random secret of at least 32 characters")
        return key


class DataSettings(BaseModel):
    """Quality gates of the data step."""

    model_config = ConfigDict(extra="forbid")

    max_age_h: float = Field(
        48.0,
        gt=0,
        description="Freshness: the newest event must be at most this old at validation time.",
    )
    max_amount: float = Field(
        1_000_000.0, gt=0, description="Range: the largest plausible transaction amount."
    )


class CostSettings(BaseModel):
    """The cost model: what an hour of each serving pool costs, and the spend alerts' limits.

    Prometheus multiplies these prices by the measured busy time of each backend (Triton's
    compute time per model version, the gateway's in-process scoring time) and divides by the
    predictions served: cost per 1,000 predictions per model, version and backend (recording
    rules of the ``cost`` group in ``shipyard.observability.rules``)."""

    model_config = ConfigDict(extra="forbid")

    gpu_hour: float = Field(
        0.35, ge=0, description="Price of one GPU hour in the primary (GPU) Triton pool, USD."
    )
    cpu_core_hour: float = Field(
        0.0316,
        ge=0,
        description="Price of one CPU core hour (CPU Triton pool, in-process fallback), USD.",
    )
    spot_discount: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share taken off the GPU price when the GPU pool runs on spot VMs (0.6: 60%).",
    )
    daily_budget: float = Field(
        50.0, gt=0, description="Spend per model and day above which ShipyardCostOverBudget fires."
    )
    max_daily_growth: float = Field(
        0.5,
        gt=0,
        description="Day-over-day growth of a model's cost per 1k predictions above which "
        "ShipyardCostGrowth fires (0.5: +50%).",
    )

    def price_per_hour(self, pool: Literal["gpu", "cpu"]) -> float:
        """Effective hourly price of one unit (a GPU, a CPU core) of ``pool``."""
        if pool == "gpu":
            return self.gpu_hour * (1 - self.spot_discount)
        return self.cpu_core_hour


_TRITON_URL = re.compile(r"^(?:(?P<scheme>http|grpc)://)?(?P<address>[^/:\s]+:\d{1,5})/?$")


def triton_url(url: str) -> tuple[Literal["http", "grpc"], str]:
    """(transport, host:port) of a Triton pool URL; a bare host:port is gRPC. Raises ValueError."""
    match = _TRITON_URL.match(url.strip())
    if match is None:
        raise ValueError(
            f"{url!r} is not a Triton URL: use http://host:port (Triton's HTTP port, 8000) or "
            "grpc://host:port (its gRPC port, 8001)"
        )
    return ("http" if match["scheme"] == "http" else "grpc"), match["address"]


class ServingSettings(BaseModel):
    """The gateway: backends, limits, routing, audit and access."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(1, ge=1, le=64, description="Gateway worker processes (uvicorn).")
    routing_file: Path | None = Field(
        None,
        description="Routing file (model -> stable/canary versions and weight). Unset: "
        "<state dir>/serving/routing.yaml. On a cluster: the mounted ConfigMap.",
    )
    routing_poll_s: float = Field(
        0.5, gt=0, le=60, description="How often the gateway checks the routing file for changes."
    )
    model_repository: Path | None = Field(
        None,
        description="Triton model repository the gateway also loads its in-process fallback "
        "from. Unset: <state dir>/triton/models.",
    )
    primary_url: str | None = Field(
        None,
        description="The primary Triton pool (GPU on a cluster): http://host:port (Triton's "
        "HTTP port) or grpc://host:port (its gRPC port; a bare host:port means gRPC). Unset: "
        "the embedded Triton over HTTP. Empty string: no primary pool.",
    )
    cpu_url: str | None = Field(
        None,
        description="The CPU Triton pool, in the same form as primary_url. Unset: the embedded "
        "CPU Triton over HTTP. Empty string: no CPU pool.",
    )
    backend_timeout_ms: float = Field(
        200.0, gt=0, le=60_000, description="Per-hop deadline of one Triton call."
    )
    breaker_failures: int = Field(
        3, ge=1, le=1000, description="Consecutive failures that open a backend's breaker."
    )
    breaker_open_s: float = Field(
        2.0, gt=0, le=600, description="How long an open breaker waits before one probe call."
    )
    feature_timeout_ms: float = Field(
        100.0,
        gt=0,
        le=60_000,
        description="Deadline of one online-store read: a Redis round trip, or a SQLite read "
        "waiting for a writer's lock.",
    )
    unknown_entities: Literal["reject", "defaults"] = Field(
        "reject",
        description="An entity with no online features: 'reject' (422 naming it) or score it "
        "with the training fill values ('defaults').",
    )
    max_in_flight: int = Field(
        256, ge=1, le=100_000, description="Predictions in progress per worker; more get 503."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=256 * 1_048_576, description="Largest request body accepted."
    )
    max_instances: int = Field(
        256, ge=1, le=10_000, description="Most instances in one predict request."
    )
    audit_sync_ms: float = Field(
        50.0,
        ge=0,
        le=10_000,
        description="Group commit: audit records reach the OS at once and disk (fdatasync) "
        "within this many ms. 0: sync before answering.",
    )
    audit_features: bool = Field(
        False, description="Keep raw feature values in audit records (never PII); else a hash."
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys accepted on predict routes (X-API-Key or Bearer). Empty: predict is "
        "open.",
    )
    admin_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys for admin routes (always required). Empty: one random key is created "
        "in <state dir>/secrets/admin.key.",
    )

    @field_validator("primary_url", "cpu_url")
    @classmethod
    def _triton_url(cls, url: str | None) -> str | None:
        if url:
            triton_url(url)
        return url

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _strong_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for key in keys:
            value = key.get_secret_value()
            if value.lower() in PLACEHOLDER_SECRETS or len(value) < 16:
                raise ValueError("API keys must be random secrets of at least 16 characters")
        return keys


class RetrainSettings(BaseModel):
    """Drift-triggered retraining, run by the rollout loop (and the webhook receiver)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Launch a training run when a drift alert fires.")
    alerts: list[str] = Field(
        default_factory=lambda: [
            "ShipyardDataDrift",
            "ShipyardPredictionDrift",
            "ShipyardOnlineQualityDrop",
        ],
        description="Alert names that trigger retraining of the alert's model.",
    )
    min_interval_s: float = Field(
        6 * 3600.0,
        ge=0,
        description="Least time between two retraining runs of one model (rate limit).",
    )
    auto_rollout: bool = Field(
        True, description="Roll the run's challenger out as a canary when the gate passed it."
    )
    kfp_host: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/.*)?$",
        description="KFP API to submit runs to (a cluster). Unset: the local runner.",
    )


class RolloutSettings(BaseModel):
    """The rollout loop: canary analysis, promotion and rollback, drift-triggered retraining."""

    model_config = ConfigDict(extra="forbid")

    poll_s: float = Field(
        5.0, gt=0, le=3600, description="How often the loop judges rollouts and reads alerts."
    )
    routing_configmap: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="On a cluster: the routing ConfigMap the loop patches. Unset: the routing "
        "file (embedded).",
    )
    namespace: str = Field(
        "default",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Namespace of the routing ConfigMap.",
    )
    analysis: Analysis = Field(
        default_factory=Analysis,
        description="How canaries are judged when the routing file names no thresholds for "
        "the model (see shipyard.routing.Analysis).",
    )
    retrain: RetrainSettings = Field(
        default_factory=RetrainSettings, description="Drift-triggered retraining."
    )


class Settings(BaseSettings):
    """Shipyard's configuration. See the module docstring for where values come from."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Where the embedded stack keeps data, logs and process state.",
    )
    profile: Literal["sqlite", "redis"] = Field(
        "sqlite", description="Online feature store: 'sqlite' (embedded) or 'redis'."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of Shipyard's own processes."
    )
    ports: Ports = Field(default_factory=Ports, description="Loopback ports (see Ports).")
    startup_timeout_s: float = Field(
        180.0, gt=0, le=3600, description="How long `shipyard up` waits for every component."
    )
    tools_dir: Path = Field(
        default_factory=_default_tools_dir,
        description="Cache of tool binaries built from source (helm, tofu, kubeconform …).",
    )
    redis_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Host of the Redis online store (redis profile); a Service name on a cluster.",
    )
    mlflow_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/.*)?$",
        description="MLflow tracking server URL. Unset: the embedded one on loopback.",
    )
    extra_rule_files: list[str] = Field(
        default_factory=list,
        description="More Prometheus rule files (paths or globs) the embedded Prometheus "
        "loads: your own recording rules and alerts.",
    )
    prometheus_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/.*)?$",
        description="Prometheus query API URL. Unset: the embedded one on loopback.",
    )
    redis_password: SecretStr | None = Field(
        None, description="Password of the Redis online store (from a secret); unset: none."
    )
    pii: PiiSettings = Field(default_factory=PiiSettings, description="PII policy.")
    data: DataSettings = Field(default_factory=DataSettings, description="Data quality gates.")
    cost: CostSettings = Field(
        default_factory=CostSettings, description="Cost model and spend alerts."
    )
    serving: ServingSettings = Field(
        default_factory=ServingSettings, description="The serving gateway."
    )
    rollout: RolloutSettings = Field(
        default_factory=RolloutSettings, description="Canary analysis and retraining."
    )
    triton_stub_env: Path = Field(
        default_factory=_default_triton_stub_env,
        description="Virtual environment (numpy<2, onnxruntime) for Triton's Python-backend stub.",
    )

    @field_validator("state_dir", "tools_dir", mode="after")
    @classmethod
    def _writable_dir(cls, path: Path) -> Path:
        path = path.expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} exists and is not a directory")
        # Check the nearest existing ancestor so that validation never creates anything.
        probe = path
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise ValueError(f"{path} cannot be created: {probe} is not a directory")
        read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
        if read_only or not os.access(probe, os.W_OK | os.X_OK):
            raise ValueError(f"{path} is not writable (checked {probe})")
        return path

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = config_file_path()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    # Derived values: computed, never configured twice.

    def url(self, port_name: str, path: str = "") -> str:
        """URL of one of the stack's services, e.g. ``url("gateway", "/docs")``: loopback,
        except MLflow and Prometheus when ``mlflow_url`` / ``prometheus_url`` point elsewhere
        (a cluster's Services)."""
        elsewhere = {"mlflow": self.mlflow_url, "prometheus": self.prometheus_url}.get(port_name)
        if elsewhere:
            return elsewhere.rstrip("/") + path
        return f"http://127.0.0.1:{getattr(self.ports, port_name)}{path}"

    def to_env(self) -> dict[str, str]:
        """These settings as ``SHIPYARD_*`` variables, so child processes resolve the same."""
        env: dict[str, str] = {}

        def flatten(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    flatten(f"{prefix}__{key}".upper() if prefix else key.upper(), inner)
            elif isinstance(value, SecretStr):
                # Children need the real secret, not pydantic's "**********" mask.
                env[ENV_PREFIX + prefix] = value.get_secret_value()
            elif isinstance(value, list):  # pydantic-settings reads lists as JSON
                env[ENV_PREFIX + prefix] = json.dumps(
                    [v.get_secret_value() if isinstance(v, SecretStr) else v for v in value]
                )
            elif value is not None:
                env[ENV_PREFIX + prefix] = str(value)

        flatten("", self.model_dump())
        return env


def config_file_path() -> Path | None:
    """The TOML config file in effect, if any."""
    named = os.environ.get(CONFIG_FILE_ENV)
    if named:
        return Path(named)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def env_name(location: tuple[str | int, ...]) -> str:
    """The environment variable that sets the field at a pydantic error location."""
    return ENV_PREFIX + "__".join(str(part).upper() for part in location)


def _config_file_has(config_file: Path, location: tuple[str | int, ...]) -> bool:
    try:
        node: Any = tomllib.loads(config_file.read_text())
        for part in location:
            node = node[part]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return False
    return True


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings, turning any invalid value into a one-line ConfigError."""
    config_file = config_file_path()
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} ({CONFIG_FILE_ENV}) does not exist")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "extra_forbidden":
            key = ".".join(str(part) for part in first["loc"])
            if config_file is not None and _config_file_has(config_file, first["loc"]):
                where = f"{key!r} in {config_file}"
            else:  # unknown nested keys also arrive through SHIPYARD_PORTS__<NAME> variables
                where = env_name(first["loc"])
            raise ConfigError(
                f"unknown setting {where}: `shipyard config` lists the known ones"
            ) from None
        where = env_name(first["loc"]) if first["loc"] else "settings"
        message = first["msg"].removeprefix("Value error, ")
        given = first.get("input")
        shown = f"={given!r}" if isinstance(given, str | int | float) and first["loc"] else ""
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"invalid setting {where}{shown}: {message}{more}") from None
    except Exception as exc:  # a malformed TOML file, for one
        raise ConfigError(f"could not read settings from {config_file}: {exc}") from None
