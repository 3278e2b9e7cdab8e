"""Provides tests of the one host-name check, and of every entry point that hands a name from the cluster to ssh or a remote command."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sovtui.config import SiteConfig, SlurmConfig, SshConfig
from sovtui.model.types import KubeNode, NovaHost, SourceData
from sovtui.sources.hosts import HostsSource
from sovtui.sources.names import BadName, check_host_name, is_host_name, shown, ssh_argv
from sovtui.sources.slurm import NodeUnknown, SlurmSource

#: names a hostile or broken inventory might hold
HOSTILE = [
    "-oProxyCommand=touch /tmp/x",
    "-oProxyCommand=touch${IFS}/tmp/x",
    "-F/etc/passwd",
    "gpu01 -oProxyCommand=x",
    "gpu01;touch /tmp/x",
    "gpu01&&reboot",
    "gpu01|sh",
    "$(touch /tmp/x)",
    "`id`",
    "gpu01\nProxyCommand touch /tmp/x",
    "gpu01\r",
    "gpu01\x00",
    "gpu\t01",
    "user@gpu01",
    "gpu01:22",
    "%h",
    "gpü01",
    "gpu01..dc",
    ".gpu01",
    "",
    "a" * 254,
    "'gpu01'",
]


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_names_are_refused_with_a_reason(name):
    assert not is_host_name(name)
    with pytest.raises(BadName, match=r"^refused host name .+: .+"):
        check_host_name(name)
    assert shown(name) == ascii(name) and "\n" not in shown(name) and not is_host_name(shown(name))


@pytest.mark.parametrize(
    "name", ["gpu01", "gpu01.dc.example.org", "GPU-01", "node_7", "10.0.0.7", "a", "gpu01.", "x" * 63 + ".y"]
)
def test_plain_host_names_pass(name):
    assert check_host_name(name) == name and shown(name) == name


def test_the_reason_names_the_problem():
    with pytest.raises(BadName, match="begins with '-'.*ssh option"):
        check_host_name("-oProxyCommand=x")
    with pytest.raises(BadName, match="white space"):
        check_host_name("a b")
    with pytest.raises(BadName, match="control characters"):
        check_host_name("a\x00")
    with pytest.raises(BadName, match="';'"):
        check_host_name("a;b")
    with pytest.raises(BadName, match="not text"):
        check_host_name(7)
    with pytest.raises(BadName, match="refused Slurm node name"):
        check_host_name("-x", "Slurm node")


# ---------------------------------------------------------------------------------- properties
_ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)
_LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_-]{0,20}[A-Za-z0-9_])?", fullmatch=True)


@settings(max_examples=400, deadline=None)
@given(_ANY_TEXT)
def test_a_name_that_passes_can_never_be_an_option_or_shell(name):
    try:
        checked = check_host_name(name)
    except BadName as exc:
        assert "\n" not in str(exc)  # the reason is one line whatever the name holds
        return
    assert checked == name
    assert not name.startswith(("-", "."))
    assert set(name) <= set(string.ascii_letters + string.digits + "._-")
    assert len(name) <= 253


@settings(max_examples=200, deadline=None)
@given(st.lists(_LABEL, min_size=1, max_size=5))
def test_dotted_labels_pass(labels):
    name = ".".join(labels)
    if len(name) <= 253:
        assert check_host_name(name) == name


@settings(max_examples=200, deadline=None)
@given(_LABEL, st.sampled_from(list(" \t\n\r\x00;|&$`'\"\\<>(){}*?!#~%@:/=,[]")), _LABEL)
def test_one_bad_character_anywhere_is_refused(left, bad, right):
    for name in (left + bad + right, bad + left, left + bad, "-" + left):
        with pytest.raises(BadName):
            check_host_name(name)


@settings(max_examples=200, deadline=None)
@given(_ANY_TEXT)
def test_shown_is_one_printable_line(name):
    text = shown(name)
    assert text.isprintable() and text.isascii()


# ---------------------------------------------------------------------------------- entry points
@pytest.mark.parametrize("name", HOSTILE[:10], ids=repr)
def test_interactive_ssh_argv_refuses_and_puts_the_name_after_double_dash(name):
    with pytest.raises(BadName):
        ssh_argv(name)
    assert ssh_argv("gpu01") == ["ssh", "--", "gpu01"]


async def test_configured_hostile_hosts_are_parts_that_fail_and_are_never_connected():
    source = HostsSource(
        SiteConfig("lab", ssh=SshConfig(hosts=("gpu01;touch /tmp/x", "-oProxyCommand=x"))),
        ssh_config="/nonexistent/ssh_config",
    )
    assert source.hosts == (ascii("gpu01;touch /tmp/x"), ascii("-oProxyCommand=x"))
    data = await source.fetch()
    assert [p.ok for p in data.parts] == [False, False]
    assert all(p.error.startswith("refused host name") for p in data.parts)
    assert [h.name for h in data.gpu_hosts] == list(source.hosts)
    assert all(source.stats(name)["connects"] == 0 for name in source.hosts)
    await source.aclose()


async def test_discovered_hostile_names_are_refused_never_connected():
    source = HostsSource(
        SiteConfig("lab", ssh=SshConfig(discover=("kubernetes", "nova"))), ssh_config="/nonexistent/ssh_config"
    )
    kube = SourceData(
        kube_nodes=(KubeNode("-oProxyCommand=touch /tmp/x", gpu_capacity=8), KubeNode("gpu02\nHost *", gpu_capacity=8))
    )
    assert source.observe("kubernetes", kube)
    nova = SourceData(nova_hosts=(NovaHost("$(reboot)", gpu_inventory=(("PGPU", 8, 0),)),))
    assert source.observe("openstack", nova)
    # Nova names a host Kubernetes named already: the hosts do not change, no extra poll
    same = SourceData(
        nova_hosts=(
            NovaHost("$(reboot)", gpu_inventory=(("PGPU", 8, 0),)),
            NovaHost("gpu02\nHost *", gpu_inventory=(("PGPU", 8, 0),)),
        )
    )
    assert not source.observe("openstack", same)
    assert source.hosts == (ascii("-oProxyCommand=touch /tmp/x"), ascii("gpu02\nHost *"), ascii("$(reboot)"))
    data = await source.fetch()
    assert not any(p.ok for p in data.parts) and all("refused host name" in p.error for p in data.parts)
    assert all(source.stats(name)["connects"] == 0 for name in source.hosts)
    await source.aclose()


def test_slurm_login_host_must_be_a_host_name():
    with pytest.raises(BadName):
        SlurmSource(SiteConfig("lab", slurm=SlurmConfig(host="-oProxyCommand=touch /tmp/x")))


@pytest.mark.parametrize(
    "name", ["-x", "gpu01 state=resume", "gpu01\nreboot", "gpu[01-04]", "gpu01,gpu02", "$(id)"], ids=repr
)
async def test_slurm_commands_refuse_node_names_before_anything_runs(name):
    source = SlurmSource(SiteConfig("lab", slurm=SlurmConfig(host="login1")), ssh_config="/nonexistent/ssh_config")
    with pytest.raises(NodeUnknown, match="not a Slurm node name: refused Slurm node name"):
        await source.drain(name, "maintenance")
    with pytest.raises(NodeUnknown):
        await source.read_node(name)
    with pytest.raises(NodeUnknown):
        await source.undrain(name)
    assert source.login.conn is None  # nothing was connected to
