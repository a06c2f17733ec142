package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/netconf"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/rootfs"
	"github.com/strata-project/strata/internal/snapshot"
)

// work is an active snapshot over a step's parent layers, mounted while the
// step writes into it. Its key is a layer ingest key, so the snapshot of a
// build that died is collected like any abandoned ingest.
type work struct {
	key     string
	parent  digest.Digest
	dir     string // per-step scratch dir under the store
	rootfs  string
	mounted bool
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// prepare makes and mounts a writable snapshot over parent ("" = empty).
func (b *builder) prepare(ctx context.Context, parent digest.Digest) (*work, error) {
	w := &work{key: b.s.Layers().IngestKey(), parent: parent}
	w.dir = b.stepDir()
	w.rootfs = filepath.Join(w.dir, "rootfs")
	mounts, err := b.s.Snapshots().Prepare(ctx, w.key, string(parent))
	if err != nil {
		return nil, fmt.Errorf("prepare snapshot on %s: %w", shortID(parent), err)
	}
	if err := os.MkdirAll(w.rootfs, 0o700); err != nil {
		b.discard(ctx, w)
		return nil, err
	}
	if err := snapshot.MountAll(mounts, w.rootfs); err != nil {
		b.discard(ctx, w)
		return nil, fmt.Errorf("mount build snapshot: %w", err)
	}
	w.mounted = true
	return w, nil
}

func (w *work) unmount() error {
	if !w.mounted {
		return nil
	}
	if err := snapshot.UnmountAll(w.rootfs); err != nil {
		return fmt.Errorf("unmount %s: %w", w.rootfs, err)
	}
	w.mounted = false
	return nil
}

// discard drops a step's snapshot and scratch dir: nothing of a failed
// step stays.
func (b *builder) discard(ctx context.Context, w *work) {
	ctx = context.WithoutCancel(ctx)
	_ = w.unmount()
	_ = b.s.Snapshots().Remove(ctx, w.key)
	_ = os.RemoveAll(w.dir)
}

// commit turns the step's snapshot into its layer.
func (b *builder) commit(ctx context.Context, w *work) (*layer.Layer, error) {
	return b.commitSums(ctx, w, layer.PayloadSums{})
}

// commitSums is commit passing sums to the layer commit (see
// layer.PayloadSums).
func (b *builder) commitSums(ctx context.Context, w *work, sums layer.PayloadSums) (*layer.Layer, error) {
	if err := w.unmount(); err != nil {
		b.discard(ctx, w)
		return nil, err
	}
	l, err := b.s.Layers().CommitSums(ctx, w.key, w.parent, archive.DiffOptions{SourceDateEpoch: b.opts.SourceDateEpoch}, sums)
	if err != nil {
		b.discard(ctx, w)
		return nil, fmt.Errorf("commit layer: %w", err)
	}
	os.RemoveAll(w.dir)
	return &l, nil
}

// run executes a RUN instruction with the OCI oci. The network is the
// host's unless --network or RUN --network say none: strata has no bridge,
// and RUN steps commonly need to download things.
func (b *builder) run(ctx context.Context, ref stepRef, st *stageState, c *instructions.RunCommand, src *sources) (*layer.Layer, error) {
	args := runCommandLine(st, c)
	if len(c.Files) > 0 {
		args = append(append([]string{}, image.Shell(st.cfg.Config)...), heredocScript(c))
	}
	network := b.opts.Network
	for _, f := range c.FlagsUsed {
		if f == "network" {
			switch n := instructions.GetNetwork(c); n {
			case "host", "none":
				network = n
			}
		}
	}
	w, err := b.prepare(ctx, st.chainID())
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.discard(ctx, w)
		}
	}()
	user := st.cfg.Config.User
	uid, gid, groups, err := oci.ResolveUser(w.rootfs, user)
	if err != nil {
		return nil, b.df.at(c.Location(), "RUN: user %q: %v", user, err)
	}
	var plans []mountPlan
	if src != nil {
		plans = src.mounts
	}
	rm, err := b.setupMounts(ctx, w, plans)
	if err != nil {
		return nil, b.df.at(c.Location(), "%v", err)
	}
	defer rm.close()
	env := append(append(runArgs(st), b.proxyEnv(st)...), rm.env...)
	nf, err := b.netFiles(w.dir, network)
	if err != nil {
		return nil, b.df.at(c.Location(), "RUN: %v", err)
	}
	spec, err := oci.Spec(oci.SpecOptions{
		Image:         st.cfg.Config.ImageConfig,
		EntrypointSet: true,
		Cmd:           args,
		Env:           env,
		Network:       network,
		Rootfs:        w.rootfs,
		Hostname:      buildHostname,
		HostsPath:     nf.Hosts, ResolvConfPath: nf.ResolvConf, HostnamePath: nf.Hostname,
		UID: uid, GID: gid, AdditionalGids: groups,
	})
	if err != nil {
		return nil, b.df.at(c.Location(), "RUN: %v", err)
	}
	capRlimits(spec)
	spec.Mounts = append(spec.Mounts, rm.mounts...)
	// The runtime creates missing mount points (/proc, /dev, a --mount
	// target and its missing parents) in the root; they are removed again
	// so they do not end up in the layer.
	root, err := rootfs.Open(w.rootfs)
	if err != nil {
		return nil, err
	}
	defer root.Close() // closed early below; a second Close is harmless
	seen := map[string]bool{}
	var stubs []string
	for _, m := range spec.Mounts {
		for _, p := range missingPaths(root, m.Destination) {
			if !seen[p] {
				seen[p] = true
				stubs = append(stubs, p)
			}
		}
	}
	restoreDev, err := realDev(root)
	if err != nil {
		return nil, b.df.at(c.Location(), "RUN: %v", err)
	}
	defer restoreDev()
	if cwd := spec.Process.Cwd; cwd != "" && cwd != "/" {
		if _, err := root.Stat(cwd); errors.Is(err, unix.ENOENT) {
			// docker creates a missing WORKDIR for RUN; keep it.
			if fd, err := root.MkdirAllMode(cwd, 0o755, 0, 0); err == nil {
				unix.Close(fd)
			}
		}
	}
	bundle := filepath.Join(w.dir, "bundle")
	if rm.secrets != "" {
		bundle = filepath.Join(rm.secrets, "bundle") // config.json may hold a secret env
	}
	if err := oci.WriteBundle(bundle, spec); err != nil {
		return nil, err
	}
	out := &lineWriter{emit: func(s string) { b.log(ref, s) }}
	id := "strata-build-" + randomHex(6)
	code, err := b.rt.Run(ctx, id, bundle, oci.IO{Stdout: out, Stderr: out})
	out.flush()
	if err != nil {
		// The runtime deletes a container whose run it saw to the end
		// (one more runc per step, ~5 ms, to find nothing); one it failed
		// to run, or that a cancelled build killed, may be left.
		_ = b.rt.Delete(context.WithoutCancel(ctx), id, true)
	}
	rm.close()
	sort.Sort(sort.Reverse(sort.StringSlice(stubs)))
	for _, p := range stubs {
		removeStub(root, p)
	}
	restoreDev()
	root.Close() // a held fd would keep the step's mount busy
	if err == nil && code == 0 {
		if err := rm.check(); err != nil {
			return nil, b.df.at(c.Location(), "RUN --mount=type=bind: %v", err)
		}
	}
	if err == nil && code == 0 {
		if err := b.dropStubParents(ctx, w, stubs); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, b.df.at(c.Location(), "RUN %s: %v%s", strings.Join(args, " "), err, lastOutput(out))
	}
	if code != 0 {
		return nil, b.df.at(c.Location(), "process %q did not complete successfully: exit code: %d%s", strings.Join(args, " "), code, lastOutput(out))
	}
	l, err := b.commit(ctx, w)
	if err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// buildHostname is every build step's hostname (BuildKit's is
