"""The control plane's HTTP API (FastAPI): thin routes over `service.ControlService`.

Every route but `/healthz` (and the static dashboard files and API docs) needs ``Authorization: Bearer <token>``:
the `CurrentPrincipal` dependency; operator-only routes depend on `OperatorPrincipal` instead, so the
authorisation of a route is read from its signature. Errors are JSON: ``{"error": ..., "field": ...}``
with 401 (no or bad token), 403 (operator only), 404 (absent, or another tenant's), 409 (conflict),
422 (invalid input, naming the field); `STATUS_OF_ERROR` maps the service's refusals to these. A database
fault is 503, anything unforeseen 500, both JSON. The token is checked, the body size bounded and the
caller's rate limited before the body is read (`tokenfab.control.limits`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tokenfab.blueprint.design import Design
from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.limits import GuardMiddleware
from tokenfab.control.security import SecurityHeadersMiddleware
from tokenfab.control.service import (
    Conflict,
    ControlService,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    Unauthenticated,
)
from tokenfab.settings import Settings, load_settings

WEB_DIR = Path(__file__).parent / "web"
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
"""Swagger UI 5 (its script and style), as the fastapi-offline package ships it: the docs need no network."""
logger = logging.getLogger("tokenfab.control")
API_PREFIX = "/api/v1"

_bearer = HTTPBearer(auto_error=False, description="an API token: `tf_<id>_<secret>`")


STATUS_OF_ERROR: dict[type[ServiceError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
}
"""HTTP status of each kind of refusal (a plain `ServiceError` is a 400)."""


def status_of(error: ServiceError) -> int:
    return next((code for kind, code in STATUS_OF_ERROR.items() if isinstance(error, kind)), 400)


async def get_service(request: Request) -> ControlService:
    return request.app.state.service


ServiceDep = Annotated[ControlService, Depends(get_service)]


async def get_principal(
    request: Request,
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller (async: the guard middleware's principal, or a recently seen token answered from the
    service's cache on the event loop; only a miss reads the store, in a worker thread)."""
    checked = getattr(request.state, "principal", None)  # authenticated before the body was read
    if isinstance(checked, Principal):
        return checked
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    token = credentials.credentials
    principal = service.cached_principal(token) or await run_in_threadpool(service.authenticate, token)
    if principal is None:
        raise Unauthenticated("invalid, expired or revoked token")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_operator(principal: CurrentPrincipal) -> Principal:
    if not principal.is_operator:
        raise Forbidden("this needs an operator token")
    return principal


OperatorPrincipal = Annotated[Principal, Depends(require_operator)]
NameParam = Annotated[str, PathParam(max_length=64)]
IdParam = Annotated[int, PathParam(ge=0, le=s.MAX_ID)]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": s.ErrorBody} for code in (401, 403, 404, 409, 422)}


def json_model(model: BaseModel, status_code: int = 200) -> Response:
    """A model as its JSON answer, serialised once by pydantic (the route's ``response_model`` documents it;
    FastAPI does not validate a `Response` again)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


# --- routers ------------------------------------------------------------------------------------

me = APIRouter(prefix=API_PREFIX, tags=["identity"], responses=ERRORS)


@me.get("/whoami", response_model=s.WhoAmI)
def whoami(principal: CurrentPrincipal) -> s.WhoAmI:
    """The caller's token, role and tenant."""
    return s.WhoAmI(
        token_id=principal.token_id,
        name=principal.name,
        role=principal.role.value,
        tenant=principal.tenant_name,
    )


tenants = APIRouter(prefix=f"{API_PREFIX}/tenants", tags=["tenants"], responses=ERRORS)


@tenants.get("", response_model=s.TenantsPublic)
def list_tenants(service: ServiceDep, principal: CurrentPrincipal) -> s.TenantsPublic:
    """Tenants (a tenant sees itself)."""
    return service.list_tenants(principal)


@tenants.post("", response_model=s.TenantPublic, status_code=201)
def create_tenant(service: ServiceDep, principal: OperatorPrincipal, body: s.TenantCreate) -> s.TenantPublic:
    """Create a tenant with a quota and residency (operator)."""
    return service.create_tenant(principal, body)


