"""Build failures: a Dockerfile that does not parse, or a step that fails (with its line)."""

from __future__ import annotations

from kybern.runtime.images import errors


class BuildError(errors.ImageError):
    """A build failed; ``line`` is the Dockerfile line (0 when not tied to one)."""

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(f"Dockerfile line {line}: {message}" if line else message)
        self.line = line
        self.reason = message


class DockerfileError(BuildError):
    """The Dockerfile is malformed."""
