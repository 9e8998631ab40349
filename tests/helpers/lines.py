"""Lines for the output tests: a writer, and a checker of what exeunt made of them.

  lines.py write NAME COUNT
      writes COUNT numbered lines of varied length as NAME: most to stdout, every fifth
      to stderr; some hold bytes that are not UTF-8, a few are 100,000 bytes long.
  lines.py check MODE OUT ERR COUNT NAME...
      reads exeunt's stdout (OUT) and stderr (ERR), in MODE prefix or json, joins the
      pieces of long lines, and checks that each NAME's lines arrived exactly once, in
      order, intact, on the stream they were written to. Prints one summary line.
"""
import json
import re
import sys


def line(name, i):
    body = ("%s %d " % (name, i)).encode() + b"abcdefghij"[i % 10:i % 10 + 1] * ((i * 7919) % 241)
    if i % 1000 == 3:
        body += b" \xff\xfe not utf-8 \\ backslash"
    if i % 50000 == 7:
        body += b"L" * 100000
    return body


def stream_of(i):
    return "stderr" if i % 5 == 0 else "stdout"


def write(name, count):
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for i in range(count):
        target = err if stream_of(i) == "stderr" else out
        target.write(line(name, i) + b"\n")
    out.flush()
    err.flush()


PREFIXED = re.compile(rb"^(\S+) *([|+]) (.*)$", re.S)


def unescape(message, escaped):
    """The bytes a JSON message stands for (see exeunt's README, output)."""
    if not escaped:
        return message.encode()
    out, i = bytearray(), 0
    while i < len(message):
        if message.startswith("\\\\", i):
            out += b"\\"
            i += 2
        elif message.startswith("\\x", i):
            out.append(int(message[i + 2:i + 4], 16))
            i += 4
        else:
            out += message[i].encode()
            i += 1
    return bytes(out)


def pieces(mode, data, stream, own):
    """(process, stream, text, continued) for each line of one of exeunt's streams."""
    for raw in data.split(b"\n")[:-1]:
        if mode == "prefix":
            if raw.startswith(b"[exeunt] "):
                own.append(raw)
                continue
            m = PREFIXED.match(raw)
            if not m:
                sys.exit("not a prefixed line on %s: %r" % (stream, raw[:200]))
            yield m.group(1).decode(), stream, m.group(3), m.group(2) == b"+"
        else:
            try:
                obj = json.loads(raw)
            except ValueError as e:
                sys.exit("not a JSON line on %s (%s): %r" % (stream, e, raw[:300]))
            if obj.get("process") == "exeunt":
                own.append(raw)
                continue
            for key in ("time", "process", "stream", "message"):
                if key not in obj:
                    sys.exit("no %r in %r" % (key, raw[:200]))
            if obj["stream"] != stream:
                sys.exit("a %s line on %s: %r" % (obj["stream"], stream, raw[:200]))
            if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", obj["time"]):
                sys.exit("time is not RFC 3339 with milliseconds in UTC: %r" % obj["time"])
            text = unescape(obj["message"], obj.get("escaped", False))
            yield obj["process"], stream, text, obj.get("partial", False)


def check(mode, out_path, err_path, count, names):
    got = {}
    partial = {}
    own = []
    longest = 0
    for path, stream in ((out_path, "stdout"), (err_path, "stderr")):
        with open(path, "rb") as f:
            data = f.read()
        for name, stream, text, continued in pieces(mode, data, stream, own):
            longest = max(longest, len(text))
            key = (name, stream)
            partial[key] = partial.get(key, b"") + text
            if not continued:
                got.setdefault(key, []).append(partial.pop(key))
    if partial:
        sys.exit("pieces never finished: %r" % list(partial))
    if longest > 65536:
        sys.exit("a piece of %d bytes: pieces are at most 64 KiB" % longest)
    total = 0
    for name in names:
        for stream in ("stdout", "stderr"):
            expected = [line(name, i) for i in range(count) if stream_of(i) == stream]
            arrived = got.pop((name, stream), [])
            if arrived != expected:
                first = next((k for k, (a, b) in enumerate(zip(arrived, expected)) if a != b), min(len(arrived), len(expected)))
                sys.exit("%s %s: %d lines arrived, %d written; first difference at line %d: %r vs %r" % (
                    name, stream, len(arrived), len(expected), first,
                    arrived[first][:120] if first < len(arrived) else None,
                    expected[first][:120] if first < len(expected) else None))
            total += len(arrived)
    if got:
        sys.exit("lines of processes nobody started: %r" % list(got))
    print("ok: %d lines of %d processes, each once and intact; %d of exeunt's own; longest piece %d bytes"
          % (total, len(names), len(own), longest))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], int(sys.argv[3]))
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6:])
