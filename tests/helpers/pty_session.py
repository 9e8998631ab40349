"""Runs a command as the leader of a new session whose controlling terminal is a pty,
as `docker run -it` starts an init, and answers its first "ready" with a line.

usage: pty_session.py COMMAND [ARG]...

Prints what the session wrote to the terminal, then "exit status N".
"""

import os
import pty
import sys

pid, terminal = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])

seen = b""
answered = False
while True:
    try:
        chunk = os.read(terminal, 4096)
    except OSError:  # EIO: every process of the session has closed the terminal
        break
    if not chunk:
        break
    seen += chunk
    if not answered and b"ready" in seen:
        os.write(terminal, b"go\n")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace").replace("\r", ""))
print(f"exit status {os.waitstatus_to_exitcode(status)}")
