package greenapi

import (
	"net/http"
	"slices"

	"github.com/portrait-dev/portrait"
)

var (
	get     = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	post    = []string{http.MethodPost}
	delete_ = []string{http.MethodDelete}

	whatsAppOnly = []portrait.InstanceType{portrait.TypeWhatsApp}
)

// Method is one GREEN-API method portrait serves under
// [/v3]/waInstance{idInstance}/{method}/{apiTokenInstance}.
type Method struct {
	// Name is the canonical wire name; calls match it case-insensitively.
	Name string
	// Verbs are the HTTP methods it takes.
	Verbs []string
	// Types are the instance types (route forms) it is served for; nil
	// means every type.
	Types []portrait.InstanceType
	// Extra: it takes one more path segment (deleteNotification's
	// receiptId).
	Extra bool
	// Ready: it needs a linked account (400 "starting" or "not
	// authorized" otherwise).
	Ready bool
	// Local: any node of a cluster answers it from the shared store (it
	// needs no session); other methods are forwarded to the instance's
	// node.
	Local bool
	// Mirrored: a node of a cluster that does not own the instance
	// answers it from what it learned from the owner's earlier answers,
	// and forwards it only when it knows none (getAvatar).
	Mirrored bool
	// Rate is GREEN-API's limit in requests per second per instance; 0 is
	// unlimited. Configuration may override it.
	Rate float64
	// Request is the type of its body (a zero value): a JSON body, or a
	// multipart form whose fields are tagged `form`; nil when it takes no
	// body.
	Request any
	// Reply is the type of its 200 reply (a zero value); nil when the
	// reply body is empty.
	Reply any

	handle func(s *Server, q *request) *apiError
}

func (m *Method) serves(t portrait.InstanceType) bool {
	return m.Types == nil || slices.Contains(m.Types, t)
}

// Methods lists every GREEN-API method portrait serves: the one table the
// dispatcher, the rate limits and the API documentation are made from.
var Methods = []*Method{
	// Avatars (contract §2).
	{Name: "getAvatar", Mirrored: true, Verbs: post, Ready: true, Rate: 10, Request: chatRequest{}, Reply: avatarReply{}, handle: (*Server).getAvatar},
	{Name: "setProfilePicture", Verbs: post, Ready: true, Rate: 0.1, Request: pictureUpload{}, Reply: setProfilePictureReply{}, handle: (*Server).setProfilePicture},
	{Name: "setGroupPicture", Verbs: post, Ready: true, Rate: 1, Request: groupPictureUpload{}, Reply: setGroupPictureReply{}, handle: (*Server).setGroupPicture},
	{Name: "getAvatars", Verbs: post, Ready: true, Rate: 10, Request: getAvatarsRequest{}, Reply: []avatarsEntry{}, handle: (*Server).getAvatars},
	{Name: "removeProfilePicture", Verbs: post, Ready: true, Rate: 0.1, Reply: removeProfilePictureReply{}, handle: (*Server).removeProfilePicture},
	{Name: "removeGroupPicture", Verbs: post, Ready: true, Rate: 1, Request: groupRequest{}, Reply: removeGroupPictureReply{}, handle: (*Server).removeGroupPicture},
	{Name: "getAvatarAsync", Verbs: post, Types: whatsAppOnly, Ready: true, Rate: 10, Request: chatRequest{}, handle: (*Server).getAvatarAsync},

	// Notifications (contract §4).
	{Name: "receiveNotification", Local: true, Verbs: get, Rate: 100, Reply: notificationReply{}, handle: (*Server).receiveNotification},
	{Name: "deleteNotification", Local: true, Verbs: delete_, Extra: true, Rate: 100, Reply: deleteNotificationReply{}, handle: (*Server).deleteNotification},

	// Settings (contract §4).
	{Name: "getSettings", Local: true, Verbs: get, Rate: 1, Reply: settingsDoc{}, handle: (*Server).getSettings},
	{Name: "setSettings", Local: true, Verbs: post, Rate: 1, Request: settingsDoc{}, Reply: saveSettingsReply{}, handle: (*Server).setSettings},

	// Instance lifecycle (contract §5).
	{Name: "getStateInstance", Verbs: get, Rate: 1, Reply: stateReply{}, handle: (*Server).getStateInstance},
	{Name: "getWaSettings", Verbs: get, Rate: 1, Reply: waSettingsReply{}, handle: (*Server).getWaSettings},
	{Name: "getAccountSettings", Verbs: get, Rate: 1, Reply: accountSettingsReply{}, handle: (*Server).getAccountSettings},
	{Name: "qr", Verbs: get, Rate: 3, Reply: qrReply{}, handle: (*Server).qr},
	{Name: "getAuthorizationCode", Verbs: post, Rate: 50, Request: authorizationCodeRequest{}, Reply: authorizationCodeReply{}, handle: (*Server).getAuthorizationCode},
	{Name: "logout", Verbs: get, Rate: 1, Reply: logoutReply{}, handle: (*Server).logout},
	{Name: "reboot", Verbs: get, Rate: 1, Reply: rebootReply{}, handle: (*Server).reboot},
}

