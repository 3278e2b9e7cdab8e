"""Provides the Kubernetes lab: fake API servers in their own processes, with TLS, tokens, RBAC users and a kubeconfig."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import secrets
import ssl
import sys
import textwrap
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..procs import Daemon, free_port, start_daemon, wait_until
from .seed.gpu import gpu_cluster
from .seed.truth import Truth, truth_of

REPO = Path(__file__).resolve().parents[3]

#: RBAC of the lab's users, as (Cluster)RoleBindings would grant it
READ_ALL = {"verbs": ["get", "list", "watch"], "apiGroups": ["*"], "resources": ["*"]}
USERS: dict[str, dict] = {
    "admin": {"name": "lab-admin", "groups": ["system:masters", "system:authenticated"]},
    # may read workloads, not nodes (a namespace-team role bound cluster-wide)
    "viewer": {
        "name": "viewer",
        "groups": ["system:authenticated"],
        "rules": [
            {
                "verbs": ["get", "list", "watch"],
                "apiGroups": ["", "apps", "batch", "policy", "events.k8s.io"],
                "resources": [
                    "pods",
                    "events",
                    "namespaces",
                    "deployments",
                    "replicasets",
                    "daemonsets",
                    "jobs",
                    "poddisruptionbudgets",
                ],
            },
        ],
    },
    # may list pods but not watch them
    "lister": {
        "name": "lister",
        "groups": ["system:authenticated"],
        "rules": [
            {
                "verbs": ["get", "list", "watch"],
                "apiGroups": ["*"],
                "resources": [
                    "nodes",
                    "events",
                    "namespaces",
                    "deployments",
                    "replicasets",
                    "daemonsets",
                    "jobs",
                    "poddisruptionbudgets",
                ],
            },
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
        ],
    },
    # everything sovtui reads, except Kueue's objects
    "nokueue": {
        "name": "nokueue",
        "groups": ["system:authenticated"],
        "rules": [
            {
                "verbs": ["get", "list", "watch"],
                "apiGroups": ["", "apps", "batch", "policy", "events.k8s.io"],
                "resources": [
                    "nodes",
                    "pods",
                    "events",
                    "namespaces",
                    "deployments",
                    "replicasets",
                    "daemonsets",
                    "jobs",
                    "poddisruptionbudgets",
                ],
            }
        ],
    },
    # everything sovtui reads, except events
    "noevents": {
        "name": "noevents",
        "groups": ["system:authenticated"],
        "rules": [
            {
                "verbs": ["get", "list", "watch"],
                "apiGroups": ["", "apps", "batch", "policy"],
                "resources": [
                    "nodes",
                    "pods",
                    "namespaces",
                    "deployments",
                    "replicasets",
                    "daemonsets",
                    "jobs",
                    "poddisruptionbudgets",
                ],
            }
        ],
    },
    # reads everything and cordons nodes, but may not evict (no create on pods/eviction)
    "cordoner": {
        "name": "cordoner",
        "groups": ["system:authenticated"],
        "rules": [READ_ALL, {"verbs": ["patch", "update"], "apiGroups": [""], "resources": ["nodes"]}],
    },
}
#: kubeconfig context → user key in USERS (plus "lab-exec": admin through an exec plugin, "lab-badtoken": a token nobody knows)
CONTEXTS = {
    "lab": "admin",
    "lab-viewer": "viewer",
    "lab-lister": "lister",
    "lab-noevents": "noevents",
    "lab-nokueue": "nokueue",
    "lab-cordoner": "cordoner",
}


# ------------------------------------------------------------------------------ TLS
def make_tls(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca.crt, server.crt, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab-kubernetes-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    workdir.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = workdir / "ca.crt", workdir / "apiserver.crt", workdir / "apiserver.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


EXEC_PLUGIN = textwrap.dedent(
    '''\
    """Provides an exec credential plugin for the lab kubeconfig: prints an ExecCredential with the token in argv[1]."""
    import datetime, json, pathlib, sys
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    print(json.dumps({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": pathlib.Path(sys.argv[1]).read_text().strip(), "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }))
    '''
)


# ------------------------------------------------------------------------------ one server
@dataclass
class KubeCluster:
    """One running fake API server: its URL, kubeconfig (contexts ``lab``, ``lab-viewer``, ...), tokens and lab knobs."""

    name: str
    url: str
    kubeconfig: Path
    ca_file: Path
    tokens: dict[str, str]  # user key → bearer token
    control_token: str
    workdir: Path
    daemon: Daemon
    startup_s: float = 0.0
    started_at: float = 0.0  # wall clock when it was serving (its seed is dated from about then)
    _ssl: ssl.SSLContext | None = field(default=None, repr=False)

    def control(self, what: str, method: str = "POST", **query: object) -> dict:
        """Call one of the lab's own knobs (not part of the Kubernetes API): stats, reset-stats, drop-watches, compact."""
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.ca_file))
        qs = "?" + urllib.parse.urlencode(query) if query else ""
        req = urllib.request.Request(
            f"{self.url}/_lab/{what}{qs}",
            method=method,
            headers={"Authorization": f"Bearer {self.control_token}"},
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(req, timeout=10, context=self._ssl) as resp:
            return json.loads(resp.read() or b"{}")

    def stats(self) -> dict:
        return self.control("stats", "GET")

    def reset_stats(self) -> None:
        self.control("reset-stats")

    def drop_watches(self, hold_s: float = 0.0) -> int:
        """Cut every open watch connection (as a load balancer or an apiserver restart would); with ``hold_s``,
        watches made in the next ``hold_s`` seconds are only served after it (the restart takes that long)."""
        return int(self.control("drop-watches", hold=hold_s)["dropped"])

    def faults(self, *, clear: bool = False, **toggles: object) -> dict:
        """Switch the server's per-kind faults (:mod:`.faults`): ``forbidden=["pods"]`` (403 for every user),
        ``unserved=["jobs.batch"]`` (404, gone from discovery), ``unserved_groups=["kueue.x-k8s.io"]``,
        ``reject_tokens=True`` (401); ``clear=True`` first clears them all. Open watches of the kinds touched are cut."""
        return self.control("faults", set=json.dumps({"clear": clear, **toggles}))

    def clear_faults(self) -> dict:
        return self.faults(clear=True)

    def compact(self) -> int:
        """Forget the event history (as etcd compaction does): watches resuming from older versions get 410 Expired."""
        return int(self.control("compact")["rv"])

    def close(self) -> None:
        self.daemon.stop()


def start_cluster(
    workdir: Path, name: str, seed: dict, *, history: int = 1000, bookmark_s: float = 0.5, tls: bool = True
) -> KubeCluster:
    """Start one fake API server process on a free loopback port (HTTPS; plain HTTP with ``tls=False``) and write its kubeconfig."""
    t0 = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_tls(workdir / "pki")
    tokens = {user: secrets.token_hex(16) for user in USERS}
    control_token = secrets.token_hex(16)
    port = free_port()
    ready_file = workdir / "ready"
    ready_file.unlink(missing_ok=True)
    cfg = {
        "port": port,
        "tls": {"cert": str(cert), "key": str(key)} if tls else None,
        "users": {tokens[user]: spec for user, spec in USERS.items()},
        "control_token": control_token,
        "seed": seed,
        "history": history,
        "bookmark_s": bookmark_s,
        "ready_file": str(ready_file),
    }
    cfg_path = workdir / "kubeapi.json"
    cfg_path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    cfg_path.chmod(0o600)
    daemon = start_daemon(
        f"kubeapi-{name}",
        [sys.executable, "-m", "tests.lab.kubeapi", str(cfg_path)],
        workdir,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
    )
    wait_until(ready_file.exists, daemon=daemon, timeout_s=120, what="serving")
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    token_file = workdir / "exec-token"
    token_file.write_text(tokens["admin"], encoding="utf-8")
    token_file.chmod(0o600)
    plugin = workdir / "exec_credential.py"
    plugin.write_text(EXEC_PLUGIN, encoding="utf-8")
    kubeconfig = workdir / "kubeconfig"
    write_kubeconfig(kubeconfig, url, ca, tokens, exec_argv=[sys.executable, str(plugin), str(token_file)])
    return KubeCluster(
        name,
        url,
        kubeconfig,
        ca,
        tokens,
        control_token,
        workdir,
        daemon,
        startup_s=time.perf_counter() - t0,
        started_at=time.time(),
    )


def write_kubeconfig(path: Path, url: str, ca: Path, tokens: dict[str, str], *, exec_argv: list[str]) -> None:
    import base64

    ca_data = base64.b64encode(ca.read_bytes()).decode()
    users = [{"name": f"{ctx}-user", "user": {"token": tokens[user]}} for ctx, user in CONTEXTS.items()]
    users.append(
        {
            "name": "lab-exec-user",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": exec_argv[0],
                    "args": exec_argv[1:],
                    "interactiveMode": "Never",
                    "provideClusterInfo": False,
                }
            },
        }
    )
    users.append({"name": "lab-badtoken-user", "user": {"token": "not-a-token-anyone-knows"}})
    contexts = [
        {"name": ctx, "context": {"cluster": "lab", "user": f"{ctx}-user"}}
        for ctx in [*CONTEXTS, "lab-exec", "lab-badtoken"]
    ]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": url, "certificate-authority-data": ca_data}}],
        "users": users,
        "contexts": contexts,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)


