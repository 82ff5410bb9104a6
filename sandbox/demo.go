package sandbox

import (
	"fmt"

	"github.com/portrait-dev/portrait"
)

// Outcomes of the demo chats: what getAvatar (Session.Picture) and, for
// groups, setGroupPicture (Session.SetPicture) do for them.
const (
	// OutcomePicture: Picture returns a JPEG picture.
	OutcomePicture = "picture"
	// OutcomePicturePNG: Picture returns a PNG picture.
	OutcomePicturePNG = "picture-png"
	// OutcomeHidden: Picture fails with portrait.ErrPictureHidden.
	OutcomeHidden = "hidden"
	// OutcomeNoPicture: Picture fails with portrait.ErrPictureNotSet.
	OutcomeNoPicture = "no-picture"
	// OutcomeNoAccount: Picture fails with portrait.ErrNoAccount.
	OutcomeNoAccount = "no-account"
	// OutcomeTimeout: Picture hangs for Options.FaultTimeout, then fails
	// with portrait.ErrUpstreamTimeout (when Options.Faults is on).
	OutcomeTimeout = "timeout"
	// OutcomeRateLimit: Picture fails with portrait.ErrUpstreamRateLimit
	// (when Options.Faults is on).
	OutcomeRateLimit = "rate-limit"
	// OutcomeGroupAdmin: the account administers the group. Picture returns
	// its picture; SetPicture succeeds.
	OutcomeGroupAdmin = "group-admin"
	// OutcomeGroupMemberAdminsOnly: the account is a plain member and only
	// admins may edit the group's info. Picture returns its picture;
	// SetPicture fails with portrait.ErrNotGroupAdmin.
	OutcomeGroupMemberAdminsOnly = "group-member-admins-only"
	// OutcomeGroupMember: the account is a plain member and anyone may edit
	// the group's info; the group has no picture. Picture fails with
	// portrait.ErrPictureNotSet; SetPicture succeeds.
	OutcomeGroupMember = "group-member"
	// OutcomeGroupNotMember: the account is not in the group. Picture fails
	// with portrait.ErrPictureHidden; SetPicture with portrait.ErrNotGroupMember.
	OutcomeGroupNotMember = "group-not-member"
	// OutcomeGroupNotFound: no such group. After Options.UnknownGroupTimeout
	// both Picture and SetPicture fail with portrait.ErrGroupNotFound.
	OutcomeGroupNotFound = "group-not-found"
)

// DemoChat is one chat of the built-in demo world and what happens when it
// is asked about.
type DemoChat struct {
	ChatID      string
	Kind        portrait.SubjectKind // SubjectSelf for the account itself
	Outcome     string               // one of the Outcome… constants
	Description string
}

// demoEntry is one chat of the demo world, for both instance types.
type demoEntry struct {
	wa, max     string // chat ids; max is "" for WhatsApp-only entries
	kind        portrait.SubjectKind
	outcome     string
	description string
	name        string
	picture     string // generated seed; "" = none
	format      string
	hidden      bool
	noAccount   bool
	fault       string
	role        string
	adminsOnly  bool
	notInWorld  bool
}

// The demo world's own account.
const (
	demoPhone = "11001234567"
	demoMAXID = "10000000"
)

