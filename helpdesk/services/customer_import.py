"""CSV import of customers, with a report of the rejected rows and why; and the one CSV writer of
every export (``csv_text``), which neutralises formula cells.

Each row is all-or-nothing: it is written inside its own SAVEPOINT through ``customers.create``
(which validates CNPJ check digits, phones, e-mails, tax regime, modules, AnyDesk codes and
duplicates), and a row that fails leaves nothing behind. A file that cannot be read at all (not
CSV, missing required columns, too big) raises InvalidInput and writes nothing.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import DomainError, InvalidInput
from . import customers

COLUMNS = ("responsavel", "razao_social", "nome_fantasia", "cnpj", "regime_tributario", "telefones", "emails",
           "modulos", "maquinas", "cidade", "uf")
REQUIRED = ("responsavel", "razao_social", "cnpj", "regime_tributario")
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000

# A spreadsheet reads a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe, so it is shown
    as typed. Numbers stay numbers (the program wrote them; they hold no formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]], delimiter: str = ";") -> str:
    """CSV text of an export: every cell through ``safe_cell``. Every CSV the console offers for
    download is written here."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow([safe_cell(v) for v in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


@dataclass(frozen=True)
class Rejected:
    line: int  # line number in the file (the header is line 1)
    legal_name: str
    reason: str  # pt-BR


@dataclass
class ImportReport:
    created: list[tuple[int, int, str]] = field(default_factory=list)  # (line, customer id, razão social)
    rejected: list[Rejected] = field(default_factory=list)

    def rejected_csv(self) -> str:
        return csv_text(["linha", "razao_social", "motivo"], ([r.line, r.legal_name, r.reason] for r in self.rejected))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="strict")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split("|") if part.strip()]


def _machines(value: str | None) -> list[customers.MachineSpec]:
    specs = []
    for part in _split(value):
        name, _, code = part.partition(":")
        if not name.strip():
            raise InvalidInput(f"machine without name {part!r}", f"Máquina sem nome: \"{part}\".")
        specs.append(customers.MachineSpec(name=name.strip(), anydesk_code=code.strip()))
    return specs


def import_csv(s: Session, raw: bytes) -> ImportReport:
    """Import customers from CSV bytes. Good rows are created; bad rows are reported, not written."""
    if not raw or not raw.strip():
        raise InvalidInput("empty CSV", "O arquivo CSV está vazio.")
    if len(raw) > MAX_BYTES:
        raise InvalidInput("CSV too big", "Arquivo grande demais (máximo de 5 MB).")
    try:
        text = _decode(raw)
    except UnicodeDecodeError as err:
        raise InvalidInput(f"undecodable CSV: {err}", "Não foi possível ler o arquivo: use CSV em UTF-8.") from err
    header_line = text.splitlines()[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InvalidInput(f"missing columns {missing}",
                           "Colunas obrigatórias ausentes no cabeçalho: " + ", ".join(missing) + ".")
    report = ImportReport()
    for index, row in enumerate(reader):
        line = reader.line_num
        if index >= MAX_ROWS:
            raise InvalidInput("too many rows", f"Arquivo com linhas demais (máximo de {MAX_ROWS}).")
        legal = (row.get("razao_social") or "").strip()
        if None in row or any(row.get(c) is None for c in header):
            report.rejected.append(Rejected(line, legal, "Número de colunas diferente do cabeçalho."))
            continue
        if not any((v or "").strip() for v in row.values()):
            continue  # blank line
        savepoint = s.begin_nested()
        try:
            customer = customers.create(
                s, responsible_name=row.get("responsavel") or "", legal_name=legal, cnpj=row.get("cnpj") or "",
                tax_regime=row.get("regime_tributario") or "", trade_name=row.get("nome_fantasia") or "",
                phones=_split(row.get("telefones")), emails=_split(row.get("emails")),
                licenses=[customers.LicenseSpec(module=m.lower()) for m in _split(row.get("modulos"))],
                machines=_machines(row.get("maquinas")), city=(row.get("cidade") or "").strip(),
                state=(row.get("uf") or "").strip().upper()[:2])
            savepoint.commit()
        except DomainError as err:
            savepoint.rollback()
            report.rejected.append(Rejected(line, legal, err.message_pt))
            continue
        except IntegrityError:
            savepoint.rollback()
            report.rejected.append(Rejected(line, legal, "Dados duplicados: cliente ou contato já cadastrado."))
            continue
        report.created.append((line, customer.id, customer.legal_name))
    return report
