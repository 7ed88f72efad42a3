"""Packed autoencoder training: K networks as one batched computation against one at a time.

What is measured, in one process and one run, for every device in ``--devices``:

- **single**: ``neural.train(..., packed=False)`` with one seed, i.e. one plain ``nn.Sequential``
  trained alone -- the per-model baseline. ``single xK`` (``--single-ks``, default 4) trains K
  such networks one after another in one ``train`` call, to confirm the unpacked throughput is
  flat in K (it should be: each network runs the same steps alone).
- **packed**: ``neural.train(..., packed=True)`` with K seeds (``--ks``, default 1, 4, 16, 64,
  256): one ``PackedAutoencoder`` whose layers are applied with ``torch.baddbmm``.

Every measurement trains the same network (default 64 -> 128 -> 16 -> 128 -> 64, a plain
autoencoder, ReLU, Adam) on the same data (``--rows`` x ``--features`` seeded standard Gaussian,
float32), with mini-batches of ``--batch-size`` (256) shuffled every epoch. It times the whole
``neural.train`` call (model set-up, moving the data to the device, the epochs; on CUDA after
``torch.cuda.synchronize()``), after an untimed warm-up: one short run per device and path
before anything is timed (CUDA context, cuBLAS handles, allocator), and a one-epoch run of the
same configuration right before its timed run. Without ``--epochs`` that one-epoch run is also
the calibration: the timed run gets ``--budget-s / (seconds of that epoch)`` epochs (at least 1,
at most ``--max-epochs``), so K = 256 on a CPU does not take minutes; when that one epoch alone
already took longer than the budget, it is the measurement (epochs shown as ``1*``; the device
warm-up has run by then).

How to read the output (one row per measurement):

- ``samples/s``: rows x epochs x models / wall seconds, the training throughput over all models.
- ``ratio``: that over the single-model samples/s on the same device; for packed K it is how
  many times faster K networks train packed than one after another. The issue's target is
  packed >= 20x single at K = 64 on the GPU; the last line says whether it is met, or that it is
  untested when no GPU was measured.
- ``threads``: the CPU threads training used (``neural.TrainingSettings.threads``, 1 unless
  ``--threads`` says otherwise); "-" on CUDA.

Figures measured here (2026-11-28): a shared 2-core Intel Xeon VM, torch 2.13.0+cpu, no GPU,
defaults (8192 rows, budget 3 s), load average 2.4-5 from other jobs during the run:

    device path          K  epochs  wall s    samples/s    ratio threads
    cpu    single        1      35    1.99      144,407    1.00x       1
    cpu    single x4     4      12    2.72      144,630    1.00x       1
    cpu    packed        1      54    2.84      155,864    1.08x       1
    cpu    packed        4      28    3.14      291,854    2.02x       1
    cpu    packed       16       7    2.60      352,640    2.44x       1
    cpu    packed       64       2    3.55      295,653    2.05x       1
    cpu    packed      256      1*   10.02      209,261    1.45x       1

With ``--threads 2`` on the same busy cores the single network dropped to 7,888 samples/s (the
two threads wait for each other at every small kernel), which is why training uses one thread.

On one CPU core packing gains about 2x at most (K = 16): the work is arithmetic-bound there,
and packing only removes per-call overhead. CUDA: not measured yet (the target is a GPU
figure); run ``python benchmarks/packed_training.py`` on a GPU machine.

``--quick`` is a short smoke run (K in 1, 16, 64; 4096 rows; budget 1 s). ``--json PATH``
writes the environment and every measurement.

This script imports only numpy, torch and ``automl_od.neural`` (which needs only those and
pluggy), so it runs from the repository root of a plain copy of the working tree, without
installing the package::

    python benchmarks/packed_training.py                  # cpu, and cuda when torch sees one
    python benchmarks/packed_training.py --devices cpu --quick
    python benchmarks/packed_training.py --ks 1,64 --epochs 20 --json /tmp/packed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from automl_od import neural  # noqa: E402

#: The issue's target: packed training of K = TARGET_K networks at least TARGET_RATIO times the
#: single-model throughput on the GPU.
TARGET_K = 64
TARGET_RATIO = 20.0


@dataclass
class Measurement:
    device: str
    path: str  # "single" (one network alone), "single xK" (K one after another), "packed"
    k: int
    epochs: int
    wall_s: float
    samples_per_s: float
    threads: int | None
    reused: bool = False  # the one-epoch calibration run was already over budget and is the measurement
    ratio: float | None = None


def parse_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return name


#: CPU threads for training: ``neural.TrainingSettings.threads`` (1 unless --threads says otherwise)
THREADS: int | None = neural.TrainingSettings.threads


def run_once(x: np.ndarray, sizes: list[tuple[int, int]], k: int, packed: bool, epochs: int,
             batch_size: int, device: torch.device) -> float:
    """Wall seconds of one ``neural.train`` call (fresh settings)."""
    settings = neural.TrainingSettings(epochs=epochs, batch_size=batch_size, threads=THREADS)
    synchronize(device)
    start = time.perf_counter()
    neural.train(x, sizes, list(range(k)), settings, probabilistic=False, device=device, packed=packed)
    synchronize(device)
    return time.perf_counter() - start


def measure(x: np.ndarray, sizes: list[tuple[int, int]], k: int, packed: bool, path: str,
            args: argparse.Namespace, device: torch.device) -> Measurement:
    threads = THREADS if device.type == "cpu" else None
    one_epoch = run_once(x, sizes, k, packed, 1, args.batch_size, device)  # warm-up + calibration
    if args.epochs:
        epochs = args.epochs
    elif one_epoch >= args.budget_s:  # one epoch is over budget: the calibration run is the measurement
        return Measurement(device.type, path, k, 1, one_epoch, len(x) * k / one_epoch, threads, reused=True)
    else:
        epochs = int(min(args.max_epochs, max(1, round(args.budget_s / max(one_epoch, 1e-6)))))
    wall = run_once(x, sizes, k, packed, epochs, args.batch_size, device)
    return Measurement(device.type, path, k, epochs, wall, len(x) * epochs * k / wall, threads)


def print_row(m: Measurement) -> None:
    ratio = f"{m.ratio:7.2f}x" if m.ratio is not None else f"{'-':>8}"
    threads = str(m.threads) if m.threads is not None else "-"
    epochs = f"{m.epochs}*" if m.reused else str(m.epochs)
    print(f"{m.device:<6} {m.path:<10} {m.k:>4} {epochs:>7} {m.wall_s:>7.2f} {m.samples_per_s:>12,.0f} "
          f"{ratio} {threads:>7}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated; cuda is skipped when unavailable")
    parser.add_argument("--ks", default="1,4,16,64,256", help="packed model counts K")
    parser.add_argument("--single-ks", default="4",
                        help="K networks trained one after another (unpacked), to check the flat rate; '' for none")
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", default="128,16", help="encoder widths after the input, latent last")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=0, help="fixed epochs per measurement (0: from --budget-s)")
    parser.add_argument("--budget-s", type=float, default=3.0,
                        help="target seconds per timed run; epochs from a one-epoch calibration run")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads while training (0: neural.train's default, 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: K in 1,16,64, 4096 rows, budget 1 s")
    parser.add_argument("--json", type=Path, default=None, help="write the environment and results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.ks, args.rows, args.budget_s = "1,16,64", 4096, 1.0
        args.max_epochs = min(args.max_epochs, 200)

    global THREADS
    if args.threads > 0:
        THREADS = args.threads
    devices = []
    for name in [part.strip() for part in args.devices.split(",") if part.strip()]:
        if name.startswith("cuda") and not torch.cuda.is_available():
            print("CUDA: not available on this machine; GPU figures still to be measured")
            continue
        devices.append(neural.resolve_device(name))

    ks, single_ks = parse_ints(args.ks), parse_ints(args.single_ks)
    hidden = parse_ints(args.hidden)
    sizes = neural.layer_sizes(args.features, hidden, probabilistic=False)
    x = np.random.default_rng(args.seed).standard_normal((args.rows, args.features)).astype(np.float32)

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    environment = {
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "cpu": device_name(torch.device("cpu")), "cpu_count": os.cpu_count(), "cpu_affinity": affinity,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "devices": {d.type: device_name(d) for d in devices},
    }
    network = " -> ".join(str(w) for w in [args.features, *[fan_out for _, fan_out in sizes]])
    print(f"torch {environment['torch']}, numpy {environment['numpy']}, python {environment['python']}")
    print(f"CPU: {environment['cpu']}, {environment['cpu_count']} cores ({affinity} usable), "
          f"torch threads {environment['torch_threads']}")
    for d in devices:
        if d.type == "cuda":
            print(f"GPU: {environment['devices']['cuda']}, CUDA {environment['cuda']}")
    budget = f"{args.epochs} epochs" if args.epochs else f"budget {args.budget_s:g} s/measurement"
    print(f"network {network} (plain AE), data {args.rows} x {args.features} Gaussian, "
          f"batch {args.batch_size}, {budget}")
    print()
    print(f"{'device':<6} {'path':<10} {'K':>4} {'epochs':>7} {'wall s':>7} {'samples/s':>12} "
          f"{'ratio':>8} {'threads':>7}")

    results: list[Measurement] = []
    for device in devices:
        for packed in (False, True):  # device warm-up of both code paths, untimed
            run_once(x[: min(len(x), 4 * args.batch_size)], sizes, 2, packed, 2, args.batch_size, device)
        single = measure(x, sizes, 1, False, "single", args, device)
        single.ratio = 1.0
        print_row(single)
        results.append(single)
        for k in single_ks:
            m = measure(x, sizes, k, False, f"single x{k}", args, device)
            m.ratio = m.samples_per_s / single.samples_per_s
            print_row(m)
            results.append(m)
        for k in ks:
            m = measure(x, sizes, k, True, "packed", args, device)
            m.ratio = m.samples_per_s / single.samples_per_s
            print_row(m)
            results.append(m)

    print()
    target = f"packed >= {TARGET_RATIO:g}x single at K = {TARGET_K} on the GPU"
    gpu = [m for m in results if m.device == "cuda" and m.path == "packed" and m.k == TARGET_K]
    if gpu:
        ratio = gpu[0].ratio or 0.0
        verdict = "MET" if ratio >= TARGET_RATIO else "NOT MET"
        print(f"target {target}: {verdict} ({ratio:.1f}x on {environment['devices']['cuda']})")
    elif any(d.type == "cuda" for d in devices):
        print(f"target {target}: untested (K = {TARGET_K} not in --ks)")
    else:
        print(f"target {target}: untested without a GPU")

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
        payload = {"environment": environment, "settings": settings, "network": network,
                   "target": {"k": TARGET_K, "ratio": TARGET_RATIO, "measured": gpu[0].ratio if gpu else None},
                   "results": [asdict(m) for m in results]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
