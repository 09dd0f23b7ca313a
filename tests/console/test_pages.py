"""Every console page and action through streamlit.testing.v1.AppTest, plus the bad inputs."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from helpdesk.db import get_engine, session_scope
from helpdesk.models import (Contact, Customer, KnowledgeQuery, License, Machine, MachineAccess, Technician, Ticket,
                             TicketEvent)
from helpdesk.services import customers, technicians

from . import dataset
from .apphelpers import (
    EVIL, FakeClock, assert_no_markup_from, assert_plain, current_path, goto, login, menu, messages, metrics, new_app,
    shown, texts,
)
from .conftest import RasaRecorder


def _ticket(tid: int) -> Ticket:
    with session_scope() as s:
        return s.get(Ticket, tid)


def _page(at: AppTest) -> str:
    """Everything the page sends to the browser, element by element (protos, table data included)."""
    return "\n".join(str(node.proto) for node in at._tree if getattr(node, "proto", None) is not None)


def _machine_id(customer_id: int) -> int:
    with session_scope() as s:
        return s.scalars(select(Machine.id).where(Machine.customer_id == customer_id)).one()


def _accesses() -> list[tuple[int, int, int | None, int | None, str]]:
    with session_scope() as s:
        return [(a.technician_id, a.customer_id, a.machine_id, a.ticket_id, a.action)
                for a in s.scalars(select(MachineAccess).order_by(MachineAccess.id))]


def _access_log(at: AppTest):  # type: ignore[no-untyped-def]
    """The customer screen's table of who revealed the AnyDesk codes."""
    return next(d.value for d in at.dataframe if "Técnico" in d.value.columns)


def _event_kinds(tid: int) -> list[str]:
    with session_scope() as s:
        return list(s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == tid).order_by(TicketEvent.id)))


# ---- access -------------------------------------------------------------------------------------

def test_login_and_logout(ids: dataset.Ids) -> None:
    at = login("tiago@teste.dev", dataset.PASSWORD)
    assert not at.exception
    assert [h.value for h in at.header] == ["Fila de chamados"]
    assert menu(at) == ["Fila", "Chamado", "Clientes", "Problemas do WhatsApp"]  # no manager pages
    at.button(key="logout").click().run()
    assert "Você saiu do console." in messages(at, "warning")
    assert at.text_input(key="login_email") is not None


def test_wrong_password_is_refused_then_backs_off_without_locking(ids: dataset.Ids, clock: FakeClock) -> None:
    at = login("tiago@teste.dev", "senha-errada")
    assert messages(at, "error") == ["E-mail ou senha incorretos."]
    assert "auth" not in at.session_state and not at.header
    for _ in range(4):
        at = login("tiago@teste.dev", "senha-errada", at)
        assert messages(at, "error") == ["E-mail ou senha incorretos."]
    at = login("tiago@teste.dev", dataset.PASSWORD, at)  # right password, but inside the backoff window
    assert messages(at, "error") == ["Muitas tentativas de login. Aguarde 1 segundo e tente novamente."]
    assert "auth" not in at.session_state
    clock.advance(1)
    at = login("tiago@teste.dev", "senha-errada", at)  # one more failure doubles the wait
    clock.advance(1.5)
    at = login("tiago@teste.dev", dataset.PASSWORD, at)
    assert messages(at, "error") == ["Muitas tentativas de login. Aguarde 1 segundo e tente novamente."]
    clock.advance(0.5)
    at = login("tiago@teste.dev", dataset.PASSWORD, at)  # after the wait the right password logs in
    assert not messages(at, "error") and [h.value for h in at.header] == ["Fila de chamados"]
    with session_scope() as s:  # a failed login writes nothing
        tech = s.get(Technician, ids.tiago)
        assert (tech.failed_logins, tech.locked_until) == (0, None)


def test_unknown_account_reads_like_a_wrong_password(ids: dataset.Ids, clock: FakeClock) -> None:
    seen: dict[str, list[list[str]]] = {}
    for email in ("tiago@teste.dev", "ninguem@teste.dev"):
        technicians.login_throttle.reset()
        at = new_app().run()
        seen[email] = [messages(login(email, "senha-errada", at), "error") for _ in range(6)]
    assert seen["tiago@teste.dev"] == seen["ninguem@teste.dev"]
    assert seen["ninguem@teste.dev"][-1] == ["Muitas tentativas de login. Aguarde 1 segundo e tente novamente."]


def test_demoted_manager_loses_manager_pages_at_once(ids: dataset.Ids) -> None:
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    assert menu(at) == ["Fila", "Chamado", "Clientes", "Problemas do WhatsApp", "Relatórios", "Usuários",
                        "Privacidade", "SLA", "Artigos", "Preços do WhatsApp"]
    with session_scope() as s:
        s.get(Technician, ids.manager).role = "technician"
    at = goto(at, "usuarios")
    assert messages(at, "error") == ["Você não tem permissão para acessar esta área. Esta página é só para gestores."]
    assert menu(at) == ["Fila", "Chamado", "Clientes", "Problemas do WhatsApp"]
    assert "técnico" in at.caption[0].value


