package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is a reply other than HTTP 200, or a 200 whose body is GREEN-API's
// {"code":…,"description":…} error. Use errors.As to get it.
type Error struct {
	// Method is the API method called, e.g. "getAvatar".
	Method string
	// StatusCode is the HTTP status, or the "code" of a 200 error body.
	StatusCode int
	// Message is the body's "message" (or "description") field, or the body
	// itself when it is a short text, or the status text.
	Message string
	// Body is the raw response body, with the token redacted.
	Body []byte
	// RetryAfter is the wait the server asked for in Retry-After (429), or 0.
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "green-api %s: HTTP %d", e.Method, e.StatusCode)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// newError builds an *Error from a reply, redacting the token (GREEN-API
// echoes the request path, token included, in its validation errors).
func (c *Client) newError(method string, status int, h http.Header, body []byte, message ...string) *Error {
	red := []byte(c.redact(string(body)))
	e := &Error{Method: method, StatusCode: status, Body: red, RetryAfter: retryAfter(h.Get("Retry-After"))}
	if len(message) > 0 && message[0] != "" {
		e.Message = c.redact(message[0])
	} else {
		e.Message = errorMessage(red, status)
	}
	return e
}

// errorMessage picks the human-readable message out of an error body.
func errorMessage(body []byte, status int) string {
	t := bytes.TrimSpace(body)
	var obj map[string]json.RawMessage
	if json.Unmarshal(t, &obj) == nil {
		for _, k := range []string{"message", "description", "reason", "error"} {
			var s string
			if json.Unmarshal(obj[k], &s) == nil && s != "" {
				return s
			}
		}
	}
	var s string
	if json.Unmarshal(t, &s) == nil && s != "" { // a bare JSON string, e.g. "File is empty"
		return s
	}
	if len(t) > 0 && len(t) <= 200 && utf8.Valid(t) && !bytes.ContainsAny(t, "<>{}\n") {
		return string(t)
	}
	return http.StatusText(status)
}

// partnerError recognises the body GREEN-API sends with HTTP 200 for some
// auth failures, {"code":401,"description":"Unauthorized"}: an object with
// only "code" (an HTTP error status) and "description".
func partnerError(body []byte) (code int, description string, ok bool) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 || t[0] != '{' {
		return 0, "", false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(t, &obj) != nil || len(obj) == 0 {
		return 0, "", false
	}
	for k := range obj {
		if k != "code" && k != "description" {
			return 0, "", false
		}
	}
	if json.Unmarshal(obj["code"], &code) != nil || code < 400 || code > 599 {
		return 0, "", false
	}
	_ = json.Unmarshal(obj["description"], &description)
	return code, description, true
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}
