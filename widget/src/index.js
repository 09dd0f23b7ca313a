// Atende website chat widget. One <script src="https://rasa.example/webhooks/website/widget.js">
// adds a floating button and an accessible chat modal that speaks Rasa's socket.io protocol.
import { io } from "socket.io-client";
import css from "./styles.css";
import { renderText, safeUrl } from "./format.js";
import { ChatStore } from "./storage.js";

const MAX_CHARS = 2000;
const HUMAN_PAYLOAD = "/request_human";
const TYPING_TIMEOUT_MS = 15000;
const CONNECT_TIMEOUT_MS = 10000;
// Version of the consent card's text (recorded by the server with each conversation's consent).
// Change it whenever T.consentText or T.consentLlm changes: every visitor is then asked again.
// The text that names the LLM provider is a version of its own ("-ia").
const CONSENT_VERSION = "web-2026-12";

const T = {
  title: "Atendimento",
  subtitleAnon: "Assistente virtual · online",
  subtitleUser: (name) => `Olá, ${name}`,
  open: "Abrir o chat de atendimento",
  close: "Fechar o chat",
  newChat: "Começar nova conversa",
  placeholder: "Escreva sua mensagem…",
  send: "Enviar mensagem",
  human: "Falar com um atendente",
  typing: "O assistente está digitando",
  offline: "Sem conexão. Tentando reconectar… Suas mensagens serão enviadas assim que a conexão voltar.",
  consentTitle: "Antes de começar",
  consentText:
    "Usamos seu nome, seus contatos e as mensagens desta conversa para atender você (suporte técnico e " +
    "comercial), abrir e acompanhar chamados, gerar relatórios internos e melhorar nosso atendimento, " +
    "conforme a Lei Geral de Proteção de Dados (LGPD). Não envie senhas nem dados de cartão.",
  consentLlm: (provider) =>
    `Suas perguntas são enviadas ao provedor de inteligência artificial configurado (${provider}) para gerar as respostas.`,
  consentLink: "Política de privacidade",
  consentAccept: "Concordo e quero conversar",
  sources: "Fontes",
  pending: "enviando…",
  failed: {
    rate: "não enviada: muitas mensagens seguidas",
    too_long: "não enviada: mensagem longa demais",
    empty: "não enviada",
    bad_request: "não enviada",
  },
  tooLong: (n) => `A mensagem tem ${n} caracteres; o máximo é ${MAX_CHARS}.`,
  authRefused:
    "Não conseguimos confirmar sua identidade (sessão expirada ou inválida). Você será atendido como visitante; se for cliente, entre novamente no site.",
  unread: (n) => (n === 1 ? "1 mensagem não lida" : `${n} mensagens não lidas`),
};

const ICONS = {
  chat: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8.4L4 21.5V18a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></svg>',
  close: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M18.3 5.7a1 1 0 0 0-1.4 0L12 10.6 7.1 5.7a1 1 0 1 0-1.4 1.4l4.9 4.9-4.9 4.9a1 1 0 1 0 1.4 1.4l4.9-4.9 4.9 4.9a1 1 0 0 0 1.4-1.4L13.4 12l4.9-4.9a1 1 0 0 0 0-1.4z"/></svg>',
  send: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z"/></svg>',
  refresh: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M17.7 6.3A8 8 0 1 0 20 12h-2a6 6 0 1 1-1.8-4.2L13 11h7V4z"/></svg>',
};

function h(doc, tag, attrs, children) {
  const el = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k === "svg") el.innerHTML = v; // static icons defined above, never message text
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children || []) if (c) el.appendChild(c);
  return el;
}

function randomId() {
  const bytes = new Uint8Array(9);
  (window.crypto || window.msCrypto).getRandomValues(bytes);
  return "c" + Date.now().toString(36) + "-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function tokenSubject(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(decodeURIComponent(escape(atob(part))));
    return String(claims.sub || claims.email || "") || null;
  } catch (_) {
    return "invalid";
  }
}

// Captured while the script runs: document.currentScript is null after that.
const CURRENT_SCRIPT = document.currentScript;

