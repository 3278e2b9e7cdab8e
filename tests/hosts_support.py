"""Provides what the SSH fleet source tests share: canned probe answers and the lab fleet's helpers."""

from __future__ import annotations

import asyncio
import time

import pytest

from sovtui.sources.hosts import (
    HostsSource,
)
from tests.lab.fleet import T0, answer, gpu_json

lab = pytest.mark.ssh


# ================================================================================== canned answers
# (T0, gpu_json and answer live in tests/lab/fleet.py: the fleet's stand-in probe answers them)
def healthy_8(host: str) -> dict:
    gpus = [gpu_json(i) for i in range(8)]
    gpus[0]["processes"] = [
        {
            "pid": 4242,
            "used_mib": 1000.0,
            "name": "python3",
            "pod": "team-a/llm-0",
            "container": "trainer",
            "slurm_job": None,
        }
    ]
    gpus[3].update(
        throttle_reasons=["sw_thermal"], temp_c=88, nvlink=[{"link": 0, "active": True}, {"link": 1, "active": False}]
    )
    xids = [
        {"t": T0 - 100, "pci": "0000:38:00", "code": 13, "msg": "Graphics Exception"},
        {"t": T0 - 50, "pci": "0000:38:00", "code": 31, "msg": "MMU Fault"},
    ]
    return answer(host, gpus, xids)


def mig_4(host: str) -> dict:
    gpus = [gpu_json(i, name="NVIDIA A100-SXM4-80GB") for i in range(4)]
    gpus[1].update(
        mig_mode=True,
        mig_instances=[
            {"gi": 1, "ci": 0, "profile": "3g.40gb", "uuid": "MIG-1", "mem_total_mib": 40192},
            {"gi": 2, "ci": 0, "profile": "3g.40gb", "uuid": "MIG-2", "mem_total_mib": 40192},
        ],
    )
    gpus[2]["processes"] = [
        {"pid": 1, "used_mib": 5.0, "name": "a.out", "slurm_job": "7001"},
        {"pid": 2, "used_mib": 5.0, "name": "b.out", "slurm_job": "7001"},
        {"pid": 3, "used_mib": 5.0, "name": "c.out", "pod": "ns/p"},
    ]
    gpus[3].update(error="GPU is lost", util_gpu=None, temp_c=None)
    return answer(host, gpus, backend="nvidia-smi", driver="535.129.03", cuda="12.2")


# ================================================================================== the fleet


def by_host(data) -> dict:
    return {h.name: h for h in data.gpu_hosts}


def gpus_of(data, host: str) -> list:
    return sorted((g for g in data.gpus if g.host == host), key=lambda g: g.index)


async def fetch_until(source: HostsSource, predicate, *, timeout_s: float = 20.0, pause_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        data = await source.fetch()
        if predicate(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout_s}s; hosts: {data.gpu_hosts}")
        await asyncio.sleep(pause_s)