def test_deactivated_account_is_logged_out_at_once(ids: dataset.Ids) -> None:
    at = login("tiago@teste.dev", dataset.PASSWORD)
    at.selectbox(key="q_ticket").set_value(ids.tickets["t7"]).run()
    with session_scope() as s:
        technicians.set_active(s, ids.tiago, False, by=ids.manager)
    at.button(key="q_assume").click().run()  # the click itself is refused
    assert messages(at, "warning") == ["Sua conta foi desativada. Fale com um gestor."]
    assert "auth" not in at.session_state and not at.header
    assert _ticket(ids.tickets["t7"]).technician_id is None and _event_kinds(ids.tickets["t7"]) == ["created"]
    at = login("tiago@teste.dev", dataset.PASSWORD, at)
    assert messages(at, "error") == ["E-mail ou senha incorretos."]


def test_password_reset_ends_the_accounts_open_sessions(ids: dataset.Ids) -> None:
    stolen = login("tiago@teste.dev", dataset.PASSWORD)
    marta = goto(login("marta@teste.dev", dataset.PASSWORD), "usuarios")
    marta.selectbox(key="p_user").set_value(ids.tiago)
    marta.text_input(key="p_password").input("nova-senha-tiago")
    marta.button(key="p_save").click().run()
    assert messages(marta, "success") == ["Senha redefinida. As sessões abertas desse usuário foram encerradas."]
    stolen.run()
    assert messages(stolen, "warning") == [
        "Sua sessão foi encerrada porque a senha foi redefinida ou o acesso mudou. Entre novamente."]
    assert "auth" not in stolen.session_state and not stolen.header
    assert [h.value for h in goto(marta, "usuarios").header] == ["Usuários"]  # the manager's own session goes on


def test_expired_session_asks_to_log_in_again(ids: dataset.Ids) -> None:
    at = login("tiago@teste.dev", dataset.PASSWORD)
    at.selectbox(key="q_ticket").set_value(ids.tickets["t7"]).run()
    at.session_state["auth"].expires_at = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=1)
    at.button(key="q_assume").click().run()  # an action attempted with an expired session does nothing
    assert messages(at, "warning") == ["Sua sessão expirou. Entre novamente."]
    assert not at.header and "auth" not in at.session_state
    assert _ticket(ids.tickets["t7"]).technician_id is None and _event_kinds(ids.tickets["t7"]) == ["created"]


@pytest.mark.parametrize("page", ["relatorios", "usuarios"])
def test_technician_cannot_open_manager_pages(ids: dataset.Ids, page: str) -> None:
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), page)
    assert messages(at, "error") == ["Você não tem permissão para acessar esta área. Esta página é só para gestores."]
    assert not at.metric and not at.header


# ---- queue ----------------------------------------------------------------------------------------

def test_queue_filters_and_counts(ids: dataset.Ids) -> None:
    at = login("tiago@teste.dev", dataset.PASSWORD)
    assert metrics(at) == {"Novos": "1", "Em atendimento": "1", "Concluídos": "6", "Nesta lista": "2"}
    at.selectbox(key="q_status").set_value("__all__").run()
    table = at.dataframe[0].value
    assert list(table["Nº"]) == [f"#{ids.tickets[k]}" for k in ("t8", "t1", "t2", "t3", "t4", "t5", "t6", "t7")]
    at.selectbox(key="q_type").set_value("erro").run()
    at.selectbox(key="q_channel").set_value("whatsapp").run()
    assert list(at.dataframe[0].value["Nº"]) == [f"#{ids.tickets['t1']}", f"#{ids.tickets['t6']}"]
    assert metrics(at)["Concluídos"] == "2"
    at.selectbox(key="q_type").set_value("__all__").run()
    at.selectbox(key="q_channel").set_value("__all__").run()
    at.selectbox(key="q_tech").set_value("mine").run()
    assert metrics(at)["Nesta lista"] == "4"
    at.selectbox(key="q_customer").set_value(ids.b).run()
    assert list(at.dataframe[0].value["Cliente"]) == ["Beta Serviços Ltda"]
    at.selectbox(key="q_tech").set_value("__all__").run()
    at.selectbox(key="q_customer").set_value("__all__").run()
    at.selectbox(key="q_module").set_value("tef").run()
    assert metrics(at)["Nesta lista"] == "2"


def test_assume_from_the_queue_and_open_the_ticket(ids: dataset.Ids) -> None:
    at = login("tiago@teste.dev", dataset.PASSWORD)
    at.selectbox(key="q_ticket").set_value(ids.tickets["t7"]).run()
    at.button(key="q_assume").click().run()
    assert messages(at, "success") == [f"Você assumiu o chamado #{ids.tickets['t7']}."]
    t = _ticket(ids.tickets["t7"])
    assert (t.technician_id, t.status) == (ids.tiago, "em_atendimento")
    at.selectbox(key="q_ticket").set_value(ids.tickets["t7"]).run()
    at.button(key="q_open").click().run()
    assert [h.value for h in at.header] == ["Chamado"]
    assert at.subheader[0].value == f"#{ids.tickets['t7']} · Assunto t7"
    # The address is the ticket's deep link, /chamado?id=N, and the next run stays there.
    assert current_path(at) == "chamado" and at.query_params == {"id": [str(ids.tickets["t7"])]}
    at.run()
    assert at.subheader[0].value == f"#{ids.tickets['t7']} · Assunto t7"


def test_a_deep_link_opens_its_page_after_login(ids: dataset.Ids) -> None:
    tid = ids.tickets["t2"]
    at = goto(new_app(), "chamado", id=tid)  # /chamado?id=N before logging in
    assert at.text_input(key="login_email") is not None and not at.header
    assert menu(at) == []  # nothing to navigate to before login
    at = login("tiago@teste.dev", dataset.PASSWORD, at)
    assert current_path(at) == "chamado" and at.subheader[0].value == f"#{tid} · Assunto t2"


