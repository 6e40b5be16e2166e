"""A small client of Prometheus' HTTP API (``/api/v1/query``), as the control plane reads telemetry."""

from __future__ import annotations

import math

import httpx


class PrometheusError(Exception):
    pass


class Prometheus:
    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """Instant query: (labels, value) per series of the resulting vector (NaN values dropped)."""
        try:
            response = self.http.get("/api/v1/query", params={"query": expr})
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        body = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"query {expr!r} failed: {body.get('error', response.text[:200])}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        out = []
        for item in data["result"]:
            value = float(item["value"][1])
            if not math.isnan(value):
                out.append((item["metric"], value))
        return out

    def value(self, expr: str, default: float | None = None) -> float | None:
        """The single value of `expr` (the first series), or `default` when the vector is empty."""
        rows = self.query(expr)
        return rows[0][1] if rows else default

    def by(self, expr: str, label: str) -> dict[str, float]:
        return {labels.get(label, ""): value for labels, value in self.query(expr)}

    def close(self) -> None:
        self.http.close()
