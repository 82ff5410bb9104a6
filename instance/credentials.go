// Package instance manages portrait's instances: their credentials, their
// lifecycle in the store, and the live sessions the server keeps open for
// them on their engines.
package instance

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/portrait-dev/portrait"
)

// TokenLength is the length of an apiTokenInstance: 50 lowercase hex
// characters, as GREEN-API issues them.
const TokenLength = 50

// NewToken returns a fresh random apiTokenInstance.
func NewToken() string {
	var b [TokenLength / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("instance: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// HashToken returns the hash under which a token is stored.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// TokenMatches compares a presented token with a stored hash in constant
// time.
func TokenMatches(hash []byte, token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(hash, h[:]) == 1
}

// The first four digits of an idInstance name its kind, as at GREEN-API:
// MAX instances start with 3100; WhatsApp instances here start with 1101.
const (
	prefixWhatsApp = 1101
	prefixMAX      = 3100
)

// NewID returns a random 10-digit idInstance for an instance of type t.
func NewID(t portrait.InstanceType) portrait.InstanceID {
	prefix := prefixWhatsApp
	if t == portrait.TypeMAX {
		prefix = prefixMAX
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("instance: crypto/rand failed: " + err.Error())
	}
	n := binary.BigEndian.Uint64(b[:]) % 1_000_000
	return portrait.InstanceID(int64(prefix)*1_000_000 + int64(n))
}

// ParseType parses an instance type as the CLI and admin API accept it.
func ParseType(s string) (portrait.InstanceType, error) {
	switch portrait.InstanceType(s) {
	case portrait.TypeWhatsApp, portrait.TypeMAX:
		return portrait.InstanceType(s), nil
	case "max", "MAX":
		return portrait.TypeMAX, nil
	}
	return "", fmt.Errorf("unknown instance type %q: use %q or %q", s, portrait.TypeWhatsApp, portrait.TypeMAX)
}
