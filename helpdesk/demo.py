"""Demo data: a catalog, 36 customers, technicians and six months of tickets and conversations.

Deterministic (seeded), so reports and screenshots look the same on every machine. Loaded once by
`make run` through `python -m helpdesk demo`; `--reset` clears everything first.

WhatsApp cost: the demo sets managers' prices per Meta pricing category (``whatsapp_prices``) and
six weeks of priced messages of the demo customers in the connector's ``whatsapp_pricing`` (bot
env's table, same database; atende_contract.tables). The demo runs before the connector on a fresh
database, so it creates that table when missing with the columns and types of
connectors/whatsapp/store/engine.py (whose ``create_all(checkfirst=True)`` then leaves it); the app
env never imports the connector. Its rows have ``wamid`` ``wamid.demo-…``: ``reset`` removes those
and only those.

Size: one module on purpose: one seeded load whose parts (customers, tickets, conversations, cost)
draw from the same customers and dates, so the demo's reports agree with each other.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
import yaml
from atende_contract import tables
from sqlalchemy import delete, func, inspect, select
from sqlalchemy.orm import Session

from .cnpj import check_digits
from .models import (
    Base, Contact, ConversationOutcome, Customer, KnowledgeQuery, License, Machine, Module, Product,
    Technician, Ticket, TicketEvent, utcnow,
)
from .services import customers as customer_service
from .services import sla as sla_service
from .services import sla_calendar, sla_escalation
from .services import technicians as technician_service
from .services import wa_cost

CATALOG_FILE = Path(__file__).parent / "demo_data" / "catalog.yml"
DEMO_PASSWORD = "atende-demo-2026"

# (responsible, legal name, trade name, city/UF, regime, modules)
_CUSTOMERS = [
    ("Joana Ribeiro", "Padaria Pão Dourado Ltda", "Pão Dourado", "São Paulo/SP", "simples_nacional", ["gestor", "pdv", "tef", "nfe"]),
    ("Carlos Menezes", "Supermercado Bom Preço Ltda", "Bom Preço", "Campinas/SP", "lucro_presumido", ["gestor", "pdv", "bi", "tef", "nfe"]),
    ("Ana Paula Souza", "Farmácia Vida Saudável Eireli", "Vida Saudável", "Belo Horizonte/MG", "simples_nacional", ["gestor", "pdv", "nfe"]),
    ("Roberto Lima", "Distribuidora Lima & Filhos Ltda", "Lima Distribuidora", "Goiânia/GO", "lucro_real", ["gestor", "bi", "nfe"]),
    ("Fernanda Alves", "Restaurante Sabor Mineiro Ltda", "Sabor Mineiro", "Uberlândia/MG", "simples_nacional", ["pdv", "tef"]),
    ("Marcos Oliveira", "Auto Peças Oliveira Ltda", "Oliveira Auto Peças", "Curitiba/PR", "lucro_presumido", ["gestor", "pdv", "nfe"]),
    ("Patrícia Gomes", "Boutique Elegance Ltda ME", "Elegance", "Florianópolis/SC", "simples_nacional", ["pdv", "tef"]),
    ("Ricardo Santos", "Materiais de Construção Santos S.A.", "Casa Santos", "Porto Alegre/RS", "lucro_real", ["gestor", "pdv", "bi", "tef", "nfe"]),
    ("Juliana Costa", "Pet Shop Amigo Fiel Ltda", "Amigo Fiel", "Recife/PE", "simples_nacional", ["gestor", "pdv"]),
    ("Eduardo Pereira", "Papelaria Criativa Ltda", "Criativa", "Salvador/BA", "mei", ["pdv"]),
    ("Camila Rocha", "Hortifruti Verde Vale Ltda", "Verde Vale", "Fortaleza/CE", "simples_nacional", ["gestor", "pdv", "tef"]),
    ("Luiz Fernando Dias", "Atacadão Dias Comércio Ltda", "Atacadão Dias", "Manaus/AM", "lucro_real", ["gestor", "pdv", "bi", "nfe"]),
    ("Beatriz Martins", "Ótica Visão Clara Ltda", "Visão Clara", "Vitória/ES", "simples_nacional", ["gestor", "nfe"]),
    ("Gustavo Barbosa", "Bar e Lanchonete do Gu Ltda", "Lanchonete do Gu", "Natal/RN", "mei", ["pdv", "tef"]),
    ("Aline Carvalho", "Livraria Saber Ltda", "Livraria Saber", "Brasília/DF", "simples_nacional", ["gestor", "pdv", "nfe"]),
    ("Thiago Nunes", "Eletrônicos Nunes Ltda", "Nunes Eletro", "Ribeirão Preto/SP", "lucro_presumido", ["gestor", "pdv", "tef", "nfe"]),
    ("Mariana Teixeira", "Cosméticos Bela Flor Ltda", "Bela Flor", "Londrina/PR", "simples_nacional", ["pdv", "nfe"]),
    ("Paulo Henrique Melo", "Transportadora Rota Sul Ltda", "Rota Sul", "Caxias do Sul/RS", "lucro_real", ["gestor", "bi", "nfe"]),
    ("Larissa Freitas", "Academia Corpo em Forma Ltda", "Corpo em Forma", "Santos/SP", "simples_nacional", ["gestor"]),
    ("Diego Cardoso", "Açougue Boi Nobre Ltda", "Boi Nobre", "Campo Grande/MS", "simples_nacional", ["pdv", "tef", "nfe"]),
    ("Renata Araújo", "Clínica Sorriso Perfeito Ltda", "Sorriso Perfeito", "João Pessoa/PB", "lucro_presumido", ["gestor", "nfe"]),
    ("Felipe Moreira", "Conveniência 24h Moreira Ltda", "Moreira 24h", "Sorocaba/SP", "simples_nacional", ["pdv", "tef"]),
    ("Vanessa Castro", "Loja de Calçados Passo Certo Ltda", "Passo Certo", "Joinville/SC", "simples_nacional", ["gestor", "pdv", "tef", "nfe"]),
    ("Rodrigo Pinto", "Indústria de Móveis Pinto Ltda", "Móveis Pinto", "Bento Gonçalves/RS", "lucro_real", ["gestor", "bi", "nfe"]),
    ("Sabrina Correia", "Floricultura Jardim Secreto ME", "Jardim Secreto", "Niterói/RJ", "mei", ["pdv"]),
    ("André Vieira", "Mercadinho Vieira Ltda", "Mercadinho Vieira", "Maceió/AL", "simples_nacional", ["gestor", "pdv", "tef"]),
    # omnichannel suite customers
    ("Cláudia Ramos", "Agência Conecta Digital Ltda", "Conecta Digital", "São Paulo/SP", "lucro_presumido", ["omnicrm", "social", "dtm"]),
    ("Bruno Azevedo", "Seguradora Proteção Total S.A.", "Proteção Total", "Rio de Janeiro/RJ", "lucro_real", ["omnicrm", "chatbot", "inpaas"]),
    ("Daniela Monteiro", "Escola Futuro Brilhante Ltda", "Futuro Brilhante", "Belo Horizonte/MG", "lucro_presumido", ["ailxp", "chatbot"]),
    ("Henrique Farias", "Imobiliária Lar Doce Lar Ltda", "Lar Doce Lar", "Curitiba/PR", "simples_nacional", ["omnicrm", "social", "chatbot"]),
    ("Isabela Cunha", "E-commerce Moda Viva Ltda", "Moda Viva", "São Paulo/SP", "lucro_presumido", ["social", "dtm", "chatbot"]),
    ("Leonardo Batista", "Cooperativa de Crédito União Ltda", "Coop União", "Chapecó/SC", "lucro_real", ["omnicrm", "inpaas", "ailxp"]),
    ("Priscila Moura", "Hospital Bem Estar S.A.", "Bem Estar", "Recife/PE", "lucro_real", ["omnicrm", "chatbot", "inpaas", "dtm"]),
    ("Vinícius Lopes", "Telecom Rápida Ltda", "Rápida Telecom", "Goiânia/GO", "lucro_presumido", ["omnicrm", "chatbot", "social"]),
    # customers with both products
    ("Sérgio Almeida", "Rede de Lojas Almeida S.A.", "Lojas Almeida", "São Paulo/SP", "lucro_real", ["gestor", "pdv", "bi", "tef", "nfe", "omnicrm", "chatbot"]),
    ("Tatiane Barros", "Drogaria Popular Barros Ltda", "Drogaria Barros", "Belém/PA", "lucro_presumido", ["gestor", "pdv", "nfe", "chatbot"]),
]

# Fixed contacts of the first customers, used by the demo page and the tests.
DEMO_CONTACTS = {
    0: (["+55 (11) 98765-4321"], ["joana@paodourado.com.br"]),
    1: (["+55 (19) 99876-5432"], ["carlos@bompreco.com.br"]),
    26: (["+55 (11) 97777-1234"], ["claudia@conectadigital.com.br"]),
}

_TECHNICIANS = [
    ("Mariana Lopes", "mariana@atende.demo", "manager", 3),
    ("Rafael Souza", "rafael@atende.demo", "technician", 1),
    ("Bianca Ferreira", "bianca@atende.demo", "technician", 2),
    ("Lucas Andrade", "lucas@atende.demo", "technician", 1),
    ("Paula Mendes", "paula@atende.demo", "technician", 2),
]

_PROBLEMS = {
    "erro": ["Erro ao emitir nota: rejeição 539", "Sistema trava ao fechar o caixa",
             "Erro TEF-102 na comunicação com o pinpad", "Mensagem 'banco de dados em uso' ao abrir",
             "Relatório de vendas não carrega", "NF-e rejeitada com erro 503 da SEFAZ"],
    "duvida": ["Como cadastrar um novo produto com código de barras?", "Como gerar o relatório de estoque mínimo?",
               "Como configurar o desconto por forma de pagamento?", "Como exportar as vendas para o contador?"],
    "atualizacao": ["Solicito atualização para a versão mais recente", "Atualizar certificado digital A1",
                    "Atualização do PDV para o novo layout da NFC-e"],
    "instalacao": ["Instalar o PDV em um caixa novo", "Instalação do sistema no computador novo do escritório",
                   "Configurar pinpad em novo terminal"],
    "comercial": ["Quero contratar o módulo de BI", "Orçamento para mais duas licenças de PDV",
                  "Interesse no Chatbot para WhatsApp"],
    "outro": ["Alterar e-mail de cobrança", "Troca do responsável pelo contrato"],
}

_SOLUTIONS = ["Ajustada a configuração e validado com o cliente.", "Atualizado o sistema para a versão 5.12.3.",
              "Reinstalado o serviço e testado em produção.", "Orientado o cliente passo a passo.",
              "Corrigido cadastro fiscal do produto (NCM/CFOP).", "Reconfigurado o pinpad e refeita a transação de teste."]

_GAP_QUESTIONS = ["Como integrar com o marketplace Shopee?", "O sistema emite nota de serviço em Manaus?",
                  "Tem aplicativo para iPad?", "Como configurar balança Toledo Prix 6?",
                  "Dá para importar planilha de clientes do Bling?", "Como emitir MDF-e?"]


# WhatsApp prices in BRL per message, per Meta pricing category. ILLUSTRATIVE figures for the demo,
# in the order of magnitude of Meta's per-message rates for Brazil; NOT Meta's rate card (managers
# enter the current rates of their own account; docs/whatsapp.md, "Cost"). "service" and
# "referral_conversion" messages are free by their type, so they have no price here.
DEMO_WA_PRICES = {"marketing": "0,3500", "marketing_lite": "0,2800", "utility": "0,0400",
                  "authentication": "0,0400", "authentication_international": "0,1900"}
DEMO_WA_PRICES_FROM = date(2025, 7, 1)  # per-message pricing (PMP) started on 1 July 2025
DEMO_WA_MARKETING_RAISE = ("0,3750", 14)  # a new marketing price from 14 days ago (valid_from at work)
DEMO_WA_DAYS = 42  # six weeks of priced messages
DEMO_WAMID_PREFIX = "wamid.demo-"

# The connector's table as connectors/whatsapp/store/engine.py declares it (bot env), for a database
# the connector has not started on yet. Not part of Base.metadata: the migrations do not own it.
_connector = sa.MetaData()
WA_PRICING = sa.Table(
    tables.WHATSAPP_PRICING, _connector,
    sa.Column("wamid", sa.String(255), primary_key=True),
    sa.Column("recipient", sa.String(128), nullable=False, index=True),
    sa.Column("conversation", sa.String(200), nullable=False, index=True),
    sa.Column("billable", sa.Boolean, nullable=True),
    sa.Column("category", sa.String(40), nullable=True),
    sa.Column("pricing_model", sa.String(16), nullable=True),
    sa.Column("pricing_type", sa.String(40), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("recorded_at", sa.Float, nullable=False, index=True),
)


def _cnpj(rng: random.Random) -> str:
    base = f"{rng.randrange(10**7, 10**8)}0001"
    return base + check_digits(base)


def load_catalog(s: Session) -> dict[str, Module]:
    data = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    modules: dict[str, Module] = {}
    for p in data["products"]:
        product = Product(code=p["code"], name=p["name"], description=p["description"],
                          audience=p.get("audience", ""))
        s.add(product)
        for m in p["modules"]:
            module = Module(product=product, code=m["code"], name=m["name"],
                            description=m.get("description", ""), synonyms=m.get("synonyms", []))
            s.add(module)
            modules[m["code"]] = module
    s.flush()
    return modules


def is_loaded(s: Session) -> bool:
    return (s.scalar(select(func.count()).select_from(Product)) or 0) > 0


def reset(s: Session) -> None:
    """Delete every row of the help-desk tables (children first)."""
    for table in reversed(Base.metadata.sorted_tables):
        s.execute(delete(table))
    _clear_demo_pricing(s)
    s.flush()


def _clear_demo_pricing(s: Session) -> None:
    """Remove the demo's priced messages (never the connector's own rows)."""
    if inspect(s.connection()).has_table(tables.WHATSAPP_PRICING):
        s.execute(delete(WA_PRICING).where(WA_PRICING.c.wamid.like(DEMO_WAMID_PREFIX + "%")))


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=timezone.utc).timestamp()


def _wa_first_day(now: datetime) -> datetime:
    """Midnight of the first day of the demo's priced WhatsApp messages."""
    return datetime(now.year, now.month, now.day) - timedelta(days=DEMO_WA_DAYS)


