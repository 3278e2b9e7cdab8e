"""Provides the GPU simulation of the demo: the scripted GPU incidents (ECC, XIDs, a GPU lost) and the per-tick random walks."""

from __future__ import annotations

import math

from ..model.types import XidEvent
from .common import clamp
from .entities import (
    SWEEP_PERIOD_S,
    NovaServer,
    Pod,
    SimGpu,
    SlurmJob,
)


class GpuSimMixin:
    """GPU state over time; mixed into :class:`~sovtui.demo.cluster.DemoCluster`."""

    # -- storylines --------------------------------------------------------------------------
    def _storyline_events(self, prev: float, now: float) -> None:
        story = self._story
        hot = self._hot
        hot.heat_c = 27.0 * clamp((now - story.hot_from) / 240.0, 0.0, 1.0)
        while self._ecc_events and self._ecc_events[0] + 1.0 <= now:
            at = self._ecc_events.pop(0)
            g = self._gpu(*story.ecc_gpu)
            g.ecc_uncorrected_volatile += 1
            g.ecc_uncorrected_aggregate += 1
            g.row_remap_pending = True
            g.xids.append(XidEvent(94, at, "Contained: SM (0x1). RST: No, D-RST: No"))
            g.xids.append(XidEvent(63, at + 1.0, "Row Remapper: New row marked for remapping, reset gpu to activate."))
            owner = g.owner
            if isinstance(owner, Pod) and owner.phase == "Running":  # the CUDA context died: container restarts
                owner.restarts += 1
                owner.ready = False
                owner.ready_at = at + owner.startup_s
        while self._xid_pending and self._xid_pending[0][0] <= now:
            at, code = self._xid_pending.pop(0)
            g = self._gpu(*story.xid_gpu)
            message = {
                13: "Graphics SM Warp Exception on (GPC 2, TPC 1, SM 0): Out Of Range Address",
                31: "Ch 00000008, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_3 faulted @ 0x7f2a_c4e00000",
                43: "Ch 00000010",
                79: "GPU has fallen off the bus.",
            }[code]
            g.xids.append(XidEvent(code, at, message))
            if code == 79:
                self._lose_gpu(g, at)
        while self._next_sweep <= now:
            self._submit_sweep(self._next_sweep)
            self._next_sweep += SWEEP_PERIOD_S

    def _lose_gpu(self, g: SimGpu, at: float) -> None:
        g.lost = True
        g.util = g.mem_used = g.power = 0.0
        owner = g.owner
        if isinstance(owner, SlurmJob):
            self._slurm_release(owner)
            owner.state = "PENDING"
            owner.reason = "BeginTime"
            owner.requeues += 1
            if owner.end_at is not None:  # restarts from its last checkpoint
                owner.duration_s = clamp(owner.end_at - at, 300.0, 1800.0)
            owner.start_at = owner.end_at = None
        elif isinstance(owner, Pod):
            self._pod_fail(owner, at, "UnexpectedAdmissionError")
        elif isinstance(owner, NovaServer):
            owner.status = "ERROR"
        g.owner = None
        node = self._slurm_nodes.get(g.host)
        if node is not None and not node.drain:
            node.drain = True
            node.reason = f"NHC: GPU {g.index} lost (XID 79)"
            node.reason_at = at

    # -- GPUs --------------------------------------------------------------------------------
    def _step_gpus(self, now: float) -> None:
        """Random walks tied to the workload; every GPU draws six numbers a tick, whatever its state."""
        rnd = self._gpu_rng.random
        wave = math.sin(now / 47.0)
        k = 3.4641016  # uniform noise with unit variance: (u - 0.5) * sqrt(12)
        for host in self._hosts.values():
            util_sum = 0.0
            heavy = False
            for g in host.gpus:
                n1, n2, n3, n4, u1, u2 = (
                    (rnd() - 0.5) * k,
                    (rnd() - 0.5) * k,
                    (rnd() - 0.5) * k,
                    (rnd() - 0.5) * k,
                    rnd(),
                    rnd(),
                )
                if g.lost:
                    continue
                if u2 < g.sbe_rate:
                    g.ecc_corrected += 1
                owner = g.owner
                kind = owner.gpu_kind if owner is not None else ""  # type: ignore[attr-defined]
                load = g.load + 3.0 * n4
                g.load = load = 20.0 if load < 20.0 else 90.0 if load > 90.0 else load
                model = g.model
                total = model.mem_mib
                if kind == "train":
                    heavy = True
                    target = 20.0 if u1 < 0.015 and not g.heat_c else 97.0  # checkpoints; a hot GPU stays hot
                    mem_target = 0.86 * total
                elif kind == "infer":
                    target, mem_target = load, 0.92 * total
                elif kind == "embed":
                    target, mem_target = 0.5 * load, 0.22 * total
                elif kind == "vm":
                    target, mem_target = 0.3 * load + 50.0, 0.55 * total
                else:
                    target = mem_target = 0.0
                if target > 0:
                    util = g.util + 0.5 * (target - g.util) + 2.0 * n1
                    util = 1.0 if util < 1.0 else 100.0 if util > 100.0 else util
                else:
                    util = g.util * 0.3 if g.util > 0.5 else 0.0
                g.util = util
                util_sum += util
                mem_util = 0.45 * util + 2.0 * n4 if util > 0 else 0.0
                g.mem_util = 0.0 if mem_util < 0.0 else 100.0 if mem_util > 100.0 else mem_util
                mem = g.mem_used + 0.6 * (mem_target - g.mem_used) + (150.0 * n3 if kind == "train" else 0.0)
                g.mem_used = 0.0 if mem < 1.0 else total if mem > total else mem
                temp_target = 31.0 + g.bias_c + 0.42 * util + g.heat_c
                cap = model.slowdown_c - 0.8 + wave
                capped = temp_target > cap
                if capped:
                    temp_target = cap
                g.temp = min(model.shutdown_c - 3.0, g.temp + 0.35 * (temp_target - g.temp) + 0.3 * n2)
                power = model.idle_w + (model.power_limit_w * 0.93 - model.idle_w) * util / 100.0 + 8.0 * n3
                if capped:
                    power *= 0.8
                g.power = power = min(max(power, model.idle_w * 0.8), model.power_limit_w)
                if util < 1.0 and not kind:
                    g.throttle = ("gpu_idle",)
                elif g.temp >= model.slowdown_c - 4.0:
                    g.throttle = ("sw_thermal", "hw_thermal") if g.temp >= model.slowdown_c else ("sw_thermal",)
                elif power >= 0.97 * model.power_limit_w:
                    g.throttle = ("sw_power_cap",)
                else:
                    g.throttle = ()
            host.util_mean = util_sum / len(host.gpus)
            host.heavy = heavy
