package adminauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TokenFileName is the name of the file, in the data directory, that
// holds the SHA-256 of the admin token portrait generated.
const TokenFileName = "admin-token.sha256"

// readTokenFile reads the SHA-256 (64 hex digits) kept in path.
func readTokenFile(path string) ([sha256.Size]byte, error) {
	var hash [sha256.Size]byte
	b, err := os.ReadFile(path)
	if err != nil {
		return hash, fmt.Errorf("adminauth: admin token file: %w", err)
	}
	hash, err = ParseTokenHash(b)
	if err != nil {
		return hash, fmt.Errorf("adminauth: %s does not hold a SHA-256 in hex; remove it and start portrait, or run `portrait admin rotate-token`, to make a new admin token", path)
	}
	return hash, nil
}

// ParseTokenHash reads a token's SHA-256 as TokenHash writes it.
func ParseTokenHash(b []byte) ([sha256.Size]byte, error) {
	var hash [sha256.Size]byte
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != sha256.Size {
		return hash, errors.New("adminauth: not a SHA-256 in hex")
	}
	copy(hash[:], raw)
	return hash, nil
}

// TokenHash is what portrait keeps of a token: its SHA-256 in hex, with a
// newline.
func TokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return []byte(hex.EncodeToString(sum[:]) + "\n")
}

// NewToken returns a new admin token: 32 bytes from crypto/rand, in hex.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("adminauth: making an admin token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// CreateTokenFile makes an admin token and keeps its SHA-256 in path
// unless path already holds one. It returns the new token, to be shown
// once, or "" when path already held a token.
func CreateTokenFile(path string) (string, error) {
	if _, err := readTokenFile(path); err == nil {
		return "", nil
	} else if _, serr := os.Stat(path); serr == nil || !errors.Is(serr, os.ErrNotExist) {
		return "", err // there, but unreadable or damaged: not silently replaced
	}
	return RotateTokenFile(path)
}

// RotateTokenFile makes a new admin token, replaces the SHA-256 in path
// with its own (atomically, readable by the owner only) and returns it. A
// running server that reads path takes the new token within a second and
// ends the console sessions of the old one.
func RotateTokenFile(path string) (string, error) {
	token, err := NewToken()
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".admin-token-*")
	if err != nil {
		return "", fmt.Errorf("adminauth: writing the admin token file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(TokenHash(token))
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("adminauth: writing the admin token file: %w", err)
	}
	return token, nil
}