@tenants.get("/{name}", response_model=s.TenantPublic)
def get_tenant(service: ServiceDep, principal: CurrentPrincipal, name: NameParam) -> s.TenantPublic:
    """One tenant."""
    return service.get_tenant(principal, name)


@tenants.patch("/{name}", response_model=s.TenantPublic)
def update_tenant(
    service: ServiceDep, principal: OperatorPrincipal, name: NameParam, body: s.TenantUpdate
) -> s.TenantPublic:
    """Change a tenant's quota or residency (operator)."""
    return service.update_tenant(principal, name, body)


tokens = APIRouter(prefix=f"{API_PREFIX}/tokens", tags=["tokens"], responses=ERRORS)


@tokens.get("", response_model=s.TokensPublic)
def list_tokens(service: ServiceDep, principal: CurrentPrincipal) -> s.TokensPublic:
    """API tokens (never their secrets)."""
    return service.list_tokens(principal)


@tokens.post("", response_model=s.TokenCreated, status_code=201)
def create_token(service: ServiceDep, principal: OperatorPrincipal, body: s.TokenCreate) -> s.TokenCreated:
    """Create a token; the answer holds its secret, shown this once (operator)."""
    return service.create_token(principal, body)


@tokens.delete("/{token_id}", response_model=s.TokenPublic)
def revoke_token(
    service: ServiceDep, principal: OperatorPrincipal, token_id: Annotated[str, PathParam(max_length=32)]
) -> s.TokenPublic:
    """Revoke a token (operator)."""
    return service.revoke_token(principal, token_id)


workloads = APIRouter(prefix=f"{API_PREFIX}/workloads", tags=["workloads"], responses=ERRORS)
StateFilter = Literal["queued", "placed", "running", "cancelled", "failed"]
WorkloadIdParam = Annotated[str, PathParam(max_length=32)]


