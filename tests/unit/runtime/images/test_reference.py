from __future__ import annotations

import pytest

from kybern.runtime.images import errors, reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("me/app", "docker.io/me/app:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/library/busybox:x", "docker.io/library/busybox:x"),
        ("127.0.0.1:5000/app:v1", "127.0.0.1:5000/app:v1"),
        ("localhost/a/b/c", "localhost/a/b/c:latest"),
        ("quay.io/org/img", "quay.io/org/img:latest"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
        (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}"),
        ("registry:5000/app", "registry:5000/app:latest"),
        ("a__b/c-d.e", "docker.io/a__b/c-d.e:latest"),
    ],
)
def test_normalises_like_docker(text: str, canonical: str) -> None:
    assert reference.normalize(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Busybox",
        "busybox:",
        "a//b",
        "-a",
        "busybox@sha256:abc",
        "busybox:bad tag",
        " busybox",
        "a:b:c",
    ],
)
def test_rejects_invalid_names(text: str) -> None:
    with pytest.raises(errors.InvalidReference):
        reference.parse(text)


def test_parts_familiar_form_and_api_host() -> None:
    ref = reference.parse("busybox:1.36")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "docker.io",
        "library/busybox",
        "1.36",
        "",
    )
    assert ref.familiar() == "busybox:1.36"
    assert ref.api_host == "registry-1.docker.io"
    local = reference.parse("127.0.0.1:5000/x/app:v1")
    assert local.familiar() == "127.0.0.1:5000/x/app:v1"
    assert local.api_host == "127.0.0.1:5000"
    assert str(local.with_digest(DIGEST)) == f"127.0.0.1:5000/x/app@{DIGEST}"


def test_without_default_tag() -> None:
    assert reference.parse("busybox", default_tag=False).tag == ""
