"""What the benchmark scripts share: progress on stderr, the release build, Markdown tables."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def build():
    """Builds `parquetrail` in release (honouring CARGO_TARGET_DIR) and returns the executable."""
    log("building parquetrail (release)…")
    out = subprocess.run(["cargo", "build", "--release", "-p", "parquetrail", "--message-format=json"],
                         cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "parquetrail":
            return msg["executable"]
    sys.exit("cargo did not report the parquetrail executable")


def fmt_table(header, rows):
    """A Markdown table, columns padded to their widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])
