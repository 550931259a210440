"""Label selectors: the string parser, its errors, LabelSelector dicts and matching.

Expected strings and messages are Kubernetes' (k8s.io/apimachinery/pkg/labels).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kybern.api import errors, labels

pytestmark = pytest.mark.timeout(30)


class TestParseCanonicalForm:
    @pytest.mark.parametrize(
        ("text", "canonical"),
        [
            ("", ""),
            ("   ", ""),
            ("a=b", "a=b"),
            ("a==b", "a==b"),
            ("a!=b", "a!=b"),
            ("a", "a"),
            ("!a", "!a"),
            ("a>1", "a>1"),
            ("a<3", "a<3"),
            ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
            (" b = c , a in ( y , x ) ", "a in (x,y),b=c"),
            ("a in (x,x,y)", "a in (x,y)"),
            ("a=", "a="),
            ("a=,b", "a=,b"),
            ("in in (in)", "in in (in)"),
            ("notin=in", "notin=in"),
            ("example.com/app=web", "example.com/app=web"),
            ("z=1,a=2,m", "a=2,m,z=1"),
            ("a\tin\n(b)", "a in (b)"),
        ],
    )
    def test_canonical(self, text: str, canonical: str) -> None:
        assert str(labels.parse(text)) == canonical

    def test_requirements_hold_sorted_unique_values(self) -> None:
        (req,) = labels.parse("a in (c, b, c)").requirements
        assert req == labels.Requirement("a", labels.IN, ("b", "c"))


class TestParseErrors:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("a=b=c", "found '=', expected: ',' or 'end of string'"),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a,", "found '', expected: identifier after ','"),
            ("a=b,,c", "found ',', expected: identifier after ','"),
            (",a", "found ',', expected: !, identifier, or 'end of string'"),
            ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
            ("a in b", "unable to parse requirement: found 'b' expected: '('"),
            ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
            ("a=(b", "unable to parse requirement: found '(', expected: identifier"),
            (
                "a!b",
                "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
            ("a in (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
            (
                "a>x",
                'unable to parse requirement: values[0]: Invalid value: "x": '
                "for 'Gt', 'Lt' operators, the value must be an integer",
            ),
        ],
    )
    def test_message(self, text: str, message: str) -> None:
        with pytest.raises(errors.BadRequest) as caught:
            labels.parse(text)
        assert str(caught.value) == message

    def test_invalid_key_uses_nil_path_like_kubernetes(self) -> None:
        with pytest.raises(errors.BadRequest) as caught:
            labels.parse("-a=b")
        assert str(caught.value) == (
            'unable to parse requirement: <nil>: Invalid value: "-a": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )

    def test_invalid_value_names_key_and_index(self) -> None:
        with pytest.raises(errors.BadRequest) as caught:
            labels.parse("app=a b")
        assert "found 'b'" in str(caught.value)
        with pytest.raises(errors.BadRequest) as caught:
            labels.parse("app in (ok,-bad)")
        assert str(caught.value).startswith(
            'unable to parse requirement: values[0][app]: Invalid value: "-bad": '
            "a valid label must be an empty string"
        )

    @pytest.mark.parametrize(
        ("key", "fragment"),
        [
            ("Example.com/a", "prefix part a lowercase RFC 1123 subdomain"),
            ("/a", "prefix part must be non-empty"),
            ("a/", "name part must be non-empty"),
            ("a/b/c", "a qualified name must consist of"),
            ("x" * 64, "name part must be no more than 63 characters"),
        ],
    )
    def test_key_validation(self, key: str, fragment: str) -> None:
        with pytest.raises(errors.BadRequest, match="unable to parse requirement") as caught:
            labels.parse(key)
        assert fragment in str(caught.value)

    def test_negative_number_is_not_a_valid_label_value(self) -> None:
        with pytest.raises(errors.BadRequest, match=r'values\[0\]\[a\]: Invalid value: "-3"'):
            labels.parse("a<-3")

    def test_value_too_long(self) -> None:
        with pytest.raises(errors.BadRequest, match="must be no more than 63 characters"):
            labels.parse("a=" + "v" * 64)


class TestMatching:
    @pytest.mark.parametrize(
        ("text", "matching", "not_matching"),
        [
            ("a=b", {"a": "b"}, {"a": "c"}),
            ("a=b", {"a": "b", "x": "y"}, {}),
            ("a!=b", {}, {"a": "b"}),
            ("a!=b", {"a": "c"}, {"a": "b", "c": "d"}),
            ("a in (x,y)", {"a": "y"}, {"a": "z"}),
            ("a in (x,y)", {"a": "x"}, {}),
            ("a notin (x)", {}, {"a": "x"}),
            ("a notin (x)", {"a": "q"}, {"a": "x"}),
            ("a", {"a": ""}, {"b": "a"}),
            ("!a", {"b": "1"}, {"a": ""}),
            ("a>5", {"a": "6"}, {"a": "5"}),
            ("a>5", {"a": "10"}, {"a": "x"}),
            ("a<5", {"a": "-1"}, {}),
            ("a<5", {"a": "4"}, {"a": "1.5"}),
            ("a=,b", {"a": "", "b": "x"}, {"b": "x"}),
            ("a=1,b=2", {"a": "1", "b": "2"}, {"a": "1"}),
        ],
    )
    def test_matches(
        self, text: str, matching: dict[str, str], not_matching: dict[str, str]
    ) -> None:
        selector = labels.parse(text)
        assert selector.matches(matching)
        assert not selector.matches(not_matching)

    def test_empty_selector_matches_everything(self) -> None:
        assert labels.parse("").matches({})
        assert labels.everything().matches({"a": "b"})
        assert labels.everything().empty()

    def test_nothing_matches_nothing(self) -> None:
        assert not labels.nothing().matches({})
        assert not labels.nothing().empty()

    def test_matches_tolerates_none(self) -> None:
        assert labels.parse("!a").matches(None)

    def test_requires_exact_match(self) -> None:
        selector = labels.parse("a=1,b in (2),c in (3,4),d!=5")
        assert selector.requires_exact_match("a") == "1"
        assert selector.requires_exact_match("b") == "2"
        assert selector.requires_exact_match("c") is None
        assert selector.requires_exact_match("d") is None
        assert selector.requires_exact_match("zz") is None


class TestLabelSelectorDict:
    def test_none_matches_nothing_and_empty_matches_everything(self) -> None:
        assert not labels.from_label_selector(None).matches({"a": "b"})
        assert labels.from_label_selector({}).matches({"a": "b"})
        assert labels.from_label_selector({"matchLabels": {}, "matchExpressions": []}).empty()

    def test_match_labels_and_expressions(self) -> None:
        selector = labels.from_label_selector(
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                    {"key": "env", "operator": "NotIn", "values": ["prod"]},
                    {"key": "team", "operator": "Exists"},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            }
        )
        assert str(selector) == "app=web,env notin (prod),!legacy,team,tier in (edge,front)"
        assert selector.matches({"app": "web", "tier": "edge", "team": "x"})
        assert not selector.matches({"app": "web", "tier": "edge", "team": "x", "legacy": "1"})
        assert not selector.matches({"app": "web", "tier": "edge", "team": "x", "env": "prod"})
        assert not selector.matches({"app": "web", "tier": "back", "team": "x"})

    def test_equivalent_to_string_form(self) -> None:
        from_dict = labels.from_label_selector({"matchLabels": {"b": "2", "a": "1"}})
        assert from_dict == labels.parse("a=1,b=2")

    @pytest.mark.parametrize(
        ("selector", "message"),
        [
            (
                {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
                '"Gt" is not a valid label selector operator',
            ),
            (
                {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
                "values: Invalid value: []string{}: for 'in', 'notin' operators, "
                "values set can't be empty",
            ),
            (
                {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
                'values: Invalid value: []string{"x"}: values set must be empty for exists and '
                "does not exist",
            ),
            ({"matchLabels": {"a": "-x"}}, 'values[0][a]: Invalid value: "-x"'),
            ({"matchLabels": {"-a": "x"}}, 'key: Invalid value: "-a"'),
        ],
    )
    def test_invalid(self, selector: dict[str, object], message: str) -> None:
        with pytest.raises(errors.BadRequest) as caught:
            labels.from_label_selector(selector)
        assert str(caught.value).startswith(message)

    def test_round_trip_to_dict(self) -> None:
        original = {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
        }
        selector = labels.from_label_selector(original)
        assert labels.from_label_selector(labels.to_label_selector(selector)) == selector

    def test_from_set(self) -> None:
        assert str(labels.from_set({"b": "1", "a": "2"})) == "a=2,b=1"
        assert labels.from_set({}).empty()


# --- property: the canonical string parses back to the same selector ----------------------

_names = st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?", fullmatch=True)
_keys = st.one_of(
    _names,
    st.builds(
        lambda p, n: f"{p}.io/{n}", _names.filter(lambda s: "." not in s and "_" not in s), _names
    ),
)
_values = st.one_of(st.just(""), _names)


@st.composite
def requirement_texts(draw: st.DrawFn) -> str:
    key = draw(_keys)
    kind = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", ">", "<"]))
    if kind in ("in", "notin"):
        values = draw(st.lists(_values, min_size=1, max_size=4))
        return f"{key} {kind} ({','.join(values)})"
    if kind == "exists":
        return key
    if kind == "!":
        return f"!{key}"
    if kind in (">", "<"):
        # Negative numbers fail label value validation in Kubernetes too.
        return f"{key}{kind}{draw(st.integers(0, 1000))}"
    return f"{key}{kind}{draw(_values)}"


@given(st.lists(requirement_texts(), max_size=5))
def test_string_form_round_trips(parts: list[str]) -> None:
    selector = labels.parse(", ".join(parts))
    assert labels.parse(str(selector)) == selector
    assert str(labels.parse(str(selector))) == str(selector)


@given(st.dictionaries(_keys, _values, max_size=5), st.lists(requirement_texts(), max_size=4))
def test_string_and_dict_forms_agree(label_set: dict[str, str], parts: list[str]) -> None:
    selector = labels.parse(",".join(parts))
    reparsed = labels.parse(str(selector))
    assert selector.matches(label_set) == reparsed.matches(label_set)
