"""Every setting tokenfab reads from the environment, in one pydantic-settings object.

Each field is read from ``TOKENFAB_<FIELD>`` (``TOKENFAB_DATA_DIR``, ``TOKENFAB_SERVER``, ...); an empty
variable counts as unset. `load_settings` reads the environment at the moment it is called, so a command
sees what its process was started with and a test can set a variable for one call.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
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
    """The bootstrap operator token a new control-plane store gets (``tf_<id>_<secret>``; default: random)."""
    slurm_conf: Path | None = None
    """slurm.conf of the slurmctld that tenant Slurm environments are applied to (unset: not applied)."""
    env_fault_after: str | None = None
    """Fault injection for the crash tests: ``OP:STEP`` (``create:network``) makes the server exit right
    after committing that step of an environment operation, as a crash between steps would."""

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


def load_settings() -> Settings:
    """The settings as the environment gives them now."""
    return Settings()


def env_name(field: str) -> str:
    """The environment variable of a setting: ``env_name("server") == "TOKENFAB_SERVER"``."""
    return f"{ENV_PREFIX}{field.upper()}"
