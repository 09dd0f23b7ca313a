"""The Artigos page through AppTest: the "Registrar solução" checkbox makes a candidate; a manager
writes the article and approves or discards it; bad input and personal data show their pt-BR error
and save nothing; customer text is shown as typed (no markup); technicians are refused the page
but open an approved article's link (``/artigos?id=N``, the URL the bot cites)."""
from __future__ import annotations

import re
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from console import ui
from helpdesk.db import session_scope
from helpdesk.models import KnowledgeArticle, Ticket
from helpdesk.services import articles

from . import dataset
from .apphelpers import EVIL, goto, login, menu, messages, shown, texts
from .conftest import RasaRecorder

REFUSED = "Você não tem permissão para acessar esta área. Esta página é só para gestores."
BODY = "1. Abra o TEF.\n2. Reconfigure o pinpad na porta COM3.\n3. Faça uma venda de teste."


@pytest.fixture(autouse=True)
def _console_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATENDE_CONSOLE_URL", "https://console.atende.example")


def _solve_with_checkbox(ids: dataset.Ids, solution: str = "Pinpad reconfigurado na COM3.") -> int:
    """Bruno closes his ticket t5 in the console with "Sugerir como artigo" ticked."""
    tid = ids.tickets["t5"]
    at = goto(login("bruno@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    at.text_area(key="sol_text").input(solution)
    at.checkbox(key="sol_article").check()
    at.button(key="sol_send").click().run()
    assert messages(at, "success") == [f"Chamado #{tid} concluído. O assistente vai pedir a avaliação ao cliente."]
    with session_scope() as s:
        row = s.query(KnowledgeArticle).filter_by(ticket_id=tid).one()
        return row.id


def _row(aid: int) -> dict[str, Any]:
    with session_scope() as s:
        a = s.get(KnowledgeArticle, aid)
        assert a is not None
        return {"state": a.state, "title": a.title, "module": a.module, "body": a.body}


def _edit(at: AppTest, aid: int, title: str, body: str, module: str = "tef", confirm: bool = False) -> AppTest:
    at.text_input(key=f"art_{aid}_title").input(title)
    at.selectbox(key=f"art_{aid}_module").set_value(module)
    at.text_area(key=f"art_{aid}_body").input(body)
    if confirm:
        at.checkbox(key=f"art_{aid}_confirm").check()
    return at.button(key=f"art_{aid}_approve").click().run()


def test_a_solution_suggested_in_the_console_is_approved_on_artigos(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    aid = _solve_with_checkbox(ids)
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "artigos")
    assert "Artigos" in menu(at) and [h.value for h in at.header] == ["Artigos"]
    assert "Assunto t5\n\nDescrição t5" in texts(at) and "Pinpad reconfigurado na COM3." in texts(at)
    at = _edit(at, aid, "Pinpad não responde no TEF", BODY)
    assert messages(at, "success") == [
        f"Artigo #{aid} aprovado. Ele entra na documentação do assistente na próxima ingestão "
        f"(python -m knowledge ingest), com o link https://console.atende.example/artigos?id={aid}."]
    assert _row(aid) == {"state": "approved", "title": "Pinpad não responde no TEF", "module": "tef", "body": BODY}
    assert f"#{aid} · Pinpad não responde no TEF · TEF · https://console.atende.example/artigos?id={aid}" in texts(at)


def test_the_ticket_screen_without_the_checkbox_suggests_nothing(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = ids.tickets["t5"]
    at = goto(login("bruno@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    at.text_area(key="sol_text").input("Pinpad reconfigurado.")
    at.button(key="sol_send").click().run()
    with session_scope() as s:
        assert s.get(Ticket, tid).status == "concluido"  # type: ignore[union-attr]
        assert s.query(KnowledgeArticle).count() == 0


@pytest.mark.parametrize(("title", "body", "expected"), [
    ("", BODY, "Informe o título do artigo."),
    ("Pinpad", "", "Escreva o texto do artigo (os passos da solução)."),
    ("Pinpad", "   ", "Escreva o texto do artigo (os passos da solução)."),
])
def test_an_empty_title_or_body_is_refused_and_nothing_saved(ids: dataset.Ids, rasa: RasaRecorder, title: str,
                                                             body: str, expected: str) -> None:
    aid = _solve_with_checkbox(ids)
    before = _row(aid)
    at = _edit(goto(login("marta@teste.dev", dataset.PASSWORD), "artigos"), aid, title, body)
    assert messages(at, "error") == [expected] and _row(aid) == before


def test_personal_data_is_refused_until_confirmed(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    aid = _solve_with_checkbox(ids)
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "artigos")
    at = _edit(at, aid, "Pinpad do Caio Dias", BODY + "\nLigue (21) 99876-5432.")
    assert messages(at, "error") == [
        "O texto parece conter dados pessoais do cliente: um telefone; o nome \"Caio Dias\". Remova-os ou "
        "confirme que não são do cliente antes de aprovar."]
    assert _row(aid)["state"] == "pending"
    at = _edit(at, aid, "Pinpad do Caio Dias", BODY + "\nLigue (21) 99876-5432.", confirm=True)
    assert messages(at, "success") and _row(aid)["state"] == "approved"


def test_discard(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    aid = _solve_with_checkbox(ids)
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "artigos")
    at.button(key=f"art_{aid}_discard").click().run()
    assert messages(at, "success") == [f"Sugestão #{aid} descartada."]
    assert _row(aid)["state"] == "discarded"
    assert messages(at, "info") == ["Nenhuma sugestão de artigo pendente."]


def test_customer_text_is_shown_as_typed_not_as_markup(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    with session_scope() as s:  # the customer wrote the ticket's subject and description
        t = s.get(Ticket, ids.tickets["t5"])
        assert t is not None
        t.subject, t.description = EVIL, EVIL
    aid = _solve_with_checkbox(ids, solution=EVIL)
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "artigos")
    assert f"{EVIL}\n\n{EVIL}" in texts(at) and EVIL in texts(at)
    for element in [*at.markdown, *at.caption, *at.info, *at.warning, *at.header, *at.subheader]:
        raw = str(element.value)
        assert "<script" not in raw and "<img" not in raw and "](http" not in raw and "**negrito**" not in raw
    at = _edit(at, aid, EVIL[:120], EVIL + " passos do artigo")
    assert messages(at, "success")
    # the published view: the title through ui.md (no markup), the body as plain text
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "artigos", id=aid)
    assert [shown(h.value) for h in at.header] == [EVIL[:120].strip()]
    assert at.header[0].value == ui.md(EVIL[:120])  # every punctuation character backslash-escaped
    assert re.search(r"(?<!\\)[<*\[]", at.header[0].value) is None
    assert EVIL + " passos do artigo" in texts(at)


def test_a_technician_is_refused_the_page_but_opens_a_published_article(ids: dataset.Ids,
                                                                         rasa: RasaRecorder) -> None:
    aid = _solve_with_checkbox(ids)
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "artigos")
    assert messages(at, "error") == [REFUSED] and "Artigos" not in menu(at) and not at.header
    at = goto(at, "artigos", id=aid)  # still a candidate: not published
    assert messages(at, "error") == ["Artigo não encontrado ou não publicado."]
    assert "Pinpad reconfigurado na COM3." not in texts(at)
    with session_scope() as s:
        articles.approve(s, aid, manager_id=ids.manager, title="Pinpad não responde", module="tef", body=BODY)
    at = goto(at, "artigos", id=aid)
    assert [h.value for h in at.header] == ["Pinpad não responde"] and BODY in texts(at)
    assert f"art_{aid}_approve" not in {b.key for b in at.button}
    # a technician's action on the form is refused by the service too
    with session_scope() as s, pytest.raises(Exception, match="manager"):
        articles.discard(s, aid, manager_id=ids.tiago)


# ---- Relatórios: documentation gaps grouped by similarity ---------------------------------------

def test_reports_group_unanswered_questions_and_link_the_article(ids: dataset.Ids) -> None:
    from datetime import date

    with session_scope() as s:
        mdfe = KnowledgeArticle(state="approved", module="gestor", title="Emitir MDF-e no Gestor",
                                body="No Gestor, abra Fiscal > MDF-e, informe as notas e o veículo e transmita o manifesto.")
        s.add(mdfe)
        s.flush()
        aid = mdfe.id
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    at.date_input(key="r_from").set_value(date(2026, 3, 1))
    at.date_input(key="r_to").set_value(date(2026, 3, 10)).run()
    assert "Lacunas da documentação por assunto" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "Exemplos" in d.value.columns)
    assert list(table["Perguntas"]) == [2, 1]
    assert list(table["Exemplos"]) == ["como emitir mdf-e?", "Tem app para iPad?"]
    assert list(table["Artigos que respondem"]) == [f"#{aid} Emitir MDF-e no Gestor (aprovado)", "—"]
    assert table["Link"][0] == f"https://console.atende.example/artigos?id={aid}"
    # the grouping is cached per period, but a new question is counted at once
    with session_scope() as s:
        from datetime import datetime

        from helpdesk.models import KnowledgeQuery
        s.add(KnowledgeQuery(question="como emitir o MDF-e", answered=False, grounded=False,
                             at=datetime(2026, 3, 8, 9)))
    at.run()
    table = next(d.value for d in at.dataframe if "Exemplos" in d.value.columns)
    assert list(table["Perguntas"]) == [3, 1]
    # an empty period says so
    at.date_input(key="r_from").set_value(date(2025, 1, 1))
    at.date_input(key="r_to").set_value(date(2025, 1, 31)).run()
    assert not any("Exemplos" in d.value.columns for d in at.dataframe)
    assert [c.value for c in at.caption].count("Nenhuma pergunta sem resposta no período.") == 2
