"""An HTTP sidecar for exeunt's tests, serving on 127.0.0.1:PORT.

usage: http_sidecar.py PORT NOT_READY [GATE]

GET /ready answers 503 to the first NOT_READY requests, and while the file GATE (when
given) does not exist; then 200. It says so on stdout. POST /quitquitquit is recorded on stdout, answered 200, and ends the
process with status 0, as Istio's and Linkerd's proxies do.
"""

import http.server
import os
import sys

port, not_ready = int(sys.argv[1]), int(sys.argv[2])
gate = sys.argv[3] if len(sys.argv) > 3 else None
asked = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, code):
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()

    def do_GET(self):
        global asked
        asked += 1
        shut = gate is not None and not os.path.exists(gate)
        code = 503 if asked <= not_ready or shut else 200
        print(f"answered {code} to GET {self.path}", flush=True)
        self.answer(code)

    def do_POST(self):
        print(f"got POST {self.path}", flush=True)
        self.answer(200)
        if self.path == "/quitquitquit":
            os._exit(0)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", port), Handler)
print(f"http sidecar listening on {port}", flush=True)
server.serve_forever()