@workloads.get("", response_model=s.WorkloadsPublic)
def list_workloads(
    service: ServiceDep,
    principal: CurrentPrincipal,
    state: StateFilter | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> s.WorkloadsPublic:
    """Workloads, newest first (a tenant sees its own)."""
    return service.list_workloads(principal, state, limit)


@workloads.post("", response_model=s.WorkloadPublic, status_code=201)
async def submit_workload(
    service: ServiceDep, principal: CurrentPrincipal, body: s.WorkloadCreate
) -> Response:
    """Submit a training job or inference service; answered after it is committed (placed or queued)."""
    return json_model(await service.submit_async(principal, body), 201)


@workloads.get("/{workload_id}", response_model=s.WorkloadPublic)
def get_workload(
    service: ServiceDep, principal: CurrentPrincipal, workload_id: WorkloadIdParam
) -> s.WorkloadPublic:
    """One workload with its placement."""
    return service.get_workload(principal, workload_id)


@workloads.delete("/{workload_id}", response_model=s.WorkloadPublic)
def cancel_workload(
    service: ServiceDep, principal: CurrentPrincipal, workload_id: WorkloadIdParam
) -> s.WorkloadPublic:
    """Cancel a workload and free its GPUs; the queue then runs."""
    return service.cancel(principal, workload_id)


@workloads.post("/{workload_id}/scale", response_model=s.WorkloadPublic)
def scale_workload(
    service: ServiceDep, principal: CurrentPrincipal, workload_id: WorkloadIdParam, body: s.WorkloadScale
) -> s.WorkloadPublic:
    """Change an inference service's replicas."""
    return service.scale(principal, workload_id, body)


queue = APIRouter(prefix=f"{API_PREFIX}/queue", tags=["workloads"], responses=ERRORS)


@queue.get("", response_model=s.WorkloadsPublic)
def get_queue(service: ServiceDep, principal: CurrentPrincipal) -> s.WorkloadsPublic:
    """Waiting workloads in the order they will be tried, each with the reason it waits."""
    return service.queue(principal)


inventory = APIRouter(prefix=API_PREFIX, tags=["inventory"], responses=ERRORS)
HealthActionParam = Annotated[s.HealthAction, PathParam(description="cordon, drain, fail or return")]


@inventory.get("/factory", response_model=s.FactoryMap)
def factory_map(
    service: ServiceDep,
    principal: CurrentPrincipal,
    depth: Literal["site", "hall", "su", "rack"] = "rack",
    hall: Annotated[int | None, Query(ge=0, le=s.MAX_ID)] = None,
) -> Response:
    """Sites → halls → SUs → racks with occupancy, tenants and health, down to ``depth`` (``hall``: that
    hall only). Aggregated and cached until the next change; a tenant sees its own GPUs and the rest as
    ``gpus_occupied``, never another tenant's name."""
    return Response(service.factory_map_json(principal, depth, hall), media_type="application/json")


@inventory.get("/factory/search", response_model=s.SearchHits)
def factory_search(
    service: ServiceDep,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=128)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> s.SearchHits:
    """Find a rack or node by number (``12``, ``rack 12``, ``n40``) or a workload by id or name; each hit
    says where it is on the map (a tenant finds only its own workloads)."""
    return service.search(principal, q, limit)


@inventory.get("/racks/{rack_id}", response_model=s.RackDetail)
def rack_detail(service: ServiceDep, principal: CurrentPrincipal, rack_id: IdParam) -> s.RackDetail:
    """A rack's nodes and the workloads on them."""
    return service.rack_detail(principal, rack_id)


@inventory.get("/nodes", response_model=s.NodesPublic)
def list_nodes(
    service: ServiceDep,
    principal: CurrentPrincipal,
    rack: Annotated[int | None, Query(ge=0, le=s.MAX_ID)] = None,
    health: Literal["ok", "cordoned", "draining", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 5000,
) -> s.NodesPublic:
    """Nodes with health and free GPUs (a tenant sees the nodes its workloads run on)."""
    return service.list_nodes(principal, rack, health, limit)


@inventory.post("/nodes/{node_id}/{action}", response_model=s.HealthResult)
def node_health(
    service: ServiceDep,
    principal: OperatorPrincipal,
    node_id: IdParam,
    action: HealthActionParam,
    body: s.HealthChange | None = None,
) -> s.HealthResult:
    """Cordon, drain, fail or return a node (operator)."""
    return service.change_health(principal, "node", node_id, action, body or s.HealthChange())


@inventory.post("/racks/{rack_id}/{action}", response_model=s.HealthResult)
def rack_health(
    service: ServiceDep,
    principal: OperatorPrincipal,
    rack_id: IdParam,
    action: HealthActionParam,
    body: s.HealthChange | None = None,
) -> s.HealthResult:
    """Cordon, drain, fail or return every node of a rack (operator)."""
    return service.change_health(principal, "rack", rack_id, action, body or s.HealthChange())


power = APIRouter(prefix=f"{API_PREFIX}/power", tags=["power"], responses=ERRORS)


@power.get("", response_model=s.PowerStatus)
def get_power(service: ServiceDep, principal: OperatorPrincipal) -> s.PowerStatus:
    """Facility cap, current draw and recent grid events (operator)."""
    return service.power()


@power.put("/cap", response_model=s.PowerStatus)
def set_power_cap(service: ServiceDep, principal: OperatorPrincipal, body: s.PowerCap) -> s.PowerStatus:
    """Set or lift the facility power cap (operator)."""
    return service.set_power_cap(principal, body)


@power.post("/events", response_model=s.PowerStatus)
def grid_event(service: ServiceDep, principal: OperatorPrincipal, body: s.GridEvent) -> s.PowerStatus:
    """Inject a grid event (curtailment to a cap, or restore) and see the factory's response (operator)."""
    return service.grid_event(principal, body)


reports = APIRouter(prefix=API_PREFIX, tags=["reports"], responses=ERRORS)


@reports.get("/usage", response_model=s.UsagePublic)
def usage(service: ServiceDep, principal: CurrentPrincipal) -> s.UsagePublic:
    """GPUs held, GPU-hours and tokens per second per tenant (a tenant sees its own)."""
    return service.usage(principal)


@reports.get("/telemetry", response_model=s.TelemetryPublic)
def telemetry(
    service: ServiceDep, principal: OperatorPrincipal, limit: Annotated[int, Query(ge=1, le=5000)] = 500
) -> s.TelemetryPublic:
    """Power draw, allocated GPUs and tokens per second over time (operator)."""
    return service.telemetry(limit)


@reports.get("/audit", response_model=s.AuditsPublic)
def audit(
    service: ServiceDep, principal: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=5000)] = 200
) -> s.AuditsPublic:
    """The append-only audit log, newest first (a tenant sees entries about itself)."""
    return service.audit(principal, limit)


