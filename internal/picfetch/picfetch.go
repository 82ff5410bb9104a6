// Package picfetch downloads pictures from a messenger's servers the one
// way every engine does: from an address the engine has checked, within a
// time limit, at most a size limit, with errors that name the host but
// never the (often signed) address.
package picfetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portrait-dev/portrait"
)

// Request is one download.
type Request struct {
	// Client sends the request (its redirect policy is the engine's).
	Client *http.Client
	// URL is the picture's address, already checked by the engine.
	URL *url.URL
	// Timeout bounds the whole download; Max its size in bytes.
	Timeout time.Duration
	Max     int64
	// TooLarge is the engine's error for a picture over Max; it is
	// wrapped.
	TooLarge error
	// Header holds extra request headers (a user agent); may be nil.
	Header http.Header
}

// Get downloads r.URL. Running out of time is portrait.ErrUpstreamTimeout;
// a picture over r.Max wraps r.TooLarge; an answer other than 200, or an
// empty body, is an error.
func Get(ctx context.Context, r Request) ([]byte, error) {
	host := r.URL.Host
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("download from %s: %w", host, err)
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "image/*")
	resp, err := r.Client.Do(req)
	if err != nil {
		return nil, Error(ctx, "download from "+host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download from %s: the server answered %s", host, resp.Status)
	}
	if resp.ContentLength > r.Max {
		return nil, fmt.Errorf("download from %s: %w (%d bytes, limit %d)", host, r.TooLarge, resp.ContentLength, r.Max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, r.Max+1))
	if err != nil {
		return nil, Error(ctx, "download from "+host, err)
	}
	if int64(len(data)) > r.Max {
		return nil, fmt.Errorf("download from %s: %w (more than %d bytes)", host, r.TooLarge, r.Max)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("download from %s: empty picture", host)
	}
	return data, nil
}

// Error wraps the error of a request described by what (ctx is the
// request's): running out of time is portrait.ErrUpstreamTimeout, and an
// *url.Error is unwrapped, since its message holds the address.
func Error(ctx context.Context, what string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, portrait.ErrUpstreamTimeout, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// HostAllowed matches host and port against the allowed entries: "name"
// allows it and its subdomains on port 443, "host:port" exactly that.
func HostAllowed(allowed []string, host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return false
	}
	for _, a := range allowed {
		a = strings.ToLower(a)
		if h, p, err := net.SplitHostPort(a); err == nil {
			if host == strings.ToLower(h) && port == p {
				return true
			}
			continue
		}
		if port != "" && port != "443" {
			continue
		}
		if host == a || strings.HasSuffix(host, "."+a) {
			return true
		}
	}
	return false
}

// URLAllowed reports whether u may be used to fetch or upload a picture:
// https, no credentials, on one of the allowed hosts (see HostAllowed).
func URLAllowed(allowed []string, u *url.URL) bool {
	if u.Scheme != "https" || u.User != nil {
		return false
	}
	return HostAllowed(allowed, u.Hostname(), u.Port())
}

// CheckURL parses raw and checks it with URLAllowed. Its errors wrap
// refused (the engine's error) and name the scheme and host only: a
// messenger's addresses carry signatures and tokens.
func CheckURL(allowed []string, raw string, refused error) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: unparsable address", refused)
	}
	if !URLAllowed(allowed, u) {
		return nil, fmt.Errorf("%w: %s://%s", refused, u.Scheme, u.Host)
	}
	return u, nil
}
