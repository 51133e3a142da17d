"""Benchmark of issue 2's targets on this machine: synthesis of the 270-patient demo cohort, preprocessing it into
patches (cold), and a warm re-run from the cache. Prints its figures; goals: synthesis < 120 s, preprocessing
< 180 s, warm re-run < 5% of the cold one. Then the handcrafted baseline's radiomic features (a second read of every
volume, notebook 01; radiolib.learn.handcrafted), cold and from their cache, when pyradiomics is installed.

    .venv/bin/python benchmarks/bench_preprocessing.py [--patients 270] [--jobs 2]
"""
import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from radiolib.data.dataset import build_patch_set
from radiolib.data.synth import FAULTS, synthesize
from radiolib.learn import handcrafted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=270)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="radiolib-bench-"))
    try:
        t0 = time.perf_counter()
        data = synthesize(work / "cohort", patients=args.patients, seed=0, effect=1.0, faults=list(FAULTS),
                          n_jobs=args.jobs, progress=False)
        synth_s = time.perf_counter() - t0
        size = subprocess.run(["du", "-sh", str(data)], capture_output=True, text=True).stdout.split()[0]

        t0 = time.perf_counter()
        ps = build_patch_set(data, [80, 120], 4, 0, work / "cache", n_jobs=args.jobs, progress=False)
        cold_s = time.perf_counter() - t0
        n_patches = len(ps.index) * len(ps.meta["patch_sizes"])

        t0 = time.perf_counter()
        build_patch_set(data, [80, 120], 4, 0, work / "cache", n_jobs=args.jobs, progress=False)
        warm_s = time.perf_counter() - t0

        print(f"synthesis of {args.patients} patients: {synth_s:.1f} s ({size} on disk)   goal < 120 s")
        print(f"preprocessing (cold): {cold_s:.1f} s, {n_patches / cold_s:.0f} patches/s "
              f"({len(ps.table)} patients included, {n_patches} patches)   goal < 180 s")
        print(f"warm re-run: {warm_s:.2f} s = {100 * warm_s / cold_s:.1f}% of cold   goal < 5%")
        if handcrafted.missing_extractor():
            print(f"radiomic features: not measured ({handcrafted.missing_extractor()})")
            return
        patients = ps.table.patient.tolist()
        times = []
        for _ in range(2):  # cold, then from the per-patient cache
            t0 = time.perf_counter()
            table, reasons, _ = handcrafted.feature_table(data, patients, work / "cache", n_jobs=args.jobs,
                                                          progress=False)
            times.append(time.perf_counter() - t0)
        print(f"radiomic features (cold): {times[0]:.1f} s for {len(patients)} patients "
              f"({table.shape[1]} features, {len(reasons)} without), {times[0] / len(patients):.2f} s/patient; "
              f"from the cache: {times[1]:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
