package maxweb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/picfetch"
)

// maxRedirects bounds the redirects a download or upload follows.
const maxRedirects = 3

// maxUploadReply caps the upload server's reply.
const maxUploadReply = 64 << 10

// allowedURL reports whether u may be fetched: https, no credentials, on
// one of Options.PictureHosts (see there).
func (e *Engine) allowedURL(u *url.URL) bool { return picfetch.URLAllowed(e.opts.PictureHosts, u) }

// checkURL parses raw and checks it is allowed.
func (e *Engine) checkURL(raw string) (*url.URL, error) {
	return picfetch.CheckURL(e.opts.PictureHosts, raw, ErrRefusedURL)
}

// download fetches a picture: only from an allowed address, within
// Options.DownloadTimeout, at most Options.MaxPictureBytes.
func (e *Engine) download(ctx context.Context, raw string) ([]byte, error) {
	u, err := e.checkURL(raw)
	if err != nil {
		return nil, err
	}
	return picfetch.Get(ctx, picfetch.Request{Client: e.http, URL: u, Timeout: e.opts.DownloadTimeout,
		Max: e.opts.MaxPictureBytes, TooLarge: ErrPictureTooLarge, Header: http.Header{"User-Agent": {e.opts.UserAgent}}})
}

// upload posts jpeg as the multipart field "file" to the upload address
// MAX handed out (PyMax api/uploads/service.py) and returns the photo
// token of the reply.
func (e *Engine) upload(ctx context.Context, raw string, jpeg []byte) (string, error) {
	u, err := e.checkURL(raw)
	if err != nil {
		return "", err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="image.jpg"`)
	h.Set("Content-Type", "image/jpeg")
	part, err := mw.CreatePart(h)
	if err == nil {
		_, err = part.Write(jpeg)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return "", fmt.Errorf("upload to %s: %w", u.Host, err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.DownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), &body)
	if err != nil {
		return "", fmt.Errorf("upload to %s: %w", u.Host, err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("User-Agent", e.opts.UserAgent)
	resp, err := e.http.Do(req)
	if err != nil {
		return "", picfetch.Error(ctx, "upload to "+u.Host, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxUploadReply+1))
	if err != nil {
		return "", picfetch.Error(ctx, "upload to "+u.Host, err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return "", fmt.Errorf("upload to %s: %w", u.Host, portrait.ErrUpstreamRateLimit)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("upload to %s: the server answered %s", u.Host, resp.Status)
	case len(reply) > maxUploadReply:
		return "", fmt.Errorf("upload to %s: the reply is too long", u.Host)
	}
	token, err := parseUploadReply(reply, u.Query().Get("photoIds"))
	if err != nil {
		return "", fmt.Errorf("upload to %s: %w", u.Host, err)
	}
	return token, nil
}
