package greenapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/portrait-dev/portrait"
)

// maxJSONBytes bounds the body of the JSON methods: their bodies are a few
// dozen bytes.
const maxJSONBytes = 64 << 10

// readJSONBody reads a JSON method's body, refusing more than maxJSONBytes
// with 413.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	return readBody(w, r, maxJSONBytes)
}

// readBody reads a body of at most limit bytes, answering 413 before
// reading anything when Content-Length already says it is larger.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit, "")
	}
	if r.ContentLength > 0 {
		// The usual case: read exactly what was announced.
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, bodyError(err)
		}
		return b, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit, "")
		}
		return nil, bodyError(err)
	}
	return b, nil
}

// bodyError is the reply to a body that could not be read.
func bodyError(err error) *apiError {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return slowBody("PORTRAIT_BODY_TIMEOUT (--body-timeout)")
	}
	return validation("could not read the request body: %v", err)
}

func tooLarge(limit int64, setting string) *apiError {
	msg := fmt.Sprintf("Payload Too Large: the request body is over the limit of %s", humanBytes(limit))
	if setting != "" {
		msg += " (set by " + setting + ")"
	}
	return newError(http.StatusRequestEntityTooLarge, "%s", msg)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// chatRequest is the body of getAvatar and getAvatarAsync. chatId is a
// string (a number is accepted for MAX ids); phoneNumber is the legacy field
// the official JS SDK sends, a JSON number.
type chatRequest struct {
	ChatID      json.RawMessage `json:"chatId"`
	PhoneNumber json.RawMessage `json:"phoneNumber"`
}

// decodeChatRequest decodes and validates the body of getAvatar for an
// instance of type t. It also accepts a body that is a JSON string holding
// the JSON object, which is what GREEN-API's own Python sample sends.
func decodeChatRequest(body []byte, t portrait.InstanceType) (portrait.ChatID, *apiError) {
	body = bytes.TrimSpace(body)
	if s, ok := plainChatID(body); ok {
		c, err := portrait.ParseChatID(t, s)
		if err != nil {
			return portrait.ChatID{}, validation("%v", err)
		}
		return c, nil
	}
	if len(body) == 0 {
		return portrait.ChatID{}, validation(`the request body is empty; send {"chatId": "11001234567@c.us"}`)
	}
	if body[0] == '"' {
		var inner string
		if err := json.Unmarshal(body, &inner); err != nil {
			return portrait.ChatID{}, validation("the request body is not valid JSON: %v", err)
		}
		body = bytes.TrimSpace([]byte(inner))
	}
	if len(body) == 0 || body[0] != '{' {
		return portrait.ChatID{}, validation(`the request body must be a JSON object such as {"chatId": "11001234567@c.us"}`)
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return portrait.ChatID{}, validation("the request body is not valid JSON: %v", err)
	}
	if s, present, e := jsonID(req.ChatID, "chatId"); e != nil {
		return portrait.ChatID{}, e
	} else if present {
		c, err := portrait.ParseChatID(t, s)
		if err != nil {
			return portrait.ChatID{}, validation("%v", err)
		}
		return c, nil
	}
	if s, present, e := jsonID(req.PhoneNumber, "phoneNumber"); e != nil {
		return portrait.ChatID{}, e
	} else if present {
		if t == portrait.TypeMAX {
			c, err := portrait.ParseChatID(t, s)
			if err != nil {
				return portrait.ChatID{}, validation("%v", err)
			}
			return c, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return portrait.ChatID{}, validation("'phoneNumber' must be a number such as 11001234567")
		}
		c, cerr := portrait.PhoneChatID(n)
		if cerr != nil {
			return portrait.ChatID{}, validation("%v", cerr)
		}
		return c, nil
	}
	return portrait.ChatID{}, validation("'chatId' is required")
}

// plainChatID reads the body almost every client sends, {"chatId": "…"}
// (any white space, a value without escapes), without a JSON decoder; ok is
// false for anything else, which decodeChatRequest then decodes in full.
func plainChatID(b []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("{"))
	if !ok {
		return "", false
	}
	rest, ok = bytes.CutPrefix(bytes.TrimLeft(rest, " \t\r\n"), []byte(`"chatId"`))
	if !ok {
		return "", false
	}
	rest, ok = bytes.CutPrefix(bytes.TrimLeft(rest, " \t\r\n"), []byte(":"))
	if !ok {
		return "", false
	}
	rest, ok = bytes.CutPrefix(bytes.TrimLeft(rest, " \t\r\n"), []byte(`"`))
	if !ok {
		return "", false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return "", false
	}
	value, tail := rest[:end], bytes.TrimLeft(rest[end+1:], " \t\r\n")
	if string(tail) != "}" || len(bytes.TrimSpace(value)) == 0 || bytes.IndexByte(value, '\\') >= 0 {
		return "", false
	}
	for _, c := range value {
		if c < 0x20 || c >= 0x80 {
			return "", false // control characters, non-ASCII: the decoder's business
		}
	}
	return strings.TrimSpace(string(value)), true
}

