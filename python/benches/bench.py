"""Benchmark: genesys_auth from Python against the tutorial's code (its TokenCache and its
script), side by side, on the emulator: a cached token, a cold herd of threads, a fork pool from
a warm parent, whole processes that print a token, and import time.
Usage: python bench.py PATH/TO/seed_auth.py  (prints Markdown, then a JSON line)."""

import importlib.util
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import genesys_auth as ga

ID, SECRET = "bench-client", "bench-secret"


def per_call_ns(f, n=200_000):
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n * 1e9


def herd(call, n=1000):
    barrier = threading.Barrier(n)
    errors = [0]

    def run():
        barrier.wait()
        try:
            call()
        except Exception:
            errors[0] += 1

    threads = [threading.Thread(target=run) for _ in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - start) * 1000, errors[0]


# What the fork pool's workers call: set before the pool forks, inherited by the workers.
_IN_CHILD = None


def _child_call(_i):
    return _IN_CHILD()


def fork_pool(call, warm_first=True, n=8):
    """Token requests made by a fork pool of `n` workers, each calling `call` once, after the
    parent has called it (a warm cache)."""
    global _IN_CHILD
    if warm_first:
        call()
    _IN_CHILD = call
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(n) as pool:
        pool.map(_child_call, range(n))
    return (time.perf_counter() - start) * 1000


RUNS = 15

# What each whole process runs: ours prints the token as the tutorial's script does.
OURS = "import genesys_auth; print(genesys_auth.get_access_token())"
IMPORT_OURS = "import time; t = time.perf_counter(); import genesys_auth; print(time.perf_counter() - t)"
IMPORT_TUTORIAL = (
    "import time; t = time.perf_counter(); import requests, dotenv; print(time.perf_counter() - t)"
)


