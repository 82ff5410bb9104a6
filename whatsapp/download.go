package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/portrait-dev/portrait"
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
	ctx, cancel := context.WithTimeout(ctx, e.opts.DownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("download from %s: %w", u.Host, err)
	}
	req.Header.Set("Accept", "image/*")
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, downloadError(ctx, u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download from %s: the CDN answered %s", u.Host, resp.Status)
	}
	limit := e.opts.MaxPictureBytes
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("download from %s: %w (%d bytes, limit %d)", u.Host, ErrPictureTooLarge, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, downloadError(ctx, u.Host, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("download from %s: %w (more than %d bytes)", u.Host, ErrPictureTooLarge, limit)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("download from %s: empty picture", u.Host)
	}
	return data, nil
}

// downloadError wraps a failed download; running out of time (ctx is the
// download's) is portrait.ErrUpstreamTimeout. *url.Error is unwrapped: its
// message holds the signed URL.
func downloadError(ctx context.Context, host string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("download from %s: %w: %w", host, portrait.ErrUpstreamTimeout, err)
	}
	return fmt.Errorf("download from %s: %w", host, err)
}
