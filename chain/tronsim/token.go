package tronsim

import (
	"bytes"
	"fmt"
	"math/big"

	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
)

// Function selectors (first 4 bytes of keccak256 of the signature).
var (
	selName        = []byte{0x06, 0xfd, 0xde, 0x03} // name()
	selSymbol      = []byte{0x95, 0xd8, 0x9b, 0x41} // symbol()
	selDecimals    = []byte{0x31, 0x3c, 0xe5, 0x67} // decimals()
	selTotalSupply = []byte{0x18, 0x16, 0x0d, 0xdd} // totalSupply()
	selBalanceOf   = []byte{0x70, 0xa0, 0x82, 0x31} // balanceOf(address)
	selTransfer    = []byte{0xa9, 0x05, 0x9c, 0xbb} // transfer(address,uint256)
	// Transfer(address,address,uint256)
	topicTransfer = []byte{
		0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
		0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
	}
	// errorString(string) revert payload selector: Error(string)
	selError = []byte{0x08, 0xc3, 0x79, 0xa0}
)

type token struct {
	addr     address.Address
	cfg      TokenConfig
	balances map[addrKey]*big.Int
	held     map[addrKey]bool // ever held a non-zero balance (storage slot written)
	supply   *big.Int
}

func newToken(addr address.Address, cfg TokenConfig) *token {
	return &token{addr: addr, cfg: cfg, balances: map[addrKey]*big.Int{}, held: map[addrKey]bool{}, supply: new(big.Int)}
}

func (t *token) balanceOf(k addrKey) *big.Int {
	if b := t.balances[k]; b != nil {
		return new(big.Int).Set(b)
	}
	return new(big.Int)
}

func (t *token) mint(k addrKey, amount *big.Int) {
	b := t.balanceOf(k)
	b.Add(b, amount)
	t.balances[k] = b
	t.supply.Add(t.supply, amount)
	if b.Sign() > 0 {
		t.held[k] = true
	}
}

// call is the outcome of running contract code: the return data, whether it
// reverted, and the energy it takes (before resource accounting).
type call struct {
	ret      []byte
	revert   bool
	reason   string
	energy   int64
	from, to addrKey
	amount   *big.Int
	transfer bool // a state-changing transfer that succeeds
}

// run executes data against the token on a read of the current state; it
// never changes state (apply does, for a transfer in a block).
func (t *token) run(owner []byte, data []byte, transferEnergy, newHolderEnergy int64) call {
	if len(data) < 4 {
		return revertCall("function selector missing")
	}
	sel, args := data[:4], data[4:]
	switch {
	case bytes.Equal(sel, selName):
		return call{ret: abiString(t.cfg.Name), energy: readEnergy}
	case bytes.Equal(sel, selSymbol):
		return call{ret: abiString(t.cfg.Symbol), energy: readEnergy}
	case bytes.Equal(sel, selDecimals):
		return call{ret: word(big.NewInt(int64(t.cfg.Decimals))), energy: readEnergy}
	case bytes.Equal(sel, selTotalSupply):
		return call{ret: word(t.supply), energy: readEnergy}
	case bytes.Equal(sel, selBalanceOf):
		if len(args) != 32 {
			return revertCall("balanceOf: bad arguments")
		}
		k, ok := argAddress(args[:32])
		if !ok {
			return revertCall("balanceOf: bad address")
		}
		return call{ret: word(t.balanceOf(k)), energy: readEnergy}
	case bytes.Equal(sel, selTransfer):
		if len(args) != 64 {
			return revertCall("transfer: bad arguments")
		}
		to, ok := argAddress(args[:32])
		if !ok {
			return revertCall("transfer: bad address")
		}
		from, ok := keyOf(owner)
		if !ok {
			return revertCall("transfer: bad caller")
		}
		amount := new(big.Int).SetBytes(args[32:64])
		if t.balanceOf(from).Cmp(amount) < 0 {
			c := revertCall("ERC20: transfer amount exceeds balance")
			return c
		}
		e := transferEnergy
		if !t.held[to] {
			e = newHolderEnergy
		}
		return call{ret: word(big.NewInt(1)), energy: e, from: from, to: to, amount: amount, transfer: true}
	}
	return revertCall(fmt.Sprintf("no function with selector %x", sel))
}

// apply performs a successful transfer's state change.
func (t *token) apply(c call) {
	if !c.transfer {
		return
	}
	fb := t.balanceOf(c.from)
	fb.Sub(fb, c.amount)
	t.balances[c.from] = fb
	tb := t.balanceOf(c.to)
	tb.Add(tb, c.amount)
	t.balances[c.to] = tb
	if tb.Sign() > 0 {
		t.held[c.to] = true
	}
}

// transferLog is the Transfer event of a successful transfer.
func (t *token) transferLog(c call) *core.TransactionInfo_Log {
	return &core.TransactionInfo_Log{
		Address: append([]byte(nil), t.addr[1:]...),
		Topics:  [][]byte{append([]byte(nil), topicTransfer...), pad32(c.from[1:]), pad32(c.to[1:])},
		Data:    word(c.amount),
	}
}

func revertCall(reason string) call {
	// Error(string) payload, as Solidity's require does.
	ret := append(append([]byte(nil), selError...), abiString(reason)...)
	return call{ret: ret, revert: true, reason: reason, energy: revertEnergy}
}

// argAddress decodes an ABI address word: 12 zero bytes then 20 bytes.
func argAddress(w []byte) (addrKey, bool) {
	var k addrKey
	if len(w) != 32 || !allZero(w[:12]) {
		return k, false
	}
	k[0] = address.TronBytePrefix
	copy(k[1:], w[12:])
	return k, true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func pad32(b []byte) []byte {
	out := make([]byte, 32)
	copy(out[32-len(b):], b)
	return out
}

func word(v *big.Int) []byte {
	out := make([]byte, 32)
	v.FillBytes(out)
	return out
}

// abiString encodes a string return value: offset, length, padded data.
func abiString(s string) []byte {
	out := word(big.NewInt(32))
	out = append(out, word(big.NewInt(int64(len(s))))...)
	data := make([]byte, (len(s)+31)/32*32)
	copy(data, s)
	return append(out, data...)
}