var demoEntries = []demoEntry{
	{wa: demoPhone + "@c.us", max: demoMAXID, kind: portrait.SubjectSelf, outcome: OutcomePicture,
		description: "the account itself: its own picture (JPEG)", picture: "me"},
	{wa: "11001230001@c.us", max: "10000001", kind: portrait.SubjectContact, outcome: OutcomePicture,
		description: "Alice: a contact with a JPEG picture", name: "Alice", picture: "alice"},
	{wa: "11001230002@c.us", max: "10000002", kind: portrait.SubjectContact, outcome: OutcomePicturePNG,
		description: "Bob: a contact with a PNG picture", name: "Bob", picture: "bob", format: FormatPNG},
	{wa: "11001230003@c.us", max: "10000003", kind: portrait.SubjectContact, outcome: OutcomeHidden,
		description: "Carol: hides her picture with her privacy settings", name: "Carol", picture: "carol", hidden: true},
	{wa: "11001230004@c.us", max: "10000004", kind: portrait.SubjectContact, outcome: OutcomeNoPicture,
		description: "Dave: a contact without a picture", name: "Dave"},
	{wa: "11001230005@c.us", max: "10000005", kind: portrait.SubjectContact, outcome: OutcomeNoAccount,
		description: "a number that has no account on the messenger", noAccount: true},
	{wa: "11001230006@c.us", max: "10000006", kind: portrait.SubjectContact, outcome: OutcomeTimeout,
		description: "Frank: his lookup hangs until it times out (fault \"timeout\"; with faults off, a JPEG picture)", name: "Frank", picture: "frank", fault: FaultTimeout},
	{wa: "11001230007@c.us", max: "10000007", kind: portrait.SubjectContact, outcome: OutcomeRateLimit,
		description: "Grace: her lookup hits the messenger's rate limit (fault \"rate-limit\"; with faults off, a JPEG picture)", name: "Grace", picture: "grace", fault: FaultRateLimit},
	{wa: "100000000000001@lid", kind: portrait.SubjectContact, outcome: OutcomePicture,
		description: "Heidi: a contact known only by her @lid privacy id, with a JPEG picture", name: "Heidi", picture: "heidi"},
	{wa: "120363000000000001@g.us", max: "-10000000000001", kind: portrait.SubjectGroup, outcome: OutcomeGroupAdmin,
		description: "Admins' room: the account is an admin; the group has a picture that it may change", name: "Admins' room", picture: "admins-room", role: RoleAdmin, adminsOnly: true},
	{wa: "120363000000000002@g.us", max: "-10000000000002", kind: portrait.SubjectGroup, outcome: OutcomeGroupMemberAdminsOnly,
		description: "Announcements: the account is a member, only admins may change the picture", name: "Announcements", picture: "announcements", role: RoleMember, adminsOnly: true},
	{wa: "120363000000000003@g.us", max: "-10000000000003", kind: portrait.SubjectGroup, outcome: OutcomeGroupMember,
		description: "Friends: the account is a member, anyone may change the picture; no picture yet", name: "Friends", role: RoleMember},
	{wa: "120363000000000004@g.us", max: "-10000000000004", kind: portrait.SubjectGroup, outcome: OutcomeGroupNotMember,
		description: "Strangers: the account is not a member; the picture is hidden from it and it may not change it", name: "Strangers", picture: "strangers", role: RoleNone},
	{wa: "120363000000000099@g.us", max: "-10000000000099", kind: portrait.SubjectGroup, outcome: OutcomeGroupNotFound,
		description: "a group that does not exist: calls time out", notInWorld: true},
}

func (d *demoEntry) id(t portrait.InstanceType) string {
	if t == portrait.TypeMAX {
		return d.max
	}
	return d.wa
}

// DemoChats lists the chats of the built-in demo world for instance type t,
// each with its outcome, in a stable order: the account itself, contacts,
// then groups.
func DemoChats(t portrait.InstanceType) []DemoChat {
	var out []DemoChat
	for _, d := range demoEntries {
		id := d.id(t)
		if id == "" {
			continue
		}
		out = append(out, DemoChat{ChatID: id, Kind: d.kind, Outcome: d.outcome, Description: d.description})
	}
	return out
}

// DemoWorld returns the built-in demo world for instance type t, with its
// generated pictures, linked. It covers every outcome listed by DemoChats.
func DemoWorld(t portrait.InstanceType) (World, error) {
	if !t.Valid() {
		return World{}, fmt.Errorf("sandbox: demo world: unknown instance type %q", t)
	}
	w := World{Type: t, Account: Account{Phone: demoPhone, Linked: true}}
	if t == portrait.TypeMAX {
		w.Account.ID = demoMAXID
	}
	for _, d := range demoEntries {
		id := d.id(t)
		if id == "" || d.notInWorld {
			continue
		}
		var pic *Picture
		if d.picture != "" {
			format := d.format
			if format == "" {
				format = FormatJPEG
			}
			src := "generated:" + d.picture
			if format == FormatPNG {
				src += ".png"
			}
			p, err := generatedPicture(d.picture, format, src)
			if err != nil {
				return World{}, fmt.Errorf("sandbox: demo world: %w", err)
			}
			pic = p
		}
		switch d.kind {
		case portrait.SubjectSelf:
			w.Account.Picture = pic
		case portrait.SubjectContact:
			w.Contacts = append(w.Contacts, Contact{ChatID: id, Name: d.name, HasAccount: !d.noAccount,
				Hidden: d.hidden, Fault: d.fault, Picture: pic})
		case portrait.SubjectGroup:
			w.Groups = append(w.Groups, Group{ChatID: id, Name: d.name, Role: d.role,
				OnlyAdminsEditInfo: d.adminsOnly, Picture: pic})
		}
	}
	return w, nil
}

func generatedPicture(seed, format, source string) (*Picture, error) {
	data, err := GeneratePicture(seed, format)
	if err != nil {
		return nil, err
	}
	mime := "image/jpeg"
	if format == FormatPNG {
		mime = "image/png"
	}
	return &Picture{MIME: mime, Size: len(data), Source: source, Data: data}, nil
}

// DemoSeeder seeds every new instance with DemoWorld for its type.
func DemoSeeder() Seeder { return SeedFunc(DemoWorld) }

// Seeder yields the initial world of a new instance of a given type.
// Pictures in the world carry their bytes in Picture.Data.
type Seeder interface {
	Seed(t portrait.InstanceType) (World, error)
}

// SeedFunc adapts a function to Seeder.
type SeedFunc func(t portrait.InstanceType) (World, error)

// Seed calls f(t).
func (f SeedFunc) Seed(t portrait.InstanceType) (World, error) { return f(t) }
