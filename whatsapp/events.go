package whatsapp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/portrait-dev/portrait"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// lookupTimeout bounds a LID → phone number lookup in the device store.
const lookupTimeout = 5 * time.Second

// handle receives the events of client c. It runs on whatsmeow's
// goroutines: it only takes s.mu briefly, hands slow work (disconnecting,
// the sink) to other goroutines, and ignores the events of a client that
// is no longer the session's.
func (s *session) handle(c waClient, evt any) {
	switch ev := evt.(type) {
	case *events.Picture:
		s.onPicture(c, ev)
	case *events.Connected:
		s.onConnected(c)
	case *events.Disconnected:
		s.onDisconnected(c)
	case *events.PairSuccess:
		s.onPaired(c, ev)
	case *events.PairError:
		s.log.Warn("whatsapp: linking failed after the code was scanned", "err", ev.Error)
	case *events.LoggedOut:
		s.onLoggedOut(c, ev)
	case *events.StreamReplaced:
		s.log.Warn("whatsapp: another connection took over this device (is a second portrait running on the same data?); reconnecting later",
			"retryIn", s.e.opts.ReconnectMax)
		s.hold(c, portrait.StateStarting, "", s.e.opts.ReconnectMax)
	case *events.TemporaryBan:
		wait := ev.Expire
		if wait <= 0 {
			wait = s.e.opts.ReconnectMax
		}
		s.log.Warn("whatsapp: the account is temporarily banned", "reason", ev.String(), "retryIn", wait)
		s.hold(c, portrait.StateBlocked, ev.String(), wait)
	case *events.ClientOutdated:
		s.log.Error("whatsapp: WhatsApp refuses this client version as outdated; update portrait", "retryIn", s.e.opts.ReconnectMax)
		s.hold(c, portrait.StateBlocked, "WhatsApp refuses this client version as outdated; update portrait", s.e.opts.ReconnectMax)
	case *events.ConnectFailure:
		s.log.Warn("whatsapp: WhatsApp refused the connection", "reason", ev.Reason.String(), "message", ev.Message)
		s.dropConnection(c)
	case *events.KeepAliveTimeout:
		if time.Since(ev.LastSuccess) >= whatsmeow.KeepAliveMaxFailTime {
			s.log.Warn("whatsapp: the connection stopped answering keep-alives; reconnecting", "lastSuccess", ev.LastSuccess)
			s.dropConnection(c)
		}
	case *events.StreamError:
		s.log.Warn("whatsapp: unknown stream error from WhatsApp", "code", ev.Code)
	}
}

// linkedClientLocked reports whether c is the client of the linked device.
// s.mu must be held.
func (s *session) linkedClientLocked(c waClient) bool {
	return !s.closed && s.cli == c && !s.jid.IsEmpty()
}

func (s *session) onConnected(c waClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.linkedClientLocked(c) {
		return
	}
	// The failure count and backoff stay until the connection proves
	// stable (see stableLocked).
	s.loggedInAt = time.Now()
	s.blocked = ""
	s.setStateLocked(portrait.StateAuthorized)
}

func (s *session) onDisconnected(c waClient) {
	s.mu.Lock()
	if !s.linkedClientLocked(c) {
		s.mu.Unlock()
		return // a linking attempt's: its QR channel ends it
	}
	if s.state != portrait.StateBlocked {
		s.setStateLocked(portrait.StateStarting)
	}
	s.mu.Unlock()
	s.wake()
}

// dropConnection disconnects c (the server refused or stopped answering)
// so that the supervisor connects again, with backoff.
func (s *session) dropConnection(c waClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.linkedClientLocked(c) {
		return
	}
	if s.state != portrait.StateBlocked {
		s.setStateLocked(portrait.StateStarting)
	}
	s.spawnLocked(func() {
		c.Disconnect()
		s.wake()
	})
}

// hold puts the session in state st and keeps the supervisor from
// connecting again for wait.
func (s *session) hold(c waClient, st portrait.State, why string, wait time.Duration) {
	s.mu.Lock()
	if !s.linkedClientLocked(c) {
		s.mu.Unlock()
		return
	}
	s.notBefore = time.Now().Add(wait)
	if st == portrait.StateBlocked {
		s.blocked = why
	}
	s.setStateLocked(st)
	s.mu.Unlock()
	s.wake()
}

// onPaired handles the phone's scan of a code (or entry of a pairing
// code): the new device is stored (whatsmeow saved its keys already), its
// JID goes to the KV and the session is authorized. whatsmeow reconnects by
// itself right after (stream error 515) and logs in.
func (s *session) onPaired(c waClient, ev *events.PairSuccess) {
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	s.mu.Lock()
	if s.closed || s.cli != c || !s.jid.IsEmpty() {
		s.mu.Unlock()
		return
	}
	s.jid = ev.ID
	s.blocked = ""
	s.resetBackoffLocked()
	s.dialedAt = time.Now()
	s.setStateLocked(portrait.StateAuthorized)
	s.mu.Unlock()
	s.log.Info("whatsapp: linked", "device", ev.ID.String(), "platform", ev.Platform)

	ctx, cancel := context.WithTimeout(context.Background(), s.e.storeTimeout)
	defer cancel()
	if err := s.e.saveJID(ctx, s.id, ev.ID); err != nil {
		s.log.Error("whatsapp: cannot remember the linked device; it will have to be linked again after a restart",
			"device", ev.ID.String(), "err", err)
	}
	s.wake()
}