def test_the_root_address_opens_the_queue(ids: dataset.Ids) -> None:
    at = login("tiago@teste.dev", dataset.PASSWORD)  # the app's root URL
    assert current_path(at) == "fila" and [h.value for h in at.header] == ["Fila de chamados"]
    for path, header in (("clientes", "Clientes"), ("fila", "Fila de chamados"), ("chamado", "Chamado")):
        assert [h.value for h in goto(at, path).header] == [header]
        assert current_path(at) == path


def test_two_technicians_assume_the_same_ticket(ids: dataset.Ids) -> None:
    tid = ids.tickets["t7"]
    tiago = login("tiago@teste.dev", dataset.PASSWORD)
    bruno = login("bruno@teste.dev", dataset.PASSWORD)
    for at in (tiago, bruno):
        at.selectbox(key="q_ticket").set_value(tid).run()
    tiago.button(key="q_assume").click().run()
    bruno.button(key="q_assume").click().run()
    assert messages(tiago, "success") == [f"Você assumiu o chamado #{tid}."]
    assert messages(bruno, "error") == [f"O chamado #{tid} já foi assumido por Tiago Técnico."]
    assert _ticket(tid).technician_id == ids.tiago
    assert _event_kinds(tid).count("assigned") == 1


# ---- ticket screen --------------------------------------------------------------------------------

def test_ticket_screen_shows_the_customer_at_a_glance(ids: dataset.Ids) -> None:
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=ids.tickets["t1"])
    shown = texts(at)
    for value in ("Ana Lima", "Alfa Comércio Ltda", "11.222.333/0001-81", "Simples Nacional"):
        assert value in shown
    licenses = at.dataframe[0].value
    assert set(licenses["Módulo"]) == {"PDV", "Gestor"} and set(licenses["Licenças"]) == {3, 1}
    # the AnyDesk code is masked until "Mostrar código", and nothing of it but the last digits is on the page
    assert "AnyDesk: ••• ••• 789" in shown and not at.code and not at.get("link_button")
    assert "123456789" not in _page(at)
    assert _accesses() == []
    machine = _machine_id(ids.a)
    at.button(key=f"t_ad_show_{machine}").click().run()
    assert messages(at, "success") == ["Código AnyDesk exibido. O acesso foi registrado."]
    assert [c.value for c in at.code] == ["123456789"]  # st.code carries the copy button
    assert "123456789" in _page(at)  # (what the masked checks above look through)
    link = at.get("link_button")[0].proto
    assert (link.label, link.url) == ("Abrir no AnyDesk", "anydesk:123456789")
    assert _accesses() == [(ids.tiago, ids.a, machine, ids.tickets["t1"], "reveal")]
    at.run()  # a rerun keeps the code shown without another record
    assert [c.value for c in at.code] == ["123456789"] and len(_accesses()) == 1
    # another ticket of the same customer is another context: masked again
    at = goto(at, "chamado", id=ids.tickets["t2"])
    assert not at.code and "123456789" not in _page(at)


def test_ticket_screen_shows_a_leads_contact_and_an_unverified_claim(ids: dataset.Ids) -> None:
    from helpdesk.services import tickets

    with session_scope() as s:
        lead = tickets.open_ticket(s, customer_id=None, channel="web", type="comercial", module=None,
                                   description="Quero conhecer o PDV", conversation_id="web-lead-1",
                                   contact_name="Bruno Sales", contact_phone="(21) 99876-5432",
                                   contact_email="Bruno@Exemplo.com.br")
        declined = tickets.open_ticket(s, customer_id=None, channel="web", type="comercial", module=None,
                                       description="Quero preço do BI", conversation_id="web-lead-2",
                                       contact_name="Carla", flags={"contact_declined": True})
        claimed = tickets.open_ticket(s, customer_id=ids.a, channel="web", type="erro",
                                      module=None, description="Erro no caixa", conversation_id="web-claim-1",
                                      flags={"unverified_contact": True, "claimed_cnpj": "11.222.333/0001-81"})
        lead_id, declined_id, claimed_id = lead.id, declined.id, claimed.id
    user = login("tiago@teste.dev", dataset.PASSWORD)
    shown = texts(goto(user, "chamado", id=lead_id))
    assert "Contato informado: Nome: Bruno Sales · Telefone: +55 (21) 99876-5432 · E-mail: bruno@exemplo.com.br" in shown
    at = goto(user, "chamado", id=declined_id)
    assert any("preferiu não informar" in c for c in texts(at) + [c.value for c in at.caption])
    at = goto(user, "chamado", id=claimed_id)
    assert [w for w in messages(at, "warning") if "Contato não verificado" in w and "11.222.333/0001-81" in w]
    # an ordinary ticket of a verified customer carries no such warning
    at = goto(user, "chamado", id=ids.tickets["t1"])
    assert not [w for w in messages(at, "warning") if "Contato não verificado" in w]


def test_unknown_or_bad_ticket_number(ids: dataset.Ids) -> None:
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=99999)
    assert messages(at, "error") == ["Chamado não encontrado."]
    at.text_input(key="t_number").input("abc").run()
    assert messages(at, "error")[0].startswith("Número de chamado inválido")


