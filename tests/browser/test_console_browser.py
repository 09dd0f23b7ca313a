"""The console in a real browser (Debian's Chromium through Playwright).

A technician logs in, opens a ticket from the queue, replies to the customer, and the reply
reaches the customer's conversation:
- ``test_reply_leaves_the_console_for_rasa`` proves the console half against a real HTTP server on
  loopback that records Rasa's ``trigger_intent`` call (runs everywhere, no model needed);
- ``test_reply_reaches_the_website_customer`` runs the real stack (Rasa with the project's model,
  the action server) and a website customer on socket.io, and waits for the reply to arrive on
  the customer's socket;
- ``test_customer_markup_is_plain_text_in_the_browser`` renders a ticket whose customer wrote
  Markdown and HTML, and checks the page's DOM: no link, image or emphasis came out of it.
"""
from __future__ import annotations

import os
import queue
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpdesk.config import reset_settings
from helpdesk.db import dispose_engines, session_scope, upgrade
from ops import procs
from tests.console import dataset
from tests.console.conftest import JWT_SECRET, RasaRecorder, bearer_claims

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture()
def browser_page() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1200}, locale="pt-BR")
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            browser.close()


def _start_console(tmp: Path, env: dict[str, str]) -> tuple[procs.Proc, str]:
    port = procs.free_port()
    console = procs.console(port, env={**env, "CONSOLE_QUEUE_REFRESH_SECONDS": "600"}, log=tmp / "console.log")
    console.start()
    try:
        console.wait_ready(90)
    except BaseException:
        console.stop()
        raise
    return console, f"http://127.0.0.1:{port}"


def _login(page: Any, url: str, email: str, password: str, heading: str | None = "Fila de chamados") -> None:
    """Open ``url`` (a new browser session: the login form) and log in; wait for ``heading``."""
    page.goto(url)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Senha").fill(password)
    page.get_by_role("button", name="Entrar").click()
    if heading:
        page.get_by_role("heading", name=heading).wait_for()


def _reply(page: Any, text: str) -> None:
    page.get_by_label("Mensagem ao cliente").fill(text)
    page.get_by_role("button", name="Enviar resposta").click()
    page.get_by_text("Resposta enviada ao cliente.").wait_for()
    page.get_by_text(f"resposta do técnico: {text}").wait_for()


def _dataset_db(tmp_path: Path) -> tuple[str, dataset.Ids]:
    db = tmp_path / "atende.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    os.environ["DATABASE_URL"] = url
    reset_settings()
    try:
        with session_scope() as s:
            ids = dataset.build(s)
    finally:
        dispose_engines()
        os.environ.pop("DATABASE_URL", None)
        reset_settings()
    return url, ids


