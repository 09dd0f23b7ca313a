// Safe rendering of bot text: everything becomes DOM text nodes; only a small markdown subset
// (**bold**, *italic*, `code`, [label](url), bare http(s) links, line breaks) produces elements.
// No string is ever assigned to innerHTML, so HTML or script in a message is shown as text.

const SAFE_SCHEMES = ["http:", "https:", "mailto:", "tel:"];

export function safeUrl(raw) {
  if (typeof raw !== "string") return null;
  const value = raw.trim();
  try {
    const url = new URL(value, window.location.href);
    return SAFE_SCHEMES.includes(url.protocol) ? url.href : null;
  } catch (_) {
    return null;
  }
}

function link(doc, label, href) {
  const url = safeUrl(href);
  if (!url) return doc.createTextNode(label);
  const a = doc.createElement("a");
  a.href = url;
  a.textContent = label;
  a.target = "_blank";
  a.rel = "noopener noreferrer nofollow";
  return a;
}

// Inline tokens, tried in order at each position.
const INLINE = /(\*\*([^*\n]+)\*\*)|(`([^`\n]+)`)|(\[([^\]\n]{1,300})\]\(([^)\s]{1,2000})\))|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])|(\*([^*\n]+)\*)|(_([^_\n]+)_)/g;

function inline(doc, text, parent) {
  const re = new RegExp(INLINE.source, "g"); // own state: inline() recurses for **bold**
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) parent.appendChild(doc.createTextNode(text.slice(last, m.index)));
    if (m[1]) {
      const b = doc.createElement("strong");
      inline(doc, m[2], b);
      parent.appendChild(b);
    } else if (m[3]) {
      const c = doc.createElement("code");
      c.textContent = m[4];
      parent.appendChild(c);
    } else if (m[5]) {
      parent.appendChild(link(doc, m[6], m[7]));
    } else if (m[8]) {
      parent.appendChild(link(doc, m[8], m[8]));
    } else if (m[9] || m[11]) {
      const i = doc.createElement("em");
      i.textContent = m[10] || m[12];
      parent.appendChild(i);
    }
    last = re.lastIndex;
  }
  if (last < text.length) parent.appendChild(doc.createTextNode(text.slice(last)));
}

// Paragraphs split on blank lines; "- " / "* " / "1. " lines become lists.
export function renderText(doc, text) {
  const frag = doc.createDocumentFragment();
  const blocks = String(text == null ? "" : text).replace(/\r\n?/g, "\n").split(/\n{2,}/);
  for (const block of blocks) {
    const lines = block.split("\n");
    const bullet = lines.every((l) => /^\s*[-*•]\s+/.test(l));
    const numbered = lines.every((l) => /^\s*\d+[.)]\s+/.test(l));
    if ((bullet || numbered) && lines.length > 0 && block.trim()) {
      const list = doc.createElement(numbered ? "ol" : "ul");
      for (const l of lines) {
        const li = doc.createElement("li");
        inline(doc, l.replace(/^\s*([-*•]|\d+[.)])\s+/, ""), li);
        list.appendChild(li);
      }
      frag.appendChild(list);
      continue;
    }
    const p = doc.createElement("p");
    lines.forEach((line, i) => {
      if (i > 0) p.appendChild(doc.createElement("br"));
      inline(doc, line, p);
    });
    frag.appendChild(p);
  }
  return frag;
}
