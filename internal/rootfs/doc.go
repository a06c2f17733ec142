// Package rootfs is strata's one way to touch a root filesystem it does not
// trust: an image's layers, a snapshot, the merged root of a running
// container. Every package that creates, opens, removes, chowns or chmods a
// path inside a rootfs does it through a Root (the init layer, the archive
// apply, the builder's COPY and WORKDIR, cp, volume copy-up).
//
// A Root holds the directory open. Each method resolves every component of
// its path by the kernel, at the moment of the call, from that fd:
// openat2(RESOLVE_IN_ROOT) follows symlinks the way a process chrooted there
// would, so ".." and absolute targets stop at the root, and the last
// component is then created or acted on with *at calls (O_NOFOLLOW unless a
// method says it follows). Never resolve a path to a string and open the
// string later: a running container can swap a directory for a symlink to
// the host in between, and the later open would follow it.
//
// The lower-layer lookups (LookupLower, ResolveLower) read the committed,
// immutable layer dirs under an overlay upper the way overlayfs merges them,
// so a writer knows what the image already has without mounting it.
package rootfs
