"""Config-only instructions: ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, SHELL,
CMD/ENTRYPOINT in both forms (and Docker's CMD reset), HEALTHCHECK, MAINTAINER, ONBUILD."""

from __future__ import annotations

import pytest

from kybern.runtime.images.build import dockerfile, expand, metadata
from kybern.runtime.images.build.errors import DockerfileError


def apply(cfg: metadata.Config, *lines: str) -> metadata.Config:
    stage = dockerfile.parse("FROM x\n" + "\n".join(lines) + "\n").stages[0]
    for ins in stage.instructions:
        metadata.apply(cfg, ins, expand.Lexer(cfg.env()))
    return cfg


def test_env_both_forms_and_substitution_from_earlier_env() -> None:
    cfg = apply(metadata.Config(), 'ENV A=1 B="x y"', "ENV C $A-$B", "ENV A=2")
    assert cfg.data["Env"] == ["A=2", "B=x y", "C=1-x y"]


def test_labels_merge() -> None:
    cfg = metadata.Config({"Labels": {"base": "1"}})
    apply(cfg, 'LABEL "com.x"="y" z=w')
    assert cfg.data["Labels"] == {"base": "1", "com.x": "y", "z": "w"}


def test_workdir_relative_to_previous() -> None:
    cfg = apply(metadata.Config(), "WORKDIR /a", "WORKDIR b", "WORKDIR ../c")
    assert cfg.data["WorkingDir"] == "/a/c"


def test_user_expose_volume_stopsignal() -> None:
    cfg = apply(
        metadata.Config(),
        "ENV U=app",
        "USER $U:grp",
        "EXPOSE 80 53/udp",
        'VOLUME ["/data", "/logs"]',
        "VOLUME /more",
        "STOPSIGNAL SIGQUIT",
    )
    assert cfg.data["User"] == "app:grp"
    assert cfg.data["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg.data["Volumes"] == {"/data": {}, "/logs": {}, "/more": {}}
    assert cfg.data["StopSignal"] == "SIGQUIT"


def test_bad_port() -> None:
    with pytest.raises(DockerfileError, match="invalid port") as info:
        apply(metadata.Config(), "EXPOSE http")
    assert info.value.line == 2


class TestCommands:
    def test_shell_and_exec_forms(self) -> None:
        cfg = apply(metadata.Config(), "CMD echo $HOME", 'ENTRYPOINT ["/init"]')
        assert cfg.data["Cmd"] == ["/bin/sh", "-c", "echo $HOME"]  # not substituted
        assert cfg.data["Entrypoint"] == ["/init"]

    def test_shell_instruction_changes_shell_form(self) -> None:
        cfg = apply(metadata.Config(), 'SHELL ["/bin/bash", "-xc"]', "CMD run")
        assert cfg.data["Cmd"] == ["/bin/bash", "-xc", "run"]
        assert cfg.data["Shell"] == ["/bin/bash", "-xc"]

    def test_entrypoint_resets_inherited_cmd(self) -> None:
        cfg = apply(metadata.Config({"Cmd": ["sh"]}), 'ENTRYPOINT ["/app"]')
        assert "Cmd" not in cfg.data

    def test_entrypoint_keeps_cmd_of_same_stage(self) -> None:
        cfg = apply(metadata.Config({"Cmd": ["sh"]}), 'CMD ["--flag"]', 'ENTRYPOINT ["/app"]')
        assert cfg.data["Cmd"] == ["--flag"]

    def test_healthcheck(self) -> None:
        cfg = apply(metadata.Config(), "HEALTHCHECK --retries=3 CMD wget -q localhost")
        assert cfg.data["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost"], "Retries": 3}
        apply(cfg, 'HEALTHCHECK CMD ["true"]')
        assert cfg.data["Healthcheck"] == {"Test": ["CMD", "true"]}
        apply(cfg, "HEALTHCHECK NONE")
        assert cfg.data["Healthcheck"] == {"Test": ["NONE"]}

    def test_maintainer_and_onbuild(self) -> None:
        cfg = apply(metadata.Config(), "MAINTAINER me <me@x>", "ONBUILD RUN make")
        assert cfg.author == "me <me@x>"
        assert cfg.data["OnBuild"] == ["RUN make"]
