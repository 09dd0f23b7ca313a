// Conversation state kept in localStorage, namespaced per chat server, so the conversation
// survives page loads: session id, transcript, pending (unacknowledged) messages, seen bot ids.

const MAX_TRANSCRIPT = 200;
const MAX_SEEN = 300;
// The server's format for session ids; anything else in storage is replaced by a new id.
export const SESSION_ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

// A new session id made in the browser: 24 random bytes in base64url (32 characters), so the
// socket.io URL carries it from the very first request and a proxy can pin the conversation.
export function newSessionId() {
  const bytes = new Uint8Array(24);
  (window.crypto || window.msCrypto).getRandomValues(bytes);
  return btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export class ChatStore {
  constructor(serverUrl) {
    this.prefix = "atende-chat:" + serverUrl + ":";
    this.memory = {};
    this.state = {
      sessionId: this.read("session", null),
      transcript: this.read("transcript", []),
      outbox: this.read("outbox", []),
      seen: this.read("seen", []),
      lastMid: this.read("lastMid", null),
      consent: this.read("consent", false),
      unread: this.read("unread", 0),
      subject: this.read("subject", null),
      open: this.read("open", false),
    };
    if (!SESSION_ID_RE.test(this.state.sessionId || "")) this.set("sessionId", newSessionId());
  }

  read(key, fallback) {
    try {
      const raw = window.localStorage.getItem(this.prefix + key);
      return raw == null ? fallback : JSON.parse(raw);
    } catch (_) {
      return key in this.memory ? this.memory[key] : fallback;
    }
  }

  write(key, value) {
    this.memory[key] = value;
    try {
      window.localStorage.setItem(this.prefix + key, JSON.stringify(value));
    } catch (_) {
      /* private mode or quota: keep in memory */
    }
  }

  set(key, value) {
    this.state[key] = value;
    const storageKey = { sessionId: "session" }[key] || key;
    this.write(storageKey, value);
  }

  addEntry(entry) {
    const list = this.state.transcript.concat([entry]).slice(-MAX_TRANSCRIPT);
    this.set("transcript", list);
  }

  updateEntry(cid, patch) {
    const list = this.state.transcript.map((e) => (e.cid === cid ? Object.assign({}, e, patch) : e));
    this.set("transcript", list);
  }

  markSeen(mid) {
    if (!mid) return true;
    if (this.state.seen.includes(mid)) return false;
    this.set("seen", this.state.seen.concat([mid]).slice(-MAX_SEEN));
    this.set("lastMid", mid);
    return true;
  }

  reset() {
    this.set("sessionId", newSessionId());
    this.set("lastMid", null);
    this.set("transcript", []);
    this.set("outbox", []);
    this.set("seen", []);
    this.set("unread", 0);
  }
}
