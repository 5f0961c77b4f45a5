"""Resolve a domain name to its ``DomainSpec``: the shipped catalogue first, then the user domains.

It sits above :mod:`kgkd.data.specs` (the catalogue) and :mod:`kgkd.data.user` (user domains,
which reuse the catalogue's label sets), so the three import one way at module top level:
``specs`` ← ``user`` ← ``domains``. Import ``get_spec`` / ``list_domains`` from :mod:`kgkd.data`.
"""

from __future__ import annotations

from kgkd.data.specs import DOMAINS, MODALITIES, DomainSpec
from kgkd.data.user import user_domain_names, user_spec
from kgkd.errors import DataError, UnknownDatasetError
from kgkd.utils.suggest import suggestion

__all__ = ["get_spec", "list_domains"]


def get_spec(name: str) -> DomainSpec:
    """Return the spec of domain ``name`` (shipped, else user-added); unknown names get a did-you-mean error."""
    if name in DOMAINS:
        return DOMAINS.get(name)
    spec = user_spec(str(name))
    if spec is not None:
        return spec
    known = DOMAINS.names() + user_domain_names()
    hint = suggestion(name, known)
    raise UnknownDatasetError(
        f"unknown data domain '{name}'.{hint} Known domains: {', '.join(known)}; "
        "add your own with `kgkd data add NAME FILE`"
    )


def list_domains(modality: str | None = None, *, include_user: bool = True) -> list[str]:
    """Names of all known domains (optionally only ``"text"`` or ``"image"`` ones), sorted.

    ``include_user`` adds the domains added with ``kgkd data add`` (``kgkd.data.user``).
    """
    if modality is not None and modality not in MODALITIES:
        raise DataError(
            f"unknown modality '{modality}' for list_domains; use one of {list(MODALITIES)}"
        )
    names = [n for n in DOMAINS.names() if modality is None or DOMAINS.get(n).modality == modality]
    if include_user:
        names += user_domain_names(modality)
    return sorted(names)
