"""Which machine and torch build produced a result: recorded with every shipped number.

The same seed gives bitwise-equal runs only on the same CPU and the same torch build: a CPU with
AVX-512 runs other kernels than one with AVX2 (``torch.backends.cpu.get_cpu_capability()``), so
floating-point sums round differently, sampling diverges after a few steps and the last digits of
every result differ. ``machine_info()`` is what results files and checkpoint cards record, and
``machine_line`` is its one-line form for tables and figure captions.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else platform.machine()


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    m = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return set(m.group(1).split()) if m else set()


def _blas() -> str:
    import torch

    config = torch.__config__.show()
    m = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    if m:
        return f"MKL {m.group(1)}"
    m = re.search(r"BLAS_INFO=(\w+)", config)
    return m.group(1) if m else "unknown"


def machine_info() -> dict:
    """CPU model, vector extensions, torch version and build, threads: a JSON-ready dict."""
    import torch

    flags = _cpu_flags()
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "avx2": "avx2" in flags if flags else None,
        "avx512": any(f.startswith("avx512") for f in flags) if flags else None,
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma"))),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": _blas(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def machine_line(info: dict | None = None) -> str:
    """One line: ``AMD EPYC, 2 cores, AVX-512; torch 2.13.0+cpu (AVX512 kernels, MKL ...), 1 thread``."""
    i = machine_info() if info is None else info
    ext = {True: "AVX-512", False: "no AVX-512", None: "extensions unknown"}[i.get("avx512")]
    threads = i.get("torch_threads")
    return (
        f"{i.get('cpu', '?')}, {i.get('cpu_count', '?')} cores, {ext}; torch {i.get('torch', '?')} "
        f"({i.get('torch_cpu_capability', '?')} kernels, {i.get('blas', '?')}), "
        f"{threads} thread{'s' if threads != 1 else ''}"
    )


def machine_short(info: dict | None) -> str:
    """A few words: ``AMD EPYC, AVX512 kernels, torch 2.13.0+cpu`` (``not recorded`` for None)."""
    if not info:
        return "not recorded"
    return f"{info.get('cpu', '?')}, {info.get('torch_cpu_capability', '?')} kernels, torch {info.get('torch', '?')}"
