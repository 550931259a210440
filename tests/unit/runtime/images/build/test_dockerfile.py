"""Dockerfile parsing: instructions and their forms, continuations, comments, directives,
stages, flags, and errors that name the line."""

from __future__ import annotations

import pytest

from kybern.runtime.images.build import dockerfile
from kybern.runtime.images.build.errors import DockerfileError


def only_stage(text: str) -> dockerfile.Stage:
    parsed = dockerfile.parse(text)
    assert len(parsed.stages) == 1
    return parsed.stages[0]


class TestInstructions:
    def test_every_instruction_is_recognised_case_insensitively(self) -> None:
        text = "\n".join(
            [
                "from busybox",
                "run echo hi",
                'CMD ["sh"]',
                "ENTRYPOINT echo",
                "COPY a b",
                "ADD a b",
                "ENV A=1",
                "ARG B",
                "LABEL a=b",
                "WORKDIR /w",
                "USER app",
                "EXPOSE 80",
                "VOLUME /data",
                "STOPSIGNAL SIGTERM",
                'SHELL ["/bin/bash", "-c"]',
                "HEALTHCHECK NONE",
                "MAINTAINER me",
                "ONBUILD RUN x",
            ]
        )
        stage = only_stage(text)
        commands = [i.command for i in stage.instructions]
        assert commands == [
            "RUN",
            "CMD",
            "ENTRYPOINT",
            "COPY",
            "ADD",
            "ENV",
            "ARG",
            "LABEL",
            "WORKDIR",
            "USER",
            "EXPOSE",
            "VOLUME",
            "STOPSIGNAL",
            "SHELL",
            "HEALTHCHECK",
            "MAINTAINER",
            "ONBUILD",
        ]
        assert stage.base == "busybox"
        assert [i.line for i in stage.instructions][:3] == [2, 3, 4]

    def test_exec_and_shell_forms(self) -> None:
        stage = only_stage('FROM x\nRUN ["echo", "a b"]\nRUN echo a b\nCMD [not json\n')
        exec_run, shell_run, cmd = stage.instructions
        assert exec_run.exec_form == ("echo", "a b")
        assert shell_run.exec_form is None
        assert shell_run.args == "echo a b"
        assert cmd.exec_form is None  # invalid JSON falls back to the shell form
        assert cmd.args == "[not json"

    def test_flags(self) -> None:
        stage = only_stage(
            "FROM --platform=linux/amd64 x AS Build\nCOPY --from=build --chown=1:2 a /b\n"
        )
        assert stage.from_.flags == {"platform": "linux/amd64"}
        assert stage.name == "build"
        assert stage.instructions[0].flags == {"from": "build", "chown": "1:2"}
        assert stage.instructions[0].args == "a /b"

    def test_empty_cmd_is_allowed(self) -> None:
        stage = only_stage("FROM x\nCMD []\n")
        assert stage.instructions[0].exec_form == ()


class TestLines:
    def test_continuations_comments_and_blank_lines(self) -> None:
        text = "# a comment\n\nFROM x\nRUN echo a \\\n# inside\n\n    && echo b\nENV A=1\n"
        stage = only_stage(text)
        run, env = stage.instructions
        assert run.args == "echo a     && echo b"
        assert run.line == 4
        assert env.line == 8

    def test_escape_directive_backtick(self) -> None:
        parsed = dockerfile.parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n")
        assert parsed.escape == "`"
        assert parsed.stages[0].instructions[0].args == "dir c:\\   && echo"

    def test_directive_after_a_comment_is_just_a_comment(self) -> None:
        parsed = dockerfile.parse("# hello\n# escape=`\nFROM x\n")
        assert parsed.escape == "\\"

    def test_syntax_directive_ignored(self) -> None:
        assert dockerfile.parse("# syntax=docker/dockerfile:1\nFROM x\n").escape == "\\"


class TestStages:
    def test_global_args_and_stages(self) -> None:
        text = "ARG V=1\nFROM base:$V AS one\nRUN a\nFROM one\nRUN b\n"
        parsed = dockerfile.parse(text)
        assert [a.args for a in parsed.global_args] == ["V=1"]
        assert [(s.index, s.name, s.base) for s in parsed.stages] == [
            (0, "one", "base:$V"),
            (1, "", "one"),
        ]
        assert parsed.stage("one").index == 0
        assert parsed.stage("1").index == 1
        with pytest.raises(DockerfileError, match="could not be found"):
            parsed.stage("nope")


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "line", "message"),
        [
            ("FROM x\nRUNN echo\n", 2, "unknown instruction: RUNN"),
            ("RUN echo\n", 1, "no build stage in current context"),
            ("FROM x\n\nRUN\n", 3, "RUN requires at least one argument"),
            ("FROM x\nCOPY --bogus=1 a b\n", 2, "unknown flag: --bogus"),
            ("FROM x\nSHELL /bin/sh -c\n", 2, "SHELL requires the arguments to be in JSON form"),
            ("FROM a b\n", 1, "FROM requires either one or three arguments"),
            ("# escape=x\nFROM a\n", 1, "invalid escape token"),
        ],
    )
    def test_error_names_the_line(self, text: str, line: int, message: str) -> None:
        with pytest.raises(DockerfileError, match=message) as info:
            dockerfile.parse(text)
        assert info.value.line == line
        assert f"line {line}:" in str(info.value)

    def test_no_from(self) -> None:
        with pytest.raises(DockerfileError, match="no FROM"):
            dockerfile.parse("ARG x\n")

    def test_duplicate_stage_names(self) -> None:
        with pytest.raises(DockerfileError, match="duplicate stage name"):
            dockerfile.parse("FROM a AS x\nFROM b AS x\n")
