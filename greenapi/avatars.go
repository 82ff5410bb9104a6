package greenapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/avatar"
	"github.com/portrait-dev/portrait/picture"
)

// getAvatar: POST {"chatId": …} → {"urlAvatar", "available"}.
func (s *Server) getAvatar(q *request) *apiError {
	chat, e := readChat(q)
	if e != nil {
		return e
	}
	av, err := s.Avatars.Get(q.ctx(), q.h, chat)
	if err != nil {
		if q.ctx().Err() != nil {
			return nil // the client has gone
		}
		return engineError(err, "look up the picture of "+chat.String())
	}
	writeRaw(q.w, http.StatusOK, appendAvatarReply(make([]byte, 0, 48+len(av.URL)), av.URL, av.Available))
	return nil
}

// mirror answers getAvatar on a node of a cluster that does not own the
// instance: from the answer it learned from the owner for that chat, else
// by forwarding the request to the owner and learning its answer. The
// owner announces every change of its answers (avatar.Options.Changed),
// and the node then forgets what it learned. done is false when this
// node became the owner meanwhile: the request is to be served here.
func (s *Server) mirror(q *request, m *Method) (done bool, e *apiError) {
	id := q.h.ID()
	body, e := readJSONBody(q.w, q.r)
	if e != nil {
		return true, e
	}
	chat, e := decodeChatRequest(body, q.h.Type())
	if e != nil {
		return true, e
	}
	if av, ok := s.Avatars.Cached(id, chat.String()); ok {
		if ok, wait := s.limits.allow(id, m.Name, s.cfg.Now(), q.w.Header().Set); !ok {
			return true, s.rateLimited(m, wait)
		}
		writeRaw(q.w, http.StatusOK, appendAvatarReply(make([]byte, 0, 48+len(av.URL)), av.URL, av.Available))
		return true, nil
	}
	mark := s.Avatars.Mark(id)
	q.r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &replyRecorder{statusWriter: statusWriter{ResponseWriter: q.w}}
	done, e = s.forward(rec, q.r, id, false)
	if !done {
		q.r.Body = io.NopCloser(bytes.NewReader(body))
		return false, nil
	}
	if e == nil && rec.status() == http.StatusOK {
		var reply avatarReply
		if json.Unmarshal(rec.body.Bytes(), &reply) == nil {
			s.Avatars.Learn(id, chat.String(), avatar.Avatar{URL: reply.URLAvatar, Available: reply.Available}, mark)
		}
	}
	return true, e
}

// replyRecorder passes a reply on and keeps its status and the start of
// its body.
type replyRecorder struct {
	statusWriter
	body bytes.Buffer
}

func (r *replyRecorder) Write(b []byte) (int, error) {
	if r.body.Len() < 4096 {
		r.body.Write(b[:min(len(b), 4096-r.body.Len())])
	}
	return r.statusWriter.Write(b)
}

// appendAvatarReply appends getAvatar's reply, byte for byte what
// json.Marshal(avatarReply{…}) gives, without reflection for the usual URL
// (printable ASCII that JSON leaves unescaped).
func appendAvatarReply(b []byte, url string, available bool) []byte {
	for i := 0; i < len(url); i++ {
		if c := url[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			out, _ := json.Marshal(avatarReply{URLAvatar: url, Available: available})
			return append(b, out...)
		}
	}
	b = append(b, `{"urlAvatar":"`...)
	b = append(b, url...)
	if available {
		return append(b, `","available":true}`...)
	}
	return append(b, `","available":false}`...)
}

// readChat reads and validates the body of getAvatar and getAvatarAsync.
func readChat(q *request) (portrait.ChatID, *apiError) {
	body, e := readJSONBody(q.w, q.r)
	if e != nil {
		return portrait.ChatID{}, e
	}
	return decodeChatRequest(body, q.h.Type())
}

// setProfilePicture: multipart "file", or JSON {"urlFile"} → the account's
// own picture.
func (s *Server) setProfilePicture(q *request) *apiError {
	up, e := s.readPicture(q)
	if e != nil {
		return e
	}
	av, err := s.Avatars.Set(q.ctx(), q.h, portrait.ChatID{}, selfChat(q.h), up.file)
	if reason, ok := refusal(err); ok {
		writeJSON(q.w, http.StatusOK, setProfilePictureReply{Reason: &reason})
		return nil
	}
	if err != nil {
		return engineError(err, "set the profile picture")
	}
	reply := setProfilePictureReply{URLAvatar: &av.URL, SetProfilePicture: true}
	if q.h.Type() == portrait.TypeMAX {
		empty := ""
		reply.Reason = &empty
	}
	writeJSON(q.w, http.StatusOK, reply)
	return nil
}

// setGroupPicture: multipart "file" and "groupId" (WhatsApp's name) or
// "chatId" (MAX's name), either name on either route; or the same as JSON
// with "urlFile" instead of the file.
func (s *Server) setGroupPicture(q *request) *apiError {
	up, e := s.readPicture(q, "groupId", "chatId")
	if e != nil {
		return e
	}
	group, e := parseGroup(q.h.Type(), up.fields["groupId"], up.fields["chatId"],
		"send the group id as the multipart field 'groupId' (or 'chatId')")
	if e != nil {
		return e
	}
	fail := func(reason string) *apiError {
		writeJSON(q.w, http.StatusOK, setGroupPictureReply{Reason: reason})
		return nil
	}
	if len(up.file) == 0 {
		return newError(http.StatusBadRequest, msgFileEmpty)
	}
	if group.Kind() != portrait.KindGroup {
		// A well-formed id that is not a group: GREEN-API answers as for an
		// unknown group, and nothing is decoded for it.
		if _, err := picture.Sniff(up.file); err != nil {
			return engineError(err, "set the group picture")
		}
		return fail(reasonTimedOut)
	}
	av, err := s.Avatars.Set(q.ctx(), q.h, group, portrait.ChatID{}, up.file)
	if err == nil {
		writeJSON(q.w, http.StatusOK, setGroupPictureReply{SetGroupPicture: true, URLAvatar: &av.URL})
		return nil
	}
	if reason, ok := refusal(err); ok {
		return fail(reason)
	}
	return engineError(err, "set the picture of group "+group.String())
}

