"""Simplified HTML: the page an LLM shopper reads, and the names its actions point at.

Raw pages are mostly scripts, styles, icons and layout attributes. `simplify_html` keeps what a human
sees and can act on: text, the structure around interactive elements, and the attributes that matter
(`KEPT_ATTRIBUTES`). Every interactive element (`INTERACTIVE_TAGS`, `CLICKABLE_ROLES`, or an
`onclick` handler, which becomes `role="button"`) ends up with a `name` attribute holding a
hierarchical dotted name, as in the real data (`header.search_box.search_input`,
`search_results.<slug>.view_product`):

* a name already on the page is kept as it is, so already simplified pages (OPeRA ships them, our
  procedural shop emits them) pass through with their names and structure unchanged, and
  `simplify_html(simplify_html(x)) == simplify_html(x)`;
* an interactive element without one gets `<nearest named ancestor>.<slug>`, where the slug comes from
  its aria-label, text, placeholder, image alt, title or value (in that order; the accessible name
  first); page landmarks (header, nav, main, footer, aside, form and their ARIA roles) on the way up
  are named too (`header.search.go`), but only when something inside them needs a name;
* names are unique on the page: a repeated name gets `_2`, `_3`, ... in document order.

Speed: pages of 100k-600k characters are normal (OPeRA). BeautifulSoup builds its tree in Python and
ran at 0.044x lxml's parse + serialize on a 765 kB page, and libxml2's XPath with element predicates
is slow too, so the work is one Python pass over a plain lxml tree (no lxml.html element classes)
plus C-level calls (`strip_attributes`, serialization, `str` methods on the output). What costs is
Python work per element and going back to parts of the tree that are no longer in the CPU cache, so
the pass drops code and hidden blocks itself and skips what is inside them, works out what an
element's attributes mean once per distinct list of attribute names, and naming walks up only from
elements that need a name. `benchmarks/simplify_throughput.py` and `benchmarks/large_inputs.py`
measure the throughput next to plain lxml parse + serialize (`benchmarks/RESULTS.md`): raw pages run
at a little over half its speed, the more elements per character the slower, and already simplified
ones a little faster. bs4 is used where it fits: `UnicodeDammit` decodes pages given as bytes.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
import unicodedata

from lxml import etree

DROPPED_TAGS: tuple[str, ...] = (
    "script", "style", "noscript", "template", "svg", "math", "iframe", "frame", "frameset",
    "object", "embed", "applet", "canvas", "video", "audio", "source", "track",
    "link", "meta", "base", "param", "hr", "wbr",
)
"""Elements removed with their content: code, styling, embedded and purely visual content."""

KEPT_ATTRIBUTES: tuple[str, ...] = (
    "name", "type", "value", "role", "aria-label", "alt", "title", "placeholder", "checked",
    "selected", "href",
)
"""Attributes that carry meaning for a shopper; every other attribute is removed."""

INTERACTIVE_TAGS: tuple[str, ...] = (
    "a", "button", "input", "select", "textarea", "option", "summary",
)
"""Elements a shopper can click or type into, whatever their attributes."""

CLICKABLE_ROLES: tuple[str, ...] = (
    "button", "link", "checkbox", "radio", "tab", "menuitem", "option", "switch", "combobox",
    "searchbox", "textbox",
)
"""ARIA roles that make any element interactive."""

LANDMARK_TAGS: tuple[str, ...] = ("header", "nav", "main", "footer", "aside", "form")
LANDMARK_ROLES: tuple[str, ...] = (
    "banner", "navigation", "main", "contentinfo", "complementary", "search", "form",
)
"""Page regions that become a level of the dotted name when something inside them needs a name."""

MAX_SLUG_CHARS = 80
"""Long enough for a product title (OPeRA's ids carry whole titles), short enough to read."""

_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False)
"""Plain etree parser: lxml.html's element classes cost a Python call per element touched."""
_NAME_ATTRIBUTES = etree.XPath("//@name")
_INTERACTIVE_TAG_SET = frozenset(INTERACTIVE_TAGS)
_CLICKABLE_ROLE_SET = frozenset(CLICKABLE_ROLES)
_LANDMARK_TAG_SET = frozenset(LANDMARK_TAGS)
_LANDMARK_ROLE_SET = frozenset(LANDMARK_ROLES)
_KEPT_ATTRIBUTE_SET = frozenset(KEPT_ATTRIBUTES)
_DROPPED_TAG_SET = frozenset(DROPPED_TAGS)
_NOTABLE_ATTRIBUTES = frozenset(("name", "role", "onclick", "hidden", "aria-hidden", "style", "type"))
"""Attributes that can hide an element, name it or make it interactive; the others only need stripping."""
_FIELD_TAGS = frozenset(("input", "select", "textarea"))
"""Form fields: their text is not their label (a select's text lists every option)."""
_NEVER_EMPTY_TAGS = frozenset(("br", "td", "th", "title", "head", "body", "html"))
"""Kept even when empty: line breaks and table cells carry layout the text depends on."""

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_NOT_WORD = re.compile(r"[\W_]+")
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def simplify_html(raw_html: str | bytes) -> str:
    """Reduce a raw page to what a shopper sees and can act on, naming every interactive element.

    Accepts a whole document or a fragment (it is wrapped in `<html><body>`); bytes are decoded with
    bs4's `UnicodeDammit` (declared charset, then detection). Raises `TypeError` for other types and
    `ValueError` for an empty page.
    """
    document = _parse(raw_html, where="simplify_html")
    head = document[0] if len(document) and document[0].tag == "head" else None
    if head is not None:
        for element in head:
            if element.tag != "title" and element.tag not in _DROPPED_TAG_SET:  # the pass drops those
                head.remove(element)
    # One pass over the elements in document order finds everything the later steps need. It skips the
    # inside of what goes (`DROPPED_TAGS`, hidden elements), and most elements of a raw page, which
    # carry only layout attributes (class, data-*), only have their tag looked at.
    named: list[tuple[etree._Element, str]] = []
    unnamed: list[etree._Element] = []  # interactive elements that need a name
    landmarks: list[etree._Element] = []  # landmarks without a name: named only if something inside is
    removed: list[etree._Element] = []  # dropped (`DROPPED_TAGS`) or hidden, with everything inside
    empty_leaves: list[etree._Element] = []
    attribute_names: set[str] = set()
    # Attribute names of an element ("class data-index") -> the notable ones among them: a page repeats a
    # few such lists, and a string is cheaper to hash and compare than a tuple.
    notable_by_names: dict[str, frozenset[str]] = {}
    skip_until = None  # the last element inside the removed element being skipped
    for element in document.iter(etree.Element):
        if skip_until is not None:
            if element is skip_until:
                skip_until = None
            continue
        tag = element.tag
        if tag in _DROPPED_TAG_SET:
            removed.append(element)
            skip_until = _last_descendant(element)
            continue
        keys = element.keys()
        notable = None
        if keys:
            names = " ".join(keys)
            notable = notable_by_names.get(names)
            if notable is None:
                attribute_names.update(keys)
                notable = notable_by_names[names] = _NOTABLE_ATTRIBUTES.intersection(keys)
        if notable:
            may_hide = "hidden" in notable or "aria-hidden" in notable or "style" in notable or tag == "input"
            if may_hide and _is_hidden(element, notable):
                removed.append(element)
                skip_until = _last_descendant(element)
                continue
            name = element.get("name").strip() if "name" in notable else ""
            if name:
                named.append((element, name))
            elif tag in _INTERACTIVE_TAG_SET or ("role" in notable and _role(element) in _CLICKABLE_ROLE_SET):
                unnamed.append(element)
            elif "onclick" in notable:
                # The handler goes with the other attributes; the role keeps the element clickable.
                element.set("role", "button")
                unnamed.append(element)
            elif tag in _LANDMARK_TAG_SET or ("role" in notable and _role(element) in _LANDMARK_ROLE_SET):
                landmarks.append(element)
        elif tag in _INTERACTIVE_TAG_SET:
            unnamed.append(element)
        elif tag in _LANDMARK_TAG_SET:
            landmarks.append(element)
        if not len(element):
            text = element.text
            if not text or text.isspace():
                empty_leaves.append(element)
    # Removed after the pass (removing during it would end it), each keeping the text that follows it;
    # a parent left without children may be an empty leaf now.
    parents = [element.getparent() for element in removed]
    for element in removed:
        _remove(element)
    empty_leaves += [parent for parent in parents if parent is not None and not len(parent)]
    if unwanted := attribute_names - _KEPT_ATTRIBUTE_SET:
        etree.strip_attributes(document, *unwanted)
    _assign_names(named, unnamed, set(landmarks))
    _drop_empty(empty_leaves)
    return _collapse_whitespace(etree.tostring(document, encoding="unicode", method="html"))