ops = APIRouter(tags=["operations"])


@ops.get("/healthz", response_model=s.HealthStatus, responses={503: {"model": s.ErrorBody}})
def healthz(service: ServiceDep) -> s.HealthStatus:
    """Liveness and the database (``SELECT 1``); 503 when the database does not answer. Needs no token."""
    service.ping_database()
    return s.HealthStatus(message="ok", database="ok")


@ops.get("/metrics", response_class=PlainTextResponse, responses=ERRORS)
def metrics(request: Request, service: ServiceDep, principal: OperatorPrincipal) -> str:
    """Prometheus text exposition (operator): the store's gauges and the operations loop's."""
    ops = getattr(request.app.state, "ops", None)
    return service.metrics_text() + (ops.telemetry.text() if ops is not None else "")


# --- the app ------------------------------------------------------------------------------------


def _error(status: int, message: str, field: str | None = None, detail: list | None = None) -> JSONResponse:
    body = s.ErrorBody(error=message, field=field, detail=detail).model_dump(exclude_none=True)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _field_of(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        status, message = status_of(exc), exc.message
        if exc.field and status == 422 and not message.startswith(exc.field):
            message = f"{exc.field}: {message}"
        return _error(status, message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = _field_of(first.get("loc", ()))
        detail = [
            {"field": _field_of(e.get("loc", ())), "message": str(e.get("msg", ""))} for e in errors[:20]
        ]
        return _error(422, f"{field}: {first.get('msg', 'invalid')}", field, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(exc.status_code, str(exc.detail))
        if exc.status_code in (408, 413):  # the rest of the body is not read: do not reuse the connection
            response.headers["Connection"] = "close"
        return response

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        logger.warning("database error: %s", type(exc).__name__)
        response = _error(503, "the database is unavailable; try again")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(Exception)
    async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("internal error", exc_info=exc)
        return _error(500, "internal error")


NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)
"""FastAPI's built-in OpenTelemetry hooks off: they look the providers up (the environment) on every
request, a tenth of a submission's time; the control plane exports its own gauges at /metrics."""


def _operation_id(route) -> str:
    """Stable, readable OpenAPI operation ids (`workloads-submit_workload`) for generated clients."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(
    design: Design, db_url: str, *, service: ControlService | None = None, settings: Settings | None = None
) -> FastAPI:
    """The ASGI app serving `design` from the store at `db_url` (migrated and replayed on creation), behind
    the limits of `tokenfab.control.limits` and the headers of `tokenfab.control.security` (``settings``:
    the limits; default: from the environment)."""
    if service is None:
        service = ControlService.open(design, db_url).service
    settings = settings if settings is not None else load_settings()
    app = FastAPI(
        generate_unique_id_function=_operation_id,
        title="tokenfab control plane",
        version="1",
        description="Inventory, tenants, workloads, placements, health, power and audit of one AI factory.",
        docs_url=None,  # served below from bundled assets (offline), not a CDN
        redoc_url=None,
        **NO_TELEMETRY,
    )
    app.state.service = service
    install_error_handlers(app)
    from tokenfab.control.env_api import router as environments  # it imports this module's dependencies

    for router in (me, tenants, tokens, workloads, queue, environments, inventory, power, reports, ops):
        app.include_router(router)
    from tokenfab.control.ops.router import router as ops_loop  # imports this module's dependencies

    app.include_router(ops_loop)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.mount("/docs/assets", StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> FileResponse:
        """Interactive API docs (Swagger UI bundled by the fastapi-offline package: no network needed)."""
        return FileResponse(WEB_DIR / "docs.html")

    app.add_middleware(
        GuardMiddleware,
        authenticate=service.authenticate,
        authenticate_cached=service.cached_principal,
        settings=settings,
    )
    app.add_middleware(SecurityHeadersMiddleware)  # added last: outermost, so every answer has the headers

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    return app