// "buildkitsandbox").
const buildHostname = "strata-build"

// netFiles writes a step's /etc/hostname, /etc/hosts and /etc/resolv.conf
// into its scratch dir, to be bind-mounted: a RUN resolves names as `run`
// does even when the image ships an empty resolv.conf, and none of the
// three ends up in the layer.
func (b *builder) netFiles(dir, network string) (netconf.Paths, error) {
	f, err := netconf.Make(netconf.Config{
		HostNetwork: network == oci.NetworkHost,
		Hostname:    buildHostname,
		ExtraHosts:  b.opts.ExtraHosts,
		Build:       true,
	}, netconf.ReadHost())
	if err != nil {
		return netconf.Paths{}, err
	}
	return f.Write(dir)
}

// dropStubParents unmounts the step and removes the directories above the
// stubs that overlayfs copied up into the upper dir only because a stub
// was made in them (a base without /etc/hosts gets one while the RUN
// runs): they would put an unchanged /etc into the layer.
func (b *builder) dropStubParents(ctx context.Context, w *work, stubs []string) error {
	if len(stubs) == 0 || b.s.Snapshots().Whiteouts() != snapshot.WhiteoutsOverlay {
		return nil
	}
	if err := w.unmount(); err != nil {
		return err
	}
	var rels []string
	for _, rel := range stubs { // resolved in-root by missingPaths
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			rels = append(rels, d)
		}
	}
	upper, err := b.s.Snapshots().Dir(ctx, w.key)
	if err != nil {
		return err
	}
	lowers, err := b.s.Snapshots().LowerDirs(ctx, w.key)
	if err != nil {
		return err
	}
	return rootfs.DropCopyUps(upper, lowers, rels)
}

