package whatsapp

import (
	"context"
	"errors"
	"fmt"

	"github.com/portrait-dev/portrait"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// Picture fetches the full-size picture of chat ("<phone>@c.us", "<n>@lid",
// a group "…@g.us", or the account's own number) and downloads it once from
// WhatsApp's CDN. See the package documentation for how each answer of
// WhatsApp maps to portrait's outcomes.
func (s *session) Picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, error) {
	rp, err := s.picture(ctx, chat, existingID)
	if err != nil {
		return portrait.RemotePicture{}, fmt.Errorf("whatsapp: picture of %s: %w", chat.String(), err)
	}
	return rp, nil
}

func (s *session) picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, error) {
	c, _, err := s.ready()
	if err != nil {
		return portrait.RemotePicture{}, err
	}
	jid, err := chatJID(chat)
	if err != nil {
		return portrait.RemotePicture{}, err
	}
	info, err := s.pictureInfo(ctx, c, jid, existingID)
	if err != nil {
		return portrait.RemotePicture{}, pictureError(err)
	}
	switch {
	case info == nil && existingID != "":
		// whatsmeow's answer to "still picture existingID?": yes.
		return portrait.RemotePicture{ID: existingID, Unchanged: true}, nil
	case info == nil:
		return portrait.RemotePicture{}, errors.New("WhatsApp answered without a picture")
	case existingID != "" && info.ID == existingID:
		return portrait.RemotePicture{ID: existingID, Unchanged: true}, nil
	case info.URL == "":
		return portrait.RemotePicture{}, fmt.Errorf("WhatsApp gave picture %s without a URL", info.ID)
	}
	data, err := s.e.download(ctx, info.URL)
	if err != nil {
		return portrait.RemotePicture{}, fmt.Errorf("downloading picture %s: %w", info.ID, err)
	}
	return portrait.RemotePicture{ID: info.ID, Data: data, URL: info.URL}, nil
}

// pictureInfo asks WhatsApp for the full image (not the preview) of jid.
//
// Communities answer 401 to the plain group query and must be asked with
// IsCommunity. Rather than a GetGroupInfo before every group lookup (an
// extra query, with the whole member list, counted against WhatsApp's rate
// limit), a group that answers 401 is asked again as a community; groups
// found to be communities are remembered and asked as such directly.
func (s *session) pictureInfo(ctx context.Context, c waClient, jid types.JID, existingID string) (*types.ProfilePictureInfo, error) {
	group := jid.Server == types.GroupServer
	s.mu.Lock()
	community := group && s.communities[jid]
	s.mu.Unlock()

	info, err := s.askPicture(ctx, c, jid, existingID, community)
	if !group || err == nil || !errors.Is(err, whatsmeow.ErrProfilePictureUnauthorized) {
		return info, err
	}
	if community {
		s.setCommunity(jid, false) // ask as a plain group next time
		return info, err
	}
	cinfo, cerr := s.askPicture(ctx, c, jid, existingID, true)
	switch {
	case cerr == nil || errors.Is(cerr, whatsmeow.ErrProfilePictureNotSet):
		s.setCommunity(jid, true)
		return cinfo, cerr
	case isRateLimit(cerr) || isTimeout(cerr):
		return nil, cerr
	}
	return nil, err // not a community: the group's own 401 stands
}

func (s *session) askPicture(ctx context.Context, c waClient, jid types.JID, existingID string, community bool) (*types.ProfilePictureInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, s.e.opts.RequestTimeout)
	defer cancel()
	return c.GetProfilePictureInfo(ctx, jid, &whatsmeow.GetProfilePictureParams{
		ExistingID:  existingID,
		IsCommunity: community,
	})
}

func (s *session) setCommunity(jid types.JID, yes bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if yes {
		s.communities[jid] = true
	} else {
		delete(s.communities, jid)
	}
}

// SetPicture sets the picture of a group, or the account's own when chat is
// zero or the account's own id, with whatsmeow's SetGroupPhoto (an empty
// JID sets the own picture). jpeg is sent as is; WhatsApp has no separate
// preview in multi-device, so preview is not used. It returns WhatsApp's new
// picture id.
func (s *session) SetPicture(ctx context.Context, chat portrait.ChatID, jpeg, preview []byte) (string, error) {
	id, err := s.setPicture(ctx, chat, jpeg)
	if err != nil {
		what := "own picture"
		if !chat.IsZero() {
			what = "picture of " + chat.String()
		}
		return "", fmt.Errorf("whatsapp: set %s: %w", what, err)
	}
	return id, nil
}

