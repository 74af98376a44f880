"""SOL013 list conventions (mano.nbi.sol013): filter syntax and semantics, attribute
selectors and paging markers."""
from __future__ import annotations

import pytest

from mano.nbi.sol013 import BadQuery, Selector, matches, page, parse_filter

NS = {"id": "a", "nsState": "INSTANTIATED", "size": 3, "up": True,
      "vnfInstance": [{"vnfdId": "fw"}, {"vnfdId": "fwd"}], "name": "web, front"}


def test_terms_are_anded_and_nested_arrays_match_any_element():
    """Two terms must both hold; a path through an array holds for any element."""
    assert matches(NS, parse_filter("(eq,nsState,INSTANTIATED);(eq,vnfInstance/vnfdId,fwd)"))
    assert not matches(NS, parse_filter("(eq,nsState,INSTANTIATED);(eq,vnfInstance/vnfdId,x)"))


@pytest.mark.parametrize("expr,expected", [
    ("(eq,nsState,NOT_INSTANTIATED,INSTANTIATED)", True),
    ("(neq,nsState,INSTANTIATED)", False),
    ("(in,id,b,c)", False), ("(nin,id,b,c)", True),
    ("(gt,size,2)", True), ("(gte,size,3)", True), ("(lt,size,3)", False),
    ("(lte,size,3.0)", True), ("(cont,nsState,STANT)", True), ("(ncont,nsState,STANT)", False),
    ("(eq,up,true)", True), ("(eq,up,false)", False),
    ("(eq,name,'web, front')", True), ("(neq,missing,x)", True), ("(eq,missing,x)", False),
])
def test_each_operator(expr, expected):
    """Every SOL013 operator on strings, numbers, booleans, quoted values, absent fields."""
    assert matches(NS, parse_filter(expr)) is expected


def test_quoted_values_keep_separators_and_doubled_quotes():
    """Inside quotes , ; ( ) are literal and '' is one quote."""
    t = parse_filter("(eq,a,'x,y;(z)''s')")[0]
    assert t.values == ("x,y;(z)'s",)


@pytest.mark.parametrize("expr,msg", [
    ("eq,a,b", "expected '\\('"), ("(eq,a)", "needs"), ("(like,a,b)", "unknown operator"),
    ("(eq,a b,c)", "not an attribute"), ("(gt,a,1,2)", "one value"),
    ("(eq,a,b)(eq,c,d)", "expected ';'"), ("(eq,a,b);", "ends with"), ("(eq,a,'b", "unclosed"),
])
def test_malformed_filters_are_refused_with_the_reason(expr, msg):
    """Syntax errors raise BadQuery naming what is wrong."""
    with pytest.raises(BadQuery, match=msg):
        parse_filter(expr)


def test_selectors_default_excludes_and_fields_bring_back():
    """No selector drops the default-excluded attributes; fields= keeps the named ones;
    exclude_fields= drops only those; all_fields keeps everything."""
    default = ("vnfInstance",)
    assert "vnfInstance" not in Selector.parse(None, None, None, None).apply(NS, default)
    assert "vnfInstance" in Selector.parse(None, "vnfInstance", None, None).apply(NS, default)
    s = Selector.parse(None, None, "size,vnfInstance/vnfdId", None).apply(NS, default)
    assert "size" not in s and s["vnfInstance"] == [{}, {}] and "nsState" in s
    assert Selector.parse("", None, None, None).apply(NS, default) == NS
    assert NS["vnfInstance"] == [{"vnfdId": "fw"}, {"vnfdId": "fwd"}]   # input untouched


@pytest.mark.parametrize("args", [("", "a", None, None), ("", None, None, ""),
                                  (None, "a", "b", None), (None, None, "b", "")])
def test_forbidden_selector_combinations(args):
    """all_fields with anything, exclude_fields with fields or exclude_default: BadQuery."""
    with pytest.raises(BadQuery, match="cannot be combined"):
        Selector.parse(*args)


def test_paging_walks_every_item_once_and_refuses_foreign_markers():
    """Following next markers returns each item once, in order; a forged marker is
    refused."""
    items, seen, marker = list(range(7)), [], None
    while True:
        chunk, marker = page(items, marker, 3)
        seen += chunk
        if marker is None:
            break
    assert seen == items
    with pytest.raises(BadQuery, match="not one this server issued"):
        page(items, "!!", 3)
    with pytest.raises(BadQuery, match="past the end"):
        page(items, page(list(range(100)), None, 50)[1], 3)