// DefaultRateLimits returns GREEN-API's per-instance, per-method limits in
// requests per second, by canonical method name (its 2024 table;
// getAvatarAsync from the 2023 one).
func DefaultRateLimits() map[string]float64 {
	out := make(map[string]float64, len(Methods))
	for _, m := range Methods {
		out[m.Name] = m.Rate
	}
	return out
}

// routes registers everything that is not a GREEN-API call.
func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.Metrics.Handler(s.cfg.MetricsToken))
	mux.HandleFunc("GET /openapi.json", s.serveOpenAPI)
	mux.Handle("GET /docs", apiDocs())
	mux.Handle("GET /docs/{file}", apiDocs())

	// Stable avatar URLs: GET /avatars/{key}.jpg and /avatars/{key}-96.jpg.
	mux.HandleFunc("GET /avatars/{file}", s.serveAvatar)

	// Admin API; every handler is wrapped by s.admin, which answers 404
	// unless an admin token is configured and 401 unless it is presented.
	mux.Handle("GET /admin/instances", s.admin(s.adminListInstances))
	mux.Handle("POST /admin/instances", s.admin(s.adminCreateInstance))
	mux.Handle("GET /admin/instances/{id}", s.admin(s.owned(s.adminInstance)))
	mux.Handle("DELETE /admin/instances/{id}", s.admin(s.owned(s.adminDeleteInstance)))
	mux.Handle("GET /admin/instances/{id}/qr", s.admin(s.owned(s.adminQR)))
	mux.Handle("POST /admin/instances/{id}/profile-picture", s.admin(s.owned(s.adminProfilePicture)))
	mux.Handle("POST /admin/instances/{id}/rotate-token", s.admin(s.adminRotateToken))
	mux.Handle("POST /admin/instances/{id}/credential", s.admin(s.owned(s.adminCredential)))
	mux.Handle("GET /admin/instances/{id}/sandbox/world", s.admin(s.owned(s.adminSandboxWorld)))
	mux.Handle("POST /admin/instances/{id}/sandbox/chats/{chat}", s.admin(s.owned(s.adminSandboxUpdate)))
	mux.Handle("POST /admin/instances/{id}/sandbox/scan", s.admin(s.owned(s.adminSandboxScan)))
	// For the console (admin_console.go): the same validation and answers
	// as the GREEN-API methods, without the instance's token.
	mux.Handle("GET /admin/engines", s.admin(s.adminEngines))
	mux.Handle("GET /admin/instances/{id}/settings", s.admin(s.adminMethod("getSettings")))
	mux.Handle("POST /admin/instances/{id}/settings", s.admin(s.adminMethod("setSettings")))
	mux.Handle("POST /admin/instances/{id}/webhook-test", s.admin(s.adminWebhookTest))
	mux.Handle("GET /admin/instances/{id}/notifications", s.admin(s.owned(s.adminNotifications)))
	mux.Handle("POST /admin/instances/{id}/pairing-code", s.admin(s.owned(s.adminMethod("getAuthorizationCode"))))
	mux.Handle("POST /admin/instances/{id}/logout", s.admin(s.owned(s.adminMethod("logout"))))
	mux.Handle("POST /admin/instances/{id}/group-picture", s.admin(s.owned(s.adminMethod("setGroupPicture"))))
	mux.Handle("POST /admin/instances/{id}/avatar", s.admin(s.owned(s.adminCall(adminLookupMethod))))

	if s.Console != nil {
		// The console page checks the admin token itself (it shows a
		// sign-in form instead of a 401).
		mux.Handle("/console", s.Console)
		mux.Handle("/console/", s.Console)
	}
	if s.Console != nil && s.Admin != nil {
		// The server's root leads to the console.
		mux.Handle("GET /{$}", http.RedirectHandler("/console", http.StatusFound))
	}

	mux.HandleFunc("/", s.notFound)
}