def test_customer_markup_is_plain_text_in_the_browser(tmp_path: Path, browser_page: Any) -> None:
    from helpdesk.services import customers, tickets

    url, _ids = _dataset_db(tmp_path)
    legal = "Falsa **Ltda** [Pague aqui](http://mal.example/pix) <img src=x onerror=alert(1)>"
    subject = ("**negrito** ![](http://rastreador.example/p.png) <b>grosso</b> [link](http://mal.example/y) "
               "www.mal.example pix@mal.example $x^2$ :red[vermelho] :smile: _itálico_")
    with session_scope(url) as s:
        c = customers.create(s, responsible_name="_Rita_ <i>Souza</i>", legal_name=legal, cnpj="04.252.011/0001-10",
                             tax_regime="simples_nacional")
        tid = tickets.open_ticket(s, customer_id=c.id, channel="phone", type="erro", module=None,
                                  description=subject, subject=subject, conversation_id=None).id
    dispose_engines()
    console, console_url = _start_console(tmp_path, {"DATABASE_URL": url})
    try:
        page = browser_page
        _login(page, console_url, "tiago@teste.dev", dataset.PASSWORD)
        page.wait_for_url(f"{console_url}/fila")  # the root address opens the queue
        nav = page.get_by_test_id("stSidebarNav")
        assert nav.get_by_role("link").all_inner_texts() == [  # no manager pages
            "Fila", "Chamado", "Clientes", "Problemas do WhatsApp"]
        # A manager page typed in by a technician: a new session, so the login form, then the refusal.
        _login(page, f"{console_url}/relatorios", "tiago@teste.dev", dataset.PASSWORD, heading=None)
        page.get_by_text("Você não tem permissão para acessar esta área. Esta página é só para gestores.").wait_for()
        assert page.get_by_role("heading", name="Relatórios").count() == 0
        page.get_by_test_id("stSidebar").get_by_text("Chamado", exact=True).click()
        field = page.get_by_label("Número do chamado")
        field.fill(str(tid))
        field.press("Enter")
        heading = page.get_by_role("heading", name=f"#{tid}")
        heading.wait_for()
        page.wait_for_url(f"{console_url}/chamado?id={tid}")  # the ticket's deep link
        assert heading.inner_text().replace("\u2060", "").strip() == f"#{tid} · {subject}"
        page.get_by_text(legal).first.wait_for()  # st.text
        page.get_by_text("_Rita_ <i>Souza</i>").first.wait_for()
        main = page.get_by_test_id("stMain")
        assert main.locator("a[href*='mal.example'], a[href^='mailto']").count() == 0
        assert main.locator("img[src='x'], img[src*='rastreador']").count() == 0
        assert main.locator("strong, b, em, i").filter(has_text=re.compile("negrito|grosso|itálico|Rita")).count() == 0
        assert main.locator(".katex, [data-testid='stMarkdownColoredText']").count() == 0
        assert "😄" not in main.inner_text()
    finally:
        console.stop()


def test_reply_leaves_the_console_for_rasa(tmp_path: Path, browser_page: Any) -> None:
    # Stand-in for Rasa (a real loopback HTTP server recording the call): the console half only.
    # TODO(lead): the real-Rasa variant below covers the whole path; it needs tests/support/stack.py
    # to stop setting WEBCHAT_ALLOWED_ORIGINS="*" (the website connector refuses "*"; "" = localhost).
    db = tmp_path / "atende.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    os.environ["DATABASE_URL"] = url
    reset_settings()
    try:
        with session_scope() as s:
            ids = dataset.build(s)
    finally:
        dispose_engines()
        os.environ.pop("DATABASE_URL", None)
        reset_settings()
    rasa = RasaRecorder().start()
    console, console_url = _start_console(tmp_path, {"DATABASE_URL": url, "RASA_URL": rasa.url,
                                                     "RASA_JWT_SECRET": JWT_SECRET})
    try:
        page = browser_page
        _login(page, console_url, "bruno@teste.dev", dataset.PASSWORD)
        tid = ids.tickets["t5"]  # oldest open ticket: first in the queue
        page.get_by_role("button", name="Abrir", exact=True).click()
        page.get_by_text(f"#{tid} · Assunto t5").wait_for()
        page.wait_for_url(f"{console_url}/chamado?id={tid}")
        page.get_by_text("Gama Indústria S.A.").first.wait_for()
        text = "Olá! Reinicie o pinpad e me diga se voltou. <b>ok</b>"
        _reply(page, text)
        assert rasa.calls == [{"path": "/conversations/web-sess-c5/trigger_intent",
                               "query": {"output_channel": ["latest"]},
                               "body": {"name": "EXTERNAL_agent_reply",
                                        "entities": {"agent_text": text, "agent_name": "Bruno Técnico"}}}]
        assert bearer_claims(rasa.authorizations[0])["user"]["role"] == "admin"
    finally:
        console.stop()
        rasa.stop()


