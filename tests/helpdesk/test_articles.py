"""Solutions -> documentation (services/articles.py), on SQLite and PostgreSQL: the checkbox of
"Registrar solução" makes a candidate; a manager approves or discards it; bad input and personal
data are refused and change nothing; the approved articles are the ingester's documents; an
erasure flags the articles made from the person's tickets."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from helpdesk import errors, privacy
from helpdesk.db import session_scope
from helpdesk.demo import load_catalog
from helpdesk.models import KnowledgeArticle
from helpdesk.services import articles, customers, technicians, tickets

CNPJ = "11.222.333/0001-81"
BODY = ("1. Abra o PDV e vá em Configurações > Impressora.\n2. Escolha a porta USB001.\n"
        "3. Imprima a página de teste.")


@pytest.fixture()
def world(db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    monkeypatch.setenv("ATENDE_CONSOLE_URL", "https://console.atende.example/")
    with session_scope() as s:
        load_catalog(s)
        c = customers.create(s, responsible_name="Joana Ribeiro", legal_name="Padaria Pão Dourado Ltda",
                             cnpj=CNPJ, tax_regime="Simples Nacional", phones=["+55 (11) 98765-4321"],
                             emails=["joana@paodourado.com.br"])
        tech = technicians.create(s, name="Rafael", email="rafael@x.com", password="segredo-123")
        boss = technicians.create(s, name="Bianca", email="bianca@x.com", password="segredo-123", role="manager")
        t = tickets.open_ticket(s, customer_id=c.id, channel="web", type="erro", module="pdv",
                                subject="Cupom não imprime", description="A impressora do caixa parou de imprimir.",
                                conversation_id="web:abc")
        tickets.assume(s, t.id, tech.id)
        return {"customer": c.id, "tech": tech.id, "manager": boss.id, "ticket": t.id}


def _solve(world: dict[str, int], suggest: bool = True) -> int:
    with session_scope() as s:
        tickets.resolve(s, world["ticket"], technician_id=world["tech"],
                        solution="Reinstalei o driver e escolhi a porta USB001.", suggest_article=suggest)
        row = s.scalar(select(KnowledgeArticle).where(KnowledgeArticle.ticket_id == world["ticket"]))
        return row.id if row else 0


def _row(article_id: int) -> dict[str, Any]:
    with session_scope() as s:
        a = s.get(KnowledgeArticle, article_id)
        assert a is not None
        return {c: getattr(a, c) for c in ("state", "title", "module", "body", "question", "solution",
                                            "review_reason", "decided_by_id", "personal_data_confirmed")}


def test_the_checkbox_makes_a_pending_candidate_with_the_tickets_text(world: dict[str, int]) -> None:
    aid = _solve(world)
    row = _row(aid)
    assert row["state"] == "pending" and row["module"] == "pdv"
    assert row["question"] == "Cupom não imprime\n\nA impressora do caixa parou de imprimir."
    assert row["solution"] == "Reinstalei o driver e escolhi a porta USB001."
    with session_scope() as s:
        a = s.get(KnowledgeArticle, aid)
        assert a is not None and a.suggested_by_id == world["tech"] and a.suggested_at is not None
        assert [x.id for x in articles.listing(s, ["pending"])] == [aid]


def test_without_the_checkbox_no_candidate(world: dict[str, int]) -> None:
    assert _solve(world, suggest=False) == 0


def test_a_manager_approves_and_the_ingester_gets_it_with_its_console_url(world: dict[str, int]) -> None:
    aid = _solve(world)
    with session_scope() as s:
        articles.approve(s, aid, manager_id=world["manager"], title="  Cupom  não imprime no PDV ",
                         module="pdv", body=BODY)
    row = _row(aid)
    assert row["state"] == "approved" and row["title"] == "Cupom não imprime no PDV"
    assert row["decided_by_id"] == world["manager"] and row["personal_data_confirmed"] is False
    with session_scope() as s:
        docs = articles.published_documents(s)
    assert len(docs) == 1
    doc = docs[0]
    assert doc["url"] == f"https://console.atende.example/artigos?id={aid}"
    assert doc["product"] == "erp" and doc["module"] == "pdv" and doc["key"] == f"artigo:{aid}"
    text = doc["data"].decode()
    assert text.startswith("---\n") and "title: Cupom não imprime no PDV" in text and BODY in text
    # only the manager's article is published: never the ticket's copied question or solution
    assert "parou de imprimir" not in text and "Reinstalei" not in text


@pytest.mark.parametrize(("title", "body", "module", "message"), [
    ("", BODY, "pdv", "Informe o título do artigo."),
    ("   ", BODY, "pdv", "Informe o título do artigo."),
    ("Cupom", "", "pdv", "Escreva o texto do artigo (os passos da solução)."),
    ("Cupom", " \n\t ", "pdv", "Escreva o texto do artigo (os passos da solução)."),
    ("Cupom", "curto", "pdv", "O texto do artigo precisa ter pelo menos 20 caracteres."),
    ("x" * 201, BODY, "pdv", "O título pode ter no máximo 200 caracteres."),
    ("Cupom", BODY, "nao-existe", "Módulo desconhecido."),
])
def test_bad_input_is_refused_and_changes_nothing(world: dict[str, int], title: str, body: str, module: str,
                                                  message: str) -> None:
    aid = _solve(world)
    before = _row(aid)
    with session_scope() as s, pytest.raises(errors.InvalidInput) as err:
        articles.approve(s, aid, manager_id=world["manager"], title=title, module=module, body=body)
    assert err.value.message_pt == message
    assert _row(aid) == before


def test_a_technician_cannot_approve_or_discard(world: dict[str, int]) -> None:
    aid = _solve(world)
    with session_scope() as s, pytest.raises(errors.PermissionDenied):
        articles.approve(s, aid, manager_id=world["tech"], title="Cupom", module="pdv", body=BODY)
    with session_scope() as s, pytest.raises(errors.PermissionDenied):
        articles.discard(s, aid, manager_id=world["tech"])
    assert _row(aid)["state"] == "pending"


@pytest.mark.parametrize(("extra", "warning"), [
    ("Cliente CNPJ 11.222.333/0001-81.", "um CNPJ"),
    ("Cliente 11222333000181.", "um CNPJ"),
    ("Ligue para (11) 98765-4321.", "um telefone"),
    ("Escreva para joana@paodourado.com.br.", "um e-mail"),
    ("A Joana Ribeiro confirmou.", 'o nome "Joana Ribeiro"'),
    ("Na padaria pao dourado LTDA deu certo.", 'o nome "Padaria Pão Dourado Ltda"'),
    ("Na Padaria Pão Dourado deu certo.", 'o nome "Padaria Pão Dourado Ltda"'),
])
def test_personal_data_blocks_approval_until_removed_or_confirmed(world: dict[str, int], extra: str,
                                                                  warning: str) -> None:
    aid = _solve(world)
    with session_scope() as s, pytest.raises(articles.PersonalDataFound) as err:
        articles.approve(s, aid, manager_id=world["manager"], title="Cupom", module="pdv", body=f"{BODY}\n{extra}")
    assert warning in err.value.warnings
    assert "Remova-os ou confirme" in err.value.message_pt
    assert _row(aid)["state"] == "pending"
    with session_scope() as s:  # removed: approved
        articles.approve(s, aid, manager_id=world["manager"], title="Cupom", module="pdv", body=BODY)
    assert _row(aid)["state"] == "approved"
    with session_scope() as s:  # or confirmed: approved, and the confirmation recorded
        articles.approve(s, aid, manager_id=world["manager"], title="Cupom", module="pdv",
                         body=f"{BODY}\n{extra}", confirm_personal_data=True)
    assert _row(aid)["personal_data_confirmed"] is True


def test_detectors_leave_plain_steps_alone() -> None:
    assert articles.personal_data(BODY + " Versão 5.12.1, porta 9100, código 1234.", ["Joana Ribeiro"]) == []
    assert articles.personal_data("Joanas Ribeirinho", ["Joana Ribeiro"]) == []


def test_discard_leaves_it_out_of_the_documentation(world: dict[str, int]) -> None:
    aid = _solve(world)
    with session_scope() as s:
        articles.discard(s, aid, manager_id=world["manager"])
        assert articles.published_documents(s) == []
    assert _row(aid)["state"] == "discarded"
    with session_scope() as s, pytest.raises(errors.IllegalTransition):
        articles.approve(s, aid, manager_id=world["manager"], title="Cupom", module="pdv", body=BODY)


def test_a_bad_console_url_is_a_clear_error(world: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATENDE_CONSOLE_URL", "javascript:alert(1)")
    with pytest.raises(errors.InvalidInput, match="ATENDE_CONSOLE_URL"):
        articles.article_url(1)


# ---- erasure (issue #17 part 3) -----------------------------------------------------------------

def _approved(world: dict[str, int], body: str) -> int:
    aid = _solve(world)
    with session_scope() as s:
        articles.approve(s, aid, manager_id=world["manager"], title="Cupom não imprime", module="pdv", body=body,
                         confirm_personal_data=True)
    return aid


def test_erasure_hides_an_article_that_quoted_the_person(world: dict[str, int]) -> None:
    aid = _approved(world, f"{BODY}\nCaso da Joana Ribeiro, fone 11987654321.")
    with session_scope() as s:
        counts = privacy.erase(s, "customer", str(world["customer"]))
    assert counts["knowledge_articles"] == 1
    row = _row(aid)
    assert row["state"] == "needs_review" and row["review_reason"] == "titular apagado"
    assert row["title"] == row["body"] == row["question"] == row["solution"] == ""
    with session_scope() as s:
        assert articles.published_documents(s) == []


def test_erasure_flags_an_article_that_did_not_quote_the_person_and_keeps_serving_it(
        world: dict[str, int]) -> None:
    aid = _approved(world, BODY)
    with session_scope() as s:
        privacy.erase(s, "email", "joana@paodourado.com.br")
    row = _row(aid)
    assert row["state"] == "approved" and row["review_reason"] == "titular apagado"
    assert row["body"] == BODY and row["question"] == row["solution"] == ""
    with session_scope() as s:
        assert [d["key"] for d in articles.published_documents(s)] == [f"artigo:{aid}"]
        # a manager's new approval is the review: the flag goes
        articles.approve(s, aid, manager_id=world["manager"], title="Cupom não imprime", module="pdv", body=BODY)
    assert _row(aid)["review_reason"] == ""


def test_erasure_puts_a_pending_candidate_under_review_and_leaves_no_personal_text(world: dict[str, int]) -> None:
    aid = _solve(world)
    with session_scope() as s:
        export = privacy.export(s, "customer", str(world["customer"]))
        assert export["knowledge_articles"][0]["solution"] == "Reinstalei o driver e escolhi a porta USB001."
        privacy.erase(s, "customer", str(world["customer"]))
    row = _row(aid)
    assert row["state"] == "needs_review" and row["question"] == row["solution"] == ""
    with session_scope() as s:
        n = s.scalar(select(func.count()).select_from(KnowledgeArticle).where(
            KnowledgeArticle.question.contains("impressora") | KnowledgeArticle.solution.contains("USB001")))
        assert n == 0
