"""The vendor's catalog (products and modules). Catalog is data: see helpdesk/demo_data."""
from __future__ import annotations

import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import Module, Product


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in text if not unicodedata.combining(c)).lower().strip()


def products(s: Session) -> list[Product]:
    return list(s.scalars(select(Product).options(selectinload(Product.modules)).order_by(Product.id)))


def modules(s: Session) -> list[Module]:
    return list(s.scalars(select(Module).options(selectinload(Module.product)).order_by(Module.id)))


def find_module(s: Session, name_or_synonym: str) -> Module | None:
    key = _fold(name_or_synonym)
    if not key:
        return None
    for module in modules(s):
        names = [module.code, module.name, *(module.synonyms or [])]
        if key in {_fold(n) for n in names}:
            return module
    return None


def find_product(s: Session, code_or_name: str) -> Product | None:
    key = _fold(code_or_name)
    for product in products(s):
        if key in (_fold(product.code), _fold(product.name)):
            return product
    return None