def _wa_conversation(customer: Customer) -> str | None:
    """The WhatsApp conversation id of a customer's first phone (``whatsapp:<digits>``, the id the
    connector gives the conversation and records on its priced messages), or None without a phone."""
    phone = next((ct.value for ct in customer.contacts if ct.kind == "phone"), None)
    return f"whatsapp:{phone}" if phone else None


def load_whatsapp_cost(s: Session, customers: list[Customer], manager: Technician, now: datetime,
                       *, seed: int) -> int:
    """The demo's WhatsApp prices and ``DEMO_WA_DAYS`` days of priced messages of customers with a
    phone (most of them free, inside the customer-service window; some utility templates out of
    it; a few marketing messages). Only customers with a WhatsApp ticket in those days write, in
    that ticket's conversation (``_wa_conversation``), so the report's cost per conversation names
    its tickets and customer. Returns how many messages. Deterministic for ``seed`` and ``now``;
    replaces the demo's earlier rows."""
    for category, price in DEMO_WA_PRICES.items():
        wa_cost.set_price(s, category=category, price=price, valid_from=DEMO_WA_PRICES_FROM, technician_id=manager.id)
    raise_price, days_ago = DEMO_WA_MARKETING_RAISE
    raised_on = (now - timedelta(days=days_ago)).date()
    if raised_on > DEMO_WA_PRICES_FROM:
        wa_cost.set_price(s, category="marketing", price=raise_price, valid_from=raised_on, technician_id=manager.id)
    WA_PRICING.create(s.connection(), checkfirst=True)
    _clear_demo_pricing(s)
    rng = random.Random(seed)
    first_day = _wa_first_day(now)
    with_tickets = set(s.scalars(select(Ticket.conversation_id).where(
        Ticket.channel == "whatsapp", Ticket.opened_at >= first_day, Ticket.conversation_id.like("whatsapp:%"))))
    conversations = [(c, conv) for c in customers if (conv := _wa_conversation(c)) in with_tickets]
    active = conversations[:14]  # the customers who write the most (the ticket weights favour the first ones)
    rows: list[dict] = []
    for day in range(DEMO_WA_DAYS):
        midnight = first_day + timedelta(days=day)
        for i, (_cust, conversation) in enumerate(active):
            if rng.random() > (0.55 if i < 4 else 0.25) * (1.0 if midnight.weekday() < 5 else 0.3):
                continue
            at = midnight + timedelta(hours=rng.uniform(8, 19))
            kinds = ["service"] * rng.randint(2, 7)
            if rng.random() < 0.35:
                kinds.insert(0, "utility")  # a ticket update outside the window: a template
            if rng.random() < 0.04:
                kinds.append("marketing")
            for k in kinds:
                at += timedelta(minutes=rng.uniform(1, 12))
                if at >= now:
                    break
                free = k == "service"
                rows.append({"wamid": f"{DEMO_WAMID_PREFIX}{day}-{len(rows)}",
                             "recipient": conversation.removeprefix("whatsapp:"),
                             "conversation": conversation, "billable": not free, "category": k,
                             "pricing_model": "PMP", "pricing_type": "free_customer_service" if free else "regular",
                             "reason": None, "recorded_at": _epoch(at)})
    if rows:
        s.execute(WA_PRICING.insert(), rows)
    return len(rows)


