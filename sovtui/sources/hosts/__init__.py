"""Provides the SSH fleet source: GPUs and GPU hosts read by a probe kept resident on every host.

Modules: :mod:`.answer` reads the probe's answers into model objects, :mod:`.ssh_config` resolves
each host through the ssh config, :mod:`.link` is the connection to one host and its probe,
:mod:`.stages` names what failed on the way to a host, and :mod:`.source` is :class:`HostsSource`.
asyncssh is imported only once a host is connected to.
"""

from .answer import HostMemory, ProbeError, host_from_answer, parse_answer, pci_key, workload_of
from .source import HostsSource

__all__ = ["HostMemory", "HostsSource", "ProbeError", "host_from_answer", "parse_answer", "pci_key", "workload_of"]
