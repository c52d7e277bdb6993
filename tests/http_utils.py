"""A local HTTP server for the download tests: ``server.routes[path] = (mode, body)``, requests counted in
``server.hits``; modes simulate good and broken servers (conftest's ``server`` fixture starts one)."""
from __future__ import annotations

import http.server
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (mode, body)``; modes simulate good and broken servers."""

    protocol_version = "HTTP/1.1"  # needed for the chunked-encoding case
    timeout = 5  # a stuck client can never hang the server thread forever

    def do_GET(self):  # noqa: N802 (http.server naming)
        self.server.hits.append(self.path)
        mode, body = self.server.routes.get(self.path, ("404", b""))
        if mode == "404":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Connection", "close")
        if mode == "chunked-raise":
            # Chunked body whose terminating chunk never comes: the handler dies mid-stream.
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = body[: len(body) // 2]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
            self.wfile.flush()
            raise ConnectionAbortedError("simulated server crash mid-stream")
        if mode == "chunked":  # a complete body with no Content-Length
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 4096):
                piece = body[start:start + 4096]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
            return
        declared = len(body) + 1000 if mode == "short" else len(body)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mode == "short" else body)
        self.close_connection = True

    def log_message(self, *args):  # keep pytest output clean
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # the crash above is intended
        pass


def route_server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes, srv.hits = {}, []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = lambda path: f"http://127.0.0.1:{srv.server_address[1]}{path}"

    def stop():
        if thread.is_alive():
            srv.shutdown()
            srv.server_close()
            thread.join(timeout=5)

    srv.stop = stop
    return srv