def processes(argv, env, cwd, runs=RUNS):
    """Wall times (ms) of `runs` runs of `argv`, after one untimed run (warm file cache)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
        elapsed = (time.perf_counter() - start) * 1000
        if out.returncode != 0 or len(out.stdout.strip()) < 20:
            raise SystemExit(f"{argv[:2]} failed (exit {out.returncode})")
        if i:
            times.append(elapsed)
    return times


def import_ms(code, env, cwd, runs=RUNS):
    """Median time (ms) that the import in `code` takes, measured inside fresh processes."""
    return statistics.median(
        float(subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True,
                             capture_output=True, text=True, timeout=120).stdout) * 1000
        for _ in range(runs)
    )


def whole_processes(emu, seed_path, r):
    with tempfile.TemporaryDirectory() as home:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": home,
            "GENESYS_CLIENT_ID": ID,
            "GENESYS_CLIENT_SECRET": SECRET,
            "GENESYS_REGION": emu.base_url,
            "SEED_BASE_URL": emu.base_url,
        }
        before = emu.token_requests
        r["process_ms_tutorial"] = processes([sys.executable, seed_path], env, home)
        r["process_requests_tutorial"] = (emu.token_requests - before) / (RUNS + 1)
        before = emu.token_requests
        r["process_ms_genesys_auth"] = processes([sys.executable, "-c", OURS], env, home)
        r["process_requests_genesys_auth"] = (emu.token_requests - before) / (RUNS + 1)
        # The file store: the token cached by one process serves the next ones.
        cached = dict(env, GENESYS_TOKEN_STORE="file")
        before = emu.token_requests
        r["process_ms_genesys_auth_file"] = processes([sys.executable, "-c", OURS], cached, home)
        r["process_requests_genesys_auth_file"] = emu.token_requests - before
        r["process_ms_bare_python"] = processes(
            [sys.executable, "-c", "print('x' * 43)"], env, home
        )
        r["import_ms_genesys_auth"] = import_ms(IMPORT_OURS, env, home)
        r["import_ms_tutorial"] = import_ms(IMPORT_TUTORIAL, env, home)


def row(name, times, requests):
    return (
        f"| {name} | {statistics.median(times):.1f} | {min(times):.1f} | {max(times):.1f} "
        f"| {requests} |"
    )


def main():
    spec = importlib.util.spec_from_file_location("seed", sys.argv[1])
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    with ga.Emulator(clients={ID: SECRET}) as emu:
        os.environ["SEED_BASE_URL"] = emu.base_url
        ours = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)
        cache = seed.TokenCache()
        r = {
            "cached_ns_genesys_auth": per_call_ns(ours.token),
            "cached_ns_tutorial": per_call_ns(lambda: cache.get_token(ID, SECRET, "us", None)),
        }
        before = emu.token_requests
        fresh = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)
        r["herd_ms_genesys_auth"], errs = herd(fresh.token)
        r["herd_requests_genesys_auth"] = emu.token_requests - before
        before = emu.token_requests
        cold = seed.TokenCache()
        r["herd_ms_tutorial"], errs2 = herd(lambda: cold.get_token(ID, SECRET, "us", None))
        r["herd_requests_tutorial"] = emu.token_requests - before
        r["herd_errors"] = errs + errs2
        warm = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)
        warm.token()
        before = emu.token_requests
        r["fork_ms_genesys_auth"] = fork_pool(warm.token)
        r["fork_requests_genesys_auth"] = emu.token_requests - before
        tutorial = seed.TokenCache()
        tutorial.get_token(ID, SECRET, "us", None)
        before = emu.token_requests
        r["fork_ms_tutorial"] = fork_pool(lambda: tutorial.get_token(ID, SECRET, "us", None))
        r["fork_requests_tutorial"] = emu.token_requests - before
        whole_processes(emu, sys.argv[1], r)
    print("| Python, same process | genesys_auth | tutorial TokenCache |")
    print("|---|---|---|")
    print(f"| cached token() | {r['cached_ns_genesys_auth']:.0f} ns | {r['cached_ns_tutorial']:.0f} ns |")
    print(
        f"| cold herd of 1,000 threads | {r['herd_requests_genesys_auth']} token request(s), "
        f"{r['herd_ms_genesys_auth']:.0f} ms | {r['herd_requests_tutorial']} token requests, "
        f"{r['herd_ms_tutorial']:.0f} ms |"
    )
    print(
        f"| fork pool of 8, warm parent | {r['fork_requests_genesys_auth']} token request(s), "
        f"{r['fork_ms_genesys_auth']:.0f} ms | {r['fork_requests_tutorial']} token request(s), "
        f"{r['fork_ms_tutorial']:.0f} ms |"
    )
    print()
    print(f"Whole processes that print a token, median of {RUNS} runs after a warm-up run (ms):")
    print()
    print("| process | median | min | max | token requests a run |")
    print("|---|---|---|---|---|")
    print(row("tutorial script (seed_auth.py)", r["process_ms_tutorial"],
              f"{r['process_requests_tutorial']:g}"))
    print(row("`python -c 'import genesys_auth; print(genesys_auth.get_access_token())'`",
              r["process_ms_genesys_auth"], f"{r['process_requests_genesys_auth']:g}"))
    print(row("the same, `GENESYS_TOKEN_STORE=file` (token cached by an earlier run)",
              r["process_ms_genesys_auth_file"],
              f"{r['process_requests_genesys_auth_file']} in {RUNS + 1} runs (the first)"))
    print(row("for reference: `python -c \"print('x' * 43)\"`", r["process_ms_bare_python"], "0"))
    ratio = statistics.median(r["process_ms_genesys_auth"]) / statistics.median(
        r["process_ms_tutorial"]
    )
    r["process_ratio"] = ratio
    print()
    print(f"genesys_auth's process takes {ratio:.2f}x the tutorial script's time.")
    print(
        f"Import: `import genesys_auth` {r['import_ms_genesys_auth']:.1f} ms, the tutorial's "
        f"`import requests, dotenv` {r['import_ms_tutorial']:.1f} ms (median of {RUNS}, in process)."
    )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
