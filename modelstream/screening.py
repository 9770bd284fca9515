"""Hostile model files, refused (``UnsafeModel``) before anything is built from them: a model above the
size limit, and an XML document that declares a DOCTYPE or an entity (XML external entities read local
files and URLs; nested entities expand without bound). Archives are screened as they are unpacked
(``modelstream.archive``). What each PMML engine does unscreened: docs/security.md."""

from __future__ import annotations

from typing import NoReturn
from xml.parsers import expat

from modelstream.contract import ModelLoadError, UnsafeModel


def check_size(what_is: str, size: int, max_bytes: int) -> None:
    """Refuse a model (its bytes, a location's files) of ``size`` bytes above ``max_bytes``; ``what_is``
    begins the message: "the model's data is"."""
    if size > max_bytes:
        raise UnsafeModel(f"{what_is} {size} bytes, above the limit of {max_bytes} bytes (max_model_bytes)")


class _Root(Exception):
    """The root element began: the prolog, the only place a DOCTYPE may be, is over."""


def check_xml_prolog(document: bytes, what: str) -> None:
    """Refuse an XML document with a DOCTYPE or an ENTITY declaration, read up to its root element only.

    The document is parsed as an XML parser reads it (expat: byte order marks, the declared encoding)
    and the first declaration ends the parse, so nothing is fetched or expanded. A prolog that does not
    parse is refused too (ModelLoadError): nothing unscreened reaches an engine."""
    doctypes: list[str] = []

    def refuse(declaration: str) -> NoReturn:
        raise UnsafeModel(f"{what} {declaration}: DOCTYPE and ENTITY declarations are refused")

    def doctype(name: str, system_id: str | None, public_id: str | None, internal_subset: bool) -> None:
        doctypes.append(f"DOCTYPE {_quoted(name)}" + (f" SYSTEM {_quoted(system_id)}" if system_id else ""))
        if not internal_subset:
            refuse(f"has a DOCTYPE declaration ({doctypes[0]})")

    def entity(name: str, parameter: bool, value: str | None, base: str | None, system_id: str | None,
               public_id: str | None, notation: str | None) -> None:  # fmt: skip
        kind = "a parameter entity" if parameter else "an entity"
        external = f" (SYSTEM {_quoted(system_id)})" if system_id else ""
        refuse(f"declares {kind} {_quoted(name)}{external} in its {doctypes[0]}")

    def doctype_end() -> None:  # an internal subset without entities
        refuse(f"has a DOCTYPE declaration ({doctypes[0]}, with an internal subset)")

    def root(name: str, attributes: object) -> None:
        raise _Root

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity  # the first entity ends the parse: none is ever expanded
    parser.EndDoctypeDeclHandler = doctype_end
    parser.StartElementHandler = root
    try:
        parser.Parse(document, True)
    except _Root:
        return
    except (expat.ExpatError, ValueError, LookupError) as e:  # also an encoding expat cannot read
        raise ModelLoadError(f"{what} is not well-formed XML before its root element: {e}") from e
    raise ModelLoadError(f"{what} has no root element")


def _quoted(text: str | None) -> str:
    """Attacker-chosen text, quoted and shortened for a message."""
    return repr((text or "")[:120])
