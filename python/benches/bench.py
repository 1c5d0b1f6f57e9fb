"""Benchmark: genesys_auth from Python against the tutorial's TokenCache, side by side, on the
emulator. Usage: python bench.py PATH/TO/seed_auth.py  (prints Markdown, then a JSON line)."""

import importlib.util
import json
import multiprocessing
import os
import sys
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
    print(json.dumps(r))


if __name__ == "__main__":
    main()
