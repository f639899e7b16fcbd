#!/usr/bin/env python3
"""Times a console view from navigation start to its first row painted, in headless Chromium.

Usage (from the repository root):
    bench/console_first_page.py BINARY ARCHIVE VIEW cold|warm N

VIEW is the page's path and query, e.g. "events?attr=ReadOnly%3Dfalse&range=all". Drives
Debian's chromium and chromedriver over WebDriver's plain HTTP API (standard library only).
A watcher installed before the page's own scripts (DevTools protocol) notes when the first row
of the table enters the DOM and the next animation frame after it (painted); times are
performance.now(), milliseconds since navigation start. `cold`: a new server process and a new
browser for each of the N visits (nothing cached in either; the OS page cache stays warm);
`warm`: one server and one browser, a first visit not counted, then N. Prints each visit and
the medians of the first row painted and of the events API request (request start to response
end, from Resource Timing).
"""
import json, shutil, socket, statistics, subprocess, sys, time, urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["value"]

def wait_port(port, t=60):
    end = time.time() + t
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("port %d not listening" % port)

# Installed before the page's own scripts (DevTools protocol, so the page's CSP does not apply): notes
# when the first row enters the DOM, and the next animation frame after it (when it is painted).
WATCH = """
(function () {
  const obs = new MutationObserver(() => {
    if (window.__inserted === undefined && document.querySelector('#events tbody tr')) {
      window.__inserted = performance.now();
      requestAnimationFrame(() => { window.__painted = performance.now(); });
      obs.disconnect();
    }
  });
  obs.observe(document, { childList: true, subtree: true });
})();
"""

# Polls each animation frame (and every 2 ms) for the first row, or the view's ready mark; answers
# performance.now() (ms since navigation start) at each, and the events API's resource timing.
PROBE = """
const done = arguments[arguments.length - 1];
const out = {};
function check() {
  const t = performance.now();
  if (out.row === undefined && window.__painted !== undefined) { out.row = window.__painted; out.inserted = window.__inserted; }
  if (out.ready === undefined && document.body.dataset.ready === 'events') out.ready = t;
  if (out.ready !== undefined && (out.row !== undefined || !document.querySelector('#events tbody tr'))) {
    const api = performance.getEntriesByType('resource').filter(e => e.name.includes('/console/api/events?'));
    const meta = performance.getEntriesByType('resource').filter(e => e.name.includes('/console/api/meta'));
    out.api_start = api.length ? api[0].requestStart : null; out.api_end = api.length ? api[0].responseEnd : null;
    out.meta_end = meta.length ? meta[0].responseEnd : null;
    out.rows = document.querySelectorAll('#events tbody tr').length;
    out.dcl = performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd;
    done(out); return;
  }
  setTimeout(check, 2);
}
check();
"""

def main():
    binary, archive, query, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    dport = free_port()
    driver = subprocess.Popen(["chromedriver", "--port=%d" % dport], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(dport)
    dbase = "http://127.0.0.1:%d" % dport
    caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": shutil.which("chromium") or shutil.which("chromium-browser"),
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,860"]}}}}
    results = []
    server = None
    session = None
    try:
        for i in range(n + (1 if mode == "warm" else 0)):
            if server is None or mode == "cold":
                if server: server.terminate(); server.wait()
                sport = free_port()
                server = subprocess.Popen([binary, "serve", archive, "--listen", "127.0.0.1:%d" % sport],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                wait_port(sport)
            if session is None or mode == "cold":
                if session: call(dbase, "DELETE", "/session/" + session)
                session = call(dbase, "POST", "/session", caps)["sessionId"]
                call(dbase, "POST", "/session/%s/timeouts" % session, {"script": 120000, "pageLoad": 120000})
                call(dbase, "POST", "/session/%s/goog/cdp/execute" % session,
                     {"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": WATCH}})
            call(dbase, "POST", "/session/%s/url" % session, {"url": "http://127.0.0.1:%d/%s" % (sport, query)})
            out = call(dbase, "POST", "/session/%s/execute/async" % session, {"script": PROBE, "args": []})
            if mode == "warm" and i == 0:
                continue  # the first visit warms the server and the browser
            results.append(out)
            print(json.dumps(out), flush=True)
    finally:
        if session: call(dbase, "DELETE", "/session/" + session)
        if server: server.terminate(); server.wait()
        driver.terminate(); driver.wait()
    key = "row" if all(r.get("row") is not None for r in results) else "ready"
    print("%s %s: median %s %.0f ms (all: %s); events API median %.0f ms" % (mode, query, key,
        statistics.median(r[key] for r in results), [round(r[key]) for r in results],
        statistics.median(r["api_end"] - r["api_start"] for r in results)))

main()
