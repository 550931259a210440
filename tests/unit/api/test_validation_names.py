"""Name rules and their Kubernetes messages, with property tests against the regexes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kybern.api.validation import names

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def test_exact_messages() -> None:
    assert names.is_dns1123_subdomain("Foo") == [SUBDOMAIN_MSG]
    assert names.is_dns1123_label("-a") == [LABEL_MSG]
    assert names.is_dns1035_label("1abc") == [DNS1035_MSG]
    assert names.is_dns1123_label("a.b") == ["must not contain dots"]
    assert names.is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert names.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]


@pytest.mark.parametrize(
    ("value", "messages"),
    [
        ("example.com/MyName", []),
        ("MyName", []),
        ("my.name_x-1", []),
        ("/name", ["prefix part must be non-empty"]),
        ("example.com/", ["name part must be non-empty"]),
        ("a" * 64, ["name part must be no more than 63 characters"]),
    ],
)
def test_qualified_names(value: str, messages: list[str]) -> None:
    assert names.is_qualified_name(value) == messages


def test_qualified_name_bad_shapes() -> None:
    [message] = names.is_qualified_name("a/b/c")
    assert message.startswith("a qualified name must consist of alphanumeric characters")
    assert message.endswith(
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    )
    [prefix] = names.is_qualified_name("Bad_Prefix/name")
    assert prefix.startswith("prefix part a lowercase RFC 1123 subdomain")
    [name] = names.is_qualified_name("-x")
    assert name.startswith("name part must consist of alphanumeric characters")


def test_label_values() -> None:
    assert names.is_label_value("") == []
    assert names.is_label_value("v1.2_3-x") == []
    assert names.is_label_value("a" * 64)[0] == "must be no more than 63 characters"
    assert names.is_label_value("-bad")[0].startswith("a valid label must be an empty string")


def test_path_segment_names() -> None:
    assert names.is_path_segment_name("system:controller:x") == []
    assert names.is_path_segment_name("..") == ["may not be '..'"]
    assert names.is_path_segment_name("a/b%c") == ["may not contain '/'", "may not contain '%'"]
    assert names.is_path_segment_name(".", prefix=True) == []


def test_config_keys() -> None:
    assert names.is_config_map_key("a.txt") == []
    assert names.is_config_map_key("..data") == ["must not start with '..'"]
    assert names.is_config_map_key(".") == ["must not be '.'"]
    assert names.is_config_map_key("a b")[0].startswith("a valid config key must consist")


def test_port_names() -> None:
    assert names.is_port_name("http") == []
    assert "must contain at least one letter (a-z)" in names.is_port_name("8080")
    assert "must not contain consecutive hyphens" in names.is_port_name("a--b")
    assert "must not begin or end with a hyphen" in names.is_port_name("-ab")
    assert names.is_port_name("a" * 16) == ["must be no more than 15 characters"]


def test_percent_and_port_numbers() -> None:
    assert names.is_percent("25%") == []
    assert names.is_percent("25")[0].startswith("a valid percent string must be")
    assert names.is_port_number(65535) == []
    assert names.is_port_number(0) == ["must be between 1 and 65535, inclusive"]


def test_per_kind_rules() -> None:
    assert names.validate_name("Namespace", "a.b") == ["must not contain dots"]
    assert names.validate_name("ConfigMap", "a.b") == []
    assert names.validate_name("Service", "1svc") == [DNS1035_MSG]
    assert names.validate_name("Pod", "1pod") == []
    assert names.validate_name("ClusterRole", "system:admin") == []
    assert names.validate_name("StatefulSet", "a.b") == ["must not contain dots"]


def test_generate_name_prefix_may_end_with_dash() -> None:
    assert names.validate_name("Pod", "web-", prefix=True) == []
    assert names.validate_name("Pod", "web-") == [SUBDOMAIN_MSG]
    assert names.validate_name("Namespace", "ns-", prefix=True) == []


_SUBDOMAIN = re.compile(names.DNS1123_SUBDOMAIN_FMT)
_LABEL = re.compile(names.DNS1123_LABEL_FMT)


@given(
    st.from_regex(
        r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?){0,3}",
        fullmatch=True,
    )
)
def test_generated_subdomains_are_valid(value: str) -> None:
    assert names.is_dns1123_subdomain(value) == []


@given(st.text(alphabet="abcXYZ019-._/ ", max_size=70))
def test_subdomain_check_agrees_with_regex_and_length(value: str) -> None:
    valid = bool(_SUBDOMAIN.fullmatch(value)) and len(value) <= 253
    assert (names.is_dns1123_subdomain(value) == []) == valid


@given(st.text(alphabet="abc019-.", max_size=70))
def test_label_check_agrees_with_regex_and_length(value: str) -> None:
    valid = bool(_LABEL.fullmatch(value)) and len(value) <= 63
    assert (names.is_dns1123_label(value) == []) == valid


@given(st.text(max_size=80))
def test_qualified_name_never_crashes_and_accepts_its_own_grammar(value: str) -> None:
    result = names.is_qualified_name(value)
    if re.fullmatch(names.QUALIFIED_NAME_FMT, value) and len(value) <= 63:
        assert result == []
