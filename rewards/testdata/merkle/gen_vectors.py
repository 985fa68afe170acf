#!/usr/bin/env python3
"""Independent reference implementation of the seedpay Merkle format
(rewards/merkle.go), used to write vectors.json. It shares no code with the
Go implementation, so TestMerkleVectors checks one against the other.

    python3 gen_vectors.py > vectors.json

Changing the output means changing a public format: every proof already
handed out and every verifier (browser, CLI) would break.
"""
import hashlib
import json
import struct


def sha256(b):
    return hashlib.sha256(b).digest()


def field(s):
    b = s.encode("utf-8")
    assert len(b) <= 0xFFFF
    return struct.pack(">H", len(b)) + b


def preimage(epoch, user, address, amount):
    assert epoch >= 0 and amount >= 0
    return struct.pack(">Q", epoch) + field(user) + field(address) + field(str(amount))


def leaf(epoch, user, address, amount):
    return sha256(sha256(preimage(epoch, user, address, amount)))


def parent(a, b):
    return sha256(min(a, b) + max(a, b))


def levels(leaves):
    if not leaves:
        return []
    level = sorted(leaves)
    out = [level]
    while len(level) > 1:
        nxt = [parent(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        out.append(nxt)
        level = nxt
    return out


def root(leaves):
    lv = levels(leaves)
    return lv[-1][0] if lv else bytes(32)


def proof(leaves, lf):
    lv = levels(leaves)
    i = lv[0].index(lf)
    path = []
    for level in lv[:-1]:
        if (i ^ 1) < len(level):
            path.append(level[i ^ 1])
        i //= 2
    return path


def case(name, credits, proof_index=None):
    lvs = [leaf(c["epoch"], c["user"], c["address"], c["amount"]) for c in credits]
    out = {
        "name": name,
        "credits": [
            {
                "epoch": c["epoch"],
                "user": c["user"],
                "address": c["address"],
                "amount": str(c["amount"]),
                "preimage": preimage(c["epoch"], c["user"], c["address"], c["amount"]).hex(),
            }
            for c in credits
        ],
        "leaves": [l.hex() for l in lvs],
        "root": root(lvs).hex(),
    }
    if proof_index is not None:
        c = credits[proof_index]
        out["proof"] = {
            "epoch": c["epoch"],
            "user": c["user"],
            "address": c["address"],
            "amount": str(c["amount"]),
            "leaf": lvs[proof_index].hex(),
            "path": [p.hex() for p in proof(lvs, lvs[proof_index])],
            "root": root(lvs).hex(),
        }
    return out


def cr(epoch, user, address, amount):
    return {"epoch": epoch, "user": user, "address": address, "amount": amount}


E = 486123  # an hourly epoch number in 2025
# Shaped like TRON base58 addresses (34 characters), but made up.
addrs = ["TSeedpayTestVectorAddr" + c * 12 for c in "12345678"]

cases = [
    case("empty", []),
    case("one leaf: root is the leaf, empty path", [cr(E, "alice", addrs[0], 4 * 10**18)], 0),
    case(
        "two leaves",
        [cr(E, "alice", addrs[0], 4 * 10**18), cr(E, "bob", addrs[1], 3 * 10**18)],
        1,
    ),
    case(
        "three leaves: odd last node promoted",
        [cr(E, "alice", addrs[0], 4), cr(E, "bob", addrs[1], 3), cr(E, "carol", addrs[2], 3)],
        2,
    ),
    case(
        "five leaves: edge-case fields",
        [
            cr(0, "u", "", 0),  # epoch 0, no address yet, zero amount
            cr(E, "user-42", addrs[3], 10**30),  # 31 digits
            cr(E, "Zoë 🌱", addrs[4], 1),  # non-ASCII: UTF-8 bytes, byte lengths
            cr(2**40 + 1, "max-uint64-ish", addrs[5], 2**64 + 1),  # epoch > 2^32, amount > 2^64
            cr(E, "x" * 300, "T" + "z" * 299, 123456789),  # lengths > 255 exercise the high byte
        ],
        2,
    ),
    case(
        "eight leaves: full tree",
        [cr(E, "user%d" % i, addrs[i], (i + 1) * 10**17 + i) for i in range(8)],
        5,
    ),
    case(
        "thirteen leaves: promotions at two levels",
        [cr(E, "u%02d" % i, addrs[i % 8] if i % 3 else "", 1000 * i) for i in range(13)],
        12,
    ),
]

doc = {
    "comment": "seedpay Merkle test vectors, written by gen_vectors.py (an independent Python implementation), checked by TestMerkleVectors. "
    "preimage = uint64_be(epoch) || uint16_be(len(user)) || user || uint16_be(len(address)) || address || uint16_be(len(amount)) || amount (base 10); "
    "leaf = sha256(sha256(preimage)); leaves[i] is the leaf of credits[i]; parent = sha256(min(a,b) || max(a,b)) over leaves sorted ascending, "
    "odd last node promoted; root of no leaves = 32 zero bytes. proof is the JSON form served by the API.",
    "cases": cases,
}
print(json.dumps(doc, indent=1, ensure_ascii=False))
