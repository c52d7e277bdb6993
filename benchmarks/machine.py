"""What every benchmark prints first: the device it measured on, and whether the machine was quiet.

One copy for all scripts under ``benchmarks/`` (numbers without the device and the load they were
taken under are not benchmarks).
"""
from __future__ import annotations

import os
import platform

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device | str | None = None) -> str:
    """The GPU's name for a CUDA device (the current one when ``device`` is None and CUDA is there),
    else the CPU's model, its cores and torch's thread count."""
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def load_note() -> str:
    """The 1-minute load average against the core count: a loaded machine slows every column."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    busy = "other jobs are using the CPU" if load > 0.5 else "nothing else running"
    return f"load average {load:.2f} on {cores} cores before measuring ({busy})"
