"""The machine a timing was measured on: CPU model and flags, core count, torch build."""

from __future__ import annotations

import os
import platform
import re
import subprocess

import torch


def machine_info() -> dict:
    """The CPU and torch build a timing was measured on (for cards and reports)."""
    model_name, flags = platform.processor() or platform.machine(), []
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model_name = value.strip()
            elif key.strip() == "Flags":
                flags = sorted(f for f in value.split() if f.startswith(("avx", "amx", "fma")))
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": model_name,
        "cpu_flags": flags,
        "cpu_count": _cpu_count(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_blas": "".join(re.findall(r"BLAS_INFO=(\w+)", torch.__config__.show())),
        "python": platform.python_version(),
    }


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
