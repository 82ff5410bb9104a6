package whatsapp

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/portrait-dev/portrait/internal/picfetch"
)

// maxRedirects bounds the redirects a picture download follows.
const maxRedirects = 3

// cdnURL is the production rule for picture URLs: https on a host under
// whatsapp.net (profile pictures come from pps.whatsapp.net, media from
// mmg.whatsapp.net and media-*.cdn.whatsapp.net), on the default port,
// without credentials.
func cdnURL(u *url.URL) bool {
	if u.Scheme != "https" || u.User != nil {
		return false
	}
	if p := u.Port(); p != "" && p != "443" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	const suffix = ".whatsapp.net"
	return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
}

// newHTTPClient returns the client of picture downloads over transport (nil:
// a clone of http.DefaultTransport). It follows redirects only to https on
// the same host.
func (e *Engine) newHTTPClient(transport http.RoundTripper) *http.Client {
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrRefusedURL, maxRedirects)
			}
			if req.URL.Scheme != "https" || req.URL.Host != via[0].URL.Host || !e.allowURL(req.URL) {
				return fmt.Errorf("%w: redirect to another host (%s)", ErrRefusedURL, req.URL.Host)
			}
			return nil
		},
	}
}

// download fetches a picture from WhatsApp's CDN: only from an allowed URL,
// within Options.DownloadTimeout, at most Options.MaxPictureBytes. Errors
// name the host, never the signed URL.
func (e *Engine) download(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: unparsable URL", ErrRefusedURL)
	}
	if u.Scheme != "https" || !e.allowURL(u) {
		return nil, fmt.Errorf("%w: %s://%s", ErrRefusedURL, u.Scheme, u.Host)
	}
	return picfetch.Get(ctx, picfetch.Request{Client: e.http, URL: u, Timeout: e.opts.DownloadTimeout,
		Max: e.opts.MaxPictureBytes, TooLarge: ErrPictureTooLarge})
}