// removeStub removes a mount point the runtime made, if it is still what
// the runtime made: an empty directory or an empty file. A RUN that put
// something there keeps it. The path is resolved inside the root again: the
// RUN may have replaced a parent with a symlink.
func removeStub(root *rootfs.Root, rel string) {
	st, err := root.Lstat(rel)
	if err != nil {
		return
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.Size == 0 {
			_ = root.Remove(rel)
		}
	case unix.S_IFDIR:
		_ = root.Remove(rel) // only if empty
	}
}

func lastOutput(w *lineWriter) string {
	lines := w.lastLines()
	if len(lines) == 0 {
		return ""
	}
	return "\nlast output:\n  " + strings.Join(lines, "\n  ")
}

// heredocScript is the shell script of a RUN with heredocs: a bare
// `RUN <<EOF` runs the heredoc's body; otherwise the shell gets the command
// line with the heredocs after it, and interprets them itself.
func heredocScript(c *instructions.RunCommand) string {
	line := strings.TrimSpace(strings.Join(c.CmdLine, " "))
	if len(c.Files) == 1 {
		if h := parser.MustParseHeredoc(line); h != nil && h.Name == c.Files[0].Name {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			return data
		}
	}
	var sb strings.Builder
	sb.WriteString(line)
	for _, f := range c.Files {
		sb.WriteByte('\n')
		sb.WriteString(f.Data)
		sb.WriteString(f.Name)
	}
	return sb.String()
}

// workdir creates the working directory when it is missing; a step that
// creates nothing makes no layer.
func (b *builder) workdir(ctx context.Context, st *stageState, dir string) (*layer.Layer, error) {
	w, err := b.prepare(ctx, st.chainID())
	if err != nil {
		return nil, err
	}
	root, err := rootfs.Open(w.rootfs)
	if err != nil {
		b.discard(ctx, w)
		return nil, err
	}
	defer root.Close()
	if st, err := root.Stat(dir); err == nil && rootfs.IsDir(&st) {
		b.discard(ctx, w)
		return nil, nil
	}
	fd, err := root.MkdirAllMode(dir, 0o755, 0, 0)
	if err != nil {
		b.discard(ctx, w)
		return nil, fmt.Errorf("WORKDIR %s: %w", dir, err)
	}
	unix.Close(fd)
	return b.commit(ctx, w)
}

// capRlimits lowers the spec's rlimits to what this process may grant: a
// container cannot get a hard limit above its parent's, and runc fails the
// start otherwise (sandboxes often cap RLIMIT_NOFILE below 1048576).
func capRlimits(spec *specs.Spec) {
	for i, r := range spec.Process.Rlimits {
		if r.Type != "RLIMIT_NOFILE" {
			continue
		}
		var cur unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
			continue
		}
		if r.Hard > cur.Max {
			spec.Process.Rlimits[i].Hard = cur.Max
		}
		if spec.Process.Rlimits[i].Soft > spec.Process.Rlimits[i].Hard {
			spec.Process.Rlimits[i].Soft = spec.Process.Rlimits[i].Hard
		}
	}
}
