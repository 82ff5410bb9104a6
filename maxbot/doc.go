// Package maxbot is portrait's engine for MAX instances that run on a MAX
// bot, through MAX's official Bot API (dev.max.ru/docs-api), for operators
// who have a bot token (MAX issues them to verified Russian legal entities
// only).
//
// # The token
//
// An instance's bot token is kept in its portrait.KV under KeyToken
// ("maxbot/token"), like a credential: it is set with Engine.SetToken (a
// running server: the session checks it at once) or with the function
// SetToken (the CLI, on the store; an open session reads it at its next
// Reboot). It is sent only in the Authorization header of calls to
// Options.BaseURL (query tokens are no longer accepted by MAX, and
// portrait never sends them), never to picture or other hosts, never
// logged; calls carrying it are not redirected. MAX's documentation asks
// clients to trust the Russian Ministry of Digital Development's root
// certificate: give it as Options.RootCAs (RootCAsFromPEM adds a PEM file
// to the system pool).
//
// # States
//
//	no token                                        notAuthorized (qr: an error saying to set the token)
//	token, GET /me not answered yet or failing      starting, retried with backoff (RetryMin…RetryMax)
//	GET /me answered with the bot                   authorized; Account().Wid is the bot's user id
//	any call answered 401                           notAuthorized until a new token is set (or Reboot)
//
// Logout forgets the token (the bot itself is untouched). Reboot reads the
// token from the KV again and checks it. PairingCode is unsupported.
//
// # Picture lookups
//
// What the Bot API shows a bot is limited, and the engine says so instead
// of inventing "no picture":
//
//	asked for                                       how                                     no access →
//	a group                                         GET /chats/{id}: icon.url               ErrNotVisible (404/403, status removed/left)
//	the bot itself                                  GET /me: full_avatar_url, avatar_url
//	a dialog partner                                GET /chats: dialog_with_user            ErrNotVisible
//	a member of a chat the bot administers          GET /chats/{id}/members?user_ids=…      ErrNotVisible
//	anyone else                                     —                                       ErrNotVisible
//
// ErrNotVisible wraps portrait.ErrUnsupported, with the reason in its
// text. A user is looked for in at most Options.ScanChats chats; where a
// user was found is remembered, so the next lookup costs one call. A
// visible chat or user without a picture address is
// portrait.ErrPictureNotSet. The picture id is a hash of the picture's
// address (the Bot API has no photo id); an unchanged address is
// RemotePicture{Unchanged: true} without a download. Downloads: https
// only, from the API's host or Options.PictureHosts, at most
// Options.MaxPictureBytes, within Options.DownloadTimeout. A closed chat is
// portrait.ErrGroupNotFound; 429 is portrait.ErrUpstreamRateLimit; no
// answer within Options.RequestTimeout is portrait.ErrUpstreamTimeout; 401
// is portrait.ErrNotAuthorized.
//
// # Setting pictures
//
// A group's icon: POST /uploads?type=image gives an upload address, the
// JPEG is posted there as the multipart field "data", and the reply's
// {"photos": …} goes into PATCH /chats/{id} {"icon": {"photos": …}}. While
// MAX answers "attachment.not.ready" (it processes uploads
// asynchronously), the PATCH is tried again, Options.NotReadyTries times,
// Options.NotReadyWait apart. A refusal is explained by the bot's
// membership (GET /chats/{id}/members/me):
//
//	refusal                                          SetPicture returns
//	404                                              portrait.ErrGroupNotFound
//	the bot is not a member                          portrait.ErrNotGroupMember
//	the bot is not an admin                          portrait.ErrNotGroupAdmin ("not an admin")
//	an admin without the right change_chat_info      portrait.ErrNotGroupAdmin ("change_chat_info")
//	still not ready after the tries, anything else   ErrRefused with the API's code and message
//	429                                              portrait.ErrUpstreamRateLimit
//
// The bot's own picture is refused (portrait.ErrUnsupported): today's Bot
// API documents no way to change it (PATCH /me with a photo appears only in
// an older schema); so are other users' pictures.
//
// # Rate limit
//
// MAX allows 30 requests a second per bot. The engine spaces each bot
// token's requests (uploads included) at 90 % of Options.RateLimit, shared
// by every instance on the same token; callers wait for their turn (with
// their contexts).
//
// # Events
//
// The Bot API has no event for a chat's icon changing (there is
// chat_title_changed, nothing for icons), and none for users' pictures:
// this engine never reports picture changes. Changed pictures are found
// when the cache entry expires and the next lookup sees a new address.
package maxbot
