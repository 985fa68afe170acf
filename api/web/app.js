// seedpay transparency page. No dependencies, nothing loaded from elsewhere.
//
// The Merkle checks below implement rewards/merkle.go's format byte for
// byte (the Go tests run them in a real browser against rewards.Leaf and
// rewards.NewTree):
//
//   leaf     = SHA-256(SHA-256(u64be(epoch) || u16be(len(user)) || user ||
//                u16be(len(address)) || address || u16be(len(amount)) || amount))
//              strings as UTF-8 bytes, amount in canonical base 10
//   parent   = SHA-256(min(a, b) || max(a, b)), compared bytewise
//   tree     = leaves sorted bytewise, the odd last node of a level promoted
//   proof    = sibling hashes from the leaf up; h = leaf; h = parent(h, p)...
//   publicId = first 16 hex digits of SHA-256("seedpay/public-id/v1" || 0x00 || user id)
"use strict";

(function () {
  const te = new TextEncoder();

  // ---- SHA-256: WebCrypto, or a plain implementation where WebCrypto is
  // not offered (pages served over plain HTTP from a non-local host).
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  function sha256Plain(msg) {
    const len = msg.length;
    const padded = new Uint8Array(((len + 9 + 63) >> 6) << 6);
    padded.set(msg);
    padded[len] = 0x80;
    const dv = new DataView(padded.buffer);
    dv.setUint32(padded.length - 8, Math.floor(len / 0x20000000));
    dv.setUint32(padded.length - 4, (len << 3) >>> 0);
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const w = new Uint32Array(64);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    for (let off = 0; off < padded.length; off += 64) {
      for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + 4 * i);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    const out = new Uint8Array(32);
    const ov = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) ov.setUint32(4 * i, h[i]);
    return out;
  }
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  const sha256 = subtle
    ? async (b) => new Uint8Array(await subtle.digest("SHA-256", b))
    : async (b) => sha256Plain(b);

  // ---- bytes
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  function unhex(s, what) {
    s = String(s).trim();
    if (!/^[0-9a-fA-F]{64}$/.test(s)) throw new Error(`${what}: want 64 hex digits, got ${s.length} characters`);
    return Uint8Array.from(s.match(/../g), (x) => parseInt(x, 16));
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  }
  function cmp(a, b) {
    for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  }
  const pair = (a, b) => sha256(cmp(a, b) <= 0 ? concat(a, b) : concat(b, a));
  function field(name, s) { // u16be byte length, then the UTF-8 bytes
    const b = te.encode(s);
    if (b.length > 0xffff) throw new Error(`${name} is ${b.length} bytes, at most 65535`);
    const out = new Uint8Array(2 + b.length);
    new DataView(out.buffer).setUint16(0, b.length);
    out.set(b, 2);
    return out;
  }
  function parseEpoch(s) {
    s = String(s).trim();
    if (!/^(0|[1-9][0-9]*)$/.test(s) || BigInt(s) > 0x7fffffffffffffffn) throw new Error(`epoch: want a non-negative integer, got "${s}"`);
    return BigInt(s);
  }
  function parseAmount(s) {
    s = String(s).trim();
    if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new Error(`amount: want base-10 digits without sign or leading zeros, got "${s}"`);
    return s;
  }

  function preimage(epoch, user, address, amount) {
    const ep = new Uint8Array(8);
    new DataView(ep.buffer).setBigUint64(0, parseEpoch(epoch));
    return concat(ep, field("user id", user), field("address", address), field("amount", parseAmount(amount)));
  }
  async function leaf(epoch, user, address, amount) {
    return sha256(await sha256(preimage(epoch, user, address, amount)));
  }
  async function rootOf(leaves) {
    if (leaves.length === 0) return new Uint8Array(32);
    let level = [...leaves].sort(cmp);
    while (level.length > 1) {
      const next = [];
      for (let i = 0; i + 1 < level.length; i += 2) next.push(await pair(level[i], level[i + 1]));
      if (level.length % 2) next.push(level[level.length - 1]);
      level = next;
    }
    return level[0];
  }
  async function walk(leafBytes, path) {
    let h = leafBytes;
    for (const p of path) h = await pair(h, p);
    return h;
  }
  async function publicId(user) {
    return hex(await sha256(te.encode("seedpay/public-id/v1\u0000" + user))).slice(0, 16);
  }

  // verify checks a proof {epoch, pid, address, amount, leaf, path, root}; with
  // user (a user id; null or undefined for none) it also recomputes the leaf
  // from the credit's fields.
  // It returns {valid, message, detail}.
  async function verify(p, user) {
    try {
      const epoch = parseEpoch(p.epoch);
      const leafB = unhex(p.leaf, "leaf");
      const rootB = unhex(p.root, "root");
      const path = (p.path || []).map((s, i) => unhex(s, `path[${i}]`));
      if (path.length > 64) throw new Error(`path: ${path.length} hashes, at most 64`);
      const notes = [];
      if (user != null) {
        const want = await leaf(epoch.toString(), user, p.address || "", p.amount);
        if (hex(want) !== hex(leafB)) {
          return { valid: false, message: "INVALID: the credit does not match the leaf",
            detail: `(epoch ${epoch}, this user id, address "${p.address || ""}", amount ${p.amount}) hashes to ${hex(want)}, not to the leaf ${hex(leafB)}.` };
        }
        if (p.pid) {
          const pid = await publicId(user);
          if (pid !== String(p.pid).trim()) {
            return { valid: false, message: "INVALID: this user id is not that public id",
              detail: `The user id's public id is ${pid}, not ${p.pid}.` };
          }
        }
        notes.push(`Leaf recomputed from epoch ${epoch}, the user id, address "${p.address || ""}" and amount ${p.amount}.`);
      } else {
        notes.push("Only the leaf hash was checked: type the user id to check the amount and address too.");
      }
      const got = await walk(leafB, path);
      if (hex(got) !== hex(rootB)) {
        return { valid: false, message: "INVALID: the path does not lead from the leaf to the root",
          detail: `The path gives ${hex(got)}, the root is ${hex(rootB)}.` };
      }
      return { valid: true, message: `VALID: the leaf is in the Merkle root of epoch ${epoch}`, detail: notes.join(" ") };
    } catch (e) {
      return { valid: false, message: "INVALID: " + e.message, detail: "" };
    }
  }

  // ---- page
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  async function api(path) {
    const r = await fetch("/api/v1/public/" + path, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
    return body;
  }
  const utc = (s) => new Date(s * 1000).toISOString().replace("T", " ").slice(0, 19);
  function duration(s) {
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return h ? `${h}h ${String(m).padStart(2, "0")}m` : m ? `${m}m ${String(sec).padStart(2, "0")}s` : `${sec}s`;
  }
  const stateTag = (s) => el("span", { class: "state " + s, text: s });
  function payoutCell(po) {
    if (!po) return el("span", { class: "note", text: "—" });
    return el("span", {}, stateTag(po.state), po.txid ? el("div", { class: "hash", text: po.txid }) : null);
  }
  function emptyRow(tbody, cols, text) {
    tbody.append(el("tr", {}, el("td", { class: "empty", colspan: String(cols), text })));
  }

  const published = new Map(); // epoch -> root, as listed by the server
  let info = null;
  let epochsBefore = []; // stack of "before" queries, for Newer

  async function loadInfo() {
    info = await api("info");
    const parts = [`Current epoch ${info.current_epoch}`];
    parts.push(info.sealed_through == null ? "nothing sealed yet" : `sealed through epoch ${info.sealed_through}`);
    $("status").textContent = parts.join(" · ");
    if (info.pools) {
      $("pools").hidden = false;
      $("nav-pools").hidden = false;
      loadPools().catch((e) => showError($("pools-table"), 10, e));
    }
  }

  function showError(table, cols, e) {
    const tb = table.tBodies[0];
    tb.replaceChildren();
    emptyRow(tb, cols, "could not load: " + e.message);
  }

  async function loadEpochs(query) {
    const page = await api("epochs" + (query || ""));
    const tb = $("epochs-table").tBodies[0];
    tb.replaceChildren();
    if (page.epochs.length === 0) emptyRow(tb, 8, "no sealed epoch yet");
    for (const e of page.epochs) {
      published.set(String(e.epoch), e.root);
      const budgets = el("div", {});
      for (const p of e.pools) {
        budgets.append(el("div", { class: "num", title: `available ${p.available}, credited ${p.credited}, carried ${p.dust_out}`,
          text: `${p.id}: ${p.budget}` + (p.credited !== p.available ? ` (credited ${p.credited})` : "") }));
      }
      const tx = el("div", { class: "txids" });
      if (e.payouts) {
        const st = Object.entries(e.payouts.states || {}).map(([k, v]) => `${v} ${k}`).join(" · ");
        if (st) tx.append(el("span", { class: "note", text: st }));
        for (const id of e.payouts.txids.slice(0, 5)) tx.append(el("span", { class: "hash", text: id }));
        if (e.payouts.txids.length > 5) tx.append(el("span", { class: "note", text: `+${e.payouts.txids.length - 5} more` }));
        if (e.payouts.omitted) tx.append(el("span", { class: "note", text: e.payouts.omitted }));
      }
      tb.append(el("tr", { "data-epoch": String(e.epoch) },
        el("td", {}, el("button", { class: "link", type: "button", text: String(e.epoch), onclick: () => { location.hash = `#epoch/${e.epoch}`; } })),
        el("td", { class: "num period", text: `${utc(e.start)} – ${utc(e.end).slice(11)}` }),
        el("td", { class: "hash root", text: e.root }),
        el("td", { class: "num", text: String(e.lines) }),
        el("td", { class: "num", text: e.total_points }),
        el("td", { class: "num", text: e.total_credited }),
        el("td", {}, budgets),
        el("td", { class: "txcol" }, tx)));
    }
    const older = $("epochs-older");
    older.hidden = !page.next;
    older.onclick = () => { epochsBefore.push(query || ""); loadEpochs(page.next).catch((e) => showError($("epochs-table"), 8, e)); };
    const newer = $("epochs-newer");
    newer.hidden = epochsBefore.length === 0;
    newer.onclick = () => loadEpochs(epochsBefore.pop()).catch((e) => showError($("epochs-table"), 8, e));
  }

  async function showEpoch(n, query) {
    const d = await api(`epochs/${n}${query || ""}`);
    published.set(String(d.epoch), d.root);
    $("epoch-detail").hidden = false;
    $("epoch-title").textContent = `Epoch ${d.epoch}: ${d.lines} lines, ${d.total_credited} credited`;
    $("epoch-root").textContent = d.root;
    const tb = $("lines-table").tBodies[0];
    if (!query) tb.replaceChildren();
    if (d.user_lines.length === 0 && !query) emptyRow(tb, 6, "nobody earned in this epoch");
    for (const l of d.user_lines) {
      tb.append(el("tr", { "data-pid": l.pid },
        el("td", {}, el("button", { class: "link hash", type: "button", text: l.pid, onclick: () => { location.hash = `#user/${l.pid}`; } })),
        el("td", { class: "hash", text: l.address || "(none linked)" }),
        el("td", { class: "num", text: duration(l.seed_seconds) }),
        el("td", { class: "num", text: l.amount }),
        el("td", {}, payoutCell(l.payout)),
        el("td", {}, el("button", { type: "button", class: "check", text: "Check proof", onclick: () => openProof(d.epoch, l.pid) }))));
    }
    const more = $("lines-more");
    more.hidden = !d.next;
    more.onclick = () => showEpoch(n, d.next).catch((e) => showError($("lines-table"), 6, e));
    if (!query) $("epoch-detail").scrollIntoView();
  }

  async function loadPools() {
    const d = await api("pools");
    const tb = $("pools-table").tBodies[0];
    tb.replaceChildren();
    if (d.pools.length === 0) emptyRow(tb, 10, "no pools");
    for (const p of d.pools) {
      tb.append(el("tr", {},
        el("td", { class: "hash", text: p.id }),
        el("td", { text: p.name || "" }),
        el("td", {}, p.state ? stateTag(p.state) : null),
        el("td", { class: "hash", text: p.global ? "(operator-funded)" : (p.deposit_address || "") }),
        el("td", { class: "num", text: p.budget_per_epoch }),
        el("td", { class: "num", text: p.global ? "—" : p.funded }),
        el("td", { class: "num", text: p.spent }),
        el("td", { class: "num", text: p.refunded || "0" }),
        el("td", { class: "num", text: p.global ? "—" : p.balance }),
        el("td", { class: "num", text: p.global ? "all" : String(p.torrent_count || 0) })));
    }
  }

  async function showUser(pid) {
    $("lookup-error").hidden = true;
    let d;
    try {
      d = await api(`users/${encodeURIComponent(pid)}?limit=100`);
    } catch (e) {
      $("user").hidden = true;
      $("lookup-error").textContent = e.message;
      $("lookup-error").hidden = false;
      return;
    }
    $("user").hidden = false;
    $("user-pid").textContent = d.pid;
    $("user-balance").textContent = d.balance;
    $("lookup-pid").value = d.pid;
    const tb = $("user-epochs").tBodies[0];
    tb.replaceChildren();
    for (const c of d.epochs) {
      published.set(String(c.epoch), c.root);
      tb.append(el("tr", {},
        el("td", { class: "num", text: String(c.epoch) }),
        el("td", { class: "num", text: duration(c.seed_seconds) }),
        el("td", { class: "num", text: c.amount }),
        el("td", {}, payoutCell(c.payout)),
        el("td", {}, el("button", { type: "button", class: "check", text: "Check proof", onclick: () => openProof(c.epoch, d.pid) }))));
    }
    const pb = $("user-payouts").tBodies[0];
    pb.replaceChildren();
    if (d.payouts.length === 0) emptyRow(pb, 5, "no payout yet");
    for (const p of d.payouts) {
      const txs = el("div", { class: "txids" });
      for (const t of p.txs) txs.append(el("span", { class: "hash", text: t.txid + (t.dead ? " (expired, never on chain)" : "") }));
      pb.append(el("tr", {},
        el("td", { class: "num", text: utc(p.created) }),
        el("td", {}, stateTag(p.state)),
        el("td", { class: "num", text: p.amount }),
        el("td", { class: "hash", text: p.address }),
        el("td", {}, txs)));
    }
    $("user").scrollIntoView();
  }

  function proofFields() {
    return {
      epoch: $("pf-epoch").value, pid: $("pf-pid").value.trim(), address: $("pf-address").value,
      amount: $("pf-amount").value.trim(), leaf: $("pf-leaf").value.trim(),
      path: $("pf-path").value.split(/\s+/).filter((s) => s !== ""), root: $("pf-root").value.trim(),
    };
  }
  function fillProof(p) {
    $("pf-epoch").value = String(p.epoch);
    $("pf-pid").value = p.pid;
    $("pf-address").value = p.address;
    $("pf-amount").value = p.amount;
    $("pf-leaf").value = p.leaf;
    $("pf-path").value = p.path.join("\n");
    $("pf-root").value = p.root;
  }
  async function loadProof() {
    const f = proofFields();
    const p = await api(`epochs/${encodeURIComponent(f.epoch.trim())}/proof/${encodeURIComponent(f.pid)}`);
    fillProof(p);
  }
  async function runCheck() {
    const f = proofFields();
    const r = await verify(f, $("pf-user").value === "" ? null : $("pf-user").value);
    const out = $("proof-result");
    out.hidden = false;
    out.className = "result " + (r.valid ? "valid" : "invalid");
    out.dataset.valid = String(r.valid);
    const detail = [r.detail];
    const pub = published.get(String(f.epoch).trim());
    if (r.valid && pub && pub !== f.root.toLowerCase()) {
      detail.push(`Warning: this root differs from the root this server publishes for epoch ${f.epoch} (${pub}).`);
    } else if (r.valid && pub) {
      detail.push(`The root is the one published for epoch ${f.epoch}.`);
    }
    out.replaceChildren(el("div", { text: r.message }), el("div", { class: "detail", text: detail.filter(Boolean).join(" ") }));
    return r;
  }
  async function openProof(epoch, pid) {
    $("pf-epoch").value = String(epoch);
    $("pf-pid").value = pid;
    try {
      await loadProof();
    } catch (e) {
      const out = $("proof-result");
      out.hidden = false;
      out.className = "result invalid";
      out.textContent = "could not load the proof: " + e.message;
      return;
    }
    $("checker").scrollIntoView();
    await runCheck();
  }

  async function route() {
    const h = location.hash;
    let m;
    if ((m = /^#epoch\/(\d+)$/.exec(h))) await showEpoch(m[1]).catch((e) => showError($("lines-table"), 6, e));
    else if ((m = /^#user\/([0-9a-f]{16})$/.exec(h))) await showUser(m[1]);
    else if ((m = /^#proof\/(\d+)\/([0-9a-f]{16})$/.exec(h))) await openProof(m[1], m[2]);
  }

  async function main() {
    $("lookup-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const user = $("lookup-user").value;
      let pid = $("lookup-pid").value.trim();
      if (user !== "") {
        pid = await publicId(user);
        $("lookup-user").value = ""; // keep it out of the page once used
      }
      if (pid === "") return;
      if (location.hash === `#user/${pid}`) await showUser(pid);
      else location.hash = `#user/${pid}`;
    });
    $("proof-form").addEventListener("submit", (ev) => { ev.preventDefault(); runCheck(); });
    $("pf-load").addEventListener("click", () => loadProof().then(runCheck).catch((e) => {
      const out = $("proof-result");
      out.hidden = false;
      out.className = "result invalid";
      out.textContent = "could not load the proof: " + e.message;
    }));
    window.addEventListener("hashchange", route);
    try {
      await loadInfo();
    } catch (e) {
      $("status").textContent = "could not reach the public API: " + e.message;
    }
    await loadEpochs("").catch((e) => showError($("epochs-table"), 8, e));
    await route();
    document.body.dataset.ready = "true";
  }

  // For checking this implementation against others (the Go tests do).
  window.seedpay = { sha256, sha256Plain, hex, preimage, leaf, rootOf, walk, publicId, verify, runCheck, openProof };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
