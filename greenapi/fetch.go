package greenapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portrait-dev/portrait/outbound"
)

// A picture may be given by URL instead of as an upload: setProfilePicture
// and setGroupPicture take a JSON body {"urlFile": "https://…"} (GREEN-API's
// own field name, from sendFileByUrl), plus the group for setGroupPicture.
// The file is fetched through the same outbound guard as webhooks (every
// connection, redirects included, must reach a public address unless
// PORTRAIT_WEBHOOK_ALLOW allows it), capped in size by the upload limit and
// in time by FetchTimeout, and judged by its bytes alone, never by the URL's
// extension or the server's Content-Type.

// maxURLLength bounds urlFile.
const maxURLLength = 2048

// pictureByURL is the JSON body of setProfilePicture and setGroupPicture
// when the picture is given by URL.
type pictureByURL struct {
	URLFile string `json:"urlFile"`
	GroupID string `json:"groupId,omitempty"`
	ChatID  string `json:"chatId,omitempty"`
}

// parseFileURL checks urlFile: an absolute http or https URL with a host,
// no user information, at most maxURLLength characters.
func parseFileURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("it is empty")
	}
	if len(raw) > maxURLLength {
		return nil, fmt.Errorf("it is longer than %d characters", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("it is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("it must be an http:// or https:// URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("it has no host")
	}
	if u.User != nil {
		return nil, errors.New("it must not hold a user name or password")
	}
	return u, nil
}

// isJSON reports whether r's body is JSON (a picture by URL).
func isJSON(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/json"
}

// readPicture reads the picture of setProfilePicture or setGroupPicture:
// a multipart upload, or a JSON body naming it by URL. fields are the
// text fields asked for (the group id), from either form.
func (s *Server) readPicture(q *request, fields ...string) (upload, *apiError) {
	if !isJSON(q.r) {
		up, e := readUpload(q.w, q.r, s.cfg.MaxUploadBytes, s.cfg.UploadSetting, fields...)
		if e == nil {
			e = up.requireFile()
		}
		return up, e
	}
	body, e := readJSONBody(q.w, q.r)
	if e != nil {
		return upload{}, e
	}
	var in pictureByURL
	if err := json.Unmarshal(body, &in); err != nil {
		return upload{}, validation(`the request body must be {"urlFile": "https://…"} (or a multipart/form-data upload with a part named 'file')`)
	}
	if in.URLFile == "" {
		return upload{}, validation("'urlFile' is required: the http(s) address of the picture (or send it as multipart/form-data)")
	}
	data, err := s.fetchFile(q.ctx(), in.URLFile)
	if err != nil {
		return upload{}, validation("'urlFile' could not be used: %v", err)
	}
	up := upload{file: data, hasFile: true, fields: map[string]string{}}
	if in.GroupID != "" {
		up.fields["groupId"] = strings.TrimSpace(in.GroupID)
	}
	if in.ChatID != "" {
		up.fields["chatId"] = strings.TrimSpace(in.ChatID)
	}
	return up, nil
}

// fetchFile downloads raw, at most MaxUploadBytes, within FetchTimeout.
// Its errors are written for the caller.
func (s *Server) fetchFile(ctx context.Context, raw string) ([]byte, error) {
	u, err := parseFileURL(raw)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errors.New("it is not a URL")
	}
	req.Header.Set("User-Agent", "portrait")
	req.Header.Set("Accept", "image/*")
	resp, err := s.fetcher.Do(req)
	if err != nil {
		var ue *url.Error
		switch {
		case errors.Is(err, outbound.ErrForbiddenAddress):
			return nil, fmt.Errorf("%s resolves to an address that is not public; allow its range with PORTRAIT_WEBHOOK_ALLOW to fetch from it", u.Hostname())
		case ctx.Err() != nil:
			return nil, fmt.Errorf("the server did not send the file within %s", s.cfg.FetchTimeout)
		case errors.As(err, &ue):
			return nil, fmt.Errorf("fetching it failed: %v", ue.Err)
		}
		return nil, fmt.Errorf("fetching it failed: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the server answered %s", resp.Status)
	}
	limit := s.cfg.MaxUploadBytes
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("the file is larger than the limit of %s (PORTRAIT_MAX_UPLOAD_BYTES)", humanBytes(limit))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("the server did not send the file within %s", s.cfg.FetchTimeout)
		}
		return nil, fmt.Errorf("reading it failed: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("the file is larger than the limit of %s (PORTRAIT_MAX_UPLOAD_BYTES)", humanBytes(limit))
	}
	if len(data) == 0 {
		return nil, errors.New("the server sent an empty file")
	}
	return data, nil
}

// defaultFetchTimeout bounds a picture download by URL when no
// FetchTimeout is configured.
const defaultFetchTimeout = 20 * time.Second
