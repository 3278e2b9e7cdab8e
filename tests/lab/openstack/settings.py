"""Provides the lab cloud's fixed facts: the releases it runs, its credentials, hosts, flavors, image and network."""

COMPONENT = "openstack"
REQUIREMENTS = (
    "keystone==30.0.0",
    "openstack-placement==16.0.0",
    "nova==34.0.0",
    "glance==33.0.0",
    "neutron==29.0.0",
    "gunicorn",
)
#: console scripts whose presence says the venv is complete
VENV_SCRIPTS = ("nova-compute", "glance-manage", "neutron-rpc-server", "neutron-metadata-agent", "gunicorn")
ADMIN_PASSWORD = "lab-admin-secret"
REGION = "RegionOne"
#: the fake hypervisors: one nova-compute process (``host =``) each
COMPUTE_HOSTS = ("gpu01", "gpu02")  # also Slurm lab nodes: one host in every layer
#: flavors the lab creates: name -> (vcpus, ram MiB, extra specs)
FLAVORS = {
    "lab.small": (1, 512, {}),
    "lab.gpu.a100": (8, 16384, {"pci_passthrough:alias": "a100:1"}),
    "lab.vgpu": (4, 8192, {"resources:VGPU": "1"}),
}
#: the vGPU inventory the lab puts under the first compute node (a child resource provider)
VGPU_TOTAL = 4
#: the network hosts: one neutron-metadata-agent (``host =``) each
NETWORK_HOSTS = ("lab-net-1", "lab-net-2")
#: Neutron agents report every REPORT_INTERVAL_S and are dead after AGENT_DOWN_TIME_S without a report
REPORT_INTERVAL_S = 2
AGENT_DOWN_TIME_S = 10
#: the image Glance holds (raw/bare, a few bytes: the fake virt driver never reads it)
IMAGE_NAME = "lab-tiny"
IMAGE_DATA = b"sovtui lab image\n"
#: a provider network the lab creates (in Neutron's database only)
NETWORK_NAME = "lab-provider"
