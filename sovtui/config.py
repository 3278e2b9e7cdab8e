"""Provides the site configuration: a TOML file in the XDG config dir, validated into dataclasses."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

APP_NAME = "sovtui"


class ConfigError(Exception):
    """A config problem, printed as one line naming the file, the key and what was expected."""

    def __init__(self, path: Path | str | None, key: str, message: str) -> None:
        self.path = str(path) if path else "<config>"
        self.key = key
        self.message = message
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)


def xdg_dir(kind: str) -> Path:
    """``config`` | ``state`` | ``cache`` dir for sovtui, following the XDG base dir spec."""
    env, default = {
        "config": ("XDG_CONFIG_HOME", "~/.config"),
        "state": ("XDG_STATE_HOME", "~/.local/state"),
        "cache": ("XDG_CACHE_HOME", "~/.cache"),
    }[kind]
    base = os.environ.get(env) or os.path.expanduser(default)
    return Path(base) / APP_NAME


@dataclass(frozen=True)
class MetricMap:
    """Metric and label names of the exporters a site runs; every one can be overridden.

    Defaults follow dcgm-exporter, the ceph-mgr prometheus module, snmp_exporter's IF-MIB
    module, prometheus-slurm-exporter and Kueue.
    """

    # dcgm-exporter
    gpu_util: str = "DCGM_FI_DEV_GPU_UTIL"
    gpu_mem_copy_util: str = "DCGM_FI_DEV_MEM_COPY_UTIL"
    gpu_fb_used: str = "DCGM_FI_DEV_FB_USED"
    gpu_fb_free: str = "DCGM_FI_DEV_FB_FREE"
    gpu_temp: str = "DCGM_FI_DEV_GPU_TEMP"
    gpu_power: str = "DCGM_FI_DEV_POWER_USAGE"
    gpu_power_limit: str = "DCGM_FI_DEV_POWER_MGMT_LIMIT"
    gpu_xid: str = "DCGM_FI_DEV_XID_ERRORS"
    gpu_ecc_dbe_vol: str = "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"
    gpu_ecc_sbe_vol: str = "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"
    gpu_row_remap_failure: str = "DCGM_FI_DEV_ROW_REMAP_FAILURE"
    gpu_row_remap_pending: str = "DCGM_FI_DEV_ROW_REMAP_PENDING"
    gpu_label_host: str = "Hostname"
    gpu_label_index: str = "gpu"
    gpu_label_uuid: str = "UUID"
    gpu_label_model: str = "modelName"
    gpu_label_pod: str = "pod"
    gpu_label_namespace: str = "namespace"
    # ceph-mgr prometheus module
    ceph_health: str = "ceph_health_status"
    ceph_health_detail: str = "ceph_health_detail"
    ceph_total_bytes: str = "ceph_cluster_total_bytes"
    ceph_used_bytes: str = "ceph_cluster_total_used_bytes"
    ceph_pool_stored: str = "ceph_pool_stored"
    ceph_pool_max_avail: str = "ceph_pool_max_avail"
    ceph_pool_objects: str = "ceph_pool_objects"
    ceph_pool_metadata: str = "ceph_pool_metadata"
    ceph_osd_up: str = "ceph_osd_up"
    ceph_osd_in: str = "ceph_osd_in"
    # snmp_exporter, IF-MIB
    if_oper_status: str = "ifOperStatus"
    if_admin_status: str = "ifAdminStatus"
    if_speed: str = "ifHighSpeed"
    if_in_octets: str = "ifHCInOctets"
    if_out_octets: str = "ifHCOutOctets"
    if_in_errors: str = "ifInErrors"
    if_label_device: str = "instance"
    if_label_name: str = "ifName"
    if_label_alias: str = "ifAlias"
    # job queues
    slurm_pending: str = "slurm_partition_jobs_pending"
    slurm_running: str = "slurm_partition_jobs_running"
    slurm_pending_gpus: str = "slurm_partition_gpus_pending"
    slurm_label_partition: str = "partition"
    kueue_pending: str = "kueue_pending_workloads"
    kueue_admitted: str = "kueue_admitted_active_workloads"
    kueue_label_queue: str = "cluster_queue"
    rate_window: str = "5m"


@dataclass(frozen=True)
class SshConfig:
    """How to reach the site's GPU hosts over SSH (resolved through ~/.ssh/config)."""

    hosts: tuple[str, ...] = ()
    user: str | None = None
    port: int | None = None
    known_hosts: str | None = None  # default: ~/.ssh/known_hosts
    concurrency: int = 64
    timeout_s: float = 10.0
    #: also poll the GPU hosts these layers know: "kubernetes" (nodes with nvidia.com/gpu capacity),
    #: "nova" (compute hosts with VGPU/PGPU inventory in Placement)
    discover: tuple[str, ...] = ()


DISCOVER_FROM = ("kubernetes", "nova")


