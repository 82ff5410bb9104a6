package greenapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/picture"
)

// errorBody is the shape of GREEN-API's error replies, as captured from live
// instances (NestJS style), with the token redacted from path.
type errorBody struct {
	StatusCode int    `json:"statusCode"`
	Timestamp  string `json:"timestamp"`
	Path       string `json:"path"`
	Message    string `json:"message"`
}

// authBody is the body of 401 and 403 replies.
type authBody struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
}

// apiError is an error that carries its HTTP reply. detail is the cause
// of an internal failure: it goes to the log with the request id, never
// into the reply.
type apiError struct {
	status     int
	message    string
	retryAfter time.Duration
	detail     error
}

// internal is a 500 whose reply says what could not be done and whose log
// line says why.
func internal(detail error, format string, args ...any) *apiError {
	return &apiError{status: http.StatusInternalServerError, message: "Internal Server Error: " + fmt.Sprintf(format, args...), detail: detail}
}

func (e *apiError) Error() string { return e.message }

func newError(status int, format string, args ...any) *apiError {
	return &apiError{status: status, message: fmt.Sprintf(format, args...)}
}

// validation returns a 400 with GREEN-API's "Validation failed" message.
func validation(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, message: "Validation failed. Details: " + fmt.Sprintf(format, args...)}
}

// The messages of the documented errors.
const (
	msgFileEmpty       = "File is empty"
	msgUnsupported     = "Unsupported media type"
	msgNotAuthorized   = "instance account not authorized"
	msgStarting        = "instance in starting process try later"
	msgAlreadyLogged   = "instance account already authorized"
	msgTooManyRequests = "Too Many Requests"
	msgBadRequestData  = "bad request data"
	msgLookupTimeout   = "get avatar timeout limit exceeded"
	msgRateOverlimit   = "rate-overlimit"
	msgLookupFailed    = "the picture could not be looked up; the server log has the details"
)

// Reason words err as GREEN-API does in the reason field of an avatarInfo
// (or avatarChanged) notification: the notification hub takes it as
// notify.Options.Reason. Errors it has no words for get a general reason
// (the hub logs them), never their own text, which may name internals.
func Reason(err error) string {
	var ce *portrait.ChatIDError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ce):
		return msgBadRequestData
	case errors.Is(err, portrait.ErrStarting):
		return msgStarting
	case errors.Is(err, portrait.ErrNotAuthorized):
		return msgNotAuthorized
	case errors.Is(err, portrait.ErrUpstreamTimeout), errors.Is(err, context.DeadlineExceeded):
		return msgLookupTimeout
	case errors.Is(err, portrait.ErrUpstreamRateLimit):
		return msgRateOverlimit
	case errors.Is(err, portrait.ErrUpstreamPicture):
		return portrait.ErrUpstreamPicture.Error()
	case errors.Is(err, portrait.ErrUnsupported), errors.Is(err, portrait.ErrRefused):
		return err.Error()
	case errors.Is(err, portrait.ErrStorage):
		return "portrait could not store the picture; the lookup will work again once the server's storage does"
	}
	return msgLookupFailed
}

// qrReason words the error of a qr reply of type error: an engine's own
// errors there are written for people (e.g. "the QR code expired").
func qrReason(err error) string {
	if errors.Is(err, portrait.ErrStarting) {
		return msgStarting
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// engineError maps an error of the avatar service or an engine to its reply.
// action names what was attempted, for the message.
func engineError(err error, action string) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, picture.ErrBusy):
		return &apiError{status: http.StatusServiceUnavailable, retryAfter: 5 * time.Second,
			message: "Service Unavailable: the server is decoding other pictures and has no decode memory free (PORTRAIT_DECODE_MEMORY); try again in a few seconds"}
	case errors.Is(err, picture.ErrOverBudget):
		return newError(http.StatusRequestEntityTooLarge, "Payload Too Large: %v; send a picture with fewer pixels (the limit is set by PORTRAIT_DECODE_MEMORY)", err)
	case errors.Is(err, picture.ErrEmpty):
		return newError(http.StatusBadRequest, msgFileEmpty)
	case errors.Is(err, picture.ErrUnsupported):
		return newError(http.StatusBadRequest, "%s: the file is not a JPEG, PNG, WebP, GIF, AVIF or HEIC picture (%v)", msgUnsupported, err)
	case errors.Is(err, picture.ErrTooLarge):
		return validation("%v; send a smaller picture (the limit is set by PORTRAIT_MAX_PIXELS)", err)
	case errors.Is(err, portrait.ErrUnavailable):
		return newError(http.StatusServiceUnavailable, "Service Unavailable: %v", err)
	case errors.Is(err, portrait.ErrUnsupported), errors.Is(err, portrait.ErrRefused):
		// Written for people by the engine, e.g. what a MAX bot can see.
		return newError(http.StatusUnprocessableEntity, "Unprocessable Entity: could not %s: %v", action, err)
	case errors.Is(err, portrait.ErrUpstreamPicture):
		return &apiError{status: http.StatusBadGateway, detail: err,
			message: fmt.Sprintf("Bad Gateway: could not %s: %v", action, err)}
	case errors.Is(err, portrait.ErrStorage):
		return internal(err, "portrait could not store what it needed to %s; try again later", action)
	case errors.Is(err, portrait.ErrNotAuthorized):
		return newError(http.StatusBadRequest, msgNotAuthorized)
	case errors.Is(err, portrait.ErrStarting):
		return newError(http.StatusBadRequest, msgStarting)
	case errors.Is(err, portrait.ErrUpstreamTimeout), errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusGatewayTimeout, "Gateway Timeout: the messenger did not answer in time while trying to %s (%s); try again later", action, msgLookupTimeout)
	case errors.Is(err, portrait.ErrUpstreamRateLimit):
		return &apiError{status: http.StatusTooManyRequests, retryAfter: 10 * time.Second,
			message: fmt.Sprintf(msgRateOverlimit+": the messenger refused to %s because this account made too many requests; retry after 10 s", action)}
	}
	return &apiError{status: http.StatusBadGateway, detail: err,
		message: "Bad Gateway: could not " + action + ": the messenger's answer could not be used; the server log has the details"}
}

// writeError writes e in GREEN-API's error shape. path must already be
// redacted.
// A 5xx reply names the request id (X-Request-Id, set on w before), under
// which the log has the details.
func writeError(w http.ResponseWriter, path string, e *apiError, now time.Time) {
	h := w.Header()
	msg := e.message
	if id := h.Get(requestIDHeader); id != "" && e.status >= 500 {
		msg += " (request id " + id + ")"
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
	}
	switch e.status {
	case http.StatusUnauthorized:
		writeJSON(w, e.status, authBody{Code: 401, Description: "Unauthorized"})
		return
	case http.StatusForbidden:
		writeJSON(w, e.status, authBody{Code: 403, Description: "Forbidden"})
		return
	}
	writeJSON(w, e.status, errorBody{
		StatusCode: e.status,
		Timestamp:  now.UTC().Format(time.RFC3339),
		Path:       path,
		Message:    msg,
	})
}

// writeJSON writes v as the JSON reply with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"message":"internal error encoding the reply"}`, http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
