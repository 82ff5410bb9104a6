package greenapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/instance"
)

// SandboxAdmin is what the admin API needs of the sandbox engine to let
// people change its simulated world.
type SandboxAdmin interface {
	// World returns a description of an instance's world for display.
	World(ctx context.Context, id portrait.InstanceID) (any, error)
	// UpdateChat changes one chat of the world and emits the events a real
	// messenger would.
	UpdateChat(ctx context.Context, id portrait.InstanceID, chat string, u SandboxUpdate) error
	// Scan simulates the phone scanning the QR code.
	Scan(ctx context.Context, id portrait.InstanceID) error
}

// SandboxUpdate is a change to one chat of a sandbox world. Nil fields are
// left alone.
type SandboxUpdate struct {
	Picture       []byte  `json:"-"`
	RemovePicture bool    `json:"removePicture"`
	Hidden        *bool   `json:"hidden"`
	HasAccount    *bool   `json:"hasAccount"`
	Fault         *string `json:"fault"`
	Author        string  `json:"author"`
}

// ConsoleCookie is the cookie that carries a console session: a value
// derived from the admin token (ConsoleSession), never the token itself.
const ConsoleCookie = "portrait_console"

// ConsoleSession returns the console cookie's value for adminToken.
func ConsoleSession(adminToken string) string {
	mac := hmac.New(sha256.New, []byte(adminToken))
	mac.Write([]byte("portrait console session v1"))
	return hex.EncodeToString(mac.Sum(nil))
}

// AdminAuthorized reports whether r carries the admin token (as
// "Authorization: Bearer <token>") or a console session cookie for it.
// Both comparisons take constant time.
func AdminAuthorized(r *http.Request, adminToken string) bool {
	if adminToken == "" {
		return false
	}
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		want, got := sha256.Sum256([]byte(adminToken)), sha256.Sum256([]byte(token))
		return subtle.ConstantTimeCompare(want[:], got[:]) == 1
	}
	if c, err := r.Cookie(ConsoleCookie); err == nil {
		return subtle.ConstantTimeCompare([]byte(ConsoleSession(adminToken)), []byte(c.Value)) == 1
	}
	return false
}