func (s *session) setPicture(ctx context.Context, chat portrait.ChatID, jpeg []byte) (string, error) {
	c, own, err := s.ready()
	if err != nil {
		return "", err
	}
	// No bytes: whatsmeow removes the picture.
	var target types.JID // empty: the account's own picture
	if !chat.IsZero() {
		jid, err := chatJID(chat)
		switch {
		case err != nil:
			return "", err
		case jid.Server == types.GroupServer:
			target = jid
		case sameUser(jid, own.ToNonAD()) || sameUser(jid, c.OwnLID().ToNonAD()):
		default:
			return "", errors.New("only the pictures of groups and of the account itself can be set")
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.e.opts.RequestTimeout)
	defer cancel()
	id, err := c.SetGroupPhoto(rctx, target, jpeg)
	if err != nil {
		return "", s.setError(ctx, c, own, target, err)
	}
	return id, nil
}

// setError maps an error of SetGroupPhoto on group (empty: the own
// picture). For a group, refusals WhatsApp words vaguely (401/403, or no
// answer at all, which is how it treats unknown groups) are explained by
// asking for the group's info with the caller's remaining time.
func (s *session) setError(ctx context.Context, c waClient, own, group types.JID, err error) error {
	code := iqCode(err)
	switch {
	case errors.Is(err, whatsmeow.ErrInvalidImageFormat):
		return fmt.Errorf("WhatsApp refused the picture as not a valid image (it takes a JPEG of at most 720×720): %w", err)
	case isRateLimit(err):
		return both(portrait.ErrUpstreamRateLimit, err)
	case group.IsEmpty():
		return commonError(err)
	case errors.Is(err, whatsmeow.ErrNotInGroup):
		return both(portrait.ErrNotGroupMember, err)
	case errors.Is(err, whatsmeow.ErrGroupNotFound) || code == 404:
		return both(portrait.ErrGroupNotFound, err)
	case code == 401 || code == 403:
		if v := s.diagnose(ctx, c, own, group); v.err != nil {
			return both(v.err, err)
		}
		return both(portrait.ErrNotGroupAdmin, err)
	case isTimeout(err):
		if ctx.Err() != nil {
			return both(portrait.ErrUpstreamTimeout, err)
		}
		v := s.diagnose(ctx, c, own, group)
		switch {
		case v.err != nil:
			return both(v.err, err)
		case v.timedOut:
			// No answer about the group either: what WhatsApp does for a
			// group id that does not exist (GREEN-API's "Timed Out").
			return fmt.Errorf("%w: %w: %w", portrait.ErrGroupNotFound, portrait.ErrUpstreamTimeout, err)
		}
		return both(portrait.ErrUpstreamTimeout, err)
	}
	return commonError(err)
}

// verdict is what GetGroupInfo tells about the account in a group.
type verdict struct {
	err      error // ErrNotGroupMember, ErrGroupNotFound, ErrNotGroupAdmin; nil: nothing wrong seen
	timedOut bool  // WhatsApp did not answer this either
}

// diagnose asks for group's info to explain a refused SetGroupPhoto.
func (s *session) diagnose(ctx context.Context, c waClient, own, group types.JID) verdict {
	ctx, cancel := context.WithTimeout(ctx, s.e.opts.RequestTimeout)
	defer cancel()
	info, err := c.GetGroupInfo(ctx, group)
	code := iqCode(err)
	switch {
	case err == nil && info != nil:
		p := findSelf(info.Participants, own.ToNonAD(), c.OwnLID().ToNonAD())
		switch {
		case p == nil:
			return verdict{err: portrait.ErrNotGroupMember}
		case info.IsLocked && !p.IsAdmin && !p.IsSuperAdmin:
			return verdict{err: portrait.ErrNotGroupAdmin}
		}
		return verdict{}
	case errors.Is(err, whatsmeow.ErrNotInGroup) || code == 403:
		return verdict{err: portrait.ErrNotGroupMember}
	case errors.Is(err, whatsmeow.ErrGroupNotFound) || code == 404:
		return verdict{err: portrait.ErrGroupNotFound}
	case err != nil && isTimeout(err):
		return verdict{timedOut: true}
	}
	return verdict{}
}

// findSelf returns the account among participants, or nil.
func findSelf(participants []types.GroupParticipant, pn, lid types.JID) *types.GroupParticipant {
	for i := range participants {
		p := &participants[i]
		for _, j := range []types.JID{p.JID, p.PhoneNumber, p.LID} {
			j = j.ToNonAD()
			if !j.IsEmpty() && (sameUser(j, pn) || sameUser(j, lid)) {
				return p
			}
		}
	}
	return nil
}

// pictureError maps an error of GetProfilePictureInfo.
func pictureError(err error) error {
	switch {
	case errors.Is(err, whatsmeow.ErrProfilePictureUnauthorized):
		return both(portrait.ErrPictureHidden, err)
	case errors.Is(err, whatsmeow.ErrProfilePictureNotSet):
		// Also what a number without an account gets: both are
		// "no picture, available" upstream.
		return both(portrait.ErrPictureNotSet, err)
	}
	return commonError(err)
}

// pairPhoneError maps an error of PairPhone.
func pairPhoneError(err error) error {
	if iqCode(err) == 400 {
		return fmt.Errorf("WhatsApp refused the pairing request (check the number, and that Options.PairingClient is \"Browser (OS)\"): %w", err)
	}
	return commonError(err)
}

// commonError maps the errors every query can end with.
func commonError(err error) error {
	var disc *whatsmeow.DisconnectedError
	switch {
	case isRateLimit(err):
		return both(portrait.ErrUpstreamRateLimit, err)
	case isTimeout(err):
		return both(portrait.ErrUpstreamTimeout, err)
	case errors.Is(err, whatsmeow.ErrNotConnected) || errors.As(err, &disc):
		return both(portrait.ErrStarting, err)
	case errors.Is(err, whatsmeow.ErrNotLoggedIn):
		return both(portrait.ErrNotAuthorized, err)
	}
	return err
}

// both wraps err as kind, keeping whatsmeow's error for errors.Is and the
// message.
func both(kind, err error) error { return fmt.Errorf("%w: %w", kind, err) }

// iqCode returns the status code of an info query error, or 0.
func iqCode(err error) int {
	var iq *whatsmeow.IQError
	if errors.As(err, &iq) {
		return iq.Code
	}
	return 0
}

func isRateLimit(err error) bool {
	return errors.Is(err, whatsmeow.ErrIQRateOverLimit) || iqCode(err) == 429
}

func isTimeout(err error) bool {
	return errors.Is(err, whatsmeow.ErrIQTimedOut) || errors.Is(err, context.DeadlineExceeded) || iqCode(err) == 408
}
