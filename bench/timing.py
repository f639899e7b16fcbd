"""Times a child process: wall time, CPU time (user+sys) and peak RSS.

Peak RSS comes from GNU time (`/usr/bin/time`) when it is installed. A child's own `ru_maxrss`
is not enough: Linux carries the high-water mark across `exec`, so a child forked from this
Python process starts at the parent's RSS (pyarrow, tree statistics: ~150 MiB in `bench/run`),
which would hide any smaller figure. Without GNU time the figure is that floor-bound `ru_maxrss`.
"""

import os
import subprocess
import sys
import tempfile
import time

GNU_TIME = "/usr/bin/time"


def timed(cmd, stdout=subprocess.DEVNULL):
    """Runs cmd; returns (wall s, cpu s, peak RSS bytes, stdout text or None). Exits on failure."""
    rss_file = None
    run = cmd
    if os.path.exists(GNU_TIME):
        fd, rss_file = tempfile.mkstemp(prefix="rss-")
        os.close(fd)
        run = [GNU_TIME, "-f", "%M", "-o", rss_file] + cmd
    start = time.perf_counter()
    proc = subprocess.Popen(run, stdout=stdout, text=True)
    text = proc.stdout.read() if stdout == subprocess.PIPE else None
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    rss = ru.ru_maxrss * 1024
    if rss_file:
        with open(rss_file) as f:
            words = f.read().split()
        os.unlink(rss_file)
        if words and words[-1].isdigit():
            rss = int(words[-1]) * 1024
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)}")
    return wall, ru.ru_utime + ru.ru_stime, rss, text