// admin wraps an admin handler: 404 unless an admin token is configured,
// 401 unless the request carries it (see AdminAuthorized), 403 for a
// browser's cross-origin request that changes something (the console's
// cookie must not be usable from another site).
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cop.Check(r); err != nil {
			writeError(w, r.URL.Path, newError(http.StatusForbidden, "Forbidden: cross-origin request refused"), s.cfg.Now())
			return
		}
		if s.cfg.AdminToken == "" {
			s.notFound(w, r)
			return
		}
		if !AdminAuthorized(r, s.cfg.AdminToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="portrait admin"`)
			writeError(w, r.URL.Path, &apiError{status: http.StatusUnauthorized}, s.cfg.Now())
			return
		}
		h(w, r)
	})
}

// instanceInfo describes an instance in the admin API.
type instanceInfo struct {
	IDInstance       int64                 `json:"idInstance"`
	APITokenInstance string                `json:"apiTokenInstance,omitempty"`
	TypeInstance     portrait.InstanceType `json:"typeInstance"`
	Engine           string                `json:"engine"`
	StateInstance    portrait.State        `json:"stateInstance,omitempty"`
	Wid              string                `json:"wid"`
	APIURL           string                `json:"apiUrl"`
	Error            string                `json:"error,omitempty"`
}

func (s *Server) info(l *instance.Live) instanceInfo {
	in := instanceInfo{IDInstance: int64(l.ID), TypeInstance: l.Type, Engine: l.Engine, APIURL: s.apiURL(l.Type)}
	if l.Session != nil {
		in.StateInstance = l.Session.State()
		in.Wid = l.Session.Account().Wid
	} else if l.OpenErr != nil {
		in.Error = l.OpenErr.Error()
	}
	return in
}

// apiURL is the base URL a GREEN-API client of an instance of type t is
// configured with.
func (s *Server) apiURL(t portrait.InstanceType) string {
	u := strings.TrimRight(s.cfg.APIURL, "/")
	if t == portrait.TypeMAX {
		return u + "/v3"
	}
	return u
}

func (s *Server) adminListInstances(w http.ResponseWriter, r *http.Request) {
	out := []instanceInfo{}
	for _, l := range s.Registry.List() {
		out = append(out, s.info(l))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminCreateInstance(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TypeInstance string `json:"typeInstance"`
		Engine       string `json:"engine"`
	}
	body, e := readJSONBody(w, r)
	if e != nil {
		writeError(w, r.URL.Path, e, s.cfg.Now())
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			writeError(w, r.URL.Path, validation(`the body must be {"typeInstance": "whatsapp"|"v3", "engine": "sandbox"|"whatsapp"}`), s.cfg.Now())
			return
		}
	}
	if in.TypeInstance == "" {
		in.TypeInstance = string(portrait.TypeWhatsApp)
	}
	if in.Engine == "" {
		in.Engine = "sandbox"
	}
	t, err := instance.ParseType(in.TypeInstance)
	if err != nil {
		writeError(w, r.URL.Path, validation("%v", err), s.cfg.Now())
		return
	}
	inst, token, err := s.Registry.Create(r.Context(), t, in.Engine)
	if err != nil {
		writeError(w, r.URL.Path, validation("%v", err), s.cfg.Now())
		return
	}
	info := instanceInfo{IDInstance: int64(inst.ID), APITokenInstance: token, TypeInstance: inst.Type, Engine: inst.Engine, APIURL: s.apiURL(inst.Type)}
	if l, ok := s.Registry.Get(inst.ID); ok {
		info = s.info(l)
		info.APITokenInstance = token
	}
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) adminID(w http.ResponseWriter, r *http.Request) (portrait.InstanceID, bool) {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, r.URL.Path, validation("the instance id must be a number"), s.cfg.Now())
		return 0, false
	}
	if _, ok := s.Registry.Get(portrait.InstanceID(n)); !ok {
		writeError(w, r.URL.Path, newError(http.StatusNotFound, "Not Found: no instance %d", n), s.cfg.Now())
		return 0, false
	}
	return portrait.InstanceID(n), true
}

func (s *Server) adminDeleteInstance(w http.ResponseWriter, r *http.Request) {
	id, ok := s.adminID(w, r)
	if !ok {
		return
	}
	if err := s.Registry.Delete(r.Context(), id); err != nil {
		writeError(w, r.URL.Path, newError(http.StatusInternalServerError, "Internal Server Error: %v", err), s.cfg.Now())
		return
	}
	s.limits.forget(id)
	writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

func (s *Server) adminRotateToken(w http.ResponseWriter, r *http.Request) {
	id, ok := s.adminID(w, r)
	if !ok {
		return
	}
	token, err := s.Registry.RotateToken(r.Context(), id)
	if err != nil {
		writeError(w, r.URL.Path, newError(http.StatusInternalServerError, "Internal Server Error: %v", err), s.cfg.Now())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"idInstance": int64(id), "apiTokenInstance": token})
}

// sandboxFor answers 404 unless the instance runs on the sandbox engine.
func (s *Server) sandboxFor(w http.ResponseWriter, r *http.Request) (portrait.InstanceID, bool) {
	id, ok := s.adminID(w, r)
	if !ok {
		return 0, false
	}
	if l, _ := s.Registry.Get(id); s.Sandbox == nil || l.Engine != "sandbox" {
		writeError(w, r.URL.Path, newError(http.StatusNotFound, "Not Found: instance %d does not run on the sandbox engine", id), s.cfg.Now())
		return 0, false
	}
	return id, true
}

func (s *Server) adminSandboxWorld(w http.ResponseWriter, r *http.Request) {
	id, ok := s.sandboxFor(w, r)
	if !ok {
		return
	}
	world, err := s.Sandbox.World(r.Context(), id)
	if err != nil {
		writeError(w, r.URL.Path, newError(http.StatusInternalServerError, "Internal Server Error: %v", err), s.cfg.Now())
		return
	}
	writeJSON(w, http.StatusOK, world)
}

// adminSandboxUpdate changes one chat: a JSON body
// {"picture": "<base64>", "removePicture", "hidden", "hasAccount", "fault",
// "author"}, or multipart/form-data with the picture as part "file" and the
// other fields as form fields.
func (s *Server) adminSandboxUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := s.sandboxFor(w, r)
	if !ok {
		return
	}
	var u SandboxUpdate
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		up, e := readUpload(w, r, s.cfg.MaxUploadBytes, s.cfg.UploadSetting, "removePicture", "hidden", "hasAccount", "fault", "author")
		if e != nil {
			writeError(w, r.URL.Path, e, s.cfg.Now())
			return
		}
		u.Picture = up.file
		u.Author = up.fields["author"]
		u.RemovePicture = up.fields["removePicture"] == "true"
		if v, ok := up.fields["hidden"]; ok {
			b := v == "true"
			u.Hidden = &b
		}
		if v, ok := up.fields["hasAccount"]; ok {
			b := v == "true"
			u.HasAccount = &b
		}
		if v, ok := up.fields["fault"]; ok {
			u.Fault = &v
		}
	} else {
		body, e := readBody(w, r, s.cfg.MaxUploadBytes*2)
		if e != nil {
			writeError(w, r.URL.Path, e, s.cfg.Now())
			return
		}
		var in struct {
			SandboxUpdate
			Picture string `json:"picture"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			writeError(w, r.URL.Path, validation(`the body must be JSON such as {"picture": "<base64>"} or {"hidden": true}: %v`, err), s.cfg.Now())
			return
		}
		u = in.SandboxUpdate
		if in.Picture != "" {
			pic := in.Picture
			if i := strings.Index(pic, ";base64,"); i >= 0 && strings.HasPrefix(pic, "data:") {
				pic = pic[i+len(";base64,"):]
			}
			b, err := base64.StdEncoding.DecodeString(pic)
			if err != nil {
				writeError(w, r.URL.Path, validation("'picture' must be base64 (or a data: URL): %v", err), s.cfg.Now())
				return
			}
			u.Picture = b
		}
	}
	if err := s.Sandbox.UpdateChat(r.Context(), id, r.PathValue("chat"), u); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, portrait.ErrNotFound) {
			status = http.StatusNotFound
		}
		writeError(w, r.URL.Path, newError(status, "%v", err), s.cfg.Now())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"updated": true})
}

