

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
