package greenapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/portrait-dev/portrait"
)

// passiveSettings are GREEN-API settings portrait stores and reports back
// but does not act on, with their defaults for a new instance ("all
// settings are off"). Values are JSON.
var passiveSettings = []struct{ name, def string }{
	{"countryInstance", `""`},
	{"typeAccount", `""`},
	{"delaySendMessagesMilliseconds", `5000`},
	{"markIncomingMessagesReaded", `"no"`},
	{"markIncomingMessagesReadedOnReply", `"no"`},
	{"sharedSession", `"no"`},
	{"proxyInstance", `""`},
	{"outgoingWebhook", `"no"`},
	{"outgoingMessageWebhook", `"no"`},
	{"outgoingAPIMessageWebhook", `"no"`},
	{"incomingWebhook", `"no"`},
	{"deviceWebhook", `"no"`},
	{"statusInstanceWebhook", `"no"`},
	{"enableMessagesHistory", `"no"`},
	{"keepOnlineStatus", `"no"`},
	{"pollMessageWebhook", `"no"`},
	{"incomingBlockWebhook", `"no"`},
	{"incomingCallWebhook", `"no"`},
	{"editedMessageWebhook", `"no"`},
	{"deletedMessageWebhook", `"no"`},
}

func isPassive(name string) (string, bool) {
	for _, p := range passiveSettings {
		if p.name == name {
			return p.def, true
		}
	}
	return "", false
}

func yesNo(b bool) string {
	if b {
		return `"yes"`
	}
	return `"no"`
}

// getSettings: the instance's settings, in GREEN-API's field order.
func (s *Server) getSettings(q *request) *apiError {
	st := q.h.Settings()
	var b bytes.Buffer
	field := func(name, raw string) {
		if b.Len() == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(name))
		b.WriteByte(':')
		b.WriteString(raw)
	}
	str := func(v string) string { j, _ := json.Marshal(v); return string(j) }
	field("wid", str(q.h.Account().Wid))
	for i, p := range passiveSettings {
		if i == 2 { // after countryInstance and typeAccount: GREEN-API's order
			field("webhookUrl", str(st.WebhookURL))
			field("webhookUrlToken", str(st.WebhookURLToken))
		}
		v := p.def
		if x, ok := st.Extra[p.name]; ok {
			v = x
		}
		field(p.name, v)
		if p.name == "statusInstanceWebhook" {
			field("stateWebhook", yesNo(st.StateWebhook))
		}
	}
	field("avatarInfoWebhook", yesNo(st.AvatarInfoWebhook))
	field("avatarChangedWebhook", yesNo(st.AvatarChangedWebhook))
	field("typeInstance", str(string(q.h.Type())))
	b.WriteByte('}')
	writeRaw(q.w, http.StatusOK, b.Bytes())
	return nil
}