// refusal is the reason of a set…/remove…Picture reply of false, when err
// is the messenger's refusal rather than a failure: its rate limit, an
// unknown group (GREEN-API's "Timed Out"), the account not being a member
// or an admin, a change it refused (its text says why, as the engine words
// it for people), or one it cannot make.
func refusal(err error) (string, bool) {
	switch {
	case errors.Is(err, portrait.ErrUpstreamRateLimit):
		return msgRateOverlimit, true
	case errors.Is(err, portrait.ErrGroupNotFound):
		return reasonTimedOut, true
	case errors.Is(err, portrait.ErrNotGroupMember):
		return portrait.ErrNotGroupMember.Error(), true
	case errors.Is(err, portrait.ErrNotGroupAdmin):
		return portrait.ErrNotGroupAdmin.Error(), true
	case errors.Is(err, portrait.ErrRefused), errors.Is(err, portrait.ErrUnsupported):
		return err.Error(), true
	}
	return "", false
}

// parseGroup reads the group of a group method from its groupId (WhatsApp's
// name) or chatId (MAX's name); how says how to send it when neither is
// there.
func parseGroup(t portrait.InstanceType, groupID, chatID, how string) (portrait.ChatID, *apiError) {
	raw, field := strings.TrimSpace(groupID), "groupId"
	if raw == "" {
		raw, field = strings.TrimSpace(chatID), "chatId"
	}
	if raw == "" {
		return portrait.ChatID{}, validation("'groupId' is required: %s", how)
	}
	group, err := portrait.ParseChatID(t, raw)
	if err != nil {
		return portrait.ChatID{}, validation("'%s' %s", field, groupFormat(t))
	}
	return group, nil
}

// reasonTimedOut is GREEN-API's reason for an unknown or wrong group id.
const reasonTimedOut = "Timed Out"

func groupFormat(t portrait.InstanceType) string {
	if t == portrait.TypeMAX {
		return "must be a MAX group id: a negative number such as -10000000000000"
	}
	return "must be a group id such as 120363043968066561@g.us"
}

// serveAvatar serves a stored picture at its stable URL.
func (s *Server) serveAvatar(w http.ResponseWriter, r *http.Request) {
	blob, key, err := s.Avatars.Open(r.Context(), r.PathValue("file"))
	if err != nil {
		if !errors.Is(err, portrait.ErrNotFound) {
			s.Log.Warn("opening avatar blob", "err", err)
		}
		s.fail(w, r, newError(http.StatusNotFound, "Not Found: no picture is stored at this address"))
		return
	}
	defer blob.Close()
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("ETag", strconv.Quote(key))
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", noModTime, blob)
}

// noModTime makes http.ServeContent skip Last-Modified: the ETag names the
// content exactly.
var noModTime time.Time

// removeProfilePicture: the account's own picture is removed →
// {"removeProfilePicture": true, "reason": ""}; an avatarChanged with
// removed: true follows.
func (s *Server) removeProfilePicture(q *request) *apiError {
	if _, e := readJSONBody(q.w, q.r); e != nil {
		return e
	}
	self := selfChat(q.h)
	err := s.Avatars.Remove(q.ctx(), q.h, portrait.ChatID{}, self)
	if reason, ok := refusal(err); ok {
		writeJSON(q.w, http.StatusOK, removeProfilePictureReply{Reason: reason})
		return nil
	}
	if err != nil {
		return engineError(err, "remove the profile picture")
	}
	if !self.IsZero() {
		s.Notify.PictureChanged(q.h, portrait.PictureChange{Chat: self, Kind: portrait.SubjectSelf, Removed: true, At: s.cfg.Now()})
	}
	writeJSON(q.w, http.StatusOK, removeProfilePictureReply{RemoveProfilePicture: true})
	return nil
}

// removeGroupPicture: {"groupId"|"chatId"} → {"removeGroupPicture": true,
// "reason": ""}, or false with the reason as setGroupPicture gives it.
func (s *Server) removeGroupPicture(q *request) *apiError {
	body, e := readJSONBody(q.w, q.r)
	if e != nil {
		return e
	}
	var in groupRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return validation(`the request body must be {"groupId": "120363043968066561@g.us"} (or "chatId")`)
	}
	group, e := parseGroup(q.h.Type(), in.GroupID, in.ChatID, "the group whose picture to remove (or 'chatId')")
	if e != nil {
		return e
	}
	fail := func(reason string) *apiError {
		writeJSON(q.w, http.StatusOK, removeGroupPictureReply{Reason: reason})
		return nil
	}
	if group.Kind() != portrait.KindGroup {
		return fail(reasonTimedOut)
	}
	err := s.Avatars.Remove(q.ctx(), q.h, group, portrait.ChatID{})
	if err == nil {
		s.Notify.PictureChanged(q.h, portrait.PictureChange{Chat: group, Kind: portrait.SubjectGroup, Removed: true, At: s.cfg.Now()})
		writeJSON(q.w, http.StatusOK, removeGroupPictureReply{RemoveGroupPicture: true})
		return nil
	}
	if reason, ok := refusal(err); ok {
		return fail(reason)
	}
	return engineError(err, "remove the picture of group "+group.String())
}
