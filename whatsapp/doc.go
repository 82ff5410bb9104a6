// Package whatsapp is portrait's real WhatsApp engine: each instance is a
// linked device (like WhatsApp Web) driven by go.mau.fi/whatsmeow. The
// devices' keys live in whatsmeow's tables (whatsmeow_*) in portrait's own
// SQLite database; each instance's device JID is kept in its portrait.KV
// under "whatsapp/device". Many instances run in one process, one whatsmeow
// client each.
//
// The engine talks to whatsmeow only through a narrow interface (waClient:
// connect, disconnect, the QR channel, PairPhone, Logout, the picture
// queries and event handlers). The state machine, reconnection, linking,
// event handling and the mapping of WhatsApp's answers below are this
// package's own code, tested with a substitute at that interface.
//
// # States
//
//	no device JID in the KV, or logged out          notAuthorized
//	linked, connecting or reconnecting              starting
//	linked, connected and logged in (Connected)     authorized
//	scanned / pairing code entered (PairSuccess)    authorized (JID stored in the KV)
//	events.TemporaryBan                             blocked, retried when the ban expires
//	events.ClientOutdated                           blocked, retried every ReconnectMax
//	events.StreamReplaced                           starting, retried after ReconnectMax
//	events.LoggedOut, device gone from the store    notAuthorized (JID forgotten)
//
// Every change is reported once to the sink. whatsmeow's own
// auto-reconnect is off: the session's supervisor reconnects a linked
// device, the first connection included, with exponential backoff from
// Options.ReconnectMin to Options.ReconnectMax (±25 % jitter). The backoff
// is reset once a connection has stayed logged in for ReconnectMax, so a
// connection lost after a while is made again at once while a server that
// drops every connection is not hammered. A connection that does not log in
// within 30 s, or whose keep-alives fail for whatsmeow.KeepAliveMaxFailTime,
// is dropped and made again. ClientOutdated is blocked rather than starting
// because waiting does not help: portrait (whatsmeow) must be updated.
//
// An unlinked instance does not connect at all until a QR code or a pairing
// code is asked for; that starts a linking attempt on a new device, whose
// codes rotate as WhatsApp rotates them (QR returns the latest) and which
// ends after about 160 s; the next request starts a new one. QR and
// PairingCode wait at most Options.RequestTimeout for WhatsApp's first code.
// A failed attempt is reported, not retried, for ReconnectMin.
//
// # Picture lookups
//
// Session.Picture asks for the full image (not the preview) with
// GetProfilePictureInfo and, unless the picture is unchanged, downloads it
// once: https only, from a host under whatsapp.net, at most
// Options.MaxPictureBytes, within Options.DownloadTimeout, redirects only
// to the same host.
//
//	whatsmeow answer                              Picture returns
//	info                                          RemotePicture{ID, Data, URL}
//	nil info, nil error, existingID given         RemotePicture{ID: existingID, Unchanged: true}
//	info.ID == existingID                         RemotePicture{ID: existingID, Unchanged: true}
//	ErrProfilePictureUnauthorized (401)           portrait.ErrPictureHidden
//	ErrProfilePictureNotSet (404, 204)            portrait.ErrPictureNotSet (also: no account on the number)
//	ErrIQRateOverLimit (429)                      portrait.ErrUpstreamRateLimit
//	ErrIQTimedOut, deadline (RequestTimeout)      portrait.ErrUpstreamTimeout
//	ErrNotConnected, DisconnectedError            portrait.ErrStarting
//	ErrNotLoggedIn                                portrait.ErrNotAuthorized
//	session starting / not linked                 portrait.ErrStarting / portrait.ErrNotAuthorized
//	session blocked                               portrait.ErrNotAuthorized (with the reason)
//	CDN: too large / refused URL / slow           ErrPictureTooLarge / ErrRefusedURL / portrait.ErrUpstreamTimeout
//
// Chat ids map to JIDs as "<phone>@c.us" → <phone>@s.whatsapp.net,
// "<n>@lid" → <n>@lid, "…@g.us" → …@g.us; the account's own number is its
// own JID. Communities must be asked with IsCommunity: a group that answers
// 401 is asked again as a community (and remembered as one when that
// works), instead of a GetGroupInfo before every group lookup.
//
// # Setting pictures
//
// Session.SetPicture uses SetGroupPhoto; the zero ChatID (or the own
// number) sets the account's own picture (empty JID).
//
//	whatsmeow answer                              SetPicture returns
//	picture id                                    the id
//	ErrIQRateOverLimit (429)                      portrait.ErrUpstreamRateLimit
//	ErrInvalidImageFormat (406)                   a wrapped error (not a JPEG WhatsApp accepts)
//	ErrNotInGroup                                 portrait.ErrNotGroupMember
//	ErrGroupNotFound, 404 item-not-found          portrait.ErrGroupNotFound
//	401 / 403 on a group                          GetGroupInfo decides: not a member → ErrNotGroupMember,
//	                                              no such group → ErrGroupNotFound, else ErrNotGroupAdmin
//	time-out on a group                           GetGroupInfo decides as above; it times out too →
//	                                              ErrGroupNotFound + ErrUpstreamTimeout (GREEN-API's "Timed Out");
//	                                              the group answers → ErrUpstreamTimeout
//	time-out on the own picture                   portrait.ErrUpstreamTimeout
//
// # Events
//
// whatsmeow's events.Picture becomes a portrait.PictureChange: groups as
// "…@g.us" (Kind group, Author as "<phone>@c.us", or "<n>@lid" when the
// phone number is not known), contacts as "<phone>@c.us" (a LID is turned
// into the phone number when the store knows it), and the account itself
// (a change made on another of its devices, which carries no picture id)
// as Kind self with the own "<phone>@c.us". Events reach the sink from a
// per-session goroutine, never from whatsmeow's.
//
// # Logs
//
// whatsmeow's logs go to the engine's slog.Logger, except its protocol
// dumps (the "Send" and "Recv" loggers) and the QR channel's debug lines,
// which hold the codes.
package whatsapp
