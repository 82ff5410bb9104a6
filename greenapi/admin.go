package greenapi

import (
	"context"
	"encoding/base64"
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
	// Engine is the name of the engine whose instances it manages.
	Engine() string
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

// admin wraps an admin handler: 404 unless the admin side is on, 401
// unless the request carries the admin token or a live console session (see
// adminauth.Auth.Authorized), 403 for a browser's cross-origin request that
// changes something (the console's cookie must not be usable from another
// site).
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cop.Check(r); err != nil {
			s.fail(w, r, newError(http.StatusForbidden, "Forbidden: cross-origin request refused"))
			return
		}
		if s.Admin == nil || s.Admin.Auth == nil {
			s.notFound(w, r)
			return
		}
		if !s.Admin.Auth.Authorized(r) && !s.forwardedByAdmin(r) {
			if ok, wait := s.AuthFailures.Fail(r, s.cfg.Now()); !ok {
				s.fail(w, r, tooManyFailures(wait))
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="portrait admin"`)
			s.fail(w, r, &apiError{status: http.StatusUnauthorized})
			return
		}
		h(w, r)
	})
}

// forwardedByAdmin reports whether r was forwarded by another node of the
// cluster that authenticated it as the admin's.
func (s *Server) forwardedByAdmin(r *http.Request) bool {
	if s.Cluster == nil {
		return false
	}
	fwd, admin := s.Cluster.Trusted(r)
	return fwd && admin
}

// owned serves an admin call about one instance on the node that owns it:
// another node of the cluster forwards it there.
func (s *Server) owned(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Cluster != nil {
			if n, err := strconv.ParseInt(r.PathValue("id"), 10, 64); err == nil {
				if _, err := s.Instances.Get(r.Context(), portrait.InstanceID(n)); err == nil {
					if done, e := s.forward(w, r, portrait.InstanceID(n), true); done {
						if e != nil {
							s.fail(w, r, e)
						}
						return
					}
				}
			}
		}
		h(w, r)
	}
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
	// Sandbox: the instance runs on the sandbox engine, so the sandbox
	// routes (a simulated scan, changes to its world) apply.
	Sandbox bool `json:"sandbox,omitempty"`
	// Credential: its engine needs a secret from the operator (maxbot: the
	// bot token), set with POST /admin/instances/{id}/credential.
	Credential bool `json:"credential,omitempty"`
}

func (s *Server) info(h portrait.Handle) instanceInfo {
	in := instanceInfo{IDInstance: int64(h.ID()), TypeInstance: h.Type(), Engine: h.Engine(), APIURL: s.apiURL(h.Type())}
	in.Sandbox = s.Sandbox != nil && h.Engine() == s.Sandbox.Engine()
	if s.Admin != nil {
		in.Credential = s.Admin.engine(h.Engine()).Credential
	}
	if err := h.Err(); err != nil {
		in.Error = err.Error()
	} else {
		in.StateInstance = h.State()
		in.Wid = h.Account().Wid
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
	all, err := s.Instances.List(r.Context())
	if err != nil {
		s.Log.Error("listing instances", "err", err)
		s.fail(w, r, newError(http.StatusInternalServerError, "Internal Server Error: the instances could not be listed"))
		return
	}
	out := []instanceInfo{}
	if s.Cluster == nil {
		for _, h := range all {
			out = append(out, s.info(h))
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	// In a cluster each node knows the state of the instances it serves:
	// ?owned=1 lists those, and the node asked for the whole list gathers
	// the others' from them.
	if r.URL.Query().Get("owned") == "1" {
		for _, h := range all {
			if s.Cluster.Owns(h.ID()) {
				out = append(out, s.info(h))
			}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	elsewhere := map[int64]instanceInfo{}
	for _, body := range s.Cluster.Gather(r, "/admin/instances?owned=1") {
		var theirs []instanceInfo
		if json.Unmarshal(body, &theirs) == nil {
			for _, in := range theirs {
				elsewhere[in.IDInstance] = in
			}
		}
	}
	for _, h := range all {
		in, ok := elsewhere[int64(h.ID())]
		if s.Cluster.Owns(h.ID()) || !ok {
			in = s.info(h) // "starting" while no node serves it
		}
		in.APITokenInstance = ""
		out = append(out, in)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminCreateInstance(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TypeInstance string `json:"typeInstance"`
		Engine       string `json:"engine"`
		// Credential is the secret the engine needs, if any (maxbot: the
		// bot token).
		Credential string `json:"credential"`
	}
	body, e := readJSONBody(w, r)
	if e != nil {
		s.fail(w, r, e)
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			s.fail(w, r, validation(`the body must be {"typeInstance": "whatsapp"|"v3", "engine": "<engine name>"}; both are optional`))
			return
		}
	}
	if in.TypeInstance == "" {
		in.TypeInstance = string(portrait.TypeWhatsApp)
	}
	t, err := instance.ParseType(in.TypeInstance)
	if err != nil {
		s.fail(w, r, validation("%v", err))
		return
	}
	h, token, err := s.Instances.Create(r.Context(), t, in.Engine)
	if err != nil {
		s.fail(w, r, createError(err))
		return
	}
	if in.Credential != "" {
		if err := s.Instances.SetCredential(r.Context(), h.ID(), in.Credential); err != nil {
			if derr := s.Instances.Delete(r.Context(), h.ID()); derr != nil {
				s.Log.Warn("removing an instance whose credential was refused", "idInstance", int64(h.ID()), "err", derr)
			}
			s.fail(w, r, credentialError(err))
			return
		}
	}
	info := s.info(h)
	info.APITokenInstance = token
	writeJSON(w, http.StatusCreated, info)
}

// adminInstanceOf returns the instance the path names, or answers 400/404.
func (s *Server) adminInstanceOf(w http.ResponseWriter, r *http.Request) (portrait.Handle, bool) {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, validation("the instance id must be a number"))
		return nil, false
	}
	h, err := s.Instances.Get(r.Context(), portrait.InstanceID(n))
	if err != nil {
		s.fail(w, r, newError(http.StatusNotFound, "Not Found: no instance %d", n))
		return nil, false
	}
	return h, true
}

func (s *Server) adminDeleteInstance(w http.ResponseWriter, r *http.Request) {
	h, ok := s.adminInstanceOf(w, r)
	if !ok {
		return
	}
	if err := s.Instances.Delete(r.Context(), h.ID()); err != nil {
		s.fail(w, r, internal(err, "the instance could not be deleted"))
		return
	}
	s.limits.forget(h.ID())
	writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

// adminCredential gives an instance the secret its engine needs:
// {"credential": "…"} (an empty one forgets it).
func (s *Server) adminCredential(w http.ResponseWriter, r *http.Request) {
	h, ok := s.adminInstanceOf(w, r)
	if !ok {
		return
	}
	body, e := readJSONBody(w, r)
	if e != nil {
		s.fail(w, r, e)
		return
	}
	var in struct {
		Credential *string `json:"credential"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Credential == nil {
		s.fail(w, r, validation(`the body must be {"credential": "<secret>"}; an empty secret forgets the stored one`))
		return
	}
	if err := s.Instances.SetCredential(r.Context(), h.ID(), *in.Credential); err != nil {
		s.fail(w, r, credentialError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"saved": true})
}

// createError maps a failed instance creation: the store's failure is the
// server's (500, try again), anything else refused the request (400).
func createError(err error) *apiError {
	if errors.Is(err, portrait.ErrStorage) {
		return internal(err, "the instance could not be stored; try again later")
	}
	return validation("%v", err)
}

// credentialError is the reply to a credential that was not accepted, or
// not stored.
func credentialError(err error) *apiError {
	if errors.Is(err, portrait.ErrStorage) {
		return internal(err, "the credential could not be stored; try again later")
	}
	return validation("the credential was not accepted: %v", err)
}

func (s *Server) adminRotateToken(w http.ResponseWriter, r *http.Request) {
	h, ok := s.adminInstanceOf(w, r)
	if !ok {
		return
	}
	id := h.ID()
	token, err := s.Instances.RotateToken(r.Context(), id)
	if err != nil {
		s.fail(w, r, internal(err, "the token could not be replaced"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"idInstance": int64(id), "apiTokenInstance": token})
}

// sandboxFor answers 404 unless the instance runs on the sandbox engine.
func (s *Server) sandboxFor(w http.ResponseWriter, r *http.Request) (portrait.InstanceID, bool) {
	h, ok := s.adminInstanceOf(w, r)
	if !ok {
		return 0, false
	}
	if s.Sandbox == nil || h.Engine() != s.Sandbox.Engine() {
		s.fail(w, r, newError(http.StatusNotFound, "Not Found: instance %d does not run on the sandbox engine", h.ID()))
		return 0, false
	}
	return h.ID(), true
}

func (s *Server) adminSandboxWorld(w http.ResponseWriter, r *http.Request) {
	id, ok := s.sandboxFor(w, r)
	if !ok {
		return
	}
	world, err := s.Sandbox.World(r.Context(), id)
	if err != nil {
		s.fail(w, r, internal(err, "the sandbox world could not be read"))
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
			s.fail(w, r, e)
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
			s.fail(w, r, e)
			return
		}
		var in struct {
			SandboxUpdate
			Picture string `json:"picture"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			s.fail(w, r, validation(`the body must be JSON such as {"picture": "<base64>"} or {"hidden": true}: %v`, err))
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
				s.fail(w, r, validation("'picture' must be base64 (or a data: URL): %v", err))
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
		s.fail(w, r, newError(status, "%v", err))
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
		s.fail(w, r, newError(http.StatusBadRequest, "%v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"scanned": true})
}

// selfChat is the chat id of the account an instance is linked to; zero
// when it is not linked.
func selfChat(h portrait.Handle) portrait.ChatID {
	self, err := portrait.ParseChatID(h.Type(), h.Account().Wid)
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
func (s *Server) own(ctx context.Context, h portrait.Handle) ownPicture {
	if h.Ready() != nil {
		return ownPicture{}
	}
	self := selfChat(h)
	if self.IsZero() {
		return ownPicture{}
	}
	av, err := s.Avatars.Get(ctx, h, self)
	if err != nil {
		return ownPicture{}
	}
	return ownPicture{av.URL, s.Avatars.PreviewURL(av.Key)}
}

// adminInstance describes one instance with its own picture.
func (s *Server) adminInstance(w http.ResponseWriter, r *http.Request) {
	h, ok := s.adminInstanceOf(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct {
		instanceInfo
		Avatar ownPicture `json:"avatar"`
	}{s.info(h), s.own(r.Context(), h)})
}

// adminQR is the qr method for the console.
func (s *Server) adminQR(w http.ResponseWriter, r *http.Request) {
	s.adminMethod("qr")(w, r)
}

// adminProfilePicture sets the account's own picture from the console: a
// multipart "file", as setProfilePicture takes it. The reply holds the
// processed 640 and 96 versions before and after.
func (s *Server) adminProfilePicture(w http.ResponseWriter, r *http.Request) {
	h, ok := s.adminInstanceOf(w, r)
	if !ok {
		return
	}
	up, e := readUpload(w, r, s.cfg.MaxUploadBytes, s.cfg.UploadSetting)
	if e == nil {
		e = up.requireFile()
	}
	if e == nil {
		if err := h.Ready(); err != nil {
			e = engineError(err, "set the profile picture")
		}
	}
	if e != nil {
		s.fail(w, r, e)
		return
	}
	before := s.own(r.Context(), h)
	self := selfChat(h)
	av, err := s.Avatars.Set(r.Context(), h, portrait.ChatID{}, self, up.file)
	if err != nil {
		e := engineError(err, "set the profile picture")
		if errors.Is(err, portrait.ErrUpstreamRateLimit) {
			e.message = msgRateOverlimit + ": the messenger allows one picture change per 10 s; try again in a few seconds"
		}
		s.fail(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Before ownPicture `json:"before"`
		After  ownPicture `json:"after"`
	}{before, ownPicture{av.URL, s.Avatars.PreviewURL(av.Key)}})
}
