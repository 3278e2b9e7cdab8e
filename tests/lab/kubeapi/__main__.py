"""Provides the fake API server's process entry point: ``python -m tests.lab.kubeapi CONFIG.json``."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import sys
import time
from pathlib import Path

from aiohttp import web

from . import kueue
from .controllers.manager import Controllers
from .seed.big import big_cluster
from .seed.gpu import gpu_cluster
from .server.app import ApiServer
from .server.auth import User
from .store import Store


async def serve(cfg: dict) -> None:
    t0 = time.perf_counter()
    store = Store(history=int(cfg.get("history", 1000)))
    now = time.time()
    seed = cfg.get("seed", {"kind": "gpu"})
    # Kueue's CRDs are installed where the seed has Kueue objects: the GPU cluster unless told otherwise
    with_kueue = bool(seed.get("kueue", seed["kind"] == "gpu"))
    if seed["kind"] == "drain":
        from .drainseed import drain_cluster

        objects = drain_cluster(now, slow_pods=int(seed.get("slow_pods", 0)), slow_s=float(seed.get("slow_s", 2.0)))
    elif seed["kind"] == "big":
        objects = big_cluster(
            now, nodes=int(seed.get("nodes", 1000)), pods=int(seed.get("pods", 20000)), seed=int(seed.get("seed", 1))
        )
    else:
        objects = gpu_cluster(now, kueue=with_kueue)
    for plural, obj in objects:
        store.load(plural, obj)
    store.seal()
    controllers = Controllers(
        store, start_delay=float(cfg.get("start_delay_s", 0.15)), stop_delay=float(cfg.get("stop_delay_s", 0.1))
    )
    controllers.start()
    users = {
        token: User(u["name"], tuple(u.get("groups", ())), tuple(u.get("rules", ())))
        for token, u in cfg["users"].items()
    }
    port = int(cfg["port"])
    server = ApiServer(
        store,
        controllers,
        users,
        control_token=cfg["control_token"],
        bookmark_s=float(cfg.get("bookmark_s", 1.0)),
        address=f"127.0.0.1:{port}",
        crd_groups=frozenset({kueue.GROUP}) if with_kueue else frozenset(),
    )
    ssl_context = None
    if cfg.get("tls"):
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(cfg["tls"]["cert"], cfg["tls"]["key"])
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context, shutdown_timeout=0.5, backlog=512)
    await site.start()
    print(
        f"kubeapi: {len(objects)} objects, serving on 127.0.0.1:{port} after {time.perf_counter() - t0:.2f}s",
        flush=True,
    )
    Path(cfg["ready_file"]).write_text(str(port), encoding="utf-8")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for handle in list(server.watches):
        handle.watcher.close()
    await runner.cleanup()


def main(argv: list[str]) -> int:
    cfg = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    asyncio.run(serve(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
