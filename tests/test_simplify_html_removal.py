"""What simplify_html removes (`DROPPED_TAGS`, hidden elements) and how that meets naming and empty-element
pruning. The expected outputs are those of the implementation before the single pass took over the
removal (it used `etree.strip_elements` and filtered hidden subtrees afterwards); they pin that the
text after a removed element stays, that a label is read once hidden text is gone, and that a wrapper
left empty goes.
"""

from __future__ import annotations

import pytest

from shop_env.simplify_html import simplify_html

CASES = [
    pytest.param(
        '<p>a<script>x</script>b<span hidden>h</span>c</p>',
        "<html><body><p>abc</p></body></html>",
        id="text-after-removed-elements-stays",
    ),
    pytest.param(
        '<a href="/cart"><svg><path d="M0 0"/></svg></a><button><svg></svg>Go</button>',
        '<html><body><a href="/cart" name="link"></a><button name="go">Go</button></body></html>',
        id="icon-only-controls",
    ),
    pytest.param(
        '<a href="/p/1">Buy <span aria-hidden="true">*</span>now</a>',
        '<html><body><a href="/p/1" name="buy_now">Buy now</a></body></html>',
        id="label-without-hidden-text",
    ),
    pytest.param(
        '<div class="w"><span class="i"><script>x</script></span></div><p>text</p>',
        "<html><body><p>text</p></body></html>",
        id="wrappers-left-empty-go",
    ),
    pytest.param(
        '<ul><li role="tab"><svg></svg></li><li>two</li></ul>',
        '<html><body><ul><li role="tab" name="li"></li><li>two</li></ul></body></html>',
        id="emptied-named-li-keeps-its-end-tag",
    ),
    pytest.param(
        '<nav><div style="display: none"><a href="/h">Hidden</a></div><a href="/">Home</a></nav>',
        '<html><body><nav name="nav"><a href="/" name="nav.home">Home</a></nav></body></html>',
        id="hidden-links-take-no-name",
    ),
    pytest.param(
        '<form role="search"><noscript><input name="q"></noscript><input placeholder="Search">'
        '<iframe src="x"></iframe>tail</form>',
        '<html><body><form role="search" name="search"><input placeholder="Search" name="search.search">'
        "tail</form></body></html>",
        id="names-inside-dropped-elements-do-not-count",
    ),
    pytest.param(
        '<html><head><meta charset="utf-8"><title>T</title><script>s</script><style>p{}</style></head>'
        '<body><div name="cart">x</div><a>Cart</a><hr>after</body></html>',
        '<html><head><title>T</title></head><body><div name="cart">x</div><a name="cart_2">Cart</a>after'
        "</body></html>",
        id="head-keeps-only-its-title",
    ),
    pytest.param(
        '<div onclick="go()"><span aria-hidden="true"><svg></svg></span>Add <b>to</b> cart</div>'
        '<div role="button" hidden><a>x</a></div>',
        '<html><body><div role="button" name="add_to_cart">Add <b>to</b> cart</div></body></html>',
        id="hidden-inside-and-around-clickables",
    ),
    pytest.param(
        '<header><a href="/"><img alt="Shop logo"><svg></svg></a><template><a>t</a></template></header>',
        '<html><body><header name="header"><a href="/" name="header.shop_logo"><img alt="Shop logo"></a>'
        "</header></body></html>",
        id="landmark-named-for-what-survives",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_removal_meets_naming_and_pruning(raw, expected):
    assert simplify_html(raw) == expected
    assert simplify_html(expected) == expected
