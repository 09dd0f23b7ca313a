"""The domain rules, run on SQLite and on PostgreSQL (db_url is parametrized)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from helpdesk import errors
from helpdesk.db import session_scope
from helpdesk.models import Customer, Technician, Ticket, TicketEvent
from helpdesk.services import catalog, customers, outcomes, technicians, tickets

from helpdesk.demo import load_catalog
from tests.console.apphelpers import FakeClock

VALID_CNPJ = "11.222.333/0001-81"


@pytest.fixture()
def world(db_url: str) -> dict[str, int]:
    with session_scope() as s:
        load_catalog(s)
        c = customers.create(s, responsible_name="Joana Ribeiro", legal_name="Padaria Pão Dourado Ltda",
                             cnpj=VALID_CNPJ, tax_regime="Simples Nacional", phones=["+55 (11) 98765-4321"],
                             emails=["Joana@PaoDourado.com.br"],
                             licenses=[customers.LicenseSpec(module="pdv", seats=2), customers.LicenseSpec(module="nfe")],
                             machines=[customers.MachineSpec(name="CAIXA-01", anydesk_code="123 456 789")])
        t1 = technicians.create(s, name="Rafael", email="rafael@x.com", password="segredo-123")
        t2 = technicians.create(s, name="Bianca", email="bianca@x.com", password="segredo-123", role="manager")
        return {"customer": c.id, "tech1": t1.id, "tech2": t2.id}


def _count(model: type) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("raw", ["5511987654321", "551187654321", "+55 (11) 98765-4321", "11 98765 4321"])
def test_find_customer_by_any_phone_form(world: dict[str, int], raw: str) -> None:
    with session_scope() as s:
        found = customers.find_by_phone(s, raw)
        assert found is not None and found.id == world["customer"]
        assert customers.product_codes(found) == ["erp"]
        assert found.machines[0].anydesk_code == "123456789"


def test_find_by_cnpj_and_email(world: dict[str, int]) -> None:
    with session_scope() as s:
        assert customers.find_by_cnpj(s, "11222333000181").id == world["customer"]  # type: ignore[union-attr]
        assert customers.find_by_email(s, "joana@paodourado.com.br").id == world["customer"]  # type: ignore[union-attr]
        assert customers.find_by_phone(s, "+55 (21) 99999-0000") is None
        with pytest.raises(errors.InvalidCNPJ):
            customers.find_by_cnpj(s, "11.222.333/0001-80")


def test_invalid_phone_lookup_raises(world: dict[str, int]) -> None:
    with session_scope() as s, pytest.raises(errors.InvalidPhone):
        customers.find_by_phone(s, "12")


@pytest.mark.parametrize("kwargs,error", [
    ({"cnpj": "11.222.333/0001-82"}, errors.InvalidCNPJ),
    ({"cnpj": VALID_CNPJ}, errors.DuplicateCustomer),
    ({"phones": ["11 98765-4321"]}, errors.DuplicateCustomer),  # phone of another customer
    ({"phones": ["999"]}, errors.InvalidPhone),
    ({"tax_regime": "imposto unico"}, errors.InvalidInput),
])
def test_bad_customer_changes_nothing(world: dict[str, int], kwargs: dict, error: type) -> None:
    base = dict(responsible_name="Outro", legal_name="Outra Ltda", cnpj="45.723.174/0001-10",
                tax_regime="mei", phones=["+55 21 99888-7766"])
    base.update(kwargs)
    before = _count(Customer)
    with pytest.raises(error), session_scope() as s:
        customers.create(s, **base)
    assert _count(Customer) == before


def test_ticket_lifecycle_sets_timestamps_and_events(world: dict[str, int]) -> None:
    with session_scope() as s:
        t = tickets.open_ticket(s, customer_id=world["customer"], channel="whatsapp", type="erro",
                                module="nfe", description="Rejeição 539 ao emitir NF-e", conversation_id="5511987654321")
        tid = t.id
        assert t.status == "novo" and t.first_response_at is None
        assert tickets.active_for_conversation(s, "5511987654321").id == tid  # type: ignore[union-attr]
    with session_scope() as s:
        tickets.add_message(s, tid, author="cliente", text="Ainda não consegui emitir", direction="in")
        t = tickets.assume(s, tid, world["tech1"])
        assert t.status == "em_atendimento" and t.first_response_at is None
        tickets.add_message(s, tid, author="Rafael", text="Vou verificar", direction="out",
                            technician_id=world["tech1"])
    with session_scope() as s:
        t = tickets.get(s, tid)
        assert t.first_response_at is not None
        tickets.resolve(s, tid, technician_id=world["tech1"], solution="Ajustado o CFOP do produto")
    with session_scope() as s:
        t = tickets.get(s, tid)
        assert t.status == "concluido" and t.resolved_at is not None and t.resolved_at >= t.first_response_at
        assert tickets.active_for_conversation(s, "5511987654321") is None
        kinds = [e.kind for e in t.events]
        assert kinds == ["created", "message_in", "assigned", "status", "message_out", "solution", "status"]
        assert all(e.at is not None and e.actor for e in t.events)
        tickets.reopen(s, tid, actor="Rafael", reason="Cliente voltou a ter o erro")
    with session_scope() as s:
        t = tickets.get(s, tid)
        assert t.status == "em_atendimento" and t.resolved_at is None


def test_illegal_transitions_change_nothing(world: dict[str, int]) -> None:
    with session_scope() as s:
        tid = tickets.open_ticket(s, customer_id=world["customer"], channel="web", type="duvida", module=None,
                                  description="Como cadastro produto?", conversation_id=None).id
    events_before = _count(TicketEvent)
    for action in (
        lambda s: tickets.transition(s, tid, "concluido", actor="x"),
        lambda s: tickets.resolve(s, tid, technician_id=world["tech1"], solution="feito"),
        lambda s: tickets.reopen(s, tid, actor="x", reason="?"),
    ):
        with pytest.raises(errors.IllegalTransition), session_scope() as s:
            action(s)
    assert _count(TicketEvent) == events_before
    with session_scope() as s:
        assert tickets.get(s, tid).status == "novo"


def test_ticket_for_unknown_customer_and_bad_fields(world: dict[str, int]) -> None:
    before = _count(Ticket)
    bad = [dict(customer_id=99999), dict(type="reclamacao"), dict(channel="telegram"),
           dict(module="contabil"), dict(description="   "), dict(priority="altissima"),
           dict(contact_phone="123"), dict(contact_email="carla@"), dict(contact_email="a@b@c.com")]
    for override in bad:
        args = dict(customer_id=world["customer"], channel="web", type="erro", module="pdv",
                    description="Caixa travou", conversation_id="c1")
        args.update(override)
        with pytest.raises((errors.UnknownCustomer, errors.InvalidInput)), session_scope() as s:
            tickets.open_ticket(s, **args)
    assert _count(Ticket) == before


def test_lead_contact_is_normalised_and_flags_kept_on_the_created_event(world: dict[str, int]) -> None:
    with session_scope() as s:
        t = tickets.open_ticket(s, customer_id=None, channel="web", type="comercial", module=None,
                                description="Interesse comercial", conversation_id="lead-1", contact_name="Carla",
                                contact_phone="(11) 98765-4321", contact_email=" Carla@Mercadinho.com.br ",
                                flags={"lead": True})
        tid = t.id
    with session_scope() as s:
        t = tickets.get(s, tid)
        assert (t.contact_phone, t.contact_email, t.contact_name) == (
            "5511987654321", "carla@mercadinho.com.br", "Carla")
        created = [e for e in t.events if e.kind == "created"][0]
        assert created.data["lead"] is True and created.data["type"] == "comercial"


def test_assume_race_one_wins(world: dict[str, int]) -> None:
    with session_scope() as s:
        tid = tickets.open_ticket(s, customer_id=world["customer"], channel="web", type="erro", module="pdv",
                                  description="Caixa travou", conversation_id="c2").id
    results: dict[int, str] = {}
    barrier = threading.Barrier(2)

    def take(tech_id: int) -> None:
        barrier.wait()
        try:
            with session_scope() as s:
                tickets.assume(s, tid, tech_id)
            results[tech_id] = "won"
        except errors.AlreadyAssigned:
            results[tech_id] = "lost"

    threads = [threading.Thread(target=take, args=(world[k],)) for k in ("tech1", "tech2")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results.values()) == ["lost", "won"]
    winner = next(k for k, v in results.items() if v == "won")
    with session_scope() as s:
        t = tickets.get(s, tid)
        assert t.technician_id == winner
        assert [e.kind for e in t.events].count("assigned") == 1


def test_escalate_update_and_change_fields(world: dict[str, int]) -> None:
    with session_scope() as s:
        tid = tickets.open_ticket(s, customer_id=world["customer"], channel="phone", type="erro", module="pdv",
                                  description="Pinpad não conecta", conversation_id=None).id
        tickets.assume(s, tid, world["tech1"])
        tickets.escalate(s, tid, technician_id=world["tech1"], level=2, to_technician_id=world["tech2"],
                         reason="Precisa de acesso ao servidor")
        tickets.record_system_update(s, tid, technician_id=world["tech2"], version="5.12.3", notes="PDV atualizado")
        tickets.change_fields(s, tid, technician_id=world["tech2"], type="instalacao", module="tef", priority="alta")
    with session_scope() as s:
        t = tickets.get(s, tid)
        assert (t.level, t.technician_id, t.type, t.module, t.priority) == (2, world["tech2"], "instalacao", "tef", "alta")
        assert [e.kind for e in t.events][-3:] == ["escalated", "system_update", "fields_changed"]
        with pytest.raises(errors.InvalidInput):
            tickets.escalate(s, tid, technician_id=world["tech1"], level=7, to_technician_id=None, reason="x")


def test_technician_login_backoff_and_roles(world: dict[str, int], clock: FakeClock) -> None:
    with session_scope() as s:
        tech = technicians.authenticate(s, "rafael@x.com", "segredo-123")
        assert tech.password_hash.startswith("$argon2")
        with pytest.raises(errors.PermissionDenied):
            technicians.require_role(tech, "manager")
    for _ in range(5):
        with pytest.raises(errors.AuthenticationFailed), session_scope() as s:
            technicians.authenticate(s, "rafael@x.com", "errada")
    with pytest.raises(errors.AccountLocked) as refused, session_scope() as s:
        technicians.authenticate(s, "rafael@x.com", "segredo-123")  # inside the backoff window
    assert refused.value.message_pt == "Muitas tentativas de login. Aguarde 1 segundo e tente novamente."
    with session_scope() as s:  # nothing was written: no lock to clear by hand
        tech = s.get(Technician, world["tech1"])
        assert (tech.failed_logins, tech.locked_until) == (0, None)
    clock.advance(1)
    with session_scope() as s:
        assert technicians.authenticate(s, "rafael@x.com", "segredo-123").id == world["tech1"]


def test_outcomes_handoff_never_resolved(world: dict[str, int]) -> None:
    with session_scope() as s:
        outcomes.record(s, "conv-1", channel="web", answered_from_docs=True, resolved_by_bot=True)
        row = outcomes.record(s, "conv-1", handed_off=True)
        assert row.handed_off and not row.resolved_by_bot
        row = outcomes.record(s, "conv-1", resolved_by_bot=True)
        assert not row.resolved_by_bot
        row = outcomes.record(s, "conv-1", rating=5)
        first_id = row.id
        with pytest.raises(errors.InvalidInput):
            outcomes.record(s, "conv-1", rating=9)
        # a rated conversation is finished: the next turn starts a new one
        assert outcomes.record(s, "conv-1", answered_from_docs=True).id != first_id


def test_catalog_synonyms(world: dict[str, int]) -> None:
    with session_scope() as s:
        assert catalog.find_module(s, "frente de caixa").code == "pdv"  # type: ignore[union-attr]
        assert catalog.find_module(s, "Nota Fiscal Eletrônica").code == "nfe"  # type: ignore[union-attr]
        assert catalog.find_module(s, "nada") is None
