package maxweb

import (
	"time"

	"github.com/portrait-dev/portrait"
)

// onPush handles a push of any connection of the session. It runs on the
// connection's read goroutine: it parses, takes s.mu briefly and hands the
// changes to the outbox. Pushes of contacts (131), chats (135) and the own
// profile (159) become picture changes when the picture id differs from
// the last one seen (MAX pushes these for other changes too, such as a new
// name, which are not picture changes).
func (s *session) onPush(f frame) {
	contacts, chats, err := parsePush(f.Opcode, f.Payload)
	if err != nil {
		s.log.Debug("max: ignoring a push MAX sent", "opcode", f.Opcode, "err", err)
		return
	}
	if len(contacts) == 0 && len(chats) == 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.state != portrait.StateAuthorized {
		return
	}
	own := s.auth.UserID
	for _, ct := range contacts {
		id := string(ct.ID)
		chat, err := portrait.ParseChatID(portrait.TypeMAX, id)
		if err != nil || chat.Kind() != portrait.KindContact {
			continue
		}
		kind := portrait.SubjectContact
		if id == own {
			kind = portrait.SubjectSelf
			if f.Opcode == opNotifProfile || len(ct.Names) > 0 {
				s.profile = ct
			}
		}
		s.changeLocked(chat, kind, ct.pictureID(), now)
	}
	for _, ch := range chats {
		if ch.Type != "" && ch.Type != "CHAT" {
			continue // dialogs and channels: no group picture portrait serves
		}
		chat, err := portrait.ParseChatID(portrait.TypeMAX, string(ch.ID))
		if err != nil || chat.Kind() != portrait.KindGroup {
			continue
		}
		s.changeLocked(chat, portrait.SubjectGroup, ch.pictureID(), now)
	}
}

// changeLocked reports a picture change unless pictureID is the one last
// seen for chat. s.mu must be held.
func (s *session) changeLocked(chat portrait.ChatID, kind portrait.SubjectKind, pictureID string, at time.Time) {
	if old, ok := s.known[chat.String()]; ok && old == pictureID {
		return
	}
	s.rememberLocked(chat.String(), pictureID)
	change := portrait.PictureChange{Chat: chat, Kind: kind, PictureID: pictureID, Removed: pictureID == "", At: at}
	id := s.id
	s.out.Push(func(sink portrait.EventSink) { sink.PictureChanged(id, change) })
}
