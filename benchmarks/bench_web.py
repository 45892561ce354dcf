"""How long the calculator (`scalesweep serve`) spends on an answer: `web.ask` for the page's queries, warm,
median of many, with the numba thread count the server uses (one). The target is under 50 ms server-side.

    python benchmarks/bench_web.py [--repeat 50]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

QUERIES = {
    "default (hoffmann2022, 1e23 FLOPs)": {},
    "two laws, 1e4 GPU-hours on 512 H100, $2.5/h, 70B cap": {
        "law": "hoffmann2022,besiroglu2024", "budget": "1e4", "unit": "gpu_hours", "gpu": "H100", "gpus": "512",
        "usd_per_gpu_hour": "2.5", "max_params": "70B"},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    import scalesweep as ss
    from scalesweep import web

    ss.set_threads(1)  # as the server runs
    print(f"web.ask, warm, median of {args.repeat} (load average {os.getloadavg()[0]:.1f}); target < 50 ms")
    for label, query in QUERIES.items():
        web.ask(query)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            web.ask(query)
            times.append(time.perf_counter() - t0)
        times.sort()
        med = statistics.median(times)
        print(f"  {label:<58} median {med * 1e3:6.1f} ms  p90 {times[int(0.9 * len(times))] * 1e3:6.1f} ms  "
              f"{'met' if med < 0.05 else 'NOT met'}")


if __name__ == "__main__":
    main()
