// Checks vectors.json with the browser algorithm of rewards/merkle.go's
// format comment (WebCrypto only, no dependencies):
//
//     node verify_vectors.mjs [vectors.json]
//
// It recomputes every preimage, leaf and root, and verifies every proof.
import { readFileSync } from "node:fs";

const te = new TextEncoder();
const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s) => {
  if (!/^[0-9a-fA-F]{64}$/.test(s)) throw new Error(`bad hash ${s}`);
  return Uint8Array.from(s.match(/../g), (h) => parseInt(h, 16));
};
const concat = (...as) => {
  const out = new Uint8Array(as.reduce((n, a) => n + a.length, 0));
  let i = 0;
  for (const a of as) { out.set(a, i); i += a.length; }
  return out;
};
const cmp = (a, b) => { for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; };
const pair = (a, b) => sha256(cmp(a, b) <= 0 ? concat(a, b) : concat(b, a));

function field(s) { // 2-byte big-endian byte length, then the UTF-8 bytes
  const b = te.encode(s), out = new Uint8Array(2 + b.length);
  if (b.length > 0xffff) throw new Error("field too long");
  new DataView(out.buffer).setUint16(0, b.length);
  out.set(b, 2);
  return out;
}

function preimage(p) {
  const amount = BigInt(p.amount);
  if (amount < 0n || amount.toString() !== p.amount) throw new Error(`bad amount ${p.amount}`);
  const ep = new Uint8Array(8);
  new DataView(ep.buffer).setBigUint64(0, BigInt(p.epoch));
  return concat(ep, field(p.user), field(p.address), field(amount.toString()));
}

const leafOf = async (p) => sha256(await sha256(preimage(p)));

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

// verify is all a browser needs: the proof JSON served by the API.
async function verify(p) {
  const leaf = await leafOf(p);
  if (hex(leaf) !== p.leaf.toLowerCase()) return "leaf mismatch";
  let h = leaf;
  for (const s of p.path ?? []) h = await pair(h, unhex(s));
  return hex(h) === p.root.toLowerCase() ? null : "root mismatch";
}

const v = JSON.parse(readFileSync(process.argv[2] ?? new URL("vectors.json", import.meta.url), "utf8"));
let failures = 0;
const fail = (msg) => { failures++; console.log("FAIL", msg); };
for (const c of v.cases) {
  const leaves = [];
  for (const [i, cr] of c.credits.entries()) {
    if (hex(preimage(cr)) !== cr.preimage) fail(`${c.name}: credit ${i} preimage`);
    const l = await leafOf(cr);
    if (hex(l) !== c.leaves[i]) fail(`${c.name}: credit ${i} leaf`);
    leaves.push(l);
  }
  if (hex(await rootOf(leaves)) !== c.root) fail(`${c.name}: root`);
  if (c.proof) {
    const err = await verify(c.proof);
    if (err) fail(`${c.name}: proof: ${err}`);
    const bad = { ...c.proof, amount: (BigInt(c.proof.amount) + 1n).toString() };
    if ((await verify(bad)) !== "leaf mismatch") fail(`${c.name}: tampered amount accepted`);
  }
  console.log(failures ? "..." : "ok", c.name);
}
if (failures) { console.log(`${failures} failures`); process.exit(1); }
console.log(`all ${v.cases.length} cases match`);