// setSettings: any subset of the settings → {"saveSettings": true}.
func (s *Server) setSettings(q *request) *apiError {
	body, e := readJSONBody(q.w, q.r)
	if e != nil {
		return e
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil || in == nil {
		return validation(`the request body must be a JSON object of settings, such as {"webhookUrl": "https://example.com/hook"}`)
	}
	st := q.h.Settings()
	extra := map[string]string{}
	for k, v := range st.Extra {
		extra[k] = v
	}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	known := 0
	for _, name := range names {
		raw := bytes.TrimSpace(in[name])
		var err *apiError
		switch name {
		case "webhookUrl":
			st.WebhookURL, err = s.webhookURL(q.ctx(), raw)
		case "webhookUrlToken":
			st.WebhookURLToken, err = boundedString(raw, name, maxSettingLen)
		case "stateWebhook":
			st.StateWebhook, err = jsonSwitch(raw, name)
		case "avatarInfoWebhook":
			st.AvatarInfoWebhook, err = jsonSwitch(raw, name)
		case "avatarChangedWebhook":
			st.AvatarChangedWebhook, err = jsonSwitch(raw, name)
		default:
			def, ok := isPassive(name)
			if !ok {
				continue // read-only (wid, typeInstance) and unknown settings are ignored
			}
			v, err := passiveValue(name, def, raw)
			if err != nil {
				return err
			}
			extra[name] = v
		}
		if err != nil {
			return err
		}
		known++
	}
	if known == 0 {
		return validation("no known setting in the body; settings are for example webhookUrl, webhookUrlToken, stateWebhook, avatarInfoWebhook, avatarChangedWebhook")
	}
	if len(extra) > 0 {
		st.Extra = extra
	}
	if err := s.Instances.SetSettings(q.ctx(), q.h.ID(), st); err != nil {
		return newError(http.StatusInternalServerError, "Internal Server Error: the settings could not be saved")
	}
	writeJSON(q.w, http.StatusOK, saveSettingsReply{SaveSettings: true})
	return nil
}

// maxSettingLen bounds the string settings.
const maxSettingLen = 2048

// The range of delaySendMessagesMilliseconds, as GREEN-API documents it.
const minSendDelay, maxSendDelay = 500, 86_400_000

// passiveValue validates a setting portrait stores without acting on it
// and returns its JSON as stored: "yes"/"no" switches, bounded strings,
// and whole numbers in their documented range.
func passiveValue(name, def string, raw json.RawMessage) (string, *apiError) {
	switch {
	case def == `"no"`:
		on, err := jsonSwitch(raw, name)
		if err != nil {
			return "", err
		}
		return yesNo(on), nil
	case def[0] == '"':
		v, err := boundedString(raw, name, maxSettingLen)
		if err != nil {
			return "", err
		}
		b, _ := json.Marshal(v)
		return string(b), nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if len(raw) == 0 || raw[0] == '"' || dec.Decode(&n) != nil {
		return "", validation("'%s' must be a whole number of milliseconds from %d to %d", name, minSendDelay, maxSendDelay)
	}
	v, err := n.Int64()
	if err != nil || v < minSendDelay || v > maxSendDelay {
		return "", validation("'%s' must be a whole number of milliseconds from %d to %d", name, minSendDelay, maxSendDelay)
	}
	return strconv.FormatInt(v, 10), nil
}

// boundedString reads a JSON string of at most max bytes.
func boundedString(raw json.RawMessage, name string, max int) (string, *apiError) {
	v, e := jsonString(raw, name)
	if e == nil && len(v) > max {
		return "", validation("'%s' must be at most %d characters", name, max)
	}
	return v, e
}

func jsonString(raw json.RawMessage, name string) (string, *apiError) {
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", validation("'%s' must be a string", name)
	}
	return v, nil
}

// jsonSwitch reads a "yes"/"no" switch (true/false are accepted too).
func jsonSwitch(raw json.RawMessage, name string) (bool, *apiError) {
	switch strings.ToLower(string(raw)) {
	case `"yes"`, `true`:
		return true, nil
	case `"no"`, `false`:
		return false, nil
	}
	return false, validation(`'%s' must be "yes" or "no"`, name)
}

// webhookURL validates a webhookUrl: empty (polling) or an absolute http(s)
// URL that the webhook sender may reach (see outbound: a loopback or
// private address is refused unless PORTRAIT_WEBHOOK_ALLOW allows it).
func (s *Server) webhookURL(ctx context.Context, raw json.RawMessage) (string, *apiError) {
	v, e := jsonString(raw, "webhookUrl")
	if e != nil {
		return "", e
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(v) > 2048 {
		return "", validation("'webhookUrl' must be empty or an absolute http:// or https:// URL of at most 2048 characters")
	}
	if e := s.reachable(ctx, u.Hostname()); e != nil {
		return "", e
	}
	return v, nil
}

// resolveWait bounds the name look-up of a webhook host at save time.
const resolveWait = 2 * time.Second

// reachable refuses a webhook host that the sender would never reach: a
// literal address, or a name whose every address, is one the outbound
// guard forbids. A name that cannot be resolved now is accepted (the
// sender retries and logs).
func (s *Server) reachable(ctx context.Context, host string) *apiError {
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		rctx, cancel := context.WithTimeout(ctx, resolveWait)
		defer cancel()
		if addrs, err = net.DefaultResolver.LookupNetIP(rctx, "ip", host); err != nil || len(addrs) == 0 {
			return nil
		}
	}
	for _, ip := range addrs {
		if s.webhookGuard.Check(ip) == nil {
			return nil
		}
	}
	return validation("'webhookUrl' points to %s (%s), which is loopback, private or otherwise not public: portrait does not send webhooks there. Use a public address, or allow the range with the setting PORTRAIT_WEBHOOK_ALLOW (--webhook-allow)", host, addrs[0])
}

// getStateInstance: {"stateInstance": …}.
func (s *Server) getStateInstance(q *request) *apiError {
	writeJSON(q.w, http.StatusOK, stateReply{StateInstance: q.h.State()})
	return nil
}

// getWaSettings: own avatar, phone, state and device id.
func (s *Server) getWaSettings(q *request) *apiError {
	acc := q.h.Account()
	writeJSON(q.w, http.StatusOK, waSettingsReply{s.own(q.ctx(), q.h).URLAvatar, acc.Phone, q.h.State(), acc.DeviceID})
	return nil
}

// getAccountSettings: MAX's getWaSettings.
func (s *Server) getAccountSettings(q *request) *apiError {
	acc := q.h.Account()
	writeJSON(q.w, http.StatusOK, accountSettingsReply{s.own(q.ctx(), q.h).URLAvatar, acc.Phone, q.h.State(), acc.Wid})
	return nil
}

// qrOf asks h for its QR code and draws it as a base64 PNG.
func qrOf(ctx context.Context, h portrait.Handle) (qrReply, *apiError) {
	code, err := h.QR(ctx)
	if err != nil {
		return qrReply{}, engineError(err, "get a QR code")
	}
	reply := qrReply{Type: code.Kind}
	switch code.Kind {
	case portrait.QRAlreadyLogged:
		reply.Message = msgAlreadyLogged
	case portrait.QRError:
		reply.Message = qrReason(code.Err)
	case portrait.QRCode:
		png, err := qrcode.Encode(code.Code, qrcode.Medium, 256)
		if err != nil {
			return qrReply{}, newError(http.StatusInternalServerError, "Internal Server Error: could not draw the QR code")
		}
		reply.Message = base64.StdEncoding.EncodeToString(png)
	}
	return reply, nil
}

// qr: {"type": "qrCode"|"alreadyLogged"|"error", "message": …}.
func (s *Server) qr(q *request) *apiError {
	reply, e := qrOf(q.ctx(), q.h)
	if e != nil {
		return e
	}
	writeJSON(q.w, http.StatusOK, reply)
	return nil
}

// logout: {"isLogout": true}.
func (s *Server) logout(q *request) *apiError {
	if err := q.h.Logout(q.ctx()); err != nil {
		return engineError(err, "log out")
	}
	writeJSON(q.w, http.StatusOK, logoutReply{IsLogout: true})
	return nil
}

// reboot: {"isReboot": true}.
func (s *Server) reboot(q *request) *apiError {
	if err := q.h.Reboot(q.ctx()); err != nil {
		return engineError(err, "reboot")
	}
	writeJSON(q.w, http.StatusOK, rebootReply{IsReboot: true})
	return nil
}

// healthz answers 200 while the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the server can serve requests.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, RedactPath(r.URL.Path), newError(http.StatusNotFound,
		"Not Found: GREEN-API methods are at /waInstance{idInstance}/{method}/{apiTokenInstance} (MAX: /v3/waInstance…)"), s.cfg.Now())
}