@dataclass(frozen=True)
class SlurmConfig:
    """How to reach the site's Slurm: a login host (an ssh config alias) where sinfo/squeue/scontrol run."""

    host: str | None = None
    #: run the commands that change something (drain, resume, requeue) under ``sudo -n``
    sudo: bool = False
    #: bound on each command (connect included)
    timeout_s: float = 10.0


@dataclass(frozen=True)
class SiteConfig:
    """One site: which backends it has and how to reach them."""

    name: str
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    kube_context: str | None = None
    openstack_cloud: str | None = None
    production: bool = False
    read_only: bool = False
    refresh_s: float = 10.0
    timeout_s: float = 5.0
    ssh: SshConfig = field(default_factory=SshConfig)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    metrics: MetricMap = field(default_factory=MetricMap)


@dataclass(frozen=True)
class Config:
    """The whole config file."""

    path: Path | None
    default_site: str | None
    sites: dict[str, SiteConfig]

    def site(self, name: str | None) -> SiteConfig:
        chosen = name or self.default_site or (next(iter(self.sites)) if len(self.sites) == 1 else None)
        if chosen is None:
            if not self.sites:
                raise ConfigError(self.path, "sites", "no site is configured (add a [sites.NAME] table or use --demo)")
            raise ConfigError(
                self.path, "default_site", f"not set; choose one of {', '.join(sorted(self.sites))} with --site"
            )
        if chosen not in self.sites:
            key = "--site" if name else "default_site"
            raise ConfigError(
                self.path, key, f"no site named {chosen!r} (known: {', '.join(sorted(self.sites)) or 'none'})"
            )
        return self.sites[chosen]


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """``$SOVTUI_CONFIG``, else ``--config``, else ``$XDG_CONFIG_HOME/sovtui/config.toml``."""
    env = os.environ.get("SOVTUI_CONFIG")
    if env:
        return Path(env).expanduser()
    if explicit:
        return Path(explicit).expanduser()
    return xdg_dir("config") / "config.toml"


def load_config(explicit: str | os.PathLike | None = None, *, required: bool = False) -> Config:
    """Read and validate the config file; a missing default file gives an empty config."""
    path = config_path(explicit)
    if not path.exists():
        if required or explicit or os.environ.get("SOVTUI_CONFIG"):
            raise ConfigError(path, "", "file not found")
        return Config(path=None, default_site=None, sites={})
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read ({exc.strerror})") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path | None = None) -> Config:
    """Validate an already-parsed TOML document."""
    _only_keys(raw, {"default_site", "sites"}, "", path)
    default_site = raw.get("default_site")
    if default_site is not None and not isinstance(default_site, str):
        raise ConfigError(path, "default_site", f"expected a string, got {_tname(default_site)}")
    sites_raw = raw.get("sites", {})
    if not isinstance(sites_raw, dict):
        raise ConfigError(path, "sites", f"expected a table of sites, got {_tname(sites_raw)}")
    sites = {}
    for name, body in sites_raw.items():
        if not isinstance(body, dict):
            raise ConfigError(path, f"sites.{name}", f"expected a table, got {_tname(body)}")
        sites[name] = _parse_site(name, body, path)
    if default_site is not None and default_site not in sites:
        raise ConfigError(
            path,
            "default_site",
            f"names {default_site!r}, which is not under [sites] (known: {', '.join(sorted(sites)) or 'none'})",
        )
    return Config(path=path, default_site=default_site, sites=sites)


_SITE_TYPES: dict[str, tuple[type, ...]] = {
    "prometheus_url": (str,),
    "alertmanager_url": (str,),
    "kube_context": (str,),
    "openstack_cloud": (str,),
    "production": (bool,),
    "read_only": (bool,),
    "refresh_s": (int, float),
    "timeout_s": (int, float),
}


def _parse_site(name: str, body: dict, path: Path | None) -> SiteConfig:
    prefix = f"sites.{name}"
    _only_keys(body, set(_SITE_TYPES) | {"ssh", "slurm", "metrics"}, prefix, path)
    values: dict[str, Any] = {}
    for key, types in _SITE_TYPES.items():
        if key in body:
            values[key] = _typed(body[key], types, f"{prefix}.{key}", path)
    for key in ("prometheus_url", "alertmanager_url"):
        url = values.get(key)
        if url is not None and not _is_http_url(url):
            raise ConfigError(path, f"{prefix}.{key}", f"expected an http:// or https:// URL, got {url!r}")
    for key in ("refresh_s", "timeout_s"):
        if key in values and not 0 < values[key] < math.inf:
            raise ConfigError(path, f"{prefix}.{key}", f"expected a positive number of seconds, got {values[key]!r}")
    ssh = _parse_ssh(body.get("ssh", {}), f"{prefix}.ssh", path)
    slurm = _parse_slurm(body.get("slurm", {}), f"{prefix}.slurm", path)
    metrics = _parse_metrics(body.get("metrics", {}), f"{prefix}.metrics", path)
    return SiteConfig(name=name, ssh=ssh, slurm=slurm, metrics=metrics, **values)


