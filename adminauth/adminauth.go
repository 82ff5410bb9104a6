// Package adminauth decides who may use portrait's admin side: the admin
// API under /admin/ and the console page. Both accept the admin token as
// "Authorization: Bearer <token>" or the console's session cookie, whose
// value is derived from the token, never the token itself.
package adminauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// Cookie is the name of the cookie that carries a console session.
const Cookie = "portrait_console"

// Session returns the console cookie's value for adminToken.
func Session(adminToken string) string {
	mac := hmac.New(sha256.New, []byte(adminToken))
	mac.Write([]byte("portrait console session v1"))
	return hex.EncodeToString(mac.Sum(nil))
}

// TokenMatches compares a presented token with the admin token in constant
// time.
func TokenMatches(adminToken, presented string) bool {
	want, got := sha256.Sum256([]byte(adminToken)), sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// Authorized reports whether r carries the admin token (as
// "Authorization: Bearer <token>") or a console session cookie for it.
// Both comparisons take constant time; an empty adminToken authorizes
// nobody.
func Authorized(r *http.Request, adminToken string) bool {
	if adminToken == "" {
		return false
	}
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return TokenMatches(adminToken, token)
	}
	if c, err := r.Cookie(Cookie); err == nil {
		return subtle.ConstantTimeCompare([]byte(Session(adminToken)), []byte(c.Value)) == 1
	}
	return false
}