function readConfig() {
  const script =
    CURRENT_SCRIPT ||
    Array.from(document.querySelectorAll("script[src]")).find((s) => /\/widget\.js(\?|$)/.test(s.src));
  const injected = window.__ATENDE_WEBCHAT__ || {};
  const page = window.AtendeChatConfig || {};
  const data = (script && script.dataset) || {};
  const serverUrl = page.serverUrl || data.serverUrl || (script ? new URL(script.src, location.href).origin : location.origin);
  return {
    serverUrl,
    socketPath: page.socketPath || data.socketPath || injected.socketPath || "/socket.io",
    title: page.title || data.title || T.title,
    color: page.color || data.color || null,
    initPayload: page.initPayload != null ? page.initPayload : data.initPayload != null ? data.initPayload : "/greet",
    privacyUrl: page.privacyUrl || data.privacyUrl || injected.privacyUrl || null,
    configuredPrivacyUrl: typeof injected.privacyUrl === "string" ? injected.privacyUrl : null,
    // Set by the server (connectors/website) when questions go to an LLM provider: its short name.
    llmProvider: typeof injected.llmProvider === "string" && injected.llmProvider ? injected.llmProvider.slice(0, 80) : null,
    authToken: page.authToken || data.authToken || null,
    transports: page.transports || ["websocket", "polling"],
  };
}

