package receipts

import "crypto/ed25519"

// RegistrationDomain prefixes the message a client signs to register its
// receipt key with a tracker account.
const RegistrationDomain = "seedpay-receipt-key-v1\x00"

// RegistrationMessage is what a key signs to be registered for the account
// of passkey: the domain, the public key, then the passkey. Binding the
// passkey means a seen registration cannot be replayed for another account.
func RegistrationMessage(pub [32]byte, passkey string) []byte {
	m := make([]byte, 0, len(RegistrationDomain)+32+len(passkey))
	m = append(m, RegistrationDomain...)
	m = append(m, pub[:]...)
	return append(m, passkey...)
}

// SignRegistration returns the public key and the registration signature a
// client sends to POST /keys/<passkey>.
func SignRegistration(key ed25519.PrivateKey, passkey string) (pub [32]byte, sig []byte, err error) {
	if pub, err = checkPrivateKey(key); err != nil {
		return pub, nil, err
	}
	return pub, ed25519.Sign(key, RegistrationMessage(pub, passkey)), nil
}
