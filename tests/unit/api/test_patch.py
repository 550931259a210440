"""JSON patch (RFC 6902 appendix A) and JSON merge patch (RFC 7386 appendix A)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kybern.api import errors, patch

pytestmark = pytest.mark.timeout(30)


class TestRFC6902Examples:
    @pytest.mark.parametrize(
        ("doc", "ops", "expected"),
        [
            pytest.param(
                {"foo": "bar"},
                [{"op": "add", "path": "/baz", "value": "qux"}],
                {"baz": "qux", "foo": "bar"},
                id="A.1 add object member",
            ),
            pytest.param(
                {"foo": ["bar", "baz"]},
                [{"op": "add", "path": "/foo/1", "value": "qux"}],
                {"foo": ["bar", "qux", "baz"]},
                id="A.2 add array element",
            ),
            pytest.param(
                {"baz": "qux", "foo": "bar"},
                [{"op": "remove", "path": "/baz"}],
                {"foo": "bar"},
                id="A.3 remove object member",
            ),
            pytest.param(
                {"foo": ["bar", "qux", "baz"]},
                [{"op": "remove", "path": "/foo/1"}],
                {"foo": ["bar", "baz"]},
                id="A.4 remove array element",
            ),
            pytest.param(
                {"baz": "qux", "foo": "bar"},
                [{"op": "replace", "path": "/baz", "value": "boo"}],
                {"baz": "boo", "foo": "bar"},
                id="A.5 replace",
            ),
            pytest.param(
                {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
                [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
                {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
                id="A.6 move value",
            ),
            pytest.param(
                {"foo": ["all", "grass", "cows", "eat"]},
                [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
                {"foo": ["all", "cows", "eat", "grass"]},
                id="A.7 move array element",
            ),
            pytest.param(
                {"baz": "qux", "foo": ["a", 2, "c"]},
                [
                    {"op": "test", "path": "/baz", "value": "qux"},
                    {"op": "test", "path": "/foo/1", "value": 2},
                ],
                {"baz": "qux", "foo": ["a", 2, "c"]},
                id="A.8 test success",
            ),
            pytest.param(
                {"foo": "bar"},
                [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
                {"foo": "bar", "child": {"grandchild": {}}},
                id="A.10 add nested member",
            ),
            pytest.param(
                {"foo": "bar"},
                [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
                {"foo": "bar", "baz": "qux"},
                id="A.11 ignore unrecognized elements",
            ),
            pytest.param(
                {"/": 9, "~1": 10},
                [{"op": "test", "path": "/~01", "value": 10}],
                {"/": 9, "~1": 10},
                id="A.14 escape ordering",
            ),
            pytest.param(
                {"foo": ["bar"]},
                [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
                {"foo": ["bar", ["abc", "def"]]},
                id="A.16 add array value",
            ),
        ],
    )
    def test_example(self, doc: Any, ops: list[dict[str, Any]], expected: Any) -> None:
        assert patch.apply_json_patch(doc, ops) == expected

    @pytest.mark.parametrize(
        ("doc", "ops", "message"),
        [
            pytest.param(
                {"baz": "qux"},
                [{"op": "test", "path": "/baz", "value": "bar"}],
                "testing value /baz failed",
                id="A.9 test error",
            ),
            pytest.param(
                {"foo": "bar"},
                [{"op": "add", "path": "/baz/bat", "value": "qux"}],
                "add operation does not apply: doc is missing path: /baz/bat",
                id="A.12 add to nonexistent target",
            ),
            pytest.param(
                {"/": 9, "~1": 10},
                [{"op": "test", "path": "/~01", "value": "10"}],
                "testing value /~01 failed",
                id="A.15 strings are not numbers",
            ),
        ],
    )
    def test_failing_example(self, doc: Any, ops: list[dict[str, Any]], message: str) -> None:
        with pytest.raises(patch.PatchApplyError) as caught:
            patch.apply_json_patch(doc, ops)
        assert str(caught.value) == message
        assert caught.value.code == 422
        assert caught.value.status_message == (
            "the server rejected our request due to an error in our request"
        )


class TestJSONPatchDetails:
    def test_does_not_mutate_inputs(self) -> None:
        doc = {"a": {"b": [1, 2]}}
        value = {"deep": [1]}
        ops = [
            {"op": "add", "path": "/a/b/-", "value": value},
            {"op": "remove", "path": "/a/b/0"},
        ]
        before_doc, before_ops = copy.deepcopy(doc), copy.deepcopy(ops)
        result = patch.apply_json_patch(doc, ops)
        assert result == {"a": {"b": [2, {"deep": [1]}]}}
        result["a"]["b"][1]["deep"].append(2)
        assert doc == before_doc
        assert ops == before_ops

    def test_operations_apply_in_order_and_failure_is_atomic(self) -> None:
        doc = {"spec": {"replicas": 1}}
        ops = [
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "test", "path": "/spec/replicas", "value": 1},
        ]
        with pytest.raises(patch.PatchApplyError):
            patch.apply_json_patch(doc, ops)
        assert doc == {"spec": {"replicas": 1}}

    def test_copy_is_independent(self) -> None:
        doc = {"a": {"x": 1}}
        result = patch.apply_json_patch(doc, [{"op": "copy", "from": "/a", "path": "/b"}])
        result["b"]["x"] = 2
        assert result["a"] == {"x": 1}

    def test_slash_and_tilde_in_keys(self) -> None:
        doc = {"metadata": {"labels": {"app.kubernetes.io/name": "x", "a~b": "y"}}}
        ops = [
            {"op": "replace", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "z"},
            {"op": "remove", "path": "/metadata/labels/a~0b"},
        ]
        assert patch.apply_json_patch(doc, ops) == {
            "metadata": {"labels": {"app.kubernetes.io/name": "z"}}
        }

    def test_whole_document_pointer(self) -> None:
        assert patch.apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [
            1
        ]

    def test_test_distinguishes_bool_from_number(self) -> None:
        with pytest.raises(patch.PatchApplyError):
            patch.apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
        assert patch.apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}])

    @pytest.mark.parametrize(
        ("ops", "message"),
        [
            ([{"op": "bogus", "path": "/a"}], "Unexpected kind: bogus"),
            ([{"op": "remove", "path": "/missing"}], "remove operation does not apply"),
            (
                [{"op": "replace", "path": "/missing", "value": 1}],
                "replace operation does not apply",
            ),
            ([{"op": "add", "path": "/list/5", "value": 1}], "unable to access invalid index: 5"),
            ([{"op": "add", "path": "/list/-1", "value": 1}], "unable to access invalid index: -1"),
            ([{"op": "add", "path": "/list/01", "value": 1}], "unable to access invalid index: 01"),
            ([{"op": "remove", "path": "/list/-"}], "unable to access invalid index: -"),
            ([{"op": "add", "path": "a", "value": 1}], "invalid JSON pointer"),
            ([{"op": "add", "path": "/a~2", "value": 1}], "invalid JSON pointer"),
            ([{"op": "add", "path": "/a"}], "add operation is missing 'value'"),
            ([{"op": "move", "path": "/a"}], "move operation is missing 'from'"),
            ([{"op": "move", "from": "/a", "path": "/a/b"}], "is a prefix of"),
            ([{"op": "test", "path": "/nope", "value": None}], "testing value /nope failed"),
        ],
    )
    def test_apply_errors(self, ops: list[dict[str, Any]], message: str) -> None:
        with pytest.raises(patch.PatchApplyError, match=message.replace("*", ".")):
            patch.apply_json_patch({"a": {}, "list": [0]}, ops)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
            ("x", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
            ([1], "json: cannot unmarshal number into Go value of type jsonpatch.Operation"),
        ],
    )
    def test_malformed_body_is_bad_request(self, body: Any, message: str) -> None:
        with pytest.raises(errors.BadRequest) as caught:
            patch.apply_json_patch({}, body)
        assert str(caught.value) == message

    def test_too_many_operations(self) -> None:
        ops = [{"op": "test", "path": "", "value": {}}] * (patch.MAX_JSON_PATCH_OPERATIONS + 1)
        with pytest.raises(patch.PatchTooLarge) as caught:
            patch.apply_json_patch({}, ops)
        assert caught.value.code == 413
        assert str(caught.value) == (
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        )


class TestRFC7386Examples:
    @pytest.mark.parametrize(
        ("doc", "merge", "expected"),
        [
            ({"a": "b"}, {"a": "c"}, {"a": "c"}),
            ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
            ({"a": "b"}, {"a": None}, {}),
            ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
            ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
            ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
            ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
            ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
            (["a", "b"], ["c", "d"], ["c", "d"]),
            ({"a": "b"}, ["c"], ["c"]),
            ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
            ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
            ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        ],
    )
    def test_example(self, doc: Any, merge: Any, expected: Any) -> None:
        assert patch.apply_merge_patch(doc, merge) == expected

    @pytest.mark.parametrize("merge", [None, "bar", 3, True])
    def test_non_object_patch_is_bad_request_like_kubernetes(self, merge: Any) -> None:
        # RFC 7386 would replace the document; Kubernetes answers 400 "Invalid JSON Patch".
        with pytest.raises(errors.BadRequest, match="Invalid JSON Patch"):
            patch.apply_merge_patch({"a": "foo"}, merge)

    def test_kubernetes_style_label_removal(self) -> None:
        doc = {"metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}}
        merged = patch.apply_merge_patch(doc, {"metadata": {"labels": {"a": None, "c": "3"}}})
        assert merged == {
            "metadata": {"name": "x", "labels": {"b": "2", "c": "3"}},
            "spec": {"replicas": 1},
        }
        assert doc["metadata"]["labels"] == {"a": "1", "b": "2"}


class TestDispatch:
    def test_by_media_type(self) -> None:
        assert patch.apply("application/merge-patch+json", {"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
        ops = [{"op": "add", "path": "/b", "value": 2}]
        assert patch.apply("application/json-patch+json; charset=utf-8", {}, ops) == {"b": 2}

    def test_unknown_media_type(self) -> None:
        with pytest.raises(patch.UnsupportedPatchType) as caught:
            patch.apply("text/plain", {}, {})
        assert caught.value.code == 415
        assert "application/json-patch+json" in str(caught.value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
_objects = st.dictionaries(st.text(max_size=3), _json, max_size=4)


def _null_member_in_array(value: Any, in_array: bool = False) -> bool:
    if isinstance(value, dict):
        return any(
            (v is None and in_array) or _null_member_in_array(v, in_array) for v in value.values()
        )
    if isinstance(value, list):
        return any(_null_member_in_array(v, True) for v in value)
    return False


@given(_objects, _objects)
def test_merge_patch_is_idempotent_and_pure(doc: dict[str, Any], merge: dict[str, Any]) -> None:
    # evanphx/json-patch (what Kubernetes applies) keeps null members of objects inside an
    # array when the array replaces an object, and prunes them when it replaces anything
    # else; kybern follows it, so such patches are not idempotent there either.
    assume(not _null_member_in_array(merge))
    before_doc, before_merge = copy.deepcopy(doc), copy.deepcopy(merge)
    once = patch.apply_merge_patch(doc, merge)
    assert patch.apply_merge_patch(once, merge) == once
    assert doc == before_doc
    assert merge == before_merge


@given(_objects, st.text(max_size=3), _json)
def test_add_then_remove_restores_object(doc: dict[str, Any], key: str, value: Any) -> None:
    pointer = "/" + key.replace("~", "~0").replace("/", "~1")
    ops = [
        {"op": "add", "path": pointer, "value": value},
        {"op": "test", "path": pointer, "value": value},
    ]
    added = patch.apply_json_patch(doc, ops)
    removed = patch.apply_json_patch(added, [{"op": "remove", "path": pointer}])
    expected = {k: v for k, v in doc.items() if k != key}
    assert removed == expected
