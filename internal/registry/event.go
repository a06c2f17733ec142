package registry

import (
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

// EventKind says what happened.
type EventKind int

const (
	// Resolved: the reference resolved to Digest (a manifest or an index)
	// whose image has the layer blobs Blobs, bottom first. Always the
	// first event.
	Resolved EventKind = iota
	// LayerExists: the layer's stack is in the store; it is not fetched.
	LayerExists
	// LayerDownloading: Current of Total compressed bytes have arrived
	// (Current 0 when the download starts).
	LayerDownloading
	// LayerVerified: the whole blob arrived and matched its digest.
	LayerVerified
	// LayerExtracting: the layer starts to unpack (its download may still
	// be under way: the apply follows the bytes as they arrive).
	LayerExtracting
	// LayerDone: the layer is unpacked and committed.
	LayerDone
	// Stored: the image is recorded under its names. UpToDate tells that
	// nothing changed: every layer, the image and its names were there.
	Stored

	// The events of a push. Layer is the layer's diffID there, as docker
	// shows it.

	// PushStarted: the push of Ref begins.
	PushStarted
	// PushPreparing: the layer is about to be checked and sent.
	PushPreparing
	// PushPushing: Current of Total uncompressed bytes went through the compressor.
	PushPushing
	// PushExists: the registry has the layer; nothing is sent.
	PushExists
	// PushMounted: the registry linked the layer from repository From.
	PushMounted
	// PushPushed: the layer is uploaded.
	PushPushed
	// PushDone: the manifest is stored: Digest, Total bytes.
	PushDone
)

// Event is one step of a pull. Layer is the compressed blob digest, the
// identity a registry user sees (docker shows its first 12 hex digits).
type Event struct {
	Kind     EventKind
	Ref      reference.Named
	Digest   digest.Digest
	Blobs    []digest.Digest
	Layer    digest.Digest
	Current  int64
	Total    int64
	UpToDate bool
	From     string
}