# ------------------------------------------------------------------------------ the lab component
class KubeLab:
    """The ``kubernetes`` lab component: the seeded GPU cluster with Kueue (``main``), its truth, and on demand the same
    cluster without Kueue (``plain``) and big clusters."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.main = start_cluster(workdir / "gpu", "gpu", {"kind": "gpu"})
        self.truth: Truth = truth_of(gpu_cluster(time.time()))
        self._big: dict[tuple[int, int], KubeCluster] = {}
        self._plain: KubeCluster | None = None
        self._drain: dict[tuple[int, float], KubeCluster] = {}
        self._faulty: KubeCluster | None = None
        self._lock = threading.Lock()

    # the main cluster's essentials, for brevity in tests
    @property
    def url(self) -> str:
        return self.main.url

    @property
    def kubeconfig(self) -> Path:
        return self.main.kubeconfig

    def plain(self) -> KubeCluster:
        """The same GPU cluster without Kueue (no CRDs, no queue labels, no suspended Jobs), as most clusters are;
        in its own server process, started once."""
        with self._lock:
            if self._plain is None:
                self._plain = start_cluster(self.workdir / "gpu-plain", "gpu-plain", {"kind": "gpu", "kueue": False})
            return self._plain

    def big(self, nodes: int = 1000, pods: int = 20000) -> KubeCluster:
        """A generated cluster of ``nodes`` 8-GPU nodes and ``pods`` pods in its own server process (started once)."""
        with self._lock:
            key = (nodes, pods)
            if key not in self._big:
                self._big[key] = start_cluster(
                    self.workdir / f"big-{nodes}-{pods}", f"big-{nodes}", {"kind": "big", "nodes": nodes, "pods": pods}
                )
            return self._big[key]

    def drain(self, slow_pods: int = 0, slow_s: float = 2.0) -> KubeCluster:
        """The drain cluster (:mod:`.drainseed`: every kind of pod ``kubectl drain`` tells apart, budgets, a StatefulSet),
        with ``slow_pods`` pods on node ``drain-slow`` that take ``slow_s`` s each to terminate; its own process, started once."""
        with self._lock:
            key = (slow_pods, slow_s)
            if key not in self._drain:
                self._drain[key] = start_cluster(
                    self.workdir / f"drain-{slow_pods}-{slow_s:g}",
                    f"drain-{slow_pods}",
                    {"kind": "drain", "slow_pods": slow_pods, "slow_s": slow_s},
                )
            return self._drain[key]

    def faulty(self) -> KubeCluster:
        """The GPU cluster (with Kueue) over plain HTTP, for the fault matrix: a FaultProxy before it can then answer
        HTTP of its own (garbage, wrong types, an endless body), and its per-kind toggles (:meth:`KubeCluster.faults`)
        touch no other test's cluster. Its own process, started once."""
        with self._lock:
            if self._faulty is None:
                self._faulty = start_cluster(self.workdir / "gpu-faulty", "gpu-faulty", {"kind": "gpu"}, tls=False)
            return self._faulty

    def close(self) -> None:
        for cluster in [
            *self._big.values(),
            *self._drain.values(),
            *([self._plain] if self._plain else []),
            *([self._faulty] if self._faulty else []),
            self.main,
        ]:
            cluster.close()


def start_kubeapi(workdir: Path) -> KubeLab:
    """Start the lab's Kubernetes API server (the GPU cluster) and return its handle."""
    return KubeLab(workdir)
