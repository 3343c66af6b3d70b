"""What the bench's proxies in front of moto share (bench/throttle_proxy.py, bench/ec2_pages.py).

`Relay` is a request handler that answers a call itself (`answer`) or passes it on to moto
over a kept-alive connection of its thread (`forward`, `relay`); `Server` serves it with a
thread per connection. A script sets `Relay.moto` to moto's URL before serving.
"""
import http.client
import http.server
import threading
import urllib.parse

HOP_BY_HOP = ("content-length", "connection", "transfer-encoding", "server", "date")


class Relay(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    moto = urllib.parse.urlsplit("http://127.0.0.1")
    timeout = 600
    local = threading.local()

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self, body, headers=None):
        """Passes this request (or `body` with `headers`) to moto: (status, headers, body),
        or None when moto did not answer twice."""
        if headers is None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        for _ in range(2):
            try:
                if getattr(self.local, "conn", None) is None:
                    self.local.conn = http.client.HTTPConnection(self.moto.hostname, self.moto.port, timeout=self.timeout)
                self.local.conn.request(self.command, self.path, body=body, headers=headers)
                reply = self.local.conn.getresponse()
                return reply.status, reply.getheaders(), reply.read()
            except (http.client.HTTPException, OSError):
                self.local.conn = None
        return None

    def relay(self, body):
        """Answers with moto's answer to this request."""
        forwarded = self.forward(body)
        if forwarded is None:
            return self.answer(502, b"moto did not answer", "text/plain")
        status, headers, data = forwarded
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
