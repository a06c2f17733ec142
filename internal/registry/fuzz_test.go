package registry

import (
	"bytes"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Manifests and indexes come from registries: decoding and the checks pull
// makes never panic.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","size":3}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}`))
	f.Add([]byte(`{"layers":[{"mediaType":"x","digest":"md5:00"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := v1.ParseManifest(bytes.NewReader(b)); err == nil {
			checkManifest(m)
		}
		v1.ParseIndexManifest(bytes.NewReader(b))
	})
}
