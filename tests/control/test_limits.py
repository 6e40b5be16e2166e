"""The control plane's edge against hostile clients, against a real uvicorn server on loopback: bodies
bounded (by Content-Length and while streaming), the token checked before the body is read, slow request
heads and bodies cut off, per-token rate limits with Retry-After, security headers and no-store."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from control_helpers import ThreadServer, bearer, open_api
from test_dashboard import browser  # noqa: F401  (the fixture)

from tokenfab.settings import Settings

MIB = 1 << 20


def _raw(port: int, head: bytes, timeout_s: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    sock.sendall(head)
    return sock


def _read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection or stops sending for the timeout."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b'"}' in chunks[-1]:
                break
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def test_a_300_mb_anonymous_request_is_refused_unread(row_design, tmp_path):
    with ThreadServer(row_design, f"sqlite:///{tmp_path / 'c.db'}") as server:
        # announced size over the limit: 413 before a byte of the body is sent
        sock = _raw(
            server.port,
            b"POST /api/v1/workloads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 314572800\r\n\r\n",
        )
        answer = _read_answer(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 413") and b"larger than 1048576 bytes" in answer
        # no size announced (chunked): no token, so 401 after the head, the body never read
        sock = _raw(
            server.port,
            b"POST /api/v1/workloads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
        )
        sent = 0
        sock.settimeout(0.2)
        answer = b""
        chunk = b"%x\r\n%s\r\n" % (MIB, b"x" * MIB)
        for _ in range(300):  # up to 300 MB, stopping as soon as the server has answered
            try:
                sock.sendall(chunk)
                sent += MIB
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if answer:
                break
        sock.close()
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert sent <= 8 * MIB, f"{sent / MIB:.0f} MiB sent before the 401"
        # a chunked body past the limit with a valid token: 413 once the limit is passed
        response = httpx.post(
            f"{server.url}/api/v1/workloads",
            headers=bearer(server.operator_token),
            content=(b"x" * 65536 for _ in range(64)),
            timeout=30,
        )
        assert response.status_code == 413 and "larger than" in response.json()["error"]
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_slow_heads_and_bodies_are_cut_off(row_design, tmp_path):
    settings = Settings(header_timeout_s=0.5, body_timeout_s=0.5, keep_alive_timeout_s=0.5)
    with ThreadServer(row_design, f"sqlite:///{tmp_path / 'c.db'}", settings=settings) as server:
        started = time.monotonic()
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        partial = _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the head never completes
        assert silent.recv(1) == b"" and partial.recv(1) == b""  # both closed by the server
        assert time.monotonic() - started < 5
        silent.close()
        partial.close()
        token = server.operator_token.encode()
        slow = _raw(
            server.port,
            b"POST /api/v1/tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token + b'\r\nContent-Length: 100\r\n\r\n{"name":',
        )
        answer = _read_answer(slow)
        slow.close()
        assert answer.startswith(b"HTTP/1.1 408") and b"not received within" in answer
        # an idle keep-alive connection is closed after its answer and the keep-alive time
        idle = _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        assert idle.recv(1) == b""
        idle.close()
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_rate_limit_per_token_with_retry_after(row_design, tmp_path):
    api = open_api(
        row_design,
        f"sqlite:///{tmp_path / 'c.db'}",
        settings=Settings(rate_limit_per_s=2, rate_limit_burst=20),
    )
    acme = api.tenant("acme")  # two operator requests
    codes = [api.client.get("/api/v1/whoami", headers=acme).status_code for _ in range(21)]
    assert codes[:20] == [200] * 20 and codes[20] == 429
    limited = api.client.get("/api/v1/whoami", headers=acme)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "rate limit" in limited.json()["error"]
    assert (
        api.client.get("/api/v1/whoami", headers=api.op).status_code == 200
    )  # another token: its own bucket
    # failed authentications are limited per client address the same way
    wrong = bearer("tf_000000000000_" + "x" * 43)
    codes = [api.client.get("/api/v1/whoami", headers=wrong).status_code for _ in range(22)]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
    api.client.close()


def test_security_headers_no_store_and_offline_docs(api):
    created = api.client.post("/api/v1/tokens", headers=api.op, json={"name": "ops2", "role": "operator"})
    assert created.status_code == 201 and created.json()["token"].startswith("tf_")
    assert created.headers["cache-control"] == "no-store"
    for path in ("/", "/healthz", "/docs", "/api/v1/whoami"):
        headers = api.client.get(path, headers=api.op).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
    assert api.client.get("/api/v1/whoami", headers=api.op).headers["cache-control"] == "no-store"
    docs = api.client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in docs and "http" not in docs.split("<body>")[1]
    assert "<script>" not in docs  # no inline script: the CSP allows none
    bundle = api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000
    assert api.client.get("/static/docs.js").status_code == 200


def test_authentication_comes_before_the_body(api):
    # a malformed body without a token is a 401, not a 422: the body was not looked at
    response = api.client.post(
        "/api/v1/workloads", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    response = api.client.post(
        "/api/v1/workloads",
        content=b"{not json",
        headers={**bearer("tf_000000000000_" + "y" * 43), "Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert api.client.post("/api/v1/workloads", content=b"{not json", headers=api.op).status_code == 422


@pytest.mark.xdist_group("control_e2e")
def test_api_docs_render_offline_under_the_csp(browser, row_design, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with ThreadServer(row_design, f"sqlite:///{tmp_path / 'c.db'}") as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
        page.goto(f"{server.url}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("tokenfab control plane")
        expect(page.locator(".opblock-summary-path", has_text="/api/v1/workloads").first).to_be_visible()
        assert not outside, outside  # every asset from this server
        assert not [p for p in problems if "Content Security Policy" in p], problems


def test_half_open_connections_cannot_exhaust_the_server(row_design, tmp_path):
    settings = Settings(header_timeout_s=1.0, limit_concurrency=8)
    with ThreadServer(row_design, f"sqlite:///{tmp_path / 'c.db'}", settings=settings) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(12)]
        for sock in idle:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # heads that never complete
        shed = httpx.get(f"{server.url}/healthz")
        assert shed.status_code == 503  # past the concurrency limit: shed, not queued without end
        assert all(sock.recv(1) == b"" for sock in idle)  # the slow heads are closed after header_timeout_s
        for sock in idle:
            sock.close()
        assert httpx.get(f"{server.url}/healthz").status_code == 200
