"""The field schema: every field of an XForm with its type, nesting, choices and rules.

An XForm is parsed once, when it is uploaded, into a `FormSchema` that submissions,
aggregation, analytics and MCP use from then on; nothing re-parses the XForm per request.
Paths are instance paths without the root element, as ODK Central writes them
(`/household/member/age`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lxml import etree

from odk_mcp.services.forms.domain.attachments import ExpectedAttachment, expected_attachments
from odk_mcp.services.forms.domain.safe_xml import parse_xml

XF = "http://www.w3.org/2002/xforms"
H = "http://www.w3.org/1999/xhtml"
JR = "http://openrosa.org/javarosa"
NS = {"xf": XF, "h": H, "jr": JR}

BINARY_TYPES = frozenset({"binary"})
CONTROL_TAGS = frozenset({"input", "select1", "select", "upload", "trigger", "range", "rank", "secret"})
# Anywhere in the nodeset: pyxform wraps it in randomize(…) for randomized choice lists.
_ITEMSET = re.compile(r"instance\(\s*['\"]([^'\"]+)['\"]\s*\)\s*/\s*root\s*/\s*item")
_ITEXT = re.compile(r"^\s*jr:itext\(\s*['\"]?([^'\")]+)['\"]?\s*\)\s*$")


class InvalidXForm(ValueError):
    """The XML is well-formed but is not a usable XForm."""


@dataclass(frozen=True)
class Choice:
    value: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Field:
    path: str
    name: str
    type: str  # bind type, or "structure" (group) / "repeat"
    repeat: str | None  # path of the innermost enclosing repeat
    binary: bool
    select_multiple: bool
    labels: dict[str, str] = field(default_factory=dict)
    choices: tuple[Choice, ...] = ()
    choice_list: str | None = None  # secondary instance the choices come from
    required: str | None = None
    constraint: str | None = None
    relevant: str | None = None
    calculate: str | None = None
    readonly: str | None = None


@dataclass(frozen=True)
class FormSchema:
    xml_form_id: str
    version: str
    title: str
    languages: tuple[str, ...]
    fields: tuple[Field, ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FormSchema:
        fields = tuple(
            Field(**{**f, "choices": tuple(Choice(**c) for c in f["choices"])}) for f in data["fields"]
        )
        return cls(
            xml_form_id=data["xml_form_id"],
            version=data["version"],
            title=data["title"],
            languages=tuple(data["languages"]),
            fields=fields,
        )

    def field(self, path: str) -> Field | None:
        return next((f for f in self.fields if f.path == path), None)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _translations(model: etree._Element) -> dict[str, dict[str, str]]:
    """itext: language → text id → the plain (form-less) value."""
    out: dict[str, dict[str, str]] = {}
    for translation in model.iterfind("xf:itext/xf:translation", NS):
        lang = translation.get("lang", "default")
        texts = out.setdefault(lang, {})
        for text in translation.iterfind("xf:text", NS):
            plain = [v for v in text.iterfind("xf:value", NS) if v.get("form") in (None, "long", "short")]
            if plain:
                texts[text.get("id", "")] = _text(plain[0])
    return out


def _text(element: etree._Element) -> str:
    """Text of a label or value, with `<output value="/data/x"/>` shown as `${x}`."""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str) and etree.QName(child).localname == "output":
            reference = (child.get("value") or "").strip().rstrip("/").split("/")[-1]
            parts.append("${" + reference + "}")
        elif isinstance(child.tag, str):
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts).strip()


def _labels(label: etree._Element | None, itext: dict[str, dict[str, str]]) -> dict[str, str]:
    if label is None:
        return {}
    ref = label.get("ref")
    match = _ITEXT.match(ref) if ref else None
    if match:
        return {lang: texts[match.group(1)] for lang, texts in itext.items() if match.group(1) in texts}
    text = _text(label)
    return {"default": text} if text else {}


def _choice_lists(model: etree._Element, itext: dict[str, dict[str, str]]) -> dict[str, tuple[Choice, ...]]:
    lists: dict[str, tuple[Choice, ...]] = {}
    for instance in model.iterfind("xf:instance", NS):
        list_id = instance.get("id")
        if not list_id or instance.get("src"):
            continue  # the primary instance, or external data (CSV / entity lists)
        choices = []
        for item in instance.iterfind("xf:root/xf:item", NS):
            name = item.find("xf:name", NS)
            if name is None:
                continue
            label = item.find("xf:label", NS)
            itext_id = item.find("xf:itextId", NS)
            if itext_id is not None and itext_id.text:
                labels = {lang: t[itext_id.text] for lang, t in itext.items() if itext_id.text in t}
            else:
                labels = {"default": (label.text or "").strip()} if label is not None else {}
            choices.append(Choice(value=(name.text or "").strip(), labels=labels))
        lists[list_id] = tuple(choices)
    return lists


def _controls(body: etree._Element | None) -> tuple[dict[str, etree._Element], set[str]]:
    """Body controls by the instance path they bind to, and the paths that are repeats."""
    controls: dict[str, etree._Element] = {}
    repeats: set[str] = set()
    if body is None:
        return controls, repeats
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
        local = _local(element)
        if local == "repeat" and element.get("nodeset"):
            repeats.add(element.get("nodeset", "").strip())
        elif local in CONTROL_TAGS or local == "group":
            ref = element.get("ref") or element.get("nodeset")
            if ref:
                controls[ref.strip()] = element
    return controls, repeats


def _inline_choices(control: etree._Element, itext: dict[str, dict[str, str]]) -> tuple[Choice, ...]:
    out = []
    for item in control.iterfind("xf:item", NS):
        value = item.find("xf:value", NS)
        if value is not None:
            out.append(Choice((value.text or "").strip(), _labels(item.find("xf:label", NS), itext)))
    return tuple(out)


def _attr(bind: etree._Element | None, name: str) -> str | None:
    return bind.get(name) if bind is not None else None


def read_schema(xform: bytes, max_bytes: int = 20_000_000) -> FormSchema:
    """Parse XForm bytes into a FormSchema; raises UnsafeXml or InvalidXForm."""
    return read_form(xform, max_bytes)[0]


def read_form(
    xform: bytes, max_bytes: int = 20_000_000
) -> tuple[FormSchema, tuple[ExpectedAttachment, ...], str | None]:
    """Parse XForm bytes once into its schema, the attachments it expects and its public key."""
    root = parse_xml(xform, max_bytes)
    return schema_of(root), expected_attachments(root), public_key_of(root)


# A base64 DER public key: what ODK's tools write (whitespace and line breaks allowed).
_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]+=*\s*$")


def public_key_of(root: etree._Element) -> str | None:
    """The `base64RsaPublicKey` of the model's `<submission>` element (an encrypted form), with
    its whitespace removed; None for a plain form. A key that is not base64 makes the form
    invalid: Collect could not encrypt to it, and the data would be lost on the phone."""
    submission = root.find("h:head/xf:model/xf:submission", NS)
    key = submission.get("base64RsaPublicKey") if submission is not None else None
    if key is None or not key.strip():
        return None
    if not _BASE64.match(key) or len(key) > 10_000:
        raise InvalidXForm("the submission element's base64RsaPublicKey is not a base64 key")
    return "".join(key.split())


def schema_of(root: etree._Element) -> FormSchema:
    """The field schema of a parsed XForm."""
    if root.tag != f"{{{H}}}html":
        raise InvalidXForm("the root element must be h:html")
    model = root.find("h:head/xf:model", NS)
    instance = model.find("xf:instance", NS) if model is not None else None
    data = next((c for c in instance if isinstance(c.tag, str)), None) if instance is not None else None
    if model is None or data is None:
        raise InvalidXForm("the form has no model with a primary instance")
    xml_form_id = data.get("id")
    if not xml_form_id:
        raise InvalidXForm("the primary instance has no id attribute (the form id)")
    title_el = root.find("h:head/h:title", NS)
    itext = _translations(model)
    binds = {b.get("nodeset", "").strip(): b for b in model.iterfind("xf:bind", NS)}
    choice_lists = _choice_lists(model, itext)
    controls, repeats = _controls(root.find("h:body", NS))

    fields: list[Field] = []
    seen: set[str] = set()

    def walk(element: etree._Element, abs_path: str, repeat: str | None) -> None:
        for child in element:
            if not isinstance(child.tag, str):
                continue
            path = f"{abs_path}/{_local(child)}"
            if path in seen:
                continue  # a repeat's template and its instances share a path
            seen.add(path)
            rel = path[len(root_path) :]
            bind = binds.get(path)
            control = controls.get(path)
            is_repeat = path in repeats or child.get(f"{{{JR}}}template") is not None
            has_children = any(isinstance(c.tag, str) for c in child)
            if is_repeat:
                kind = "repeat"
            elif has_children or (
                bind is None
                and ((control is not None and _local(control) == "group") or len(child.attrib) > 0)
            ):
                # An empty group, or an element that only carries attributes (e.g. meta/entity).
                kind = "structure"
            else:
                kind = (bind.get("type") if bind is not None else None) or "string"
                kind = kind.split(":")[-1]
            choices: tuple[Choice, ...] = ()
            choice_list = None
            if control is not None and _local(control) in ("select1", "select", "rank"):
                itemset = control.find("xf:itemset", NS)
                match = _ITEMSET.search(itemset.get("nodeset", "")) if itemset is not None else None
                if match:
                    choice_list = match.group(1)
                    choices = choice_lists.get(choice_list, ())
                else:
                    choices = _inline_choices(control, itext)
            fields.append(
                Field(
                    path=rel,
                    name=_local(child),
                    type=kind,
                    repeat=repeat[len(root_path) :] if repeat else None,
                    binary=kind in BINARY_TYPES,
                    select_multiple=control is not None and _local(control) == "select",
                    labels=_labels(control.find("xf:label", NS), itext) if control is not None else {},
                    choices=choices,
                    choice_list=choice_list,
                    required=_attr(bind, "required"),
                    constraint=_attr(bind, "constraint"),
                    relevant=_attr(bind, "relevant"),
                    calculate=_attr(bind, "calculate"),
                    readonly=_attr(bind, "readonly"),
                )
            )
            if has_children:
                walk(child, path, path if is_repeat else repeat)

    root_path = f"/{_local(data)}"
    walk(data, root_path, None)
    return FormSchema(
        xml_form_id=xml_form_id,
        version=data.get("version") or "",
        title=(title_el.text or "").strip() if title_el is not None else xml_form_id,
        languages=tuple(sorted(itext)),
        fields=tuple(fields),
    )
