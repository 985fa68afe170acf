package chain

import (
	"crypto/sha256"
	"errors"

	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
	"github.com/fbsobreira/gotron-sdk/pkg/signer"
	"google.golang.org/protobuf/proto"
)

// hotKeySigner is a gotron signer.Signer over a HotKey: the key stays in the
// HotKey (no copy), so HotKey.Destroy ends signing.
type hotKeySigner struct{ k *HotKey }

var _ signer.Signer = hotKeySigner{}

// Sign appends the signature of sha256(raw_data); raw_data is not touched.
func (s hotKeySigner) Sign(tx *core.Transaction) (*core.Transaction, error) {
	raw, err := proto.Marshal(tx.GetRawData())
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256(raw)
	sig, err := s.k.SignDigest(id[:])
	if err != nil {
		return nil, err
	}
	tx.Signature = append(tx.Signature, sig)
	return tx, nil
}

func (s hotKeySigner) Address() address.Address { return address.Address(s.k.AddressBytes()) }

// NewWithHotKey is New signing with a loaded HotKey (LoadHotKey). The client
// keeps no copy of the key.
func NewWithHotKey(cfg Config, k *HotKey) (*Client, error) {
	if k == nil || k.PrivateKey() == nil {
		return nil, errors.New("chain: no hot wallet key")
	}
	return New(cfg, hotKeySigner{k: k})
}
