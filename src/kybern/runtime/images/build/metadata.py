"""Instructions that change only the image config: ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME,
STOPSIGNAL, SHELL, CMD, ENTRYPOINT, MAINTAINER, ONBUILD, HEALTHCHECK (pure functions over the
OCI config's ``config`` object, the Docker-compatible keys: ``Env``, ``Cmd``, ``Entrypoint``...).

As in Docker, ENTRYPOINT clears a CMD inherited from the base image but keeps one set earlier
in the same stage; shell forms run through the stage's SHELL (default ``/bin/sh -c``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from kybern.runtime.images.build import dockerfile, expand
from kybern.runtime.images.build.dockerfile import Instruction
from kybern.runtime.images.build.errors import DockerfileError

DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass
class Config:
    """The evolving image config of one stage."""

    data: dict[str, Any] = field(default_factory=dict)
    shell: tuple[str, ...] = DEFAULT_SHELL
    cmd_set: bool = False  # CMD given in this stage (ENTRYPOINT then keeps it)
    author: str = ""

    def env(self) -> dict[str, str]:
        out = {}
        for item in self.data.get("Env") or []:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out

    def set_env(self, key: str, value: str) -> None:
        env = self.env()
        env[key] = value
        self.data["Env"] = [f"{k}={v}" for k, v in env.items()]

    def workdir(self) -> str:
        return str(self.data.get("WorkingDir") or "/")


def command_line(ins: Instruction, shell: tuple[str, ...]) -> list[str]:
    """The argv of RUN/CMD/ENTRYPOINT: the exec form as is, else ``shell + [text]``."""
    if ins.exec_form is not None:
        return list(ins.exec_form)
    return [*shell, ins.args] if ins.args else []


def apply(cfg: Config, ins: Instruction, lexer: expand.Lexer) -> None:
    handler = _HANDLERS.get(ins.command)
    if handler is None:
        raise DockerfileError(f"{ins.command} is not a metadata instruction", line=ins.line)
    handler(cfg, ins, lexer)


def _env(cfg: Config, ins: Instruction, lexer: expand.Lexer) -> None:
    for key, value in expand.key_values(ins.args, lexer, "ENV"):
        cfg.set_env(key, value)


def _label(cfg: Config, ins: Instruction, lexer: expand.Lexer) -> None:
    labels = dict(cfg.data.get("Labels") or {})
    labels.update(expand.key_values(ins.args, lexer, "LABEL"))
    cfg.data["Labels"] = labels


def _workdir(cfg: Config, ins: Instruction, lexer: expand.Lexer) -> None:
    path = lexer.word(ins.args)
    cfg.data["WorkingDir"] = posixpath.normpath(posixpath.join(cfg.workdir(), path))


def _user(cfg: Config, ins: Instruction, lexer: expand.Lexer) -> None:
    cfg.data["User"] = lexer.word(ins.args)


def _expose(cfg: Config, ins: Instruction, lexer: expand.Lexer) -> None:
    ports = dict(cfg.data.get("ExposedPorts") or {})
    for word in lexer.words(ins.args):
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if not port.replace("-", "").isdigit() or proto not in ("tcp", "udp", "sctp"):
            raise DockerfileError(f"invalid port {word!r} in EXPOSE", line=ins.line)
        ports[f"{port}/{proto}"] = {}
    cfg.data["ExposedPorts"] = ports


def _volume(cfg: Config, ins: Instruction, lexer: expand.Lexer) -> None:
    paths = (
        [lexer.word(w) for w in ins.exec_form]
        if ins.exec_form is not None
        else lexer.words(ins.args)
    )
    volumes = dict(cfg.data.get("Volumes") or {})
    for p in paths:
        if not p:
            raise DockerfileError("VOLUME specified can not be an empty string", line=ins.line)
        volumes[p] = {}
    cfg.data["Volumes"] = volumes


def _stopsignal(cfg: Config, ins: Instruction, lexer: expand.Lexer) -> None:
    cfg.data["StopSignal"] = lexer.word(ins.args)


def _shell(cfg: Config, ins: Instruction, _lexer: expand.Lexer) -> None:
    assert ins.exec_form is not None  # the parser insists on the JSON form
    if not ins.exec_form:
        raise DockerfileError("SHELL requires at least one argument", line=ins.line)
    cfg.shell = ins.exec_form
    cfg.data["Shell"] = list(ins.exec_form)


def _cmd(cfg: Config, ins: Instruction, _lexer: expand.Lexer) -> None:
    cfg.data["Cmd"] = command_line(ins, cfg.shell)
    cfg.cmd_set = True


def _entrypoint(cfg: Config, ins: Instruction, _lexer: expand.Lexer) -> None:
    cfg.data["Entrypoint"] = command_line(ins, cfg.shell) or None
    if not cfg.cmd_set:
        cfg.data.pop("Cmd", None)


def _maintainer(cfg: Config, ins: Instruction, lexer: expand.Lexer) -> None:
    cfg.author = lexer.word(ins.args)


def _onbuild(cfg: Config, ins: Instruction, _lexer: expand.Lexer) -> None:
    # Recorded for images built FROM this one; kybern does not run ONBUILD triggers.
    cfg.data["OnBuild"] = [*(cfg.data.get("OnBuild") or []), ins.args]


def _healthcheck(cfg: Config, ins: Instruction, _lexer: expand.Lexer) -> None:
    kind, _, rest = ins.args.partition(" ")
    if kind.upper() == "NONE":
        cfg.data["Healthcheck"] = {"Test": ["NONE"]}
        return
    if kind.upper() != "CMD" or not rest.strip():
        raise DockerfileError("HEALTHCHECK must be NONE or CMD <command>", line=ins.line)
    inner = Instruction(
        ins.line, "CMD", rest.strip(), {}, dockerfile.exec_form(rest.strip()), ins.original
    )
    test = ["CMD", *inner.exec_form] if inner.exec_form is not None else ["CMD-SHELL", inner.args]
    check: dict[str, Any] = {"Test": test}
    if "retries" in ins.flags:
        check["Retries"] = int(ins.flags["retries"])
    cfg.data["Healthcheck"] = check


_HANDLERS = {
    "ENV": _env,
    "LABEL": _label,
    "WORKDIR": _workdir,
    "USER": _user,
    "EXPOSE": _expose,
    "VOLUME": _volume,
    "STOPSIGNAL": _stopsignal,
    "SHELL": _shell,
    "CMD": _cmd,
    "ENTRYPOINT": _entrypoint,
    "MAINTAINER": _maintainer,
    "ONBUILD": _onbuild,
    "HEALTHCHECK": _healthcheck,
}
