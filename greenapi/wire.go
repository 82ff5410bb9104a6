package greenapi

import (
	"strconv"
	"strings"

	"github.com/portrait-dev/portrait"
)

// TokenPlaceholder replaces apiTokenInstance wherever a path is shown: in
// error bodies, logs and metrics.
const TokenPlaceholder = "{apiTokenInstance}"

// call is a GREEN-API request path taken apart:
// [/v3]/waInstance{idInstance}/{method}/{apiTokenInstance}[/{extra}].
type call struct {
	v3     bool
	idRaw  string
	id     portrait.InstanceID
	idOK   bool
	method string // as sent; matched case-insensitively
	token  string
	extra  string // the receiptId of deleteNotification
}

// parseCall takes a GREEN-API path apart. It accepts any number of leading
// slashes (clients configured with a trailing slash send "//waInstance…")
// and one trailing slash. ok is false when the path is not of that shape.
func parseCall(path string) (c call, ok bool) {
	p := strings.TrimLeft(path, "/")
	if rest, found := strings.CutPrefix(p, "v3/"); found {
		c.v3 = true
		p = strings.TrimLeft(rest, "/")
	}
	rest, found := strings.CutPrefix(p, "waInstance")
	if !found {
		return call{}, false
	}
	p = strings.TrimSuffix(rest, "/")
	var seg [4]string
	n := 0
	for n < len(seg) {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			seg[n] = p
			n++
			p = ""
			break
		}
		seg[n] = p[:i]
		n++
		p = p[i+1:]
	}
	if p != "" || n < 2 {
		return call{}, false
	}
	c.idRaw, c.method, c.token, c.extra = seg[0], seg[1], seg[2], seg[3]
	if id, err := strconv.ParseInt(c.idRaw, 10, 64); err == nil && id > 0 && c.idRaw[0] != '+' {
		c.id, c.idOK = portrait.InstanceID(id), true
	}
	return c, true
}

// redacted returns the request path with the token replaced by
// TokenPlaceholder.
func (c call) redacted() string {
	var b strings.Builder
	b.Grow(48 + len(c.method) + len(c.extra))
	if c.v3 {
		b.WriteString("/v3")
	}
	b.WriteString("/waInstance")
	b.WriteString(c.idRaw)
	b.WriteByte('/')
	if looksLikeToken(c.method) {
		b.WriteString(TokenPlaceholder) // a token where the method belongs
	} else {
		b.WriteString(c.method)
	}
	if c.token != "" || c.extra != "" {
		b.WriteByte('/')
		b.WriteString(TokenPlaceholder)
	}
	if c.extra != "" {
		// Only deleteNotification's receiptId belongs here; anything else
		// may be a token sent in the wrong place.
		b.WriteByte('/')
		if isDigits(c.extra) {
			b.WriteString(c.extra)
		} else {
			b.WriteString("{redacted}")
		}
	}
	return b.String()
}

// RedactPath returns path as it may be logged or echoed: any
// apiTokenInstance, and any other segment that looks like a secret token,
// is replaced by TokenPlaceholder, whatever the route.
func RedactPath(path string) string {
	if c, ok := parseCall(path); ok {
		return c.redacted()
	}
	if i := strings.Index(path, "waInstance"); i >= 0 {
		// Not a well-formed call: keep the instance and method segments
		// and hide everything after them, whatever it is.
		segs := strings.Split(path[i:], "/")
		if len(segs) > 2 {
			path = path[:i] + segs[0] + "/" + segs[1] + "/" + TokenPlaceholder
		}
	}
	if !strings.Contains(path, "/") {
		return path
	}
	segs := strings.Split(path, "/")
	changed := false
	for i, seg := range segs {
		if looksLikeToken(seg) {
			segs[i], changed = TokenPlaceholder, true
		}
	}
	if !changed {
		return path
	}
	return strings.Join(segs, "/")
}

// looksLikeToken reports whether a path segment may be a secret: 20 or more
// characters of the alphabets tokens are written in (GREEN-API's tokens
// are 50 hex digits). Method names, instance ids, chat ids and avatar file
// names do not look like that.
func looksLikeToken(seg string) bool {
	if len(seg) < 20 || strings.HasPrefix(seg, "waInstance") {
		return false
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