_ASCII_WHITESPACE = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
"""What str.split() splits on besides the space, in ASCII."""


def _collapse_whitespace(text: str) -> str:
    """Drop whitespace-only text between tags and turn other whitespace runs into one space.

    Same result as `" ".join(text.split()).replace("> <", "><")`. Splitting out every word is the
    fastest way for indented raw pages; for ASCII pages without long runs (already simplified ones),
    a few `str.replace` passes are faster.
    """
    if not text.isascii():
        return " ".join(text.split()).replace("> <", "><")
    controls = [char for char in _ASCII_WHITESPACE if char in text]
    if controls and "   " in text:
        return " ".join(text.split()).replace("> <", "><")
    for char in controls:
        text = text.replace(char, " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return text.replace("> <", "><").strip()


def _is_hidden(element: etree._Element, names: frozenset[str]) -> bool:
    """Nobody sees it: `hidden`, aria-hidden, inline display:none or visibility:hidden, hidden input.

    `names` are the element's `_NOTABLE_ATTRIBUTES`.
    """
    if "hidden" in names:
        return True
    if "aria-hidden" in names and element.get("aria-hidden").strip().lower() == "true":
        return True
    if "style" in names:
        style = element.get("style").lower().replace(" ", "")
        if "display:none" in style or "visibility:hidden" in style:
            return True
    return element.tag == "input" and "type" in names and element.get("type").strip().lower() == "hidden"


def _last_descendant(element: etree._Element) -> etree._Element | None:
    """The last element inside `element` in document order (the last child's last child, and so on);
    None when it has no children. Every child is an element: the parser drops comments and processing
    instructions."""
    last = None
    while len(element):
        last = element = element[-1]
    return last


def _drop_empty(empty_leaves: list[etree._Element]) -> None:
    """Remove elements with no text, no meaningful attribute and nothing kept inside (icons, spacers).

    Starts from the leaves without text and climbs: a wrapper emptied by removing its children goes too.
    """
    for leaf in empty_leaves:
        element = leaf
        while element is not None and _is_droppable(element):
            parent = element.getparent()
            _remove(element)
            element = parent if parent is not None and len(parent) == 0 else None


def _is_droppable(element: etree._Element) -> bool:
    tag = element.tag
    if tag in _NEVER_EMPTY_TAGS:
        return False
    text = element.text
    if text and not text.isspace():
        return False
    if tag in _INTERACTIVE_TAG_SET or any(value.strip() for value in element.values()):
        if tag == "li" and element.getparent() is not None:
            # libxml2 writes an empty <li> without its end tag, and whatever follows would be read
            # back inside it; an empty text node makes it write the end tag.
            element.text = ""
        return False
    return element.getparent() is not None


def interactive_elements(html: str) -> list[str]:
    """Names of the clickable and input elements of a simplified page, in document order.

    Only elements that carry a `name` are listed: run `simplify_html` first on a raw page.
    """
    return list(_interactive_names(html))


@functools.lru_cache(maxsize=64)
def _interactive_names(html: str) -> tuple[str, ...]:
    # The env asks for the same page on every step of an episode; the cache keeps that to one parse.
    document = _parse(html, where="interactive_elements")
    names = []
    for attribute in _NAME_ATTRIBUTES(document):  # document order
        name = str(attribute).strip()
        if name and _is_interactive(attribute.getparent()):
            names.append(name)
    return tuple(names)


def _is_interactive(element: etree._Element) -> bool:
    return (
        element.tag in _INTERACTIVE_TAG_SET
        or _role(element) in _CLICKABLE_ROLE_SET
        or element.get("onclick") is not None
    )


def page_title(html: str) -> str:
    """The page's `<title>`, else its first `<h1>`, as plain text; "" when it has neither.

    A regex search rather than a parse: it runs on every render of the env.
    """
    match = _TITLE.search(html) or _H1.search(html)
    if match is None:
        return ""
    return " ".join(html_lib.unescape(_TAG.sub(" ", match.group(1))).split())


@functools.lru_cache(maxsize=4096)
def slugify(text: str) -> str:
    """Lower-case words joined by `_` (accents folded, dots and punctuation dropped), capped in length.

    >>> slugify("Add to Cart - Café Crème (2 pack)")
    'add_to_cart_cafe_creme_2_pack'
    """
    folded = text[: MAX_SLUG_CHARS * 4].casefold()
    if not folded.isascii():
        folded = _fold_latin_accents(folded)
    slug = _NOT_WORD.sub("_", folded).strip("_")
    if len(slug) > MAX_SLUG_CHARS:
        cut = slug.rfind("_", 0, MAX_SLUG_CHARS + 1)
        slug = slug[: cut if cut > 0 else MAX_SLUG_CHARS]
    return slug


def _fold_latin_accents(text: str) -> str:
    """"Crème" -> "creme", full-width letters -> ASCII; marks on other scripts (ペ's dakuten) stay."""
    kept: list[str] = []
    for char in unicodedata.normalize("NFKD", text):
        if unicodedata.combining(char) and kept and kept[-1].isascii():
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def _parse(raw_html: str | bytes, *, where: str) -> etree._Element:
    if isinstance(raw_html, bytes):
        from bs4 import UnicodeDammit

        decoded = UnicodeDammit(raw_html, is_html=True).unicode_markup
        if decoded is None:
            raise ValueError(f"{where}: could not decode the page's bytes (no charset works)")
        raw_html = decoded
    if not isinstance(raw_html, str):
        raise TypeError(f"{where}: expected the page as str or bytes, got {type(raw_html).__name__}")
    # lxml refuses str input that declares an encoding; the declaration means nothing for a str.
    if declaration := _XML_DECLARATION.match(raw_html):
        raw_html = raw_html[declaration.end() :]
    if not raw_html or raw_html.isspace():
        raise ValueError(f"{where}: empty page (expected an HTML document or fragment)")
    try:
        document = etree.fromstring(raw_html, parser=_PARSER)
    except etree.XMLSyntaxError as err:
        raise ValueError(f"{where}: lxml could not parse the page ({err})") from None
    if document is None:
        raise ValueError(f"{where}: the page has no elements (expected an HTML document or fragment)")
    return document


def _remove(element: etree._Element) -> None:
    """Remove an element and its subtree but keep the text that follows it (its tail)."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is None:
            parent.text = (parent.text or "") + element.tail
        else:
            previous.tail = (previous.tail or "") + element.tail
    parent.remove(element)


class _NameRegistry:
    """Names already on the page, handing out unique ones (`x`, `x_2`, `x_3`, ...) without rescanning."""

    def __init__(self) -> None:
        self.taken: set[str] = set()
        self._next_suffix: dict[str, int] = {}

    def claim(self, wanted: str) -> str:
        if wanted not in self.taken:
            self.taken.add(wanted)
            return wanted
        name = wanted
        suffix = self._next_suffix.get(wanted, 2)
        while name in self.taken:
            name = f"{wanted}_{suffix}"
            suffix += 1
        self._next_suffix[wanted] = suffix
        self.taken.add(name)
        return name


def _assign_names(
    named: list[tuple[etree._Element, str]],
    unnamed: list[etree._Element],
    landmarks: set[etree._Element],
) -> None:
    """Make names unique, then name every unnamed interactive element (and landmarks above it).

    Both lists are in document order, so ancestors are named before their descendants.
    """
    registry = _NameRegistry()
    scopes: dict[etree._Element, str] = {}  # element -> the name its descendants are named under
    for element, name in named:
        if name in registry.taken:
            name = registry.claim(name)
            element.set("name", name)
        else:
            registry.taken.add(name)
        if unnamed:  # scopes are only looked up to name the unnamed
            scopes[element] = name
    for element in unnamed:
        parent = element.getparent()
        prefix = scopes.get(parent)  # siblings share a parent: usually known already
        if prefix is None:
            prefix = _scope_name(parent, registry, scopes, landmarks)
        has_children = len(element) > 0
        slug = _element_slug(element, has_children)
        name = registry.claim(f"{prefix}.{slug}" if prefix else slug)
        element.set("name", name)
        if has_children:  # a leaf is nobody's ancestor
            scopes[element] = name


def _scope_name(
    parent: etree._Element | None,
    registry: _NameRegistry,
    scopes: dict[etree._Element, str],
    landmarks: set[etree._Element],
) -> str:
    """The nearest named ancestor's name, naming the unnamed landmarks below it on the way.

    `scopes` holds every named element and memoizes the answer for the others, so a page with
    thousands of links walks each ancestor once instead of once per link.
    """
    chain = []
    prefix = ""
    node = parent
    while node is not None:
        if (known := scopes.get(node)) is not None:
            prefix = known
            break
        chain.append(node)
        node = node.getparent()
    for node in reversed(chain):  # outermost first
        if node in landmarks:
            slug = slugify(node.get("aria-label") or "") or _landmark_kind(node)
            prefix = registry.claim(f"{prefix}.{slug}" if prefix else slug)
            node.set("name", prefix)
        scopes[node] = prefix
    return prefix


def _role(element: etree._Element) -> str:
    return (element.get("role") or "").strip().lower()


def _landmark_kind(element: etree._Element) -> str:
    role = _role(element)
    return role if role in _LANDMARK_ROLE_SET else element.tag


def _element_slug(element: etree._Element, has_children: bool) -> str:
    """A slug of what a shopper would call the element; its kind when it has no label at all.

    Labels in order: aria-label (the accessible name), text, placeholder, alt, the alt of an image
    inside, title, value.
    """
    label = element.get("aria-label")
    if label and (slug := slugify(label)):
        return slug
    tag = element.tag
    if tag not in _FIELD_TAGS:
        # A leaf's text is its .text; only an element with children needs the text serializer.
        if has_children:
            text = etree.tostring(element, method="text", encoding="unicode", with_tail=False)
        else:
            text = element.text
        if text and (slug := slugify(text[: MAX_SLUG_CHARS * 4])):
            return slug
    for label in (element.get("placeholder"), element.get("alt")):
        if label and (slug := slugify(label)):
            return slug
    for image in element.iter("img"):
        if (label := image.get("alt")) and (slug := slugify(label)):
            return slug
    for label in (element.get("title"), element.get("value")):
        if label and (slug := slugify(label)):
            return slug
    if tag == "input":
        return f"{slugify(element.get('type') or 'text') or 'text'}_input"
    return {"a": "link"}.get(tag, slugify(tag) or "element")
