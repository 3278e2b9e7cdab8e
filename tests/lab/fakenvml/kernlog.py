"""Provides a fake kernel log: ``journalctl -k -o short-unix`` and ``dmesg`` output from the fake NVML state's kmsg lines.

Run as ``kernlog.py journalctl ARGS`` or ``kernlog.py dmesg ARGS``. With ``journal fail`` in the
state, journalctl behaves as in a container without a journal (exit 0, "No journal files were
found." on stderr); with ``dmesg fail``, dmesg is denied as under ``kernel.dmesg_restrict``.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import state


def _since(argv, now):
    if "--since" not in argv:
        return None
    value = argv[argv.index("--since") + 1]
    if value.startswith("@"):
        return float(value[1:])
    if value.startswith("-") and value.endswith("h"):
        return now - 3600 * float(value[1:-1])
    if value.startswith("-") and value.endswith("min"):
        return now - 60 * float(value[1:-3])
    raise SystemExit(f"fake journalctl: unsupported --since {value!r}")


def _boot_time(now):
    with open("/proc/uptime") as fh:
        return now - float(fh.read().split()[0])


def main(argv):
    mode, args = argv[0], argv[1:]
    top = state.read(os.environ["FAKE_NVML_STATE"])
    now = time.time()
    host = socket.gethostname()
    if mode == "journalctl":
        if top["journal"] == "fail":
            print("No journal files were found.", file=sys.stderr)
            print("-- No entries --")
            return 0
        since = _since(args, now)
        lines = [f"{t:.6f} {host} kernel: {msg}" for t, msg in top["kmsg"] if since is None or t >= since]
        print("\n".join(lines) if lines else "-- No entries --")
        return 0
    if mode == "dmesg":
        if top["dmesg"] == "fail":
            print("dmesg: read kernel buffer failed: Operation not permitted", file=sys.stderr)
            return 1
        boot = _boot_time(now)
        for t, msg in top["kmsg"]:
            print(f"[{max(0.0, t - boot):12.6f}] {msg}")
        return 0
    print(f"kernlog.py: unknown mode {mode!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