def test_a_click_on_a_report_bar_lists_the_tickets_behind_it(tmp_path: Path, browser_page: Any) -> None:
    from datetime import timedelta

    from helpdesk.models import Ticket, utcnow
    from helpdesk.services import tickets

    url, _ids = _dataset_db(tmp_path)
    now = utcnow()
    with session_scope(url) as s:  # the page opens on the last 30 days: three tickets on two days
        for days_ago, subject in ((3, "Ontem não"), (1, "Caixa travou"), (1, "Cupom não sai")):
            t = tickets.open_ticket(s, customer_id=None, channel="phone", type="erro", module="pdv",
                                    description=subject, subject=subject, conversation_id=None)
            s.get(Ticket, t.id).opened_at = now - timedelta(days=days_ago)
    dispose_engines()
    console, console_url = _start_console(tmp_path, {"DATABASE_URL": url})
    try:
        page = browser_page
        _login(page, f"{console_url}/relatorios", "marta@teste.dev", dataset.PASSWORD, heading="Relatórios")
        chart = page.locator(".js-plotly-plot", has_text="Chamados por dia")
        bar = chart.locator("g.point path").nth(1)  # the second day's bar
        bar.wait_for()
        box = bar.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # plotly's drag layer takes it
        day = (now - timedelta(days=1)).strftime("%d/%m/%Y")
        page.get_by_text(f"Chamados do dia {day} (2)").first.wait_for()
        from playwright.sync_api import expect

        # the grid draws on a canvas; its accessible (hidden) table holds the cells
        table = page.get_by_test_id("stDataFrame").last
        expect(table.get_by_text("Ontem não")).to_have_count(0)  # the third day's ticket is not behind the bar
        expect(table.get_by_text("Caixa travou")).to_have_count(1)
        expect(table.get_by_text("Cupom não sai")).to_have_count(1)
    finally:
        console.stop()


@pytest.mark.integration
def test_reply_reaches_the_website_customer(tmp_path: Path, browser_page: Any, atende_stack: Any) -> None:
    import socketio

    from helpdesk import demo
    from helpdesk.models import Technician
    from helpdesk.services import customers, tickets

    stack = atende_stack
    bot_messages: "queue.Queue[dict[str, Any]]" = queue.Queue()
    confirmed: "queue.Queue[str]" = queue.Queue()
    sio = socketio.Client()
    sio.on("bot_uttered", lambda data: bot_messages.put(data))
    sio.on("session_confirm", lambda sid: confirmed.put(sid if isinstance(sid, str) else sid.get("session_id")))
    sio.connect(stack.rasa_url, socketio_path="/socket.io", transports=["websocket"])
    console = None
    try:
        sio.emit("session_request", {})
        session_id = confirmed.get(timeout=20)
        sio.emit("user_uttered", {"message": "Olá", "session_id": session_id, "client_id": "c-1"})
        bot_messages.get(timeout=60)  # the bot answered: the conversation's latest channel is the website

        with session_scope(stack.database_url) as s:
            manager = s.query(Technician).filter_by(email="mariana@atende.demo").one()
            customer = customers.find_by_email(s, "joana@paodourado.com.br")
            ticket = tickets.open_ticket(s, customer_id=customer.id if customer else None, channel="web",
                                         type="erro", module="pdv", description="PDV não abre (teste de navegador)",
                                         conversation_id=f"web:{session_id}")
            tickets.assume(s, ticket.id, manager.id)
            tid = ticket.id
        dispose_engines()
        while not bot_messages.empty():
            bot_messages.get_nowait()

        console, console_url = _start_console(tmp_path, stack.env)
        page = browser_page
        _login(page, console_url, "mariana@atende.demo", demo.DEMO_PASSWORD)
        page.get_by_test_id("stSidebar").get_by_text("Chamado", exact=True).click()
        field = page.get_by_label("Número do chamado")
        field.fill(str(tid))
        field.press("Enter")
        page.get_by_text(f"#{tid} · PDV não abre (teste de navegador)").wait_for()
        text = "Oi, Joana! Aqui é a Mariana: pode reiniciar o PDV?"
        _reply(page, text)
        received = []
        while True:
            message = bot_messages.get(timeout=60)
            received.append(message)
            if text in str(message.get("text", "")):
                break
        assert any(text in str(m.get("text", "")) for m in received)
    finally:
        if console is not None:
            console.stop()
        sio.disconnect()
