package greenapi

import (
	"net/http"

	"github.com/portrait-dev/portrait"
)

var (
	get     = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	post    = []string{http.MethodPost}
	delete_ = []string{http.MethodDelete}
)

// apiMethods lists every GREEN-API method portrait serves under
// [/v3]/waInstance{idInstance}/{method}/{apiTokenInstance}. Method names are
// matched case-insensitively.
func apiMethods() []*method {
	return []*method{
		// Avatars (contract §2).
		{name: "getAvatar", verbs: post, ready: true, handle: (*Server).getAvatar},
		{name: "setProfilePicture", verbs: post, ready: true, handle: (*Server).setProfilePicture},
		{name: "setGroupPicture", verbs: post, ready: true, handle: (*Server).setGroupPicture},

		{name: "getAvatarAsync", verbs: post, only: portrait.TypeWhatsApp, ready: true, handle: (*Server).getAvatarAsync},

		// Notifications (contract §4).
		{name: "receiveNotification", verbs: get, handle: (*Server).receiveNotification},
		{name: "deleteNotification", verbs: delete_, extra: true, handle: (*Server).deleteNotification},

		// Settings (contract §4).
		{name: "getSettings", verbs: get, handle: (*Server).getSettings},
		{name: "setSettings", verbs: post, handle: (*Server).setSettings},

		// Instance lifecycle (contract §5).
		{name: "getStateInstance", verbs: get, handle: (*Server).getStateInstance},
		{name: "getWaSettings", verbs: get, handle: (*Server).getWaSettings},
		{name: "getAccountSettings", verbs: get, handle: (*Server).getAccountSettings},
		{name: "qr", verbs: get, handle: (*Server).qr},
		{name: "getAuthorizationCode", verbs: post, handle: (*Server).getAuthorizationCode},
		{name: "logout", verbs: get, handle: (*Server).logout},
		{name: "reboot", verbs: get, handle: (*Server).reboot},
	}
}

// routes registers everything that is not a GREEN-API call.
func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.Metrics.Handler())

	// Stable avatar URLs: GET /avatars/{key}.jpg and /avatars/{key}-96.jpg.
	mux.HandleFunc("GET /avatars/{file}", s.serveAvatar)

	// Admin API; every handler is wrapped by s.admin, which answers 404
	// unless an admin token is configured and 401 unless it is presented.
	mux.Handle("GET /admin/instances", s.admin(s.adminListInstances))
	mux.Handle("POST /admin/instances", s.admin(s.adminCreateInstance))
	mux.Handle("GET /admin/instances/{id}", s.admin(s.adminInstance))
	mux.Handle("DELETE /admin/instances/{id}", s.admin(s.adminDeleteInstance))
	mux.Handle("GET /admin/instances/{id}/qr", s.admin(s.adminQR))
	mux.Handle("POST /admin/instances/{id}/profile-picture", s.admin(s.adminProfilePicture))
	mux.Handle("POST /admin/instances/{id}/rotate-token", s.admin(s.adminRotateToken))
	mux.Handle("GET /admin/instances/{id}/sandbox/world", s.admin(s.adminSandboxWorld))
	mux.Handle("POST /admin/instances/{id}/sandbox/chats/{chat}", s.admin(s.adminSandboxUpdate))
	mux.Handle("POST /admin/instances/{id}/sandbox/scan", s.admin(s.adminSandboxScan))

	if s.Console != nil {
		// The console page checks the admin token itself (it shows a
		// sign-in form instead of a 401).
		mux.Handle("/console", s.Console)
		mux.Handle("/console/", s.Console)
	}

	mux.HandleFunc("/", s.notFound)
}