def _tracker_events(rows: list[tuple[str, str, str, str]]) -> None:
    meta = sa.MetaData()
    events = sa.Table("events", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("sender_id", sa.String(255)),
                      sa.Column("type_name", sa.String(255)), sa.Column("timestamp", sa.Float),
                      sa.Column("intent_name", sa.String(255)), sa.Column("action_name", sa.String(255)),
                      sa.Column("data", sa.Text))
    meta.create_all(get_engine())
    with session_scope() as s:
        for sender, kind, iso, body in rows:
            ts = datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()
            s.execute(events.insert().values(sender_id=sender, type_name=kind, timestamp=ts,
                                             data=json.dumps({"event": kind, "text": body})))


def test_html_in_a_customer_message_is_shown_as_text(ids: dataset.Ids) -> None:
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)> **negrito** [link](http://mal.example)"
    _tracker_events([("web-sess-a2", "user", "2026-03-02T09:58:00", evil),
                     ("web-sess-a2", "bot", "2026-03-02T09:58:02", "Vou abrir um chamado.")])
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=ids.tickets["t2"])
    assert evil in texts(at)  # verbatim, in a plain-text element
    assert "Vou abrir um chamado." in texts(at)
    assert all("<script>" not in str(m.value) and "negrito" not in str(m.value) for m in at.markdown)
    assert all("<script>" not in str(c.value) for c in at.caption)


def _evil_customer_and_ticket(ids: dataset.Ids) -> tuple[int, int]:
    """A customer and a ticket whose every free-text field is markup, with a conversation to match."""
    from helpdesk.services import customers, tickets

    with session_scope() as s:
        c = customers.create(s, responsible_name="![](http://rastreador.example/r.png) Rita",
                             legal_name="Falsa **Ltda** [site](http://mal.example) <img src=x onerror=alert(1)>",
                             trade_name="<b>Fantasia</b>", cnpj="04.252.011/0001-10", tax_regime="simples_nacional",
                             machines=[customers.MachineSpec(name="[CAIXA](http://mal.example)",
                                                             anydesk_code="111222333", notes="**nota**")])
        t = tickets.open_ticket(s, customer_id=c.id, channel="web", type="erro", module=None, description=EVIL,
                                subject=EVIL, conversation_id="web-sess-evil", contact_name="<i>Rita</i>",
                                flags={"unverified_contact": True, "claimed_cnpj": "**11** [x](http://mal.example)"})
        return c.id, t.id


def test_customer_text_is_never_read_as_markdown_or_html(ids: dataset.Ids) -> None:
    _cid, tid = _evil_customer_and_ticket(ids)
    _tracker_events([("web-sess-evil", "user", "2026-03-02T09:58:00", EVIL)])
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    assert not at.exception
    heading = at.subheader[0].value
    assert shown(heading) == f"#{tid} · {EVIL}"
    assert_plain(heading, f"#{tid} · {EVIL}")
    shown_texts = texts(at)
    for literal in ("Falsa **Ltda** [site](http://mal.example) <img src=x onerror=alert(1)>",
                    "![](http://rastreador.example/r.png) Rita", EVIL):
        assert literal in shown_texts  # st.text: plain, verbatim
    assert any(t.startswith("[CAIXA](http://mal.example)") for t in shown_texts)
    warning = next(w for w in at.warning if "Contato não verificado" in shown(w.value))
    assert_plain(warning.value, "**11** [x](http://mal.example)")
    assert_no_markup_from(at, "mal.example", "rastreador", "onerror", "negrito", "<b>", "<i>")


def test_customer_names_on_the_customers_and_reports_pages_stay_literal(ids: dataset.Ids) -> None:
    from helpdesk.models import KnowledgeQuery
    from helpdesk.services import tickets

    cid, _tid = _evil_customer_and_ticket(ids)
    legal = "Falsa **Ltda** [site](http://mal.example) <img src=x onerror=alert(1)>"
    with session_scope() as s:
        for n in range(4):  # the customer with the most tickets of the period
            t = tickets.open_ticket(s, customer_id=cid, channel="web", type="duvida", module=None,
                                    description=f"d{n}", conversation_id=None)
            t.opened_at = datetime(2026, 3, 4, 10 + n)
        s.add(KnowledgeQuery(conversation_id=None, question=EVIL, answered=False, grounded=False,
                             at=datetime(2026, 3, 4, 15)))
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    at.text_input(key="c_search").input("Falsa").run()
    assert_plain(at.subheader[0].value, legal)
    assert_no_markup_from(at, "mal.example", "rastreador", "onerror")

    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    at.date_input(key="r_from").set_value(date(2026, 3, 1))
    at.date_input(key="r_to").set_value(date(2026, 3, 10)).run()
    top = next(m for m in at.metric if m.label == "Cliente com mais chamados")
    assert_plain(top.value, legal)
    assert EVIL in list(at.dataframe[0].value["Pergunta"])  # documentation gaps: a plain table cell
    assert_no_markup_from(at, "mal.example", "rastreador", "onerror", "negrito")
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    customers_chart = next(f for f in specs if f["layout"]["title"]["text"] == "Clientes com mais chamados")
    labels = customers_chart["data"][0]["y"]
    assert "Falsa **Ltda** [site](http://mal.example) &lt;img src=x onerror=alert(1)&gt;" in labels
    assert not any("<img" in str(v) for v in labels)


