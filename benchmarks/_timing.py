"""Shared timing helpers: medians of repeated runs (the machine is shared and noisy)."""

import statistics
import time


def median_time(fn, repeat=7, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def row(label, seconds, extra=""):
    print(f"  {label:<52} {seconds * 1e3:10.2f} ms  {extra}")
