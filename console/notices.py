"""Notifications in the console (issue 16): while a page is open, the console polls the signed-in
technician's unseen notifications and shows each one with ``st.toast`` and, when the browser allows
it, a desktop notification (the Notification API, through a tiny ``st.iframe`` HTML frame, the
successor of ``components.v1.html``).

Once per technician, not per tab: ``notifications.claim_console`` marks them seen in one
conditional UPDATE, so of two tabs (or two consoles) polling at once exactly one shows each. The
dispatcher (worker) creates the rows; nothing here waits for a mail server or a webhook.

Also here: the technician's channel choices (sidebar) and the managers' page of notifications that
could not be delivered, with "Tentar de novo".
"""
from __future__ import annotations

import json
import os
from datetime import timedelta

import streamlit as st

from console import ui
from console.auth import User
from helpdesk.db import session_scope
from helpdesk.errors import DomainError
from helpdesk.services import notifications
from helpdesk.services.notify_channels import Notice, NotifyConfigError, NotifySettings, notify_settings

PAGE = "notificacoes"
MAX_TOASTS = 5
CHANNEL_LABELS = {"console": "Avisos no console", "email": "E-mail", "webhook": "Webhook da equipe"}


def poll_seconds() -> float:
    raw = os.environ.get("CONSOLE_NOTIFY_POLL_SECONDS", "").strip()
    try:
        return max(5.0, float(raw)) if raw else 15.0
    except ValueError:
        return 15.0


def _claim(user: User) -> list[Notice]:
    try:
        settings = notify_settings()
    except NotifyConfigError:  # a channel setting is wrong: the worker reports it, the console goes on
        settings = NotifySettings()
    with session_scope() as s:
        return notifications.claim_console(s, user.id, settings=settings)


def _script_json(items: list[dict]) -> str:
    """JSON safe inside a <script> element: no "</script>", no HTML comment or CDATA openers."""
    return (json.dumps(items, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def desktop_script(notices: list[Notice]) -> str:
    items = [{"id": n.notification_id, "title": n.title, "body": f"{n.customer} · {n.body}", "url": n.url}
             for n in notices]
    return ("<script>(function(){const items=" + _script_json(items) + ";"
            "const w=window.parent||window;const N=w.Notification;if(!N)return;"
            "function show(){items.forEach(function(i){try{const n=new N(i.title,{body:i.body,tag:'atende-'+i.id});"
            "n.onclick=function(){w.focus();w.location.href=i.url;};}catch(e){}});}"
            "if(N.permission==='granted'){show();}"
            "else if(N.permission!=='denied'){N.requestPermission().then(function(p){if(p==='granted')show();});}"
            "})();</script>")


def show(notices: list[Notice]) -> None:
    for n in notices[:MAX_TOASTS]:
        st.toast(f"**{ui.md(n.title)}**  \n{ui.md(n.customer)} · {ui.md(n.body)}", icon="🔔")
    if len(notices) > MAX_TOASTS:
        st.toast(ui.md(f"E mais {len(notices) - MAX_TOASTS} avisos: veja a fila."), icon="🔔")
    if notices:
        # st.iframe is Streamlit's replacement for components.v1.html (deprecated in 1.56); the
        # frame is same-origin (srcdoc), so it reaches the page's Notification API
        st.iframe(desktop_script(notices), height=1)


QUEUE_KEY, FULL_RUN_KEY = "notify_queue", "notify_full_run"


def poller(user: User) -> None:
    """Call once per run, inside ``st.sidebar``, before the page; call ``run_completed`` after it.
    Re-runs by itself every poll interval.

    What a full run claims stays queued in the session until that run completes: a run cut short
    by ``st.rerun`` / ``st.switch_page`` (the login's jump to the queue, an action) would otherwise
    lose its toasts, since the browser drops what an abandoned run drew. A poll of the fragment alone
    completes at once, so it empties the queue after drawing."""
    st.session_state[FULL_RUN_KEY] = True

    @st.fragment(run_every=timedelta(seconds=poll_seconds()))
    def _poll() -> None:
        queued: list[Notice] = st.session_state.setdefault(QUEUE_KEY, [])
        queued.extend(_claim(user))
        show(queued)
        if not st.session_state.get(FULL_RUN_KEY):
            queued.clear()

    _poll()


def run_completed() -> None:
    st.session_state[QUEUE_KEY] = []
    st.session_state[FULL_RUN_KEY] = False


def preferences_panel(user: User) -> None:
    with st.expander("Notificações"):
        try:
            settings = notify_settings()
        except NotifyConfigError:
            st.caption("Notificações por e-mail indisponíveis: configuração inválida no servidor.")
            return
        with session_scope() as s:
            prefs = notifications.preferences(s, user.id, settings)
        for channel in ("console", "email"):
            disabled = channel == "email" and not settings.email_enabled
            value = st.checkbox(CHANNEL_LABELS[channel], value=prefs[channel], disabled=disabled,
                                key=f"notify_pref_{channel}")
            if not disabled and value != prefs[channel]:
                with session_scope() as s:
                    notifications.set_preference(s, user.id, channel, value)
        if not settings.email_enabled:
            st.caption("E-mail: o servidor SMTP não está configurado.")


def failed_alert(user: User) -> None:
    """A manager's sidebar: a button to the failed notifications, only while there are some (the page
    itself is hidden from the menu)."""
    if not user.is_manager:
        return
    with session_scope() as s:
        count = notifications.failed_count(s)
    if count and st.button(f"⚠️ {count} notificação(ões) não entregue(s)", key="notify_failed_link"):
        ui.go(PAGE)


def failed_page(user: User) -> None:
    st.header("Notificações não entregues")
    st.caption("Avisos por e-mail ou webhook que falharam em todas as tentativas. "
               "\"Tentar de novo\" os coloca de volta na fila do serviço de avisos.")
    with session_scope() as s:
        rows = notifications.failed(s)
    if not rows:
        st.info("Nenhuma notificação falhou.")
        return
    st.dataframe([{"Chamado": f"#{r.ticket_id}", "Aviso": r.kind, "Canal": CHANNEL_LABELS.get(r.channel, r.channel),
                   "Destinatário": r.recipient_name, "Tentativas": r.attempts, "Último erro": r.last_error, "Criado em": ui.fmt_dt(r.created_at)}
                  for r in rows], hide_index=True)
    for r in rows[:50]:
        if st.button(f"Tentar de novo: #{r.ticket_id} · {CHANNEL_LABELS.get(r.channel, r.channel)}",
                     key=f"notify_retry_{r.id}"):
            try:
                with session_scope() as s:
                    ok = notifications.retry(s, r.id, by=user.id)
            except DomainError as err:
                ui.alert("error", err.message_pt)
                return
            ui.flash("success" if ok else "info", "Notificação recolocada na fila." if ok
                     else "Esta notificação já tinha saído da lista.")
            st.rerun()