def _parse_ssh(body: Any, prefix: str, path: Path | None) -> SshConfig:
    if not isinstance(body, dict):
        raise ConfigError(path, prefix, f"expected a table, got {_tname(body)}")
    _only_keys(body, {"hosts", "user", "port", "known_hosts", "concurrency", "timeout_s", "discover"}, prefix, path)
    values: dict[str, Any] = {}
    if "hosts" in body:
        hosts = body["hosts"]
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
            raise ConfigError(path, f"{prefix}.hosts", "expected a list of host names (strings)")
        values["hosts"] = tuple(hosts)
    if "discover" in body:
        discover = body["discover"]
        if not isinstance(discover, list) or not all(isinstance(d, str) and d in DISCOVER_FROM for d in discover):
            raise ConfigError(
                path,
                f"{prefix}.discover",
                f"expected a list of {' and '.join(map(repr, DISCOVER_FROM))}, got {discover!r}",
            )
        values["discover"] = tuple(dict.fromkeys(discover))
    for key, types in (
        ("user", (str,)),
        ("known_hosts", (str,)),
        ("port", (int,)),
        ("concurrency", (int,)),
        ("timeout_s", (int, float)),
    ):
        if key in body:
            values[key] = _typed(body[key], types, f"{prefix}.{key}", path)
    if "port" in values and not 0 < values["port"] < 65536:
        raise ConfigError(path, f"{prefix}.port", f"expected a TCP port 1-65535, got {values['port']}")
    if "concurrency" in values and values["concurrency"] < 1:
        raise ConfigError(path, f"{prefix}.concurrency", f"expected at least 1, got {values['concurrency']}")
    if "timeout_s" in values and not 0 < values["timeout_s"] < math.inf:
        raise ConfigError(
            path, f"{prefix}.timeout_s", f"expected a positive number of seconds, got {values['timeout_s']!r}"
        )
    return SshConfig(**values)


def _parse_slurm(body: Any, prefix: str, path: Path | None) -> SlurmConfig:
    if not isinstance(body, dict):
        raise ConfigError(path, prefix, f"expected a table, got {_tname(body)}")
    _only_keys(body, {"host", "sudo", "timeout_s"}, prefix, path)
    values: dict[str, Any] = {}
    for key, types in (("host", (str,)), ("sudo", (bool,)), ("timeout_s", (int, float))):
        if key in body:
            values[key] = _typed(body[key], types, f"{prefix}.{key}", path)
    host = values.get("host")
    if host is not None and (
        not host.strip() or host != host.strip() or any(c.isspace() for c in host) or host.startswith("-")
    ):
        raise ConfigError(path, f"{prefix}.host", f"expected an ssh host name or alias, got {host!r}")
    if "timeout_s" in values and not 0 < values["timeout_s"] < math.inf:
        raise ConfigError(
            path, f"{prefix}.timeout_s", f"expected a positive number of seconds, got {values['timeout_s']!r}"
        )
    if ("sudo" in values or "timeout_s" in values) and host is None:
        raise ConfigError(path, f"{prefix}.host", "missing: name the login host where the Slurm commands run")
    return SlurmConfig(**values)


def _parse_metrics(body: Any, prefix: str, path: Path | None) -> MetricMap:
    if not isinstance(body, dict):
        raise ConfigError(path, prefix, f"expected a table, got {_tname(body)}")
    known = {f.name for f in fields(MetricMap)}
    _only_keys(body, known, prefix, path)
    for key, value in body.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(path, f"{prefix}.{key}", f"expected a metric or label name (string), got {_tname(value)}")
    return MetricMap(**body)


def _is_http_url(url: str) -> bool:
    try:
        return url.startswith(("http://", "https://")) and bool(urlsplit(url).hostname)
    except ValueError:  # e.g. an unbalanced [ in an IPv6 host
        return False


def _typed(value: Any, types: tuple[type, ...], key: str, path: Path | None) -> Any:
    # bool is an int in Python; a number key must not accept true/false
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(path, key, f"expected {_names(types)}, got a boolean")
    if not isinstance(value, types):
        raise ConfigError(path, key, f"expected {_names(types)}, got {_tname(value)}")
    return value


def _only_keys(body: dict, allowed: set[str], prefix: str, path: Path | None) -> None:
    for key in body:
        if key not in allowed:
            full = f"{prefix}.{key}" if prefix else key
            raise ConfigError(path, full, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def _names(types: tuple[type, ...]) -> str:
    words = {str: "a string", bool: "true or false", int: "a number", float: "a number"}
    return " or ".join(dict.fromkeys(words[t] for t in types))


def _tname(value: Any) -> str:
    return {
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
