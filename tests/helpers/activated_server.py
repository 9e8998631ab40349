"""A server started by socket activation: it says what it was given, checks that
LISTEN_PID is its own pid (as sd_listen_fds does), then answers one connection on the
descriptor it was passed (3) and exits 0."""
import os
import socket

given = {name: os.environ.get(name) for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")}
print("server pid %d was given %s" % (os.getpid(), given), flush=True)
if given["LISTEN_PID"] != str(os.getpid()) or given["LISTEN_FDS"] != "1":
    raise SystemExit("server: the sockets are not mine")
listener = socket.socket(fileno=3)
connection, _ = listener.accept()
connection.sendall(b"hello from the activated server\n")
connection.close()
