package rewards

// Merkle tree over an epoch's credits. Anyone can check, offline or in a
// browser, that a (epoch, user, address, amount) credit is in the sealed
// epoch's published root. The encoding below is a public format: changing it
// invalidates every proof already handed out (testdata/merkle/vectors.json
// pins it).
//
// # Leaf
//
//	leaf = SHA-256( SHA-256( preimage ) )
//	preimage = uint64_be(epoch)
//	        || uint16_be(len(user))          || user
//	        || uint16_be(len(address))       || address
//	        || uint16_be(len(amountDecimal)) || amountDecimal
//
//   - uint64_be / uint16_be: unsigned big-endian integers of 8 / 2 bytes.
//   - epoch: the epoch number, a non-negative integer.
//   - user: the registry user id; address: the user's payout address (e.g.
//     TRON base58 "T..."), or the empty string (length 0, no bytes) when the
//     user has none yet. Both are hashed as their UTF-8 bytes, and len() is
//     the number of bytes, not of characters. (Go hashes a string's bytes
//     as they are; bytes that are not valid UTF-8 cannot travel in a JSON
//     proof, which would replace them with U+FFFD, so ids and addresses
//     must be valid UTF-8 to be provable.)
//   - amountDecimal: the credited amount in token base units as ASCII
//     base-10 digits, no sign, no leading zeros, "0" for zero (exactly
//     Go's big.Int.String(), JavaScript's BigInt.prototype.toString()).
//   - Each field is at most 65535 bytes.
//
// Example: epoch 1, user "ab", address "", amount 10 has the 20-byte
// preimage 00000000 00000001 0002 6162 0000 0002 3130.
//
// # Tree
//
//   - Level 0 is the leaves sorted ascending as 32-byte strings (bytewise,
//     i.e. by their lowercase hex).
//   - A parent is SHA-256(min(a, b) || max(a, b)) of the two adjacent nodes
//     a, b (2i and 2i+1) of the level below, min/max compared bytewise.
//     Sorting each pair means a proof carries no left/right flags.
//   - The last node of a level with an odd count is promoted unchanged to
//     the next level.
//   - The root is the single node of the top level: the leaf itself for one
//     leaf, 32 zero bytes for no leaves.
//
// A leaf is a double hash and an inner node a single hash of 64 bytes, so
// an inner node cannot be passed off as a leaf (that would need a preimage
// whose SHA-256 is 64 bytes long).
//
// # Proof
//
// A proof is the list of sibling hashes from the leaf up (levels where the
// node was promoted contribute none). To verify: h = leaf; for each p in
// path, h = SHA-256(min(h, p) || max(h, p)); accept iff h == root. Its JSON
// form (type Proof) carries hashes as 64 hex digits (lowercase when produced,
// either case accepted) and the amount as a decimal string (it overflows a
// JavaScript number), e.g.
//
//	{"epoch":1,"user":"ab","address":"","amount":"10",
//	 "leaf":"<64 hex>","path":["<64 hex>",...],"root":"<64 hex>"}
//
// In a browser, with sha256 = crypto.subtle.digest("SHA-256", bytes) as a
// Uint8Array, concat joining byte arrays, hex decoding 64 hex digits and cmp
// comparing bytewise (testdata/merkle/verify_vectors.mjs is a complete,
// runnable version that checks vectors.json):
//
//	const te = new TextEncoder();
//	function field(s) { // s: string; 2-byte length, then bytes
//	  const b = te.encode(s), out = new Uint8Array(2 + b.length);
//	  new DataView(out.buffer).setUint16(0, b.length); out.set(b, 2); return out;
//	}
//	const ep = new Uint8Array(8); new DataView(ep.buffer).setBigUint64(0, BigInt(p.epoch));
//	if (!/^(0|[1-9][0-9]*)$/.test(p.amount)) throw new Error("bad amount"); // canonical only
//	const pre = concat(ep, field(p.user), field(p.address), field(p.amount));
//	let h = await sha256(await sha256(pre));                 // must equal p.leaf
//	for (const s of p.path ?? []) { const q = hex(s); h = await sha256(cmp(h, q) <= 0 ? concat(h, q) : concat(q, h)); }
//	// accept iff h equals p.root

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
)

// maxProofPath bounds a proof's length: a tree of n leaves is
// ceil(log2(n)) levels deep, so 64 covers any tree that fits in memory.
const maxProofPath = 64