// getAuthorizationCode: POST {"phoneNumber": 11001234567} → {"status":
// true, "code": "ABCD-EFGH"}: links by pairing code instead of QR code.
func (s *Server) getAuthorizationCode(q *request) *apiError {
	body, e := readJSONBody(q.w, q.r)
	if e != nil {
		return e
	}
	var in struct {
		PhoneNumber json.RawMessage `json:"phoneNumber"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return validation(`the request body must be {"phoneNumber": 11001234567}`)
	}
	phone, present, e := jsonID(in.PhoneNumber, "phoneNumber")
	if e != nil {
		return e
	}
	if !present {
		return validation("'phoneNumber' is required: the full international number, digits only, e.g. 11001234567")
	}
	if _, err := portrait.ParseChatID(portrait.TypeWhatsApp, phone+"@c.us"); err != nil {
		return validation("'phoneNumber' must be a full international phone number of 7 to 15 digits")
	}
	code, err := q.h.PairingCode(q.ctx(), phone)
	switch {
	case err == nil:
		writeJSON(q.w, http.StatusOK, authorizationCodeReply{Status: true, Code: code})
		return nil
	case errors.Is(err, portrait.ErrAlreadyLinked):
		writeJSON(q.w, http.StatusOK, authorizationCodeReply{Reason: msgAlreadyLogged})
		return nil
	case errors.Is(err, portrait.ErrUnsupported):
		return newError(http.StatusNotFound, "Not Found: linking by pairing code is not available for %s instances; use qr", q.h.Type())
	}
	return engineError(err, "get a pairing code")
}
