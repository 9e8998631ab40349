"""A server that, like a database in smart shutdown, does not exit on SIGTERM while a
client is connected: it stops accepting, waits for the last client to leave, then
says so and exits 0. Usage: draining_server.py PORT"""

import selectors
import signal
import socket
import sys

port = int(sys.argv[1])
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen()
listener.setblocking(False)

# SIGTERM is read through a pipe so that the select loop sees it.
wake_r, wake_w = socket.socketpair()
wake_w.setblocking(False)
signal.set_wakeup_fd(wake_w.fileno())
signal.signal(signal.SIGTERM, lambda *_: None)

sel = selectors.DefaultSelector()
sel.register(listener, selectors.EVENT_READ, "accept")
sel.register(wake_r, selectors.EVENT_READ, "signal")
clients = set()
stopping = False
print(f"db: listening on {port}", flush=True)
while not (stopping and not clients):
    for key, _ in sel.select():
        if key.data == "accept":
            conn, _ = listener.accept()
            clients.add(conn)
            sel.register(conn, selectors.EVENT_READ, "client")
            print(f"db: client connected ({len(clients)})", flush=True)
        elif key.data == "signal":
            wake_r.recv(64)
            if not stopping:
                stopping = True
                sel.unregister(listener)
                listener.close()
                print(f"db: SIGTERM, waiting for {len(clients)} clients", flush=True)
        else:
            if not key.fileobj.recv(64):
                sel.unregister(key.fileobj)
                clients.discard(key.fileobj)
                key.fileobj.close()
                print(f"db: client left ({len(clients)})", flush=True)
print("db: clean shutdown, no client left", flush=True)
