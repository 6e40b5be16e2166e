"""Alertmanager's webhook payload (version 4), validated before anything acts on it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LABEL_TEXT = r"^[^\x00-\x1f\x7f]*$"


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(max_length=64)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=64)
    startsAt: datetime  # noqa: N815 (Alertmanager's field names)
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = Field(default="", max_length=4096)  # noqa: N815
    fingerprint: str = Field(default="", max_length=64)


class WebhookIn(BaseModel):
    """What Alertmanager posts to a ``webhook_configs`` receiver."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = Field(max_length=4096)  # noqa: N815
    truncatedAlerts: int = Field(default=0, ge=0)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = Field(max_length=256)
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = Field(default="", max_length=4096)  # noqa: N815
    alerts: list[AlertIn] = Field(min_length=1, max_length=1000)