// jsonID reads a string or integer JSON value. present is false for a
// missing field, null or "".
func jsonID(raw json.RawMessage, field string) (s string, present bool, e *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, validation("'%s' is not a valid string: %v", field, err)
		}
		s = strings.TrimSpace(s)
		return s, s != "", nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", false, validation("'%s' is not a valid number: %v", field, err)
		}
		if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
			return "", false, validation("'%s' must be a whole number, not %s", field, n)
		}
		return n.String(), true, nil
	}
	return "", false, validation("'%s' must be a string", field)
}

// upload is a multipart picture upload: the "file" part and the small text
// fields beside it.
type upload struct {
	file    []byte
	hasFile bool
	fields  map[string]string
}

// maxFieldBytes bounds a text field of an upload (a group id).
const maxFieldBytes = 1 << 10

// requireFile answers 400 unless the upload has a "file" part.
func (up upload) requireFile() *apiError {
	if !up.hasFile {
		return validation("'file' is required: send the picture as the multipart part named 'file'")
	}
	return nil
}

// readUpload reads a multipart/form-data upload of at most limit bytes,
// answering 413 before reading anything when Content-Length already says
// the body is too large. wanted names the text fields to keep.
func readUpload(w http.ResponseWriter, r *http.Request, limit int64, setting string, wanted ...string) (upload, *apiError) {
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		return upload{}, tooLarge(limit, setting)
	}
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" || params["boundary"] == "" {
		return upload{}, validation("send the picture as multipart/form-data with a part named 'file'")
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	mr := multipart.NewReader(body, params["boundary"])
	up := upload{fields: map[string]string{}}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return upload{}, uploadError(err, limit, setting)
		}
		name := part.FormName()
		switch {
		case name == "file" && !up.hasFile:
			b, err := io.ReadAll(part)
			if err != nil {
				return upload{}, uploadError(err, limit, setting)
			}
			up.file, up.hasFile = b, true
		case slices.Contains(wanted, name):
			b, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			if err != nil {
				return upload{}, uploadError(err, limit, setting)
			}
			if len(b) > maxFieldBytes {
				return upload{}, validation("'%s' is too long", name)
			}
			if _, dup := up.fields[name]; !dup {
				up.fields[name] = strings.TrimSpace(string(b))
			}
		default:
			if _, err := io.Copy(io.Discard, part); err != nil {
				return upload{}, uploadError(err, limit, setting)
			}
		}
	}
	return up, nil
}

func uploadError(err error, limit int64, setting string) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(limit, setting)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return slowBody("PORTRAIT_UPLOAD_TIMEOUT (--upload-timeout)")
	}
	return validation("the multipart body could not be read: %v", err)
}

// slowBody is the reply to a body that did not arrive within its time
// limit, named by setting.
func slowBody(setting string) *apiError {
	return newError(http.StatusBadRequest, "Bad Request: the request body did not arrive in time (the limit is set by %s); send it faster, or raise the limit", setting)
}