class AtendeChat {
  constructor(config) {
    this.config = config;
    this.store = new ChatStore(config.serverUrl);
    this.token = config.authToken;
    // What the visitor accepts: this text version, and the policy link shown with it (absolute).
    this.consentVersion = CONSENT_VERSION + (config.llmProvider ? "-ia" : "");
    this.policyUrl = safeUrl(config.privacyUrl || "");
    // The server records only an https link or its configured one; another is sent as null, so
    // the consent itself is still recorded.
    this.consentPolicyUrl =
      this.policyUrl && (/^https:\/\//.test(this.policyUrl) || this.policyUrl === config.configuredPrivacyUrl)
        ? this.policyUrl
        : null;
    const subject = this.token ? tokenSubject(this.token) : null;
    if (this.store.state.subject && this.store.state.subject !== subject) this.store.reset();
    this.store.set("subject", subject);
    this.authName = null;
    this.confirmed = false;
    this.refusedNoticeFor = null;
    this.typingTimer = null;
    this.buildDom();
    this.renderAll();
    this.connect();
    if (this.store.state.open) this.open(false);
  }

  // ------------------------------------------------------------------ DOM
  buildDom() {
    const doc = document;
    this.host = h(doc, "div", { id: "atende-chat-widget" });
    const shadow = this.host.attachShadow({ mode: "open" });
    this.shadow = shadow;
    shadow.appendChild(h(doc, "style", { text: css }));
    const root = h(doc, "div", { class: "root" });
    if (this.config.color && /^#[0-9a-fA-F]{3,8}$/.test(this.config.color)) {
      root.style.setProperty("--atende-primary", this.config.color);
      root.style.setProperty("--atende-primary-dark", this.config.color);
    }
    this.badge = h(doc, "span", { class: "badge", hidden: true, "aria-hidden": "true" });
    this.launcherLabel = h(doc, "span", { class: "sr-only", text: T.open });
    this.launcher = h(doc, "button", {
      class: "launcher", type: "button", "aria-haspopup": "dialog", "aria-expanded": "false",
      "aria-controls": "atende-panel", onclick: () => this.toggle(),
    }, [h(doc, "span", { svg: ICONS.chat }), this.launcherLabel, this.badge]);

    this.subtitle = h(doc, "div", { class: "subtitle", text: T.subtitleAnon });
    const header = h(doc, "div", { class: "header" }, [
      h(doc, "div", { class: "avatar", svg: ICONS.chat }),
      h(doc, "div", { class: "titles" }, [h(doc, "h2", { id: "atende-title", text: this.config.title }), this.subtitle]),
      h(doc, "button", { class: "icon-btn", type: "button", title: T.newChat, "aria-label": T.newChat, svg: ICONS.refresh, onclick: () => this.newConversation() }),
      h(doc, "button", { class: "icon-btn close", type: "button", title: T.close, "aria-label": T.close, svg: ICONS.close, onclick: () => this.close() }),
    ]);
    this.status = h(doc, "div", { class: "status", role: "status", hidden: true, text: T.offline });
    this.log = h(doc, "div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Mensagens", tabindex: "0" });
    this.typing = h(doc, "div", { class: "typing", hidden: true, role: "status", "aria-label": T.typing }, [h(doc, "span"), h(doc, "span"), h(doc, "span")]);
    this.humanButton = h(doc, "button", { type: "button", class: "human-btn", text: T.human, onclick: () => this.sendPayload(HUMAN_PAYLOAD, T.human) });
    this.input = h(doc, "textarea", { rows: "1", placeholder: T.placeholder, "aria-label": T.placeholder, maxlength: String(MAX_CHARS + 1) });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.submit(); }
    });
    this.input.addEventListener("input", () => this.onInput());
    this.sendButton = h(doc, "button", { class: "primary send", type: "submit", "aria-label": T.send, title: T.send, svg: ICONS.send });
    this.counter = h(doc, "div", { class: "counter", hidden: true, "aria-live": "polite" });
    const form = h(doc, "form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.submit(); } }, [this.input, this.sendButton]);
    this.panel = h(doc, "div", {
      class: "panel", id: "atende-panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "atende-title", hidden: true,
    }, [header, this.status, this.log, h(doc, "div", { class: "human" }, [this.humanButton]), this.counter, form]);
    this.panel.addEventListener("keydown", (e) => this.onPanelKey(e));
    root.appendChild(this.panel);
    root.appendChild(this.launcher);
    shadow.appendChild(root);
    (document.body || document.documentElement).appendChild(this.host);
  }

  focusables() {
    return Array.from(this.panel.querySelectorAll("button, [href], textarea, [tabindex]:not([tabindex='-1'])")).filter(
      (el) => !el.disabled && !el.hasAttribute("hidden") && el.offsetParent !== null,
    );
  }

  onPanelKey(e) {
    if (e.key === "Escape") { e.preventDefault(); this.close(); return; }
    if (e.key !== "Tab") return;
    const items = this.focusables();
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    const active = this.shadow.activeElement;
    if (e.shiftKey && (active === first || !this.panel.contains(active))) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && (active === last || !this.panel.contains(active))) { e.preventDefault(); first.focus(); }
  }

  onInput() {
    const n = this.input.value.length;
    this.counter.hidden = n <= MAX_CHARS;
    this.counter.textContent = n > MAX_CHARS ? T.tooLong(n) : "";
    this.input.style.height = "auto";
    this.input.style.height = Math.min(this.input.scrollHeight, 120) + "px";
  }

  // ------------------------------------------------------------------ open / close
  toggle() { this.panel.hidden ? this.open(true) : this.close(); }

  open(focus) {
    this.panel.hidden = false;
    this.launcher.setAttribute("aria-expanded", "true");
    this.launcherLabel.textContent = T.close;
    this.store.set("open", true);
    this.store.set("unread", 0);
    this.updateBadge();
    this.renderAll();
    if (focus !== false) {
      const target = this.consented() ? this.input : this.shadow.querySelector(".consent .primary");
      (target || this.input).focus();
    }
  }

  close() {
    this.panel.hidden = true;
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcherLabel.textContent = T.open;
    this.store.set("open", false);
    this.launcher.focus();
  }

  updateBadge() {
    const n = this.store.state.unread;
    this.badge.hidden = !n;
    this.badge.textContent = n > 9 ? "9+" : String(n || "");
    this.launcher.setAttribute("aria-label", n ? `${T.open} (${T.unread(n)})` : T.open);
  }

  // ------------------------------------------------------------------ rendering
  renderAll() {
    const doc = document;
    this.log.textContent = "";
    if (!this.consented()) this.log.appendChild(this.consentCard());
    const list = this.store.state.transcript;
    list.forEach((entry, i) => this.log.appendChild(this.renderEntry(entry, i === list.length - 1)));
    this.log.appendChild(this.typing);
    const enabled = this.consented();
    this.input.disabled = !enabled;
    this.sendButton.disabled = !enabled;
    this.humanButton.disabled = !enabled;
    this.subtitle.textContent = this.authName ? T.subtitleUser(this.authName) : T.subtitleAnon;
    this.updateBadge();
    this.log.scrollTop = this.log.scrollHeight;
    void doc;
  }

  // A consent given to an earlier text version (or the `true` of older widgets) is asked again.
  consented() {
    return this.store.state.consent === this.consentVersion;
  }

  consentCard() {
    const doc = document;
    const sentences = [T.consentText];
    if (this.config.llmProvider) sentences.push(T.consentLlm(this.config.llmProvider));
    const text = h(doc, "p", { text: sentences.join(" ") });
    const privacy = this.policyUrl;
    if (privacy) {
      text.appendChild(doc.createTextNode(" "));
      text.appendChild(h(doc, "a", { href: privacy, target: "_blank", rel: "noopener noreferrer", text: T.consentLink }));
    }
    return h(doc, "div", { class: "consent", role: "region", "aria-label": T.consentTitle }, [
      h(doc, "h3", { text: T.consentTitle }),
      text,
      h(doc, "button", { class: "primary", type: "button", text: T.consentAccept, onclick: () => this.acceptConsent() }),
    ]);
  }

  renderEntry(entry, isLast) {
    const doc = document;
    const frag = doc.createDocumentFragment();
    if (entry.kind === "user") {
      const bubble = h(doc, "div", { class: "msg user" + (entry.status === "failed" ? " failed" : ""), "data-cid": entry.cid });
      bubble.appendChild(doc.createTextNode(entry.text)); // typed text is never interpreted
      if (entry.status === "pending" || entry.status === "failed") {
        const label = entry.status === "pending" ? T.pending : T.failed[entry.reason] || T.failed.empty;
        bubble.appendChild(h(doc, "span", { class: "meta", text: label }));
      }
      frag.appendChild(bubble);
      return frag;
    }
    const bubble = h(doc, "div", { class: "msg " + (entry.notice ? "notice" : "bot"), "data-mid": entry.mid || "" });
    if (entry.text) bubble.appendChild(renderText(doc, entry.text));
    const image = entry.image && safeUrl(entry.image);
    if (image) bubble.appendChild(h(doc, "img", { src: image, alt: "", loading: "lazy" }));
    if (entry.sources && entry.sources.length) {
      const ol = h(doc, "ol");
      for (const src of entry.sources) {
        const url = safeUrl(src.url);
        const title = String(src.title || src.url || "").slice(0, 200);
        ol.appendChild(h(doc, "li", {}, [url ? h(doc, "a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow", text: title }) : doc.createTextNode(title)]));
      }
      bubble.appendChild(h(doc, "div", { class: "sources" }, [h(doc, "span", { class: "label", text: T.sources }), ol]));
    }
    frag.appendChild(bubble);
    if (isLast && entry.replies && entry.replies.length) {
      const box = h(doc, "div", { class: "replies", role: "group", "aria-label": "Respostas rápidas" });
      for (const r of entry.replies) {
        box.appendChild(h(doc, "button", { class: "reply", type: "button", text: r.title, onclick: () => this.sendPayload(r.payload, r.title) }));
      }
      frag.appendChild(box);
    }
    return frag;
  }

  setTyping(on) {
    clearTimeout(this.typingTimer);
    this.typing.hidden = !on;
    if (on) {
      this.typingTimer = setTimeout(() => (this.typing.hidden = true), TYPING_TIMEOUT_MS);
      this.log.scrollTop = this.log.scrollHeight;
    }
  }

  // ------------------------------------------------------------------ socket
  // The session id travels in the socket.io URL (`?session_id=`) of every request, so that a
  // proxy in front of several Rasa servers pins the conversation to one; it is also sent in
  // `session_request`, as Rasa's protocol expects.
  //
  // Transports: a WebSocket first; when it cannot open (a proxy or firewall that blocks it), the
  // same connection attempt goes on with long-polling (`tryAllTransports`), and from then on
  // every reconnect starts with polling and upgrades to a WebSocket only where one opens.
  connect() {
    const socket = io(this.config.serverUrl, {
      path: this.config.socketPath,
      transports: this.config.transports.slice(),
      tryAllTransports: true,
      timeout: CONNECT_TIMEOUT_MS,
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      query: { session_id: this.store.state.sessionId },
    });
    this.socket = socket;
    socket.io.on("reconnect_attempt", () => this.syncQuery());
    socket.io.on("open", () => {
      const engine = socket.io.engine;
      const name = engine && engine.transport && engine.transport.name;
      if (name === "polling" && socket.io.opts.transports[0] === "websocket") this.preferPolling();
    });
    // A connection attempt that failed or timed out (a WebSocket that never opens hangs
    // rather than fails behind some proxies): the next one starts with polling.
    socket.io.on("error", () => this.preferPolling());
    socket.on("connect", () => {
      this.status.hidden = true;
      this.requestSession();
    });
    socket.on("disconnect", () => { this.confirmed = false; this.status.hidden = false; this.setTyping(false); });
    socket.on("connect_error", () => { this.status.hidden = false; });
    socket.on("session_confirm", (id) => this.onSessionConfirm(id));
    socket.on("auth_status", (s) => this.onAuthStatus(s));
    socket.on("message_ack", (a) => this.onAck(a));
    socket.on("bot_uttered", (m) => this.onBotMessage(m));
  }

  // Long-polling first, upgrading to a WebSocket when one opens (socket.io's own default).
  preferPolling() {
    const list = this.socket.io.opts.transports;
    if (list[0] !== "websocket" || list.indexOf("polling") < 0) return;
    this.socket.io.opts.transports = ["polling"].concat(list.filter((t) => t !== "polling"));
  }

  syncQuery() {
    this.socket.io.opts.query = Object.assign({}, this.socket.io.opts.query, { session_id: this.store.state.sessionId });
  }

  // A new connection whose URL names the current session (after it changed).
  reconnect() {
    this.socket.disconnect();
    this.syncQuery();
    this.socket.connect();
  }

  // The consent goes with every message: the server records it once per conversation and version.
  customData() {
    const data = this.token ? { auth_token: this.token } : {};
    if (this.consented()) data.consent = { version: this.consentVersion, policy_url: this.consentPolicyUrl };
    return data;
  }

  requestSession() {
    this.socket.emit("session_request", {
      session_id: this.store.state.sessionId,
      customData: this.customData(),
      last_mid: this.store.state.lastMid,
    });
  }

  onSessionConfirm(id) {
    const sessionId = typeof id === "string" ? id : id && id.session_id;
    if (!sessionId) return;
    if (this.store.state.sessionId && this.store.state.sessionId !== sessionId) {
      this.store.reset();
      this.renderAll();
    }
    this.store.set("sessionId", sessionId);
    if (this.socket.io.opts.query.session_id !== sessionId) {
      this.reconnect(); // the server chose another id: reconnect with it in the URL
      return;
    }
    this.confirmed = true;
    this.flushOutbox();
    this.maybeSendInit();
  }

  onAuthStatus(status) {
    if (!status) return;
    if (status.status === "verified") {
      this.authName = status.name || null;
    } else {
      this.authName = null;
      if (status.status === "refused" && this.refusedNoticeFor !== this.token) {
        this.refusedNoticeFor = this.token;
        this.addBotEntry({ text: T.authRefused, notice: true });
      }
    }
    this.subtitle.textContent = this.authName ? T.subtitleUser(this.authName) : T.subtitleAnon;
  }

  onAck(ack) {
    if (!ack || !ack.client_id) return;
    const outbox = this.store.state.outbox.filter((m) => m.cid !== ack.client_id);
    if (ack.status === "refused" && ack.reason === "no_session") {
      this.requestSession(); // server lost the binding (restart): ask again, keep the message
      return;
    }
    this.store.set("outbox", outbox);
    if (ack.status === "accepted" || ack.status === "duplicate") {
      this.store.updateEntry(ack.client_id, { status: "sent" });
      if (ack.status === "accepted") this.setTyping(true);
    } else {
      this.store.updateEntry(ack.client_id, { status: "failed", reason: ack.reason });
    }
    this.renderAll();
  }

  onBotMessage(m) {
    if (!m || typeof m !== "object") return;
    if (!this.store.markSeen(m.mid)) return; // replayed or delivered twice
    const custom = m.custom && typeof m.custom === "object" ? m.custom : {};
    const sources = Array.isArray(custom.sources) ? custom.sources : [];
    const replies = (m.quick_replies || m.buttons || custom.buttons || [])
      .filter((b) => b && typeof b.payload === "string")
      .map((b) => ({ title: String(b.title || b.payload), payload: b.payload }));
    let text = typeof m.text === "string" ? m.text : typeof custom.text === "string" ? custom.text : "";
    // The bot also lists the sources in the text for channels without rich messages, numbered
    // like the answer's citations ("[1] Título — URL"; bullets from older bots): when they come
    // structured, drop that trailing "Fontes:" block so they show once (the <ol> keeps the numbers).
    if (sources.length) text = text.replace(/\n+Fontes:\n(?:(?:\[\d+\]|[•*-]) [^\n]*(?:\n|$))+\s*$/, "").trimEnd();
    const image = m.attachment && m.attachment.type === "image" && m.attachment.payload ? m.attachment.payload.src : null;
    if (!text && !sources.length && !replies.length && !image) return;
    this.setTyping(false);
    this.addBotEntry({ mid: m.mid, text, sources, replies, image, notice: !!m.notice });
  }

  addBotEntry(entry) {
    this.store.addEntry(Object.assign({ kind: "bot", ts: Date.now() }, entry));
    if (this.panel.hidden || document.hidden) this.store.set("unread", this.store.state.unread + 1);
    this.renderAll();
  }

  // ------------------------------------------------------------------ sending
  acceptConsent() {
    this.store.set("consent", this.consentVersion);
    this.renderAll();
    this.input.focus();
    this.maybeSendInit();
  }

  maybeSendInit() {
    const init = this.config.initPayload;
    if (!init || !this.consented() || !this.confirmed) return;
    if (this.store.state.transcript.length || this.store.state.outbox.length || this.initSent) return;
    this.initSent = true;
    this.enqueue({ cid: randomId(), text: init, quickReply: true, hidden: true });
  }

  submit() {
    if (!this.consented()) return;
    const text = this.input.value.trim();
    if (!text) return;
    if (text.length > MAX_CHARS) { this.onInput(); return; }
    this.input.value = "";
    this.onInput();
    this.enqueue({ cid: randomId(), text, quickReply: false });
  }

  sendPayload(payload, title) {
    if (!this.consented()) return;
    this.enqueue({ cid: randomId(), text: payload, quickReply: true, display: title });
  }

  enqueue(msg) {
    if (!msg.hidden) {
      this.store.addEntry({ kind: "user", cid: msg.cid, text: msg.display || msg.text, status: "pending", ts: Date.now() });
    }
    this.store.set("outbox", this.store.state.outbox.concat([msg]));
    this.renderAll();
    this.emit(msg);
  }

  emit(msg) {
    if (!this.socket.connected || !this.confirmed) return; // flushed after the next session_confirm
    const data = {
      message: msg.text,
      session_id: this.store.state.sessionId,
      customData: this.customData(),
      client_id: msg.cid,
    };
    if (msg.quickReply) data.quick_reply = true;
    this.socket.emit("user_uttered", data);
  }

  flushOutbox() {
    for (const msg of this.store.state.outbox) this.emit(msg);
  }

  // ------------------------------------------------------------------ identity (page API)
  identify(token) {
    const subject = token ? tokenSubject(token) : null;
    const previous = this.store.state.subject;
    this.token = token || null;
    this.store.set("subject", subject);
    if (previous && previous !== subject) this.resetSession(); // another person on this browser
    else if (this.socket.connected) this.requestSession();
  }

  logout() { this.identify(null); }

  newConversation() {
    this.resetSession();
    this.input.focus();
  }

  resetSession() {
    this.store.reset();
    this.authName = null;
    this.initSent = false;
    this.renderAll();
    this.reconnect(); // the new session id must be in the socket.io URL
  }
}

function boot() {
  if (window.AtendeChat && window.AtendeChat.__instance) return;
  const chat = new AtendeChat(readConfig());
  const api = {
    __instance: chat,
    open: () => chat.open(true),
    close: () => chat.close(),
    identify: (token) => chat.identify(token),
    logout: () => chat.logout(),
    newConversation: () => chat.newConversation(),
  };
  window.AtendeChat = api;
  window.dispatchEvent(new CustomEvent("atende-chat:ready"));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
