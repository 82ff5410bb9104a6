// Package maxweb is portrait's engine for MAX user accounts (VK's messenger,
// max.ru), over the protocol of MAX's web client: one WebSocket per
// instance to wss://ws-api.oneme.ru/websocket, JSON frames
// {"ver":11,"cmd":…,"seq":…,"opcode":…,"payload":{…}}.
//
// THE PROTOCOL IS UNOFFICIAL. MAX publishes no API for user accounts;
// everything here was learnt from public reverse-engineered clients
// (MaxApiTeam/PyMax, szonov/max, 50Bytes-dev/maxapi, KometTeam/kolibri)
// and may change without notice. Using it may break MAX's terms of use and
// get the account restricted. docs/max-smoke-test.md lists what was and
// was not verified against the real MAX.
//
// # Credentials
//
// A linked instance's device id and MAX login token are kept in its
// portrait.KV under "max/auth" (JSON), in portrait's own store. The token
// is the account's credential: it is never logged, and neither are QR
// links or upload addresses.
//
// # Connection
//
// A request gets the next sequence number; its reply (cmd 1, or cmd 3 /
// cmd 2 for an error) carries the same seq and opcode. Every other frame
// the server sends is a push (the public clients' notes disagree on the
// cmd pushes carry, 0 or 1, so it is not relied on). The handshake is opcode 6 (deviceId, the web client's
// userAgent with Options.AppVersion, which MAX gates logins on), then
// opcode 19 with the token. Opcode 1 is sent every Options.PingInterval; a
// ping without answer within Options.RequestTimeout drops the connection.
//
// # States
//
//	no token in the KV, or logged out                notAuthorized
//	token, connecting or reconnecting                starting
//	token, connected and logged in (opcode 19)       authorized
//	QR code scanned, token received (291) + 19 ok    authorized (token stored in the KV)
//	login refused with "login.token"                 notAuthorized (token forgotten)
//	handshake (opcode 6) refused                     blocked, retried every ReconnectMax
//	                                                 (most likely an outdated Options.AppVersion)
//
// Every change is reported once to the sink. A linked instance is
// reconnected with exponential backoff from ReconnectMin to ReconnectMax
// (±25 % jitter), reset once a connection stayed up for ReconnectMax.
// MAX's own signals of a banned or frozen account are not known, so the
// engine never reports yellowCard or suspended.
//
// An unlinked instance connects only when a QR code is asked for. The
// linking attempt asks for a code (288: qrLink, trackId, pollingInterval,
// expiresAt), polls it (289) every pollingInterval, and asks for a new
// code when it expires; QR returns the latest link, which is the text to
// encode in the QR image. Once the phone scans it, 291 gives the token and
// 19 logs in on the same connection. An account with a cloud password
// (two-step verification) answers 291 with a password challenge: QR then
// answers with an error saying to switch the cloud password off (as
// GREEN-API does); portrait does not take passwords. An attempt ends after
// Options.LinkTimeout; the next QR starts another. MAX links by QR code
// only: PairingCode fails with portrait.ErrUnsupported.
//
// Logout tells MAX (opcode 20) when connected and forgets the token and the
// device id in any case. Reboot drops the connection and connects again.
//
// # Picture lookups
//
// Users are asked with opcode 32 {contactIds}, groups with 48 {chatIds}.
// MAX's photoId is the picture id; a group's icon has none that any client
// shows, so its id is a hash of the icon's address (if MAX re-signs the
// address of an unchanged icon, it is downloaded again: never a wrong
// "unchanged"). An unchanged picture costs the one query and no download.
// Downloads are https only, from Options.PictureHosts (default oneme.ru,
// max.ru, okcdn.ru, mycdn.me and their subdomains; i.oneme.ru is where
// MAX's pictures are), at
// most Options.MaxPictureBytes, within Options.DownloadTimeout.
//
//	MAX's answer                                      Picture returns
//	user/chat with photoId or picture address         RemotePicture{ID, Data, URL}
//	same id as existingID                             RemotePicture{ID, Unchanged: true}, no download
//	user without photoId and address                  portrait.ErrPictureNotSet
//	group without icon                                portrait.ErrPictureNotSet
//	user missing from the reply, code *not.found*     portrait.ErrNoAccount
//	group missing, *not.found*, REMOVED/CLOSED        portrait.ErrGroupNotFound
//	user: code with denied/forbidden/access           portrait.ErrPictureHidden (unverified)
//	code with limit/too.many/flood                    portrait.ErrUpstreamRateLimit
//	no reply within RequestTimeout, code *timeout*    portrait.ErrUpstreamTimeout
//	connection lost meanwhile                         portrait.ErrStarting
//	code login.token                                  portrait.ErrNotAuthorized
//	session starting / not linked / blocked           portrait.ErrStarting / ErrNotAuthorized
//	too large / address not allowed / slow            ErrPictureTooLarge / ErrRefusedURL / ErrUpstreamTimeout
//
// MAX's error codes are not documented; the matching by words above is
// portrait's guess from the codes public clients show. No public client
// shows how MAX answers for a picture hidden by privacy settings: if it
// simply leaves the picture out, such a picture is reported as not set.
//
// # Setting pictures
//
// The own picture (chat zero, or the own user id): opcode 80 {count: 1,
// profile: true} gives an upload address; the JPEG is posted there as the
// multipart field "file" and the reply {"photos": {"<photoIds>": {"token"}}}
// gives a photo token; opcode 16 {firstName, lastName, photoToken,
// avatarType: "USER_AVATAR"} sets it (MAX wants the first name, which is
// taken from the profile). The new photoId is returned.
//
// Group pictures are EXPERIMENTAL: the same upload (profile: false), then
// the chat update opcode 55 {chatId, photoToken}, which no public client
// has been seen to use for icons. When MAX refuses, the chat (opcode 48)
// explains it:
//
//	refusal                                           SetPicture returns
//	code with limit/too.many                          portrait.ErrUpstreamRateLimit
//	*not.found*, or the chat is unknown               portrait.ErrGroupNotFound
//	the account is not among the participants        portrait.ErrNotGroupMember
//	not owner/admin, or owner-only icon changes       portrait.ErrNotGroupAdmin
//	anything else                                     ErrRefused with MAX's code and message
//
// # Events
//
// Pushes 131 (a contact changed), 135 (a chat changed) and 159 (the own
// profile changed on another device) become portrait.PictureChange
// (contact, group, self) when the picture id differs from the last one the
// session saw (the login's contacts and chats, lookups, earlier pushes):
// MAX sends these pushes for other changes too, such as a new name. A
// change from or to no picture is reported with Removed set accordingly.
// Changes made while the instance was not connected come with no push: at
// each new login the contacts and chats the login lists are compared with
// the picture ids seen before, and the differences are reported too.
// Events reach the sink from a per-session goroutine, in order.
package maxweb
