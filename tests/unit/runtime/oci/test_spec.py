"""OCI spec generation: argv and env rules, users and runAsNonRoot, namespaces, mounts,
capabilities, resources and masked paths (pure: no containers run)."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.runtime import cri
from kybern.runtime.images import model
from kybern.runtime.oci import spec

pytestmark = pytest.mark.timeout(10)

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101::/:/bin/false\napp:x:1000:1000::/:/bin/sh\n"
)
GROUP = "root:x:0:\nnginx:x:101:\nstaff:x:50:app,nginx\nweb:x:33:\n"
SANDBOX = cri.PodSandboxConfig(metadata=cri.PodMeta(name="web", namespace="ns", uid="u1"))
PLACE = spec.Placement(
    rootfs="/b/rootfs",
    cgroups_path="/kybern/podu1/c1",
    netns="/run/netns/kybern-s",
    ipcns="/s/ipc",
    utsns="/s/uts",
    etc_files=(("/etc/hosts", "/s/hosts"), ("/etc/resolv.conf", "/s/resolv.conf")),
    init="/usr/bin/tini-static",
    passwd=PASSWD,
    group=GROUP,
)


def container(**options: Any) -> cri.ContainerConfig:
    return cri.ContainerConfig(metadata=cri.ContainerMeta("app"), image="img", **options)


def generate(
    config: cri.ContainerConfig | None = None,
    image: model.ImageConfig | None = None,
    sandbox: cri.PodSandboxConfig = SANDBOX,
    place: spec.Placement = PLACE,
) -> dict[str, Any]:
    return spec.generate(
        config or container(command=("true",)), sandbox, image or model.ImageConfig(), place
    )


class TestArgv:
    IMAGE = model.ImageConfig(entrypoint=("/entry",), cmd=("default",))

    @pytest.mark.parametrize(
        ("command", "args", "expected"),
        [
            ((), (), ["/entry", "default"]),
            ((), ("x",), ["/entry", "x"]),
            (("/bin/cmd",), (), ["/bin/cmd"]),
            (("/bin/cmd",), ("a", "b"), ["/bin/cmd", "a", "b"]),
        ],
    )
    def test_kubernetes_rules(
        self, command: tuple[str, ...], args: tuple[str, ...], expected: list[str]
    ) -> None:
        assert spec.argv(container(command=command, args=args), self.IMAGE) == expected

    def test_runs_under_tini(self) -> None:
        assert generate()["process"]["args"] == [spec.INIT_PATH, "--", "true"]

    def test_tini_is_a_subreaper_in_a_shared_pid_namespace(self) -> None:
        place = spec.Placement(rootfs="/r", cgroups_path="/c", pidns="/s/pid", init="/tini")
        assert generate(place=place)["process"]["args"][:3] == [spec.INIT_PATH, "-s", "--"]

    def test_without_init_the_app_is_pid1(self) -> None:
        place = spec.Placement(rootfs="/r", cgroups_path="/c")
        assert generate(place=place)["process"]["args"] == ["true"]

    def test_no_command_at_all_is_an_error(self) -> None:
        with pytest.raises(cri.RuntimeError_, match="no command specified") as err:
            generate(container())
        assert err.value.reason == "CreateContainerError"


class TestEnvAndCwd:
    def test_image_env_then_hostname_then_container_env(self) -> None:
        image = model.ImageConfig(env=("PATH=/bin", "A=image", "B=keep"))
        config = container(command=("x",), envs=(("A", "pod"), ("C", "new")))
        env = generate(config, image)["process"]["env"]
        assert env == ["PATH=/bin", "A=pod", "B=keep", "HOSTNAME=web", "C=new"]

    def test_default_path(self) -> None:
        assert f"PATH={spec.DEFAULT_PATH}" in generate()["process"]["env"]

    def test_hostname_from_sandbox_config(self) -> None:
        sandbox = cri.PodSandboxConfig(metadata=SANDBOX.metadata, hostname="h1")
        assert "HOSTNAME=h1" in generate(sandbox=sandbox)["process"]["env"]

    @pytest.mark.parametrize(
        ("working_dir", "image_dir", "expected"),
        [("", "", "/"), ("", "/srv", "/srv"), ("/w", "/srv", "/w")],
    )
    def test_cwd(self, working_dir: str, image_dir: str, expected: str) -> None:
        config = container(command=("x",), working_dir=working_dir)
        image = model.ImageConfig(working_dir=image_dir)
        assert generate(config, image)["process"]["cwd"] == expected


class TestUser:
    def resolve(self, user: str = "", **security: Any) -> spec.User:
        return spec.resolve_user(
            cri.SecurityContext(**security), model.ImageConfig(user=user), PASSWD, GROUP
        )

    def test_default_root(self) -> None:
        assert self.resolve() == spec.User(0, 0)

    def test_numeric_image_user_and_group(self) -> None:
        assert self.resolve("1000:33") == spec.User(1000, 33, (50,))  # app is in staff

    def test_named_image_user_from_passwd_with_groups(self) -> None:
        assert self.resolve("nginx") == spec.User(101, 101, (50,))

    def test_named_group(self) -> None:
        assert self.resolve("app:web") == spec.User(1000, 33, (50,))

    def test_numeric_user_known_in_passwd_gets_its_gid(self) -> None:
        assert self.resolve("1000").gid == 1000

    def test_run_as_user_and_group_win(self) -> None:
        got = self.resolve("nginx", run_as_user=5, run_as_group=6, supplemental_groups=(7,))
        assert got == spec.User(5, 6, (7,))

    def test_unknown_name_is_a_config_error(self) -> None:
        with pytest.raises(spec.ConfigError, match="no users found"):
            self.resolve("nobody")

    def test_generated_user_section(self) -> None:
        config = container(command=("x",), security=cri.SecurityContext(run_as_user=1000))
        assert generate(config)["process"]["user"] == {
            "uid": 1000,
            "gid": 1000,
            "additionalGids": [50],
        }


class TestRunAsNonRoot:
    def check(self, user: str = "", **security: Any) -> None:
        config = container(
            command=("x",), security=cri.SecurityContext(run_as_non_root=True, **security)
        )
        generate(config, model.ImageConfig(user=user))

    def test_root_image_refused_with_kubelet_message(self) -> None:
        with pytest.raises(spec.ConfigError) as err:
            self.check()
        assert str(err.value) == (
            "container has runAsNonRoot and image will run as root (pod: 'web_ns(u1)', container: app)"
        )
        assert err.value.reason == "CreateContainerConfigError"

    def test_run_as_user_zero_refused(self) -> None:
        with pytest.raises(spec.ConfigError, match="runAsUser breaks non-root policy"):
            self.check(run_as_user=0)

    def test_non_numeric_image_user_cannot_be_verified(self) -> None:
        with pytest.raises(spec.ConfigError, match=r"non-numeric user \(nginx\)"):
            self.check("nginx")

    @pytest.mark.parametrize(("user", "security"), [("1000", {}), ("", {"run_as_user": 7})])
    def test_non_root_accepted(self, user: str, security: dict[str, Any]) -> None:
        self.check(user, **security)


class TestNamespaces:
    def types(self, document: dict[str, Any]) -> dict[str, str | None]:
        return {n["type"]: n.get("path") for n in document["linux"]["namespaces"]}

    def test_joins_the_sandbox_and_owns_pid_and_mount(self) -> None:
        assert self.types(generate()) == {
            "mount": None,
            "pid": None,
            "network": "/run/netns/kybern-s",
            "ipc": "/s/ipc",
            "uts": "/s/uts",
        }

    def test_shared_pid_namespace(self) -> None:
        place = spec.Placement(rootfs="/r", cgroups_path="/c", pidns="/s/pid")
        assert self.types(generate(place=place))["pid"] == "/s/pid"

    def test_host_namespaces(self) -> None:
        sandbox = cri.PodSandboxConfig(
            metadata=SANDBOX.metadata, host_network=True, host_pid=True, host_ipc=True
        )
        place = spec.Placement(rootfs="/r", cgroups_path="/c")
        assert self.types(generate(sandbox=sandbox, place=place)) == {"mount": None}


class TestMounts:
    def by_destination(self, document: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {m["destination"]: m for m in document["mounts"]}

    def test_standard_mounts_and_etc_files(self) -> None:
        mounts = self.by_destination(generate())
        for path in (
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
        ):
            assert path in mounts
        assert "ro" in mounts["/sys"]["options"]
        assert mounts["/etc/hosts"]["source"] == "/s/hosts"
        assert mounts[spec.INIT_PATH]["source"] == "/usr/bin/tini-static"

    def test_volumes_with_propagation_and_readonly(self) -> None:
        config = container(
            command=("x",),
            mounts=(
                cri.Mount("/data", "/host/data"),
                cri.Mount("/ro", "/host/ro", readonly=True, propagation="rslave"),
                cri.Mount("/bi", "/host/bi", propagation="rshared"),
            ),
        )
        mounts = self.by_destination(generate(config))
        assert mounts["/data"]["options"] == ["rbind", "rprivate"]
        assert mounts["/ro"]["options"] == ["rbind", "rslave", "ro"]
        assert mounts["/bi"]["options"] == ["rbind", "rshared"]

    def test_termination_log(self) -> None:
        config = container(
            command=("x",),
            termination_message_host_path="/pods/u1/app/term",
            termination_message_path="/dev/termination-log",
        )
        assert (
            self.by_destination(generate(config))["/dev/termination-log"]["source"]
            == "/pods/u1/app/term"
        )

    def test_a_volume_replaces_dev_shm_and_etc_hosts(self) -> None:
        config = container(
            command=("x",),
            mounts=(cri.Mount("/dev/shm", "/h/shm"), cri.Mount("/etc/hosts", "/h/hosts")),
        )
        mounts = [
            m for m in generate(config)["mounts"] if m["destination"] in ("/dev/shm", "/etc/hosts")
        ]
        assert [m["source"] for m in mounts] == ["/h/shm", "/h/hosts"]

    def test_readonly_rootfs(self) -> None:
        config = container(command=("x",), security=cri.SecurityContext(readonly_rootfs=True))
        assert generate(config)["root"] == {"path": "/b/rootfs", "readonly": True}


class TestSecurity:
    def caps(self, **security: Any) -> list[str]:
        config = container(command=("x",), security=cri.SecurityContext(**security))
        return list(generate(config)["process"]["capabilities"]["bounding"])

    def test_default_set(self) -> None:
        assert self.caps() == list(spec.DEFAULT_CAPS)

    def test_add_and_drop(self) -> None:
        got = self.caps(capabilities_add=("NET_ADMIN",), capabilities_drop=("KILL", "CAP_CHOWN"))
        assert "CAP_NET_ADMIN" in got
        assert "CAP_KILL" not in got
        assert "CAP_CHOWN" not in got

    def test_drop_all_add_one(self) -> None:
        assert self.caps(capabilities_drop=("ALL",), capabilities_add=("NET_BIND_SERVICE",)) == [
            "CAP_NET_BIND_SERVICE"
        ]

    def test_privileged(self) -> None:
        config = container(command=("x",), security=cri.SecurityContext(privileged=True))
        document = generate(config)
        assert "CAP_SYS_ADMIN" in document["process"]["capabilities"]["bounding"]
        assert document["linux"]["maskedPaths"] == []
        assert document["linux"]["readonlyPaths"] == []
        assert document["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
        assert "rw" in {m["destination"]: m for m in document["mounts"]}["/sys"]["options"]

    def test_masked_and_readonly_paths_as_containerd(self) -> None:
        linux = generate()["linux"]
        assert "/proc/kcore" in linux["maskedPaths"]
        assert "/proc/sys" in linux["readonlyPaths"]

    def test_unmasked_proc(self) -> None:
        config = container(
            command=("x",), security=cri.SecurityContext(masked_paths=(), readonly_paths=())
        )
        assert generate(config)["linux"]["maskedPaths"] == []

    @pytest.mark.parametrize(("no_new_privs", "expected"), [(True, True), (False, False)])
    def test_no_new_privileges(self, no_new_privs: bool, expected: bool) -> None:
        config = container(command=("x",), security=cri.SecurityContext(no_new_privs=no_new_privs))
        assert generate(config)["process"]["noNewPrivileges"] is expected


class TestResources:
    def test_limits(self) -> None:
        res = cri.Resources(
            cpu_shares=512,
            cpu_quota=20_000,
            cpu_period=100_000,
            memory_limit_bytes=1 << 25,
            pids_limit=100,
            oom_score_adj=500,
        )
        document = generate(container(command=("x",), resources=res))
        linux = document["linux"]
        assert linux["resources"]["cpu"] == {"shares": 512, "quota": 20_000, "period": 100_000}
        assert linux["resources"]["memory"] == {"limit": 1 << 25}
        assert linux["resources"]["pids"] == {"limit": 100}
        assert linux["cgroupsPath"] == "/kybern/podu1/c1"
        assert document["process"]["oomScoreAdj"] == 500

    def test_unlimited(self) -> None:
        resources = generate()["linux"]["resources"]
        assert resources["cpu"] == {"shares": 2}
        assert "memory" not in resources
        assert "pids" not in resources

    def test_sysctls_only_off_host_network(self) -> None:
        sandbox = cri.PodSandboxConfig(
            metadata=SANDBOX.metadata, sysctls={"net.ipv4.ip_unprivileged_port_start": "0"}
        )
        assert generate(sandbox=sandbox)["linux"]["sysctl"] == {
            "net.ipv4.ip_unprivileged_port_start": "0"
        }