def load(s: Session, *, months: int = 6, seed: int = 20261121, today: datetime | None = None) -> dict[str, int]:
    """Load the demo. Returns counts. Call on an empty database (see `is_loaded`)."""
    rng = random.Random(seed)
    now = today or utcnow()
    modules = load_catalog(s)

    techs = [technician_service.create(s, name=n, email=e, password=DEMO_PASSWORD, role=r, level=lvl)
             for n, e, r, lvl in _TECHNICIANS]

    customers: list[Customer] = []
    for i, (resp, legal, trade, place, regime, mods) in enumerate(_CUSTOMERS):
        city, state = place.split("/")
        phones, emails = DEMO_CONTACTS.get(i, ([], []))
        if not phones:
            phones = [f"+55 ({rng.choice([11, 19, 21, 31, 41, 47, 51, 61, 71, 81, 85])}) 9{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}"]
        if not emails:
            slug = trade.lower().split()[0].replace("ã", "a").replace("ó", "o").replace("á", "a").replace("é", "e")
            emails = [f"contato@{slug}{i}.com.br"]
        lic = [customer_service.LicenseSpec(module=m, seats=rng.randint(1, 6) if m == "pdv" else 1,
                                            version=f"5.{rng.randint(9, 12)}.{rng.randint(0, 4)}",
                                            valid_until=date(now.year + 1, rng.randint(1, 12), 1))
               for m in mods]
        machines = [customer_service.MachineSpec(name=name, anydesk_code=f"{rng.randrange(100_000_000, 999_999_999)}",
                                                 notes=note)
                    for name, note in rng.sample([("SERVIDOR", "Banco de dados"), ("CAIXA-01", "PDV principal"),
                                                  ("CAIXA-02", "PDV secundário"), ("ESCRITORIO", "Financeiro"),
                                                  ("GERENCIA", "Relatórios e BI")], k=rng.randint(1, 4))]
        customers.append(customer_service.create(
            s, responsible_name=resp, legal_name=legal, trade_name=trade, cnpj=_cnpj(rng), tax_regime=regime,
            phones=phones, emails=emails, licenses=lic, machines=machines, city=city, state=state))

    # Tickets: a few customers concentrate most of the volume (as in real support desks).
    weights = [1.0 / (1 + 0.35 * i) for i in range(len(customers))]
    type_w = {"erro": 38, "duvida": 27, "atualizacao": 13, "instalacao": 10, "comercial": 7, "outro": 5}
    channel_w = {"whatsapp": 58, "web": 24, "phone": 12, "console": 6}
    start = now - timedelta(days=30 * months)
    # Closed WhatsApp tickets of the days with priced messages are in the customer's WhatsApp
    # conversation (as the connector opens them), so the cost per conversation finds them; older
    # and open ones keep a demo id (no priced messages are that old)
    wa_since, wa_conversations = _wa_first_day(now), {c.id: _wa_conversation(c) for c in customers}
    n_tickets = 0
    for day in range((now - start).days):
        t0 = start + timedelta(days=day)
        weekday = t0.weekday()
        for _ in range(rng.randint(3, 9) if weekday < 5 else rng.randint(0, 3)):
            cust = rng.choices(customers, weights=weights)[0]
            ttype = rng.choices(list(type_w), weights=list(type_w.values()))[0]
            mod_codes = customer_service.module_codes(cust)
            module = rng.choice(mod_codes) if ttype != "comercial" else rng.choice(list(modules))
            opened = t0 + timedelta(hours=rng.uniform(8, 18))
            channel = rng.choices(list(channel_w), weights=list(channel_w.values()))[0]
            text = rng.choice(_PROBLEMS[ttype])
            tech = rng.choices(techs, weights=[1, 5, 4, 3, 2])[0]
            age = now - opened
            if age < timedelta(days=2) and rng.random() < 0.7:
                status = rng.choice(["novo", "em_atendimento"])
            else:
                status = "concluido"
            # only closed ones: an open ticket in a live conversation would put it in hand-off (the
            # bot stays silent while a technician owns it), so the demo customers could not try the bot
            live = channel == "whatsapp" and opened >= wa_since and status == "concluido"
            conversation = (wa_conversations[cust.id] if live else None) or f"demo-{cust.id}-{day}-{n_tickets}"
            t = Ticket(customer_id=cust.id, channel=channel, type=ttype, module=module, status=status,
                       priority=rng.choices(["baixa", "normal", "alta", "urgente"], weights=[15, 60, 20, 5])[0],
                       conversation_id=conversation, subject=text, description=text,
                       contact_name=cust.responsible_name, opened_at=opened, updated_at=opened)
            events = [TicketEvent(actor="bot", kind="created", text=text, at=opened,
                                  data={"channel": channel, "type": ttype, "module": module})]
            if status != "novo":
                t.technician_id = tech.id
                first = opened + timedelta(minutes=rng.expovariate(1 / 25))
                t.first_response_at = first
                events.append(TicketEvent(actor=tech.name, technician_id=tech.id, kind="assigned", at=first,
                                          data={"technician_id": tech.id}))
                events.append(TicketEvent(actor=tech.name, technician_id=tech.id, kind="message_out", at=first,
                                          text=f"Olá, {cust.responsible_name.split()[0]}! Sou {tech.name.split()[0]} e vou cuidar do seu chamado."))
            if status == "concluido":
                hours = rng.lognormvariate(1.2 if ttype in ("duvida", "outro") else 2.0, 0.9)
                resolved = min(opened + timedelta(hours=hours), now)
                t.resolved_at = max(resolved, t.first_response_at or opened)
                t.solution = rng.choice(_SOLUTIONS)
                events.append(TicketEvent(actor=tech.name, technician_id=tech.id, kind="solution",
                                          text=t.solution, at=t.resolved_at))
                events.append(TicketEvent(actor=tech.name, technician_id=tech.id, kind="status", at=t.resolved_at,
                                          data={"from": "em_atendimento", "to": "concluido"}))
            t.events = events
            s.add(t)
            n_tickets += 1
    s.flush()

    # SLAs: default policies and calendar, the first five customers on the "ouro" contract.
    for cust in customers[:5]:
        cust.tier = "ouro"
    sla_service.save(s, policies=sla_service.DEFAULT_POLICIES, week=sla_calendar.default_calendar().to_json(),
                     actor="demo")
    sla_escalation.backfill(s)

    # Conversations handled by the bot, with and without hand-off.
    n_conv = 0
    for day in range((now - start).days):
        t0 = start + timedelta(days=day)
        for _ in range(rng.randint(8, 20)):
            at = t0 + timedelta(hours=rng.uniform(7, 22))
            handed = rng.random() < 0.28
            answered = rng.random() < 0.7
            offered = rng.random() < 0.12
            resolved = (not handed) and answered and rng.random() < 0.85
            cust = rng.choices(customers, weights=weights)[0] if rng.random() < 0.8 else None
            s.add(ConversationOutcome(
                conversation_id=f"demo-conv-{day}-{n_conv}",
                channel=rng.choices(["whatsapp", "web"], weights=[70, 30])[0],
                customer_id=cust.id if cust else None, started_at=at, updated_at=at + timedelta(minutes=6),
                answered_from_docs=answered, resolved_by_bot=resolved, handed_off=handed,
                product_offered=offered,
                rating=rng.choices([None, 5, 4, 3, 2, 1], weights=[45, 30, 14, 6, 3, 2])[0]))
            if not answered and rng.random() < 0.6:
                s.add(KnowledgeQuery(conversation_id=f"demo-conv-{day}-{n_conv}", question=rng.choice(_GAP_QUESTIONS),
                                     answered=False, grounded=False, at=at))
            elif answered:
                s.add(KnowledgeQuery(conversation_id=f"demo-conv-{day}-{n_conv}",
                                     question=rng.choice(_PROBLEMS["duvida"]), answered=True, grounded=True, at=at))
            n_conv += 1
    s.flush()

    # WhatsApp cost (its own generator: the data above stays as it was before it existed).
    n_priced = load_whatsapp_cost(s, customers, techs[0], now, seed=seed + 15)
    s.flush()
    return {"customers": len(customers), "technicians": len(techs), "tickets": n_tickets,
            "conversations": n_conv, "whatsapp_priced_messages": n_priced}
