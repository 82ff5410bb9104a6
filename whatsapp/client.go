package whatsapp

import (
	"context"
	"log/slog"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// waClient is the seam between the engine and whatsmeow: the handful of
// *whatsmeow.Client methods the engine calls, and the few facts it reads
// from the client's device store. Production wraps a real client
// (waAdapter); tests put a substitute here that returns whatsmeow's real
// error values and emits its real event types. Everything else (the
// outcome mapping, the state machine, reconnection, event handling) is the
// engine's own code on top of it.
type waClient interface {
	ConnectContext(ctx context.Context) error
	Disconnect()
	IsConnected() bool
	IsLoggedIn() bool
	GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error)
	PairPhone(ctx context.Context, phone string, showPushNotification bool, clientType whatsmeow.PairClientType, clientDisplayName string) (string, error)
	Logout(ctx context.Context) error
	GetProfilePictureInfo(ctx context.Context, jid types.JID, params *whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error)
	SetGroupPhoto(ctx context.Context, jid types.JID, avatar []byte) (string, error)
	GetGroupInfo(ctx context.Context, jid types.JID) (*types.GroupInfo, error)
	AddEventHandler(handler whatsmeow.EventHandler) uint32
	RemoveEventHandlers()

	// OwnLID is the account's LID ("<n>@lid"), empty when not known.
	OwnLID() types.JID
	// PhoneForLID returns the phone-number JID of lid, or the empty JID
	// when the store does not know it.
	PhoneForLID(ctx context.Context, lid types.JID) (types.JID, error)
	// DeleteDevice removes the device and its keys from the store.
	DeleteDevice(ctx context.Context) error
}

// clientFactory makes the whatsmeow client of one instance: on the stored
// device jid, or on a new, unpaired device when jid is empty. It fails with
// an error wrapping errNoDevice when the store has no device jid.
type clientFactory func(ctx context.Context, jid types.JID, log *slog.Logger) (waClient, error)

// waAdapter is a real whatsmeow client at the seam.
type waAdapter struct{ *whatsmeow.Client }

var _ waClient = waAdapter{}

// OwnLID returns the LID in the device store.
func (a waAdapter) OwnLID() types.JID { return a.Store.GetLID() }

// PhoneForLID asks the device store's LID map.
func (a waAdapter) PhoneForLID(ctx context.Context, lid types.JID) (types.JID, error) {
	return a.Store.LIDs.GetPNForLID(ctx, lid)
}

// DeleteDevice deletes the device from the store, if it was ever saved.
func (a waAdapter) DeleteDevice(ctx context.Context) error {
	if a.Store.ID == nil {
		return nil
	}
	return a.Store.Delete(ctx)
}