// Leaf is the Merkle leaf of one credit, in the encoding described at the
// top of merkle.go:
//
//	sha256(sha256(uint64_be(epoch) || uint16_be(len(user)) || user ||
//	  uint16_be(len(address)) || address || uint16_be(len(amount)) || amount))
//
// with amount in base 10.
//
// It panics on input that has no encoding: a negative epoch, a nil or
// negative amount, or a field longer than 65535 bytes. Settlement never
// produces these (Divide returns non-negative amounts; user ids and payout
// addresses are short), so they are programming errors.
func Leaf(epoch int64, user, address string, amount *big.Int) [32]byte {
	leaf, err := leafOf(epoch, user, address, amount)
	if err != nil {
		panic("rewards.Leaf: " + err.Error())
	}
	return leaf
}

func leafOf(epoch int64, user, address string, amount *big.Int) ([32]byte, error) {
	pre, err := leafPreimage(epoch, user, address, amount)
	if err != nil {
		return [32]byte{}, err
	}
	inner := sha256.Sum256(pre)
	return sha256.Sum256(inner[:]), nil
}

// leafPreimage is the bytes a leaf double-hashes.
func leafPreimage(epoch int64, user, address string, amount *big.Int) ([]byte, error) {
	if epoch < 0 {
		return nil, fmt.Errorf("negative epoch %d", epoch)
	}
	if amount == nil {
		return nil, errors.New("nil amount")
	}
	if amount.Sign() < 0 {
		return nil, fmt.Errorf("negative amount %s", amount)
	}
	dec := amount.String()
	for _, f := range [...]struct{ name, v string }{{"user", user}, {"address", address}, {"amount", dec}} {
		if len(f.v) > math.MaxUint16 {
			return nil, fmt.Errorf("%s is %d bytes, more than %d", f.name, len(f.v), math.MaxUint16)
		}
	}
	buf := make([]byte, 0, 8+3*2+len(user)+len(address)+len(dec))
	buf = binary.BigEndian.AppendUint64(buf, uint64(epoch))
	for _, f := range [...]string{user, address, dec} {
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(f)))
		buf = append(buf, f...)
	}
	return buf, nil
}

// hashPair is the parent of a and b: SHA-256(min(a,b) || max(a,b)).
func hashPair(a, b *[32]byte) [32]byte {
	var buf [64]byte
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	copy(buf[:32], a[:])
	copy(buf[32:], b[:])
	return sha256.Sum256(buf[:])
}

// Tree is a Merkle tree over a set of leaves: sorted leaves, sorted-pair
// parents, odd last node promoted (see the top of merkle.go). It is immutable and safe for concurrent use.
type Tree struct {
	// levels[0] is the sorted leaves, the last level holds the root alone;
	// no levels for an empty tree.
	levels [][][32]byte
}

