"""A bare-bones HTTP server for exeunt's probe tests: it answers every request with
the same raw bytes, whatever they are, so that the tests can give exeunt answers a
stricter server would never send.

usage: plain_http.py HOST PORT ANSWER
ANSWER: "bare-newlines" (a 200 whose lines end in \\n alone) or "redirect" (a 301).
"""

import socket
import sys

host, port, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
answers = {
    "bare-newlines": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "redirect": b"HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
}
answer = answers[kind]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
listener = socket.socket(family)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, port))
listener.listen()
print(f"listening on {host} port {port}, answering {kind}", flush=True)
while True:
    conn, _ = listener.accept()
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(1024)
        if not chunk:
            break
        request += chunk
    conn.sendall(answer)
    conn.close()
    print(f"answered {kind}", flush=True)
