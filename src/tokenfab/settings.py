"""Every setting tokenfab reads from the environment, in one pydantic-settings object.

Each field is read from ``TOKENFAB_<FIELD>`` (``TOKENFAB_DATA_DIR``, ``TOKENFAB_SERVER``, ...); an empty
variable counts as unset. `load_settings` reads the environment at the moment it is called, so a command
sees what its process was started with and a test can set a variable for one call.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TOKENFAB_"


class Settings(BaseSettings):
    """tokenfab's settings from the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path | None = None
    """Folder of the public data sets (traces, openb); default ``<repo>/../shared/data``."""
    server: str | None = None
    """Control plane URL for the client commands (after ``--server``, before the saved login)."""
    token: str | None = None
    """API token for the client commands (after ``--token``, before the saved login)."""
    bootstrap_token: str | None = None
    """The bootstrap operator token a new control-plane store gets (``tf_<id>_<secret>``, a secret of at least
    32 characters; default: random)."""

    # the control plane's limits (tokenfab.control.limits, the server in `tokenfab serve`)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body the API reads [bytes]; a larger one is answered 413 unread."""
    max_header_bytes: int = Field(default=16_384, ge=1024)
    """Largest request head (request line + headers) the server buffers [bytes]."""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """Time a connection has to deliver a complete request head [s]; then it is closed."""
    body_timeout_s: float = Field(default=30.0, gt=0)
    """Time the API waits for each chunk of a request body [s]; then it answers 408."""
    keep_alive_timeout_s: float = Field(default=5.0, gt=0)
    """Idle time after which a keep-alive connection is closed [s]."""
    limit_concurrency: int = Field(default=1000, ge=1)
    """Connections and requests in flight at most; past it the server answers 503."""
    rate_limit_per_s: float = Field(default=500.0, ge=0)
    """Requests per second each API token may make, sustained (0: no limit); past it, 429 with Retry-After."""
    rate_limit_burst: int = Field(default=1000, ge=1)
    """Requests a token may make at once before its rate applies."""

    slurm_conf: Path | None = None
    """slurm.conf of the slurmctld that tenant Slurm environments are applied to (unset: not applied)."""
    env_fault_after: str | None = None
    """Fault injection for the crash tests: ``OP:STEP`` (``create:network``) makes the server exit right
    after committing that step of an environment operation, as a crash between steps would."""

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object, info: ValidationInfo) -> object:
        if value != "" or info.field_name is None:  # a field validator always has its field's name
            return value
        return cls.model_fields[info.field_name].default


def load_settings() -> Settings:
    """The settings as the environment gives them now."""
    return Settings()


def env_name(field: str) -> str:
    """The environment variable of a setting: ``env_name("server") == "TOKENFAB_SERVER"``."""
    return f"{ENV_PREFIX}{field.upper()}"
