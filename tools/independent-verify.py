#!/usr/bin/env python3
"""Verify a running Mobius Civic Ledger with code that shares nothing with it.

Standard library only: SHA-256/512 from hashlib, Ed25519 verification from the RFC 8032
reference algorithm, RFC 9162 inclusion and consistency verification written from the RFC,
C2SP signed-note parsing from the spec. Usage:

    tools/independent-verify.py http://127.0.0.1:4001 [--samples N] [--key VERIFIER_KEY]

It fetches the verifier key (or takes --key), the latest checkpoint, checks the note's
Ed25519 signature and key id, then for every sampled entry recomputes the leaf hash from the
entry's fields (RFC 8785 canonical JSON; exact for string/integer/bool/null payloads, which
is what this tool supports), and verifies the inclusion proof against the signed root. If an
earlier checkpoint size is given with --since SIZE:ROOTHEX it also verifies consistency.
Exit status 0 when everything verifies.
"""
import base64
import hashlib
import json
import sys
import urllib.request

# ---- Ed25519 verification (RFC 8032 section 6, reference code) ----
P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
Q = 2**252 + 27742317777372353535851937790883648493
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    x = (a[1] - a[0]) * (b[1] - b[0]) % P
    y = (a[1] + a[0]) * (b[1] + b[0]) % P
    c = 2 * a[3] * b[3] * D % P
    d = 2 * a[2] * b[2] % P
    e, f, g, h = y - x, d - c, d + c, y + x
    return (e * f, g * h, f * g, e * h)


def _mul(s, pt):
    acc = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        s >>= 1
    return acc


def _eq(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)


def _decompress(s):
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


def ed25519_verify(public, msg, sig):
    if len(public) != 32 or len(sig) != 64:
        return False
    a = _decompress(public)
    r = _decompress(sig[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= Q:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % Q
    return _eq(_mul(s, G), _add(r, _mul(h, a)))


# ---- RFC 9162 ----
def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def verify_inclusion(index, size, leaf_hash, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1, size2, root1, root2, proof):
    """RFC 9162 section 2.1.4.2."""
    if size1 == 0 or size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 & (size1 - 1) == 0:
        proof = [root1] + list(proof)
    if not proof:
        return False
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


# ---- C2SP signed note / tlog-checkpoint ----
def parse_vkey(vkey):
    name, key_id_hex, key_b64 = vkey.split("+", 2)
    raw = base64.b64decode(key_b64)
    if raw[0] != 1 or len(raw) != 33:
        raise ValueError("not an Ed25519 verifier key")
    pub = raw[1:]
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
    if key_id.hex() != key_id_hex:
        raise ValueError("verifier key id does not match the key")
    return name, key_id, pub


def open_checkpoint(note, vkey):
    name, key_id, pub = parse_vkey(vkey)
    split = note.rindex("\n\n")
    body, sigs = note[: split + 1], note[split + 2 :]
    ok = False
    for line in sigs.splitlines():
        prefix = "\u2014 " + name + " "
        if not line.startswith(prefix):
            continue
        raw = base64.b64decode(line[len(prefix) :])
        if raw[:4] == key_id and ed25519_verify(pub, body.encode(), raw[4:]):
            ok = True
    if not ok:
        raise ValueError("no valid signature by " + vkey)
    origin, size, root_b64 = body.split("\n")[:3]
    if origin != name:
        raise ValueError("checkpoint origin differs from the key name")
    return int(size), base64.b64decode(root_b64)


def jcs(value):
    """RFC 8785 for the value kinds this tool supports (no floats)."""
    if isinstance(value, float):
        raise ValueError("floats are not supported by this independent checker")
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(v) for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return r.read().decode()


def main(argv):
    base = argv[1].rstrip("/")
    samples = int(argv[argv.index("--samples") + 1]) if "--samples" in argv else 32
    vkey = argv[argv.index("--key") + 1] if "--key" in argv else json.loads(get(base, "/v1/ledger/key"))["verifier_key"]
    size, root = open_checkpoint(get(base, "/v1/checkpoint"), vkey)
    print(f"checkpoint: size {size}, root {root.hex()}, signature OK")
    if "--since" in argv:
        old_size, old_root_hex = argv[argv.index("--since") + 1].split(":")
        c = json.loads(get(base, f"/v1/proofs/consistency?first={old_size}&second={size}"))
        proof = [bytes.fromhex(h) for h in c["proof"]]
        if not verify_consistency(int(old_size), size, bytes.fromhex(old_root_hex), root, proof):
            print(f"FAIL: not consistent with size {old_size}")
            return 1
        print(f"consistency {old_size} -> {size}: OK")
    step = max(1, size // samples)
    checked = 0
    for i in sorted(set(range(0, size, step)) | {size - 1}):
        entry = json.loads(get(base, f"/v1/attestations/{i}"))
        fields = {k: entry[k] for k in ("type", "subject", "source", "ref", "payload", "timestamp_ms") if k in entry}
        lh = leaf(jcs(fields).encode())
        if lh.hex() != entry["id"]:
            print(f"FAIL: index {i}: fields do not hash to the id")
            return 1
        p = json.loads(get(base, f"/v1/proofs/inclusion?index={i}&tree_size={size}"))
        if not verify_inclusion(i, size, lh, [bytes.fromhex(h) for h in p["proof"]], root):
            print(f"FAIL: index {i}: inclusion proof does not verify against the signed root")
            return 1
        checked += 1
    print(f"{checked} entries: leaf hashes recomputed and inclusion proofs verified against the signed checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