// NewTree builds the tree of leaves, in any order. It copies leaves and
// leaves the argument unchanged. A leaf given twice is two leaves (settlement
// has one leaf per user, so this does not happen there).
func NewTree(leaves [][32]byte) *Tree {
	if len(leaves) == 0 {
		return &Tree{}
	}
	level := slices.Clone(leaves)
	slices.SortFunc(level, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	levels := [][][32]byte{level}
	for len(level) > 1 {
		next := make([][32]byte, (len(level)+1)/2)
		for i := 0; i+1 < len(level); i += 2 {
			next[i/2] = hashPair(&level[i], &level[i+1])
		}
		if len(level)%2 == 1 {
			next[len(next)-1] = level[len(level)-1]
		}
		levels = append(levels, next)
		level = next
	}
	return &Tree{levels: levels}
}

// Len is the number of leaves.
func (t *Tree) Len() int {
	if len(t.levels) == 0 {
		return 0
	}
	return len(t.levels[0])
}

// Root is the tree's root: 32 zero bytes for no leaves.
func (t *Tree) Root() [32]byte {
	if len(t.levels) == 0 {
		return [32]byte{}
	}
	return t.levels[len(t.levels)-1][0]
}

// Proof is the path of sibling hashes from leaf to the root, and whether
// the leaf is in the tree. The path of a one-leaf tree is empty (not nil).
func (t *Tree) Proof(leaf [32]byte) ([][32]byte, bool) {
	if len(t.levels) == 0 {
		return nil, false
	}
	i, found := slices.BinarySearchFunc(t.levels[0], leaf, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	if !found {
		return nil, false
	}
	path := make([][32]byte, 0, len(t.levels)-1)
	for _, level := range t.levels[:len(t.levels)-1] {
		if sib := i ^ 1; sib < len(level) {
			path = append(path, level[sib])
		}
		i /= 2
	}
	return path, true
}

// VerifyProof reports whether proof leads from leaf to root.
func VerifyProof(root, leaf [32]byte, proof [][32]byte) bool {
	h := leaf
	for i := range proof {
		h = hashPair(&h, &proof[i])
	}
	return h == root
}

// Proof is the self-contained JSON form of a Merkle proof, as the API
// serves it and an offline check reads it: the credit's fields, its leaf,
// the sibling path and the epoch's root, hashes as 64 hex digits.
type Proof struct {
	Epoch   int64    `json:"epoch"`
	User    string   `json:"user"`
	Address string   `json:"address"`
	Amount  string   `json:"amount"` // token base units, base 10
	Leaf    string   `json:"leaf"`   // hex
	Path    []string `json:"path"`   // hex, leaf to root
	Root    string   `json:"root"`   // hex
}

// ProofFor is the JSON-form proof of one credit, and whether that credit's
// leaf is in the tree. It panics where Leaf does.
func (t *Tree) ProofFor(epoch int64, user, address string, amount *big.Int) (Proof, bool) {
	leaf := Leaf(epoch, user, address, amount)
	path, ok := t.Proof(leaf)
	if !ok {
		return Proof{}, false
	}
	root := t.Root()
	p := Proof{
		Epoch:   epoch,
		User:    user,
		Address: address,
		Amount:  amount.String(),
		Leaf:    hex.EncodeToString(leaf[:]),
		Path:    make([]string, len(path)),
		Root:    hex.EncodeToString(root[:]),
	}
	for i, h := range path {
		p.Path[i] = hex.EncodeToString(h[:])
	}
	return p, true
}

var (
	errLeafMismatch = errors.New("leaf mismatch")
	errRootMismatch = errors.New("root mismatch")
)

// Verify checks the proof on its own: it recomputes the leaf from Epoch,
// User, Address and Amount, checks it equals Leaf, and walks Path from it to
// Root. The error says what is wrong: a bad amount or epoch, bad hex, a leaf
// mismatch (the fields do not hash to Leaf) or a root mismatch (Path does
// not lead from Leaf to Root).
func (p Proof) Verify() error {
	if p.Epoch < 0 {
		return fmt.Errorf("proof: bad epoch %d: negative", p.Epoch)
	}
	amount, err := parseAmount(p.Amount)
	if err != nil {
		return fmt.Errorf("proof: bad amount: %w", err)
	}
	leaf, err := parseHash(p.Leaf)
	if err != nil {
		return fmt.Errorf("proof: bad leaf: %w", err)
	}
	root, err := parseHash(p.Root)
	if err != nil {
		return fmt.Errorf("proof: bad root: %w", err)
	}
	if len(p.Path) > maxProofPath {
		return fmt.Errorf("proof: bad path: %d elements, at most %d", len(p.Path), maxProofPath)
	}
	path := make([][32]byte, len(p.Path))
	for i, s := range p.Path {
		if path[i], err = parseHash(s); err != nil {
			return fmt.Errorf("proof: bad path[%d]: %w", i, err)
		}
	}
	want, err := leafOf(p.Epoch, p.User, p.Address, amount)
	if err != nil {
		return fmt.Errorf("proof: %w", err)
	}
	if want != leaf {
		return fmt.Errorf("proof: %w: epoch, user, address and amount hash to %x, not to leaf %x", errLeafMismatch, want, leaf)
	}
	if !VerifyProof(root, leaf, path) {
		return fmt.Errorf("proof: %w: path does not lead from leaf %x to root %x", errRootMismatch, leaf, root)
	}
	return nil
}

// parseAmount accepts only the canonical form: base-10 digits, no sign, no
// leading zeros ("0" for zero), at most 65535 digits.
func parseAmount(s string) (*big.Int, error) {
	switch {
	case s == "":
		return nil, errors.New("empty")
	case len(s) > math.MaxUint16:
		return nil, fmt.Errorf("%d digits, at most %d", len(s), math.MaxUint16)
	case len(s) > 1 && s[0] == '0':
		return nil, fmt.Errorf("%.40q: leading zero", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("%.40q: want base-10 digits only (token base units)", s)
		}
	}
	a, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("%.40q: not an integer", s)
	}
	return a, nil
}

// parseHash decodes exactly 64 hex digits.
func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%d hex digits, want %d", len(s), 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("bad hex: %w", err)
	}
	return h, nil
}