// onLoggedOut handles the device's removal by the phone or by WhatsApp:
// whatsmeow has deleted it from the store already.
func (s *session) onLoggedOut(c waClient, ev *events.LoggedOut) {
	s.mu.Lock()
	jid := s.jid
	s.mu.Unlock()
	old, ok := s.unlinkState(c, jid)
	if !ok {
		return
	}
	s.log.Warn("whatsapp: logged out by the phone or by WhatsApp", "reason", ev.Reason.String(), "onConnect", ev.OnConnect)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Not on this goroutine: RemoveEventHandlers would deadlock in
	// whatsmeow's dispatch.
	s.spawnLocked(func() { s.afterUnlink(old, jid) })
}

// onPicture hands a picture change to the sink on whatsmeow's own event
// goroutine, and the client acks WhatsApp's notification only once it
// returns (SynchronousAck): the sink commits the change before WhatsApp
// learns it was received, so a crash in between makes WhatsApp send it
// again instead of losing it. The sink's commit takes milliseconds.
func (s *session) onPicture(c waClient, ev *events.Picture) {
	s.mu.Lock()
	ok := s.linkedClientLocked(c)
	own := s.jid
	sink := s.out.Sink()
	s.mu.Unlock()
	if !ok {
		return
	}
	if change, ok := s.pictureChange(c, own, ev); ok {
		sink.PictureChanged(s.id, change)
	}
}

// pictureChange turns whatsmeow's picture event into portrait's. own is the
// linked device's JID. Changes of chats portrait has no id for (channels,
// broadcast lists) are dropped.
func (s *session) pictureChange(c waClient, own types.JID, ev *events.Picture) (portrait.PictureChange, bool) {
	jid := ev.JID.ToNonAD()
	ownPN, ownLID := own.ToNonAD(), c.OwnLID().ToNonAD()
	change := portrait.PictureChange{Removed: ev.Remove, PictureID: ev.PictureID, At: ev.Timestamp}
	if change.At.IsZero() {
		change.At = time.Now()
	}
	switch {
	case jid.Server == types.GroupServer:
		change.Kind = portrait.SubjectGroup
		if !ev.Author.IsEmpty() {
			if a, err := chatOf(s.phoneOf(c, ev.Author.ToNonAD())); err == nil {
				change.Author = a.String()
			}
		}
	case sameUser(jid, ownPN) || sameUser(jid, ownLID):
		// Changed on another of the account's devices (whatsmeow gives no
		// picture id then) or by this one.
		change.Kind = portrait.SubjectSelf
		jid = ownPN
	case jid.Server == types.DefaultUserServer || jid.Server == types.HiddenUserServer:
		change.Kind = portrait.SubjectContact
		jid = s.phoneOf(c, jid)
	default:
		s.log.Debug("whatsapp: ignoring a picture change of a chat portrait has no id for", "jid", jid.String())
		return portrait.PictureChange{}, false
	}
	chat, err := chatOf(jid)
	if err != nil {
		s.log.Debug("whatsapp: ignoring a picture change", "jid", jid.String(), "err", err)
		return portrait.PictureChange{}, false
	}
	change.Chat = chat
	return change, true
}

// phoneOf returns the phone-number JID of a LID when the store knows it,
// else j itself: clients mostly ask by phone number.
func (s *session) phoneOf(c waClient, j types.JID) types.JID {
	if j.Server != types.HiddenUserServer {
		return j
	}
	ctx, cancel := context.WithTimeout(s.ctx, lookupTimeout)
	defer cancel()
	pn, err := c.PhoneForLID(ctx, j)
	if err != nil || pn.IsEmpty() {
		return j
	}
	return pn.ToNonAD()
}

func sameUser(a, b types.JID) bool {
	return !b.IsEmpty() && a.User == b.User && a.Server == b.Server
}

// chatJID turns a WhatsApp chat id into whatsmeow's JID.
func chatJID(chat portrait.ChatID) (types.JID, error) {
	s := chat.String()
	var server string
	switch {
	case strings.HasSuffix(s, "@c.us"):
		server = types.DefaultUserServer
	case strings.HasSuffix(s, "@lid"):
		server = types.HiddenUserServer
	case strings.HasSuffix(s, "@g.us"):
		server = types.GroupServer
	default:
		return types.EmptyJID, fmt.Errorf("%q is not a WhatsApp chat id", s)
	}
	return types.NewJID(chat.User(), server), nil
}

// chatOf turns whatsmeow's JID into a WhatsApp chat id.
func chatOf(j types.JID) (portrait.ChatID, error) {
	var suffix string
	switch j.Server {
	case types.DefaultUserServer:
		suffix = "@c.us"
	case types.HiddenUserServer:
		suffix = "@lid"
	case types.GroupServer:
		suffix = "@g.us"
	default:
		return portrait.ChatID{}, fmt.Errorf("no chat id for JIDs on %q", j.Server)
	}
	return portrait.ParseChatID(portrait.TypeWhatsApp, j.User+suffix)
}
