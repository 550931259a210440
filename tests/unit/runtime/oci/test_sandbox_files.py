"""Per-pod /etc files (hosts with hostAliases, resolv.conf) and cgroup reading on fake v1/v2
trees (no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kybern.runtime import cri
from kybern.runtime.oci import cgroups, rootfs, sandbox

pytestmark = pytest.mark.timeout(10)

META = cri.PodMeta(name="web", namespace="ns", uid="u1")


class TestHosts:
    def test_pod_ip_and_hostname(self) -> None:
        text = sandbox.hosts_file(cri.PodSandboxConfig(metadata=META), "10.42.0.5")
        assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
        assert "10.42.0.5\tweb\n" in text

    def test_host_aliases(self) -> None:
        config = cri.PodSandboxConfig(
            metadata=META,
            hostname="h",
            host_aliases=(cri.HostAlias("1.2.3.4", ("foo", "bar")),),
        )
        text = sandbox.hosts_file(config, "10.0.0.1")
        assert text.endswith("# Entries added by HostAliases.\n1.2.3.4\tfoo\tbar\n")
        assert "10.0.0.1\th\n" in text

    def test_no_ip_yet(self) -> None:
        assert "web" not in sandbox.hosts_file(cri.PodSandboxConfig(metadata=META), "")


class TestResolvConf:
    def test_from_dns_config(self) -> None:
        dns = cri.DNSConfig(
            servers=("10.43.0.10",),
            searches=("ns.svc.cluster.local", "svc.cluster.local"),
            options=("ndots:5",),
        )
        assert sandbox.resolv_conf(dns, "host") == (
            "nameserver 10.43.0.10\nsearch ns.svc.cluster.local svc.cluster.local\n"
            "options ndots:5\n"
        )

    def test_default_policy_uses_the_host_file(self) -> None:
        assert sandbox.resolv_conf(None, "nameserver 1.1.1.1\n") == "nameserver 1.1.1.1\n"

    def test_written_files(self, tmp_path: Path) -> None:
        pairs = sandbox.write_files(tmp_path, cri.PodSandboxConfig(metadata=META), "10.1.1.1")
        assert [c for c, _ in pairs] == ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
        assert (tmp_path / "hostname").read_text() == "web\n"


class TestRootfsOptions:
    def test_lowerdir_top_layer_first(self, tmp_path: Path) -> None:
        got = rootfs.options([Path("/l/base"), Path("/l/top")], Path("/u"), Path("/w"))
        assert got == "lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w"

    def test_image_files_never_follow_symlinks(self, tmp_path: Path) -> None:
        (tmp_path / "etc").mkdir()
        (tmp_path / "etc" / "passwd").symlink_to("/etc/shadow")
        assert rootfs.read_file(tmp_path, "/etc/passwd") == ""


class TestCgroups:
    def test_pod_parent(self) -> None:
        assert cgroups.pod_parent("", "u1") == "/kybern/podu1"
        assert cgroups.pod_parent("kubepods/burstable/podu1", "u1") == "/kubepods/burstable/podu1"
        assert cgroups.container_path("/kybern/podu1", "c1") == "/kybern/podu1/c1"

    def test_v1_usage_and_oom(self, tmp_path: Path) -> None:
        memory = tmp_path / "memory" / "p" / "c"
        cpuacct = tmp_path / "cpuacct" / "p" / "c"
        memory.mkdir(parents=True)
        cpuacct.mkdir(parents=True)
        (cpuacct / "cpuacct.usage").write_text("123456\n")
        (memory / "memory.usage_in_bytes").write_text("1000\n")
        (memory / "memory.stat").write_text("total_inactive_file 300\ntotal_rss 600\n")
        (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
        assert cgroups.usage("/p/c", tmp_path) == cgroups.Usage(123456, 700, 600)
        assert cgroups.oom_kills("/p/c", tmp_path) == 1
        assert sorted(d.parent.parent.name for d in cgroups.directories("/p/c", tmp_path)) == [
            "cpuacct",
            "memory",
        ]

    def test_v2_usage_and_oom(self, tmp_path: Path) -> None:
        (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
        base = tmp_path / "p" / "c"
        base.mkdir(parents=True)
        (base / "cpu.stat").write_text("usage_usec 5\nuser_usec 3\n")
        (base / "memory.current").write_text("2000\n")
        (base / "memory.stat").write_text("anon 900\ninactive_file 500\n")
        (base / "memory.events").write_text("low 0\nhigh 0\nmax 2\noom 1\noom_kill 2\n")
        assert cgroups.usage("/p/c", tmp_path) == cgroups.Usage(5000, 1500, 900)
        assert cgroups.oom_kills("/p/c", tmp_path) == 2

    def test_remove_children_first(self, tmp_path: Path) -> None:
        (tmp_path / "memory" / "p" / "c" / "d").mkdir(parents=True)
        cgroups.remove("/p", tmp_path)
        assert not (tmp_path / "memory" / "p").exists()

    def test_missing_cgroup_reads_as_zero(self, tmp_path: Path) -> None:
        assert cgroups.usage("/nope", tmp_path) == cgroups.Usage()
        assert cgroups.oom_kills("/nope", tmp_path) == 0
