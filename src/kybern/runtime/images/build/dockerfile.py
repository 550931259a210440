"""Parse a Dockerfile into stages of instructions (pure: no file system, no substitution).

Handles parser directives (``# escape=``; ``syntax`` and ``check`` are accepted and ignored),
comments, line continuations with the escape character (comment and blank lines inside a
continuation are dropped, as Docker does), instruction flags (``--from=``, ``--chown=``...),
exec (JSON array) and shell forms, and ``FROM image [AS name]`` stages. Variables are
substituted later by the builder, which knows the ARG/ENV values at each step. Errors carry
the line the instruction starts on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from kybern.runtime.images.build.errors import DockerfileError

# Instruction -> the flags it accepts.
FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "RUN": frozenset(),
    "CMD": frozenset(),
    "ENTRYPOINT": frozenset(),
    "COPY": frozenset({"chown", "chmod", "from", "link"}),
    "ADD": frozenset({"chown", "chmod", "link", "checksum", "keep-git-dir"}),
    "ENV": frozenset(),
    "ARG": frozenset(),
    "LABEL": frozenset(),
    "WORKDIR": frozenset(),
    "USER": frozenset(),
    "EXPOSE": frozenset(),
    "VOLUME": frozenset(),
    "STOPSIGNAL": frozenset(),
    "SHELL": frozenset(),
    "MAINTAINER": frozenset(),
    "ONBUILD": frozenset(),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}
_EXEC_FORM = frozenset({"RUN", "CMD", "ENTRYPOINT", "COPY", "ADD", "VOLUME", "SHELL"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_FLAG = re.compile(r"^--([a-z][a-z-]*)(?:=(.*))?$")


@dataclass(frozen=True)
class Instruction:
    line: int  # where the instruction starts (1-based)
    command: str  # upper case: RUN, COPY...
    args: str  # everything after the command and flags (continuations joined)
    flags: dict[str, str] = field(default_factory=dict)
    exec_form: tuple[str, ...] | None = None  # the JSON array form, when used
    original: str = ""  # the instruction as written (continuations joined)


@dataclass(frozen=True)
class Stage:
    index: int
    base: str  # the FROM argument before substitution
    name: str  # the AS name, lower case ("" when unnamed)
    from_: Instruction
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Dockerfile:
    escape: str
    global_args: tuple[Instruction, ...]  # ARGs before the first FROM
    stages: tuple[Stage, ...]

    def stage(self, target: str) -> Stage:
        for s in self.stages:
            if target.lower() in (s.name, str(s.index)):
                return s
        raise DockerfileError(f"target stage {target!r} could not be found")


def parse(text: str) -> Dockerfile:
    lines = text.splitlines()
    escape, start = _directives(lines)
    instructions = [
        _instruction(n, logical, escape) for n, logical in _logical_lines(lines, start, escape)
    ]
    return _stages(instructions, escape)


def _directives(lines: list[str]) -> tuple[str, int]:
    """The escape character and the index of the first line after the directives."""
    escape, seen = "\\", set()
    for i, line in enumerate(lines):
        m = _DIRECTIVE.match(line.strip())
        if m is None:
            return escape, i
        key, value = m.group(1).lower(), m.group(2)
        if key in seen:
            raise DockerfileError(f"only one {key} parser directive can be used", line=i + 1)
        seen.add(key)
        if key == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(
                    f"invalid escape token {value!r} does not match ` or \\", line=i + 1
                )
            escape = value
    return escape, len(lines)


def _logical_lines(lines: list[str], start: int, escape: str) -> list[tuple[int, str]]:
    """``(first line number, text)`` of each instruction, continuations joined."""
    out: list[tuple[int, str]] = []
    parts: list[str] = []
    first = 0
    for i in range(start, len(lines)):
        raw = lines[i]
        stripped = raw.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if parts and (not stripped or stripped.startswith("#")):
            continue  # comments and blank lines inside a continuation are dropped
        if not parts:
            first = i + 1
        body = raw.rstrip()
        if body.endswith(escape):
            parts.append(body[: -len(escape)])
            continue
        parts.append(body)
        out.append((first, "".join(parts).strip()))
        parts = []
    if parts:
        out.append((first, "".join(parts).strip()))
    return out


def _instruction(line: int, text: str, escape: str) -> Instruction:
    command, _, rest = text.partition(" ")
    if "\t" in command:
        command, _, more = command.partition("\t")
        rest = more + " " + rest
    cmd = command.upper()
    if cmd not in FLAGS:
        raise DockerfileError(f"unknown instruction: {command}", line=line)
    flags, rest = _flags(cmd, rest.strip(), line)
    json_form = exec_form(rest) if cmd in _EXEC_FORM else None
    if cmd == "SHELL" and json_form is None:
        raise DockerfileError("SHELL requires the arguments to be in JSON form", line=line)
    if not rest and cmd not in ("CMD", "ENTRYPOINT"):
        raise DockerfileError(f"{cmd} requires at least one argument", line=line)
    return Instruction(line, cmd, rest, flags, json_form, text)


def _flags(cmd: str, rest: str, line: int) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    while rest.startswith("--"):
        token, _, after = rest.partition(" ")
        m = _FLAG.match(token)
        if m is None:
            break
        name = m.group(1)
        if name not in FLAGS[cmd]:
            raise DockerfileError(f"unknown flag: --{name}", line=line)
        flags[name] = m.group(2) if m.group(2) is not None else "true"
        rest = after.strip()
    return flags, rest


def exec_form(rest: str) -> tuple[str, ...] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None  # not JSON: Docker falls back to the shell form
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def _stages(instructions: list[Instruction], escape: str) -> Dockerfile:
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    current: tuple[Instruction, list[Instruction]] | None = None
    for ins in instructions:
        if ins.command == "FROM":
            if current is not None:
                stages.append(_stage(len(stages), *current))
            current = (ins, [])
        elif current is None:
            if ins.command != "ARG":
                raise DockerfileError(
                    f"no build stage in current context: {ins.command} before FROM", line=ins.line
                )
            global_args.append(ins)
        else:
            current[1].append(ins)
    if current is None:
        raise DockerfileError("the Dockerfile has no FROM instruction")
    stages.append(_stage(len(stages), *current))
    names = [s.name for s in stages if s.name]
    for dup in {n for n in names if names.count(n) > 1}:
        raise DockerfileError(f"duplicate stage name {dup!r}")
    return Dockerfile(escape, tuple(global_args), tuple(stages))


def _stage(index: int, from_: Instruction, body: list[Instruction]) -> Stage:
    words = from_.args.split()
    name = ""
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not re.fullmatch(r"[a-z][a-z0-9._-]*", name):
            raise DockerfileError(f"invalid name for build stage: {words[2]!r}", line=from_.line)
    elif len(words) != 1:
        raise DockerfileError(
            "FROM requires either one or three arguments (image [AS name])", line=from_.line
        )
    return Stage(index, words[0], name, from_, tuple(body))
