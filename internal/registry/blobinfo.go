package registry

import (
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/metadata"
)

// blobsBucket maps a layer's diffID to the compressed blobs it is known to
// exist as in registries: strata keeps no compressed copy of a layer, so
// this memory is what lets a pulled layer be pushed back as the same blob
// and a second push skip every layer without compressing it.
const blobsBucket = "layer-blobs"

// BlobInfo is one compressed form of a layer, and where it was seen.
type BlobInfo struct {
	Digest     digest.Digest `json:"digest"`
	Size       int64         `json:"size"`
	MediaType  string        `json:"mediaType"`
	Registry   string        `json:"registry"`   // host[:port] as in references
	Repository string        `json:"repository"` // path within the registry
}

// maxBlobInfos bounds the memory kept per layer; the oldest is forgotten.
const maxBlobInfos = 16

// rememberBlobs records that each diffID exists as its blob.
func rememberBlobs(db *metadata.Scope, diffIDs []digest.Digest, blobs []BlobInfo) error {
	return db.Update(func(tx *metadata.Tx) error {
		b, err := tx.CreateBucket(blobsBucket)
		if err != nil {
			return err
		}
		for i, d := range diffIDs {
			var have []BlobInfo
			if v := b.Get([]byte(d)); v != nil {
				if err := json.Unmarshal(v, &have); err != nil {
					return fmt.Errorf("blob record of %s: %w", d, err)
				}
			}
			nb := blobs[i]
			kept := []BlobInfo{nb}
			for _, h := range have {
				if h != nb && len(kept) < maxBlobInfos {
					kept = append(kept, h)
				}
			}
			v, err := json.Marshal(kept)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(d), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// knownBlobs lists the compressed forms recorded for diffID, newest first.
func knownBlobs(db *metadata.Scope, diffID digest.Digest) ([]BlobInfo, error) {
	var out []BlobInfo
	err := db.View(func(tx *metadata.Tx) error {
		b := tx.Bucket(blobsBucket)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(diffID)); v != nil {
			return json.Unmarshal(v, &out)
		}
		return nil
	})
	return out, err
}