def test_a_technician_takes_over_a_held_ticket_explicitly(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = ids.tickets["t5"]  # Bruno's
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    assert messages(at, "info")[0].startswith("Este chamado está com Bruno Técnico.")
    assert at.button(key="t_take_over").label == "Assumir este chamado (está com Bruno Técnico)"
    before = _event_kinds(tid)
    at.text_area(key="reply_text").input("Oi, aqui é o Tiago")
    at.button(key="reply_send").click().run()
    assert messages(at, "error") == [f"O chamado #{tid} está com Bruno Técnico. Para responder, use \"Assumir\" "
                                     "no chamado primeiro (fica registrado no histórico)."]
    assert rasa.calls == [] and _event_kinds(tid) == before and _ticket(tid).technician_id == ids.bruno
    at.button(key="t_take_over").click().run()
    assert messages(at, "success") == [f"Você assumiu o chamado #{tid}."]
    assert _ticket(tid).technician_id == ids.tiago and "t_take_over" not in [b.key for b in at.button]
    at.text_area(key="reply_text").input("Oi, aqui é o Tiago")
    at.button(key="reply_send").click().run()
    assert messages(at, "success") == ["Resposta enviada ao cliente."] and len(rasa.calls) == 1


def test_a_manager_replies_without_taking_over(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = ids.tickets["t5"]
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    assert not messages(at, "info")
    at.text_area(key="reply_text").input("Aqui é a gestora")
    at.button(key="reply_send").click().run()
    assert messages(at, "success") == ["Resposta enviada ao cliente."]
    assert _ticket(tid).technician_id == ids.bruno


def test_reply_reaches_rasa_and_is_recorded(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = ids.tickets["t5"]
    at = goto(login("bruno@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    at.text_area(key="reply_text").input("Reinicie o pinpad, por favor.")
    at.button(key="reply_send").click().run()
    assert messages(at, "success") == ["Resposta enviada ao cliente."]
    assert rasa.calls[0]["path"] == "/conversations/web-sess-c5/trigger_intent"
    assert rasa.calls[0]["body"]["entities"] == {"agent_text": "Reinicie o pinpad, por favor.", "agent_name": "Bruno Técnico"}
    assert any(t.endswith("resposta do técnico: Reinicie o pinpad, por favor.") for t in texts(at))
    assert _event_kinds(tid)[-1] == "message_out"


def test_reply_with_rasa_down_says_so_and_records_the_failure(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    rasa.stop()
    tid = ids.tickets["t5"]
    at = goto(login("bruno@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    at.text_area(key="reply_text").input("Olá?")
    at.button(key="reply_send").click().run()
    assert messages(at, "error")[0].startswith("Não foi possível falar com o assistente (Rasa)")
    assert _event_kinds(tid)[-1] == "delivery_failed" and "message_out" not in _event_kinds(tid)
    assert any("falha no envio ao cliente" in e for e in messages(at, "error"))


def test_ticket_actions_are_recorded_with_who_and_when(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = ids.tickets["t5"]
    at = goto(login("bruno@teste.dev", dataset.PASSWORD), "chamado", id=tid)

    at.text_input(key="upd_version").input("5.12.3")
    at.text_area(key="upd_notes").input("Atualizado via AnyDesk")
    at.button(key="upd_send").click().run()
    assert messages(at, "success") == ["Atualização para a versão 5.12.3 registrada."]

    at.selectbox(key="fld_type").set_value("instalacao")
    at.selectbox(key="fld_module").set_value("pdv")
    at.selectbox(key="fld_priority").set_value("alta")
    at.button(key="fld_send").click().run()
    assert messages(at, "success") == ["Classificação atualizada."]
    t = _ticket(tid)
    assert (t.type, t.module, t.priority) == ("instalacao", "pdv", "alta")

    at.selectbox(key="esc_level").set_value(2)
    at.selectbox(key="esc_tech").set_value(ids.tiago)
    at.text_area(key="esc_reason").input("Precisa de acesso ao servidor")
    at.button(key="esc_send").click().run()
    assert messages(at, "success") == ["Chamado escalado para o nível 2."]
    t = _ticket(tid)
    assert (t.level, t.technician_id) == (2, ids.tiago)

    # Tiago holds it now: Bruno closes it only after an explicit "Assumir", which names Tiago.
    at.text_area(key="sol_text").input("Pinpad reconfigurado.")
    at.button(key="sol_send").click().run()
    assert messages(at, "error") == [f"O chamado #{tid} está com Tiago Técnico. Para concluir o chamado, use "
                                     "\"Assumir\" no chamado primeiro (fica registrado no histórico)."]
    assert _ticket(tid).status == "em_atendimento" and rasa.calls == []
    at.button(key="t_take_over").click().run()
    assert messages(at, "success") == [f"Você assumiu o chamado #{tid}."]
    assert any(t.endswith("assumido: de Tiago Técnico") for t in texts(at))
    at.text_area(key="sol_text").input("Pinpad reconfigurado.")
    at.button(key="sol_send").click().run()
    assert messages(at, "success") == [f"Chamado #{tid} concluído. O assistente vai pedir a avaliação ao cliente."]
    assert rasa.calls[-1]["body"] == {"name": "EXTERNAL_ticket_closed", "entities": {"ticket_number": f"#{tid}"}}
    assert _ticket(tid).status == "concluido"

    at.text_area(key="reo_reason").input("Cliente voltou a ter o erro")
    at.button(key="reo_send").click().run()
    assert messages(at, "success") == ["Chamado reaberto."]
    assert _ticket(tid).status == "em_atendimento"

    with session_scope() as s:
        evs = list(s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid).order_by(TicketEvent.id)))
    recorded = [(e.kind, e.actor) for e in evs if e.kind != "created"]
    assert recorded == [("system_update", "Bruno Técnico"), ("fields_changed", "Bruno Técnico"),
                        ("escalated", "Bruno Técnico"), ("assigned", "Bruno Técnico"), ("solution", "Bruno Técnico"),
                        ("status", "Bruno Técnico"), ("status", "Bruno Técnico")]
    taken = next(e for e in evs if e.kind == "assigned")
    assert taken.data["from_technician_id"] == ids.tiago and taken.data["technician_id"] == ids.bruno
    assert all(e.at is not None and e.technician_id == ids.bruno for e in evs if e.kind != "created")


def test_bad_ticket_actions_change_nothing(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = ids.tickets["t5"]
    at = goto(login("bruno@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    before = _event_kinds(tid)
    at.button(key="upd_send").click().run()
    assert messages(at, "error") == ["Informe a versão instalada."]
    at.button(key="esc_send").click().run()
    assert messages(at, "error") == ["Informe o motivo do escalonamento."]
    at.button(key="sol_send").click().run()
    assert messages(at, "error") == ["Descreva a solução antes de concluir."]
    assert _event_kinds(tid) == before and rasa.calls == []


# ---- customers ------------------------------------------------------------------------------------

def test_customer_search_and_edit_with_cnpj_validation(ids: dataset.Ids) -> None:
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    at.text_input(key="c_search").input("alfa").run()
    assert list(at.dataframe[0].value["Razão social"]) == ["Alfa Comércio Ltda"]
    k = f"_{ids.a}"
    at.text_input(key="e_cnpj" + k).input("11.222.333/0001-80")
    at.text_input(key="e_legal" + k).input("Alfa Novo Nome Ltda")
    at.button(key="e_save").click().run()
    assert messages(at, "error") == ["CNPJ inválido: confira os 14 dígitos."]
    with session_scope() as s:
        c = s.get(Customer, ids.a)
        assert (c.cnpj, c.legal_name) == (dataset.CNPJ_A, "Alfa Comércio Ltda")
    at.text_input(key="e_cnpj" + k).input("04.252.011/0001-10")
    at.button(key="e_save").click().run()
    assert messages(at, "success") == ["Cliente atualizado."]
    with session_scope() as s:
        c = s.get(Customer, ids.a)
        assert (c.cnpj, c.legal_name) == ("04252011000110", "Alfa Novo Nome Ltda")
        # the correction log names the technician and the fields, never the values (docs/privacy.md)
        log = [(r.technician_id, r.actor, r.field, r.action) for r in customers.corrections(s, ids.a)]
        assert sorted(log) == [(ids.tiago, "technician", "cnpj", "changed"),
                               (ids.tiago, "technician", "legal_name", "changed")]
    manager = goto(login("marta@teste.dev", dataset.PASSWORD), "clientes")
    manager.text_input(key="c_search").input("alfa").run()
    shown = next(d.value for d in manager.dataframe if "Campo" in d.value.columns)
    assert sorted(shown["Campo"]) == ["CNPJ", "razão social"] and set(shown["Quem"]) == {"Tiago Técnico"}
    assert "04252011000110" not in shown.to_string()


def test_customer_contacts_machines_and_licenses(ids: dataset.Ids) -> None:
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    at.text_input(key="c_search").input("beta").run()
    at.text_input(key="k_value").input("+55 (21) 3333-4444")
    at.button(key="k_save").click().run()
    assert messages(at, "success") == ["Contato adicionado."]
    at.text_input(key="k_value").input("12")
    at.button(key="k_save").click().run()
    assert messages(at, "error")[0].startswith("Número de telefone inválido")
    at.text_input(key="m_name").input("SERVIDOR")
    at.text_input(key="m_code").input("987 654 321")
    at.button(key="m_save").click().run()
    assert messages(at, "success") == ["Máquina adicionada."]
    at.selectbox(key="l_module").set_value("tef")
    at.number_input(key="l_seats").set_value(2)
    at.button(key="l_save").click().run()
    assert messages(at, "success") == ["Licença salva."]
    with session_scope() as s:
        assert s.scalar(select(Contact.customer_id).where(Contact.value == "552133334444")) == ids.b
        assert [(m.name, m.anydesk_code) for m in s.scalars(select(Machine).where(Machine.customer_id == ids.b))] == \
            [("SERVIDOR", "987654321")]
        assert s.scalar(select(License.seats).where(License.customer_id == ids.b)) == 2


def test_customer_screen_masks_anydesk_and_the_manager_sees_who_revealed(ids: dataset.Ids) -> None:
    machine = _machine_id(ids.a)
    tiago = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    tiago.text_input(key="c_search").input("alfa").run()
    assert "AnyDesk: ••• ••• 789" in texts(tiago) and not tiago.code
    assert "123456789" not in _page(tiago)
    assert not [m for m in tiago.markdown if "Quem viu" in m.value]  # the log is the managers'
    tiago.button(key=f"c_ad_show_{machine}").click().run()
    assert [c.value for c in tiago.code] == ["123456789"]
    assert _accesses() == [(ids.tiago, ids.a, machine, None, "reveal")]

    marta = goto(login("marta@teste.dev", dataset.PASSWORD), "clientes")
    marta.text_input(key="c_search").input("alfa").run()
    assert "123456789" not in _page(marta)  # the log names who and when, never the code
    log = _access_log(marta)
    assert list(log["Técnico"]) == ["Tiago Técnico"] and list(log["Máquina"]) == ["CAIXA-01"]
    assert list(log["Chamado"]) == ["—"]
    assert [b.proto.label for b in marta.get("download_button")] == ["Exportar acessos (CSV)"]
    # a reveal from a ticket names the ticket in the log
    goto(tiago, "chamado", id=ids.tickets["t1"]).button(key=f"t_ad_show_{machine}").click().run()
    marta = goto(marta, "clientes")
    marta.text_input(key="c_search").input("alfa").run()
    log = _access_log(marta)
    assert list(log["Chamado"]) == [f"#{ids.tickets['t1']}", "—"]


def test_a_deactivated_technician_cannot_reveal_a_code(ids: dataset.Ids) -> None:
    machine = _machine_id(ids.a)
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=ids.tickets["t1"])
    with session_scope() as s:
        technicians.set_active(s, ids.tiago, False, by=ids.manager)
    at.button(key=f"t_ad_show_{machine}").click().run()
    assert messages(at, "warning") == ["Sua conta foi desativada. Fale com um gestor."]
    assert "auth" not in at.session_state and not at.code and "123456789" not in _page(at)
    assert _accesses() == []


def test_create_customer_validates_and_normalises(ids: dataset.Ids) -> None:
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    at.text_input(key="n_resp").input("Rita Cruz")
    at.text_input(key="n_legal").input("Ômega Papelaria Ltda")
    at.text_input(key="n_cnpj").input("33.000.167/0001-02")
    at.text_input(key="n_phones").input("(11) 9 7654-3210")
    at.button(key="n_save").click().run()
    assert messages(at, "error") == ["CNPJ inválido: confira os 14 dígitos."]
    with session_scope() as s:
        assert s.scalar(select(Customer.id).where(Customer.legal_name == "Ômega Papelaria Ltda")) is None
    at.text_input(key="n_cnpj").input("33.000.167/0001-01")
    at.button(key="n_save").click().run()
    assert messages(at, "success") == ["Cliente Ômega Papelaria Ltda cadastrado."]
    with session_scope() as s:
        c = s.scalar(select(Customer).where(Customer.cnpj == "33000167000101"))
        assert c is not None and [k.value for k in c.contacts] == ["5511976543210"]


def test_csv_import_page_reports_rejected_rows(ids: dataset.Ids) -> None:
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    csv_text = ("responsavel,razao_social,cnpj,regime_tributario,telefones\n"
                "Rui,Sigma Ltda,04.252.011/0001-10,simples,(11) 91111-2222\n"
                "Sol,Tau Ltda,04.252.011/0001-19,simples,(11) 91111-3333\n")
    at.text_area(key="i_text").input(csv_text)
    at.button(key="i_run").click().run()
    assert messages(at, "success") == ["1 cliente(s) importado(s); 1 linha(s) rejeitada(s)."]
    rejected = at.dataframe[-1].value
    assert list(rejected["Linha"]) == [3] and list(rejected["Razão social"]) == ["Tau Ltda"]
    assert list(rejected["Motivo"]) == ["CNPJ inválido: confira os 14 dígitos."]
    at.text_area(key="i_text").input("nome;cnpj\nX;1\n")
    at.button(key="i_run").click().run()
    assert messages(at, "error")[0].startswith("Colunas obrigatórias ausentes")


# ---- reports and users ------------------------------------------------------------------------------

def test_reports_page_shows_the_hand_computed_figures(ids: dataset.Ids) -> None:
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    at.date_input(key="r_from").set_value(date(2026, 3, 1))
    at.date_input(key="r_to").set_value(date(2026, 3, 10)).run()
    m = metrics(at)
    assert m["Chamados no período"] == "7"
    assert m["Tempo médio de resolução"] == "4,0 h" and m["Tempo mediano de resolução"] == "3,0 h"
    assert m["Concluídos / em aberto"] == "5 / 2"
    assert m["Cliente com mais chamados"] == "Alfa Comércio Ltda"
    assert m["Tipo mais frequente"] == "erro" and m["Módulo mais problemático"] == "pdv"
    assert m["Técnico com maior carga"] == "Tiago Técnico"
    assert m["Resolvidas pelo bot sem humano"] == "25,0%"
    assert m["Perguntas respondidas pela documentação"] == "40,0%"
    assert m["Ofertas de produto sem humano"] == "2" and m["Nota média"] == "3,67"
    charts = at.get("plotly_chart")
    assert len(charts) == 6
    gaps = at.dataframe[0].value
    assert list(gaps["Vezes"]) == [2, 1]
    at.date_input(key="r_from").set_value(date(2026, 3, 11)).run()
    assert messages(at, "error") == ["Período inválido: a data final é anterior à inicial."]


def test_reports_page_shows_contained_verified_and_durable_resolution(ids: dataset.Ids) -> None:
    with session_scope() as s:  # conv-o1 (resolved by the bot on 03-04 12:00) comes back 8 days and 1 h later
        s.add(Ticket(customer_id=None, channel="web", type="duvida", conversation_id="conv-o1",
                     opened_at=datetime(2026, 3, 12, 13), updated_at=datetime(2026, 3, 12, 13)))
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    at.date_input(key="r_from").set_value(date(2026, 3, 1))
    at.date_input(key="r_to").set_value(date(2026, 3, 10)).run()
    m = metrics(at)
    assert m["Resolvidas pelo bot sem humano"] == "25,0%"
    assert m["Resolução contida"] == "50,0%" and m["Resolução verificada"] == "25,0%"
    assert m["Resolvidas pelo bot (durável, 7 dias)"] == "25,0%" and m["Verificadas que voltaram"] == "0"
    assert any("Durável: verificada e, até 7 dias após a conversa" in c.value for c in at.caption)
    at.number_input(key="r_window").set_value(9).run()
    m = metrics(at)
    assert m["Resolvidas pelo bot (durável, 9 dias)"] == "0,0%" and m["Verificadas que voltaram"] == "1"
    assert m["Resolução verificada"] == "25,0%"


def test_reports_page_shows_llm_calls_cache_hits_and_tokens(ids: dataset.Ids) -> None:
    with session_scope() as s:
        for day, mode, tokens, cached in ((2, "llm", 900, False), (2, "llm", 0, True), (5, "llm", 1100, False),
                                          (6, "extractive", 0, False), (20, "llm", 5000, False)):
            s.add(KnowledgeQuery(conversation_id="web:x", question="como faço a sangria?", answered=True,
                                 grounded=True, at=datetime(2026, 3, day, 10), mode=mode, llm_tokens=tokens,
                                 cached=cached))
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    at.date_input(key="r_from").set_value(date(2026, 3, 1))
    at.date_input(key="r_to").set_value(date(2026, 3, 10)).run()
    m = metrics(at)
    assert m["Chamadas ao LLM"] == "2" and m["Respostas do cache"] == "1"
    assert m["Tokens do LLM"] == "2.000" and m["Tokens por chamada"] == "1000"
    per_day = next(d.value for d in at.dataframe if "Tokens" in d.value.columns)
    assert list(per_day["Dia"]) == ["02/03/2026", "05/03/2026"] and list(per_day["Tokens"]) == [900, 1100]


def test_report_csv_export(ids: dataset.Ids) -> None:
    from helpdesk.services import metrics as m
    from helpdesk.services import reports

    period = m.Period.from_dates(date(2026, 3, 1), date(2026, 3, 10))
    with session_scope() as s:
        report = reports.build(s, period)
    assert reports.build_concurrently(period) == report
    lines = reports.to_csv(report).splitlines()
    assert lines[0] == "secao;item;valor"
    for expected in ("resumo;total_chamados;7", "resumo;tempo_medio_resolucao_h;4.0",
                     "resumo;tempo_mediano_resolucao_h;3.0", "resumo;cliente_mais_chamados;Alfa Comércio Ltda (3)",
                     "por_dia;2026-03-02;3", "bot;pct_resolvidas_pelo_bot;25.0", "lacunas_documentacao;Tem app para iPad?;1",
                     "bot;janela_duravel_dias;7", "bot;resolucao_contida;2", "bot;resolucao_verificada;1",
                     "bot;resolucao_duravel;1", "bot;pct_resolucao_duravel;25.0", "bot;verificada_menos_duravel;0"):
        assert expected in lines


def test_users_page_creates_users_and_resets_passwords(ids: dataset.Ids) -> None:
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "usuarios")
    at.text_input(key="u_name").input("Nina Nova")
    at.text_input(key="u_email").input("Nina@Teste.dev")
    at.text_input(key="u_password").input("curta")
    at.button(key="u_create").click().run()
    assert messages(at, "error") == ["A senha precisa ter pelo menos 8 caracteres."]
    at.text_input(key="u_password").input("senha-da-nina")
    at.selectbox(key="u_role").set_value("manager")
    at.button(key="u_create").click().run()
    assert messages(at, "success") == ["Usuário nina@teste.dev criado."]
    at.text_input(key="u_name").input("Outra")
    at.text_input(key="u_email").input("tiago@teste.dev")
    at.text_input(key="u_password").input("senha-qualquer")
    at.button(key="u_create").click().run()
    assert messages(at, "error") == ["Já existe um usuário com este e-mail."]
    with session_scope() as s:
        nina = s.scalar(select(Technician).where(Technician.email == "nina@teste.dev"))
        assert nina is not None and nina.role == "manager"
    at.selectbox(key="p_user").set_value(ids.tiago)
    at.text_input(key="p_password").input("nova-senha-tiago")
    at.button(key="p_save").click().run()
    assert messages(at, "success") == ["Senha redefinida. As sessões abertas desse usuário foram encerradas."]
    assert not messages(login("tiago@teste.dev", "nova-senha-tiago", new_app().run()), "error")


def test_users_page_changes_profile_and_access(ids: dataset.Ids) -> None:
    tiago = login("tiago@teste.dev", dataset.PASSWORD)
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "usuarios")
    at.selectbox(key="a_user").set_value(ids.manager).run()
    at.selectbox(key=f"a_active_{ids.manager}").set_value("desativado")
    at.button(key="a_save").click().run()
    assert messages(at, "error") == ["Você não pode desativar a sua própria conta."]
    at.selectbox(key="a_user").set_value(ids.tiago).run()
    assert at.selectbox(key=f"a_role_{ids.tiago}").value == "technician"
    at.selectbox(key=f"a_active_{ids.tiago}").set_value("desativado")
    at.button(key="a_save").click().run()
    assert messages(at, "success") == ["Acesso de Tiago Técnico atualizado: técnico, desativado (sessões abertas encerradas)."]
    assert list(at.dataframe[0].value["Situação"]) == ["ativo", "ativo", "desativado"]
    tiago.run()
    assert messages(tiago, "warning") == ["Sua conta foi desativada. Fale com um gestor."]
    assert "auth" not in tiago.session_state


def test_assume_from_the_ticket_screen(ids: dataset.Ids) -> None:
    tid = ids.tickets["t7"]
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    assert "Técnico: —" in texts(at)[0]
    at.button(key="t_assume").click().run()
    assert messages(at, "success") == [f"Você assumiu o chamado #{tid}."]
    assert "Técnico: Tiago Técnico" in texts(at)[0]
    assert _ticket(tid).technician_id == ids.tiago