func (s *Server) adminSandboxScan(w http.ResponseWriter, r *http.Request) {
	id, ok := s.sandboxFor(w, r)
	if !ok {
		return
	}
	if err := s.Sandbox.Scan(r.Context(), id); err != nil {
		writeError(w, r.URL.Path, newError(http.StatusBadRequest, "%v", err), s.cfg.Now())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"scanned": true})
}

// selfChat is the chat id of the account an instance is linked to; zero
// when it is not linked.
func selfChat(l *instance.Live) portrait.ChatID {
	self, err := portrait.ParseChatID(l.Type, l.Session.Account().Wid)
	if err != nil {
		return portrait.ChatID{}
	}
	return self
}

// ownPicture is an account's own picture as the console shows it.
type ownPicture struct {
	URLAvatar  string `json:"urlAvatar"`
	PreviewURL string `json:"previewUrl"`
}

// own looks up the account's own picture; zero when there is none or it
// cannot be had now.
func (s *Server) own(ctx context.Context, l *instance.Live) ownPicture {
	if l.Session == nil || l.Session.State() != portrait.StateAuthorized {
		return ownPicture{}
	}
	self := selfChat(l)
	if self.IsZero() {
		return ownPicture{}
	}
	av, err := s.Avatars.Get(ctx, l.Session, l.ID, self)
	if err != nil {
		return ownPicture{}
	}
	return ownPicture{av.URL, s.Avatars.PreviewURL(av.Key)}
}

// adminInstance describes one instance with its own picture.
func (s *Server) adminInstance(w http.ResponseWriter, r *http.Request) {
	id, ok := s.adminID(w, r)
	if !ok {
		return
	}
	l, _ := s.Registry.Get(id)
	writeJSON(w, http.StatusOK, struct {
		instanceInfo
		Avatar ownPicture `json:"avatar"`
	}{s.info(l), s.own(r.Context(), l)})
}

// adminQR is the qr method for the console.
func (s *Server) adminQR(w http.ResponseWriter, r *http.Request) {
	id, ok := s.adminID(w, r)
	if !ok {
		return
	}
	l, _ := s.Registry.Get(id)
	if l.Session == nil {
		writeError(w, r.URL.Path, newError(http.StatusServiceUnavailable, "Service Unavailable: %v", l.OpenErr), s.cfg.Now())
		return
	}
	reply, e := qrOf(r.Context(), l.Session)
	if e != nil {
		writeError(w, r.URL.Path, e, s.cfg.Now())
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// adminProfilePicture sets the account's own picture from the console: a
// multipart "file", as setProfilePicture takes it. The reply holds the
// processed 640 and 96 versions before and after.
func (s *Server) adminProfilePicture(w http.ResponseWriter, r *http.Request) {
	id, ok := s.adminID(w, r)
	if !ok {
		return
	}
	l, _ := s.Registry.Get(id)
	up, e := readUpload(w, r, s.cfg.MaxUploadBytes, s.cfg.UploadSetting)
	if e == nil {
		e = up.requireFile()
	}
	if e == nil && (l.Session == nil || l.Session.State() != portrait.StateAuthorized) {
		e = newError(http.StatusBadRequest, msgNotAuthorized)
	}
	if e != nil {
		writeError(w, r.URL.Path, e, s.cfg.Now())
		return
	}
	before := s.own(r.Context(), l)
	self := selfChat(l)
	av, err := s.Avatars.Set(r.Context(), l.Session, l.ID, portrait.ChatID{}, self, up.file)
	if err != nil {
		e := engineError(err, "set the profile picture")
		if errors.Is(err, portrait.ErrUpstreamRateLimit) {
			e.message = "rate-overlimit: the messenger allows one picture change per 10 s; try again in a few seconds"
		}
		writeError(w, r.URL.Path, e, s.cfg.Now())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Before ownPicture `json:"before"`
		After  ownPicture `json:"after"`
	}{before, ownPicture{av.URL, s.Avatars.PreviewURL(av.Key)}})
}
