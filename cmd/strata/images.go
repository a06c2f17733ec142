package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/store"
)

func newImportCmd(g *globals) *cobra.Command {
	var changes []string
	var message, platform string
	c := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			opts := store.ImportOptions{Source: args[0], Changes: changes, Message: message, Platform: platform}
			// As BuildKit and the reproducible-builds convention: the
			// image's created time, so two imports give one image ID.
			created, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			opts.Created = created
			if len(args) == 2 {
				ref, err := image.ParseTagged(args[1])
				if err != nil {
					return err
				}
				opts.Ref = ref
			}
			var in io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				defer f.Close()
				in = f
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			id, err := s.Import(c.Context(), in, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), id)
			return nil
		},
	}
	c.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply a Dockerfile instruction to the created image")
	c.Flags().StringVarP(&message, "message", "m", "", "set a commit message for the imported image")
	c.Flags().StringVar(&platform, "platform", "", "set the image's platform (os/arch[/variant]; default linux/amd64)")
	return c
}

// imageRow is one line of `images`; its field names are docker's --format names.
type imageRow struct {
	ID           string
	Repository   string
	Tag          string
	Digest       string
	CreatedSince string
	CreatedAt    string
	Size         string
	Containers   string
	SharedSize   string
	UniqueSize   string
	VirtualSize  string
}

func newImagesCmd(g *globals) *cobra.Command {
	var quiet, all, digests, noTrunc bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  rangeArgs(0, 1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			imgs, err := s.Images().List(c.Context())
			if err != nil {
				return err
			}
			dangling, patterns, err := parseImageFilters(filters)
			if err != nil {
				return err
			}
			// The argument is docker's reference filter under another name.
			patterns = append(patterns, args...)
			match := func(repo, tag string) bool {
				if len(patterns) == 0 {
					return true
				}
				for _, pattern := range patterns {
					ok, _ := reference.FamiliarMatch(pattern, mustParse(repo, tag))
					if ok || !strings.Contains(pattern, ":") && repo == pattern {
						return true
					}
				}
				return false
			}
			if !all {
				imgs = image.WithoutIntermediates(imgs)
			}
			var rows []imageRow
			for _, img := range imgs {
				rows = append(rows, imageRows(img, noTrunc, digests, match, dangling)...)
			}
			if quiet {
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID] {
						seen[r.ID] = true
						fmt.Fprintln(c.OutOrStdout(), r.ID)
					}
				}
				return nil
			}
			def := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			if digests {
				def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			return writeRows(c.OutOrStdout(), format, def, map[string]string{
				"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
				"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
			}, rows)
		},
	}
	f := c.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVarP(&all, "all", "a", false, "show all images (default hides intermediate images)")
	f.BoolVar(&digests, "digests", false, "show digests")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&format, "format", "", "format output using a Go template or 'json'")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output (dangling=true|false, reference=PATTERN)")
	return c
}

func mustParse(repo, tag string) reference.Reference {
	n, err := reference.ParseNormalizedNamed(repo + ":" + tag)
	if err != nil {
		n, _ = reference.ParseNormalizedNamed("invalid")
	}
	return n
}

// parseImageFilters understands docker's dangling and reference filters;
// others are refused rather than ignored.
func parseImageFilters(filters []string) (dangling *bool, references []string, err error) {
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		switch {
		case k == "dangling" && (v == "true" || v == "false"):
			b := v == "true"
			dangling = &b
		case k == "reference" && v != "":
			references = append(references, v)
		default:
			return nil, nil, fmt.Errorf("invalid filter %q (supported: dangling=true|false, reference=PATTERN)", f)
		}
	}
	return dangling, references, nil
}

// imageRows gives one row per tag (docker's layout), or one <none> row.
func imageRows(img image.Image, noTrunc, digests bool, match func(repo, tag string) bool, dangling *bool) []imageRow {
	id := "sha256:" + img.ID.Encoded()
	if !noTrunc {
		id = image.ShortID(img.ID)
	}
	base := imageRow{
		ID: id, CreatedSince: since(img.Created()), CreatedAt: img.Created().Local().Format("2006-01-02 15:04:05 -0700 MST"),
		Size: humanSize(img.Size), Containers: "N/A", SharedSize: "N/A", UniqueSize: "N/A", VirtualSize: humanSize(img.Size),
		Digest: "<none>",
	}
	tags := img.RepoTags()
	isDangling := len(tags) == 0
	if dangling != nil && *dangling != isDangling {
		return nil
	}
	var rows []imageRow
	for _, t := range tags {
		repo, tag, _ := image.SplitFamiliar(t)
		if !match(repo, tag) {
			continue
		}
		r := base
		r.Repository, r.Tag = repo, tag
		r.Digest = repoDigest(img, repo)
		rows = append(rows, r)
	}
	if len(tags) == 0 {
		r := base
		r.Repository, r.Tag = "<none>", "<none>"
		if ds := img.RepoDigests(); len(ds) > 0 {
			r.Repository, _, _ = image.SplitFamiliar(ds[0])
			r.Digest = repoDigest(img, r.Repository)
		}
		if match(r.Repository, r.Tag) {
			rows = append(rows, r)
		}
	}
	return rows
}

// repoDigest is docker's DIGEST column: the manifest digest the image has
// in repository repo (pulled from or pushed to it), else <none>.
func repoDigest(img image.Image, repo string) string {
	for _, d := range img.RepoDigests() {
		if r, _, dg := image.SplitFamiliar(d); r == repo && dg != "" {
			return dg.String()
		}
	}
	return "<none>"
}

func newTagCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			target, err := image.ParseTagged(args[1])
			if err != nil {
				return err
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			id, err := s.Images().Resolve(c.Context(), args[0])
			if err != nil {
				return err
			}
			return s.Images().Tag(c.Context(), id, target)
		},
	}
}

func newRmiCmd(g *globals) *cobra.Command {
	var force, noPrune bool
	c := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			var failed *exitError
			for _, ref := range args {
				res, err := s.RemoveImage(c.Context(), ref, force, !noPrune)
				for _, u := range res.Untagged {
					fmt.Fprintln(c.OutOrStdout(), "Untagged:", u)
				}
				for _, d := range res.Deleted {
					fmt.Fprintln(c.OutOrStdout(), "Deleted:", d)
				}
				if err != nil {
					failed = failed.add(c.ErrOrStderr(), err)
				}
			}
			switch {
			case failed == nil:
				return nil
			case force && failed.onlyMissing:
				// docker: -f reports missing images but does not fail.
				return nil
			}
			return *failed
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "force removal of the image")
	c.Flags().BoolVar(&noPrune, "no-prune", false, "do not delete untagged parents")
	return c
}

// inspectImage is docker's `image inspect` JSON shape.
type inspectImage struct {
	ID            string        `json:"Id"`
	RepoTags      []string      `json:"RepoTags"`
	RepoDigests   []string      `json:"RepoDigests"`
	Parent        string        `json:"Parent"`
	Comment       string        `json:"Comment"`
	Created       string        `json:"Created"`
	Container     string        `json:"Container"` // the container a commit came from; strata does not record it
	DockerVersion string        `json:"DockerVersion"`
	Author        string        `json:"Author"`
	Config        inspectConfig `json:"Config"`
	Architecture  string        `json:"Architecture"`
	Variant       string        `json:"Variant,omitempty"`
	Os            string        `json:"Os"`
	Size          int64         `json:"Size"`
	// VirtualSize is Size under its pre-25 name, which scripts still read.
	VirtualSize int64           `json:"VirtualSize"`
	GraphDriver inspectDriver   `json:"GraphDriver"`
	RootFS      inspectRootFS   `json:"RootFS"`
	Metadata    inspectMetadata `json:"Metadata"`
}

type inspectConfig struct {
	Hostname     string                        `json:"Hostname"`
	Domainname   string                        `json:"Domainname"`
	User         string                        `json:"User"`
	AttachStdin  bool                          `json:"AttachStdin"`
	AttachStdout bool                          `json:"AttachStdout"`
	AttachStderr bool                          `json:"AttachStderr"`
	ExposedPorts map[string]struct{}           `json:"ExposedPorts,omitempty"`
	Tty          bool                          `json:"Tty"`
	OpenStdin    bool                          `json:"OpenStdin"`
	StdinOnce    bool                          `json:"StdinOnce"`
	Env          []string                      `json:"Env"`
	Cmd          []string                      `json:"Cmd"`
	Image        string                        `json:"Image"`
	Volumes      map[string]struct{}           `json:"Volumes"`
	WorkingDir   string                        `json:"WorkingDir"`
	Entrypoint   []string                      `json:"Entrypoint"`
	OnBuild      []string                      `json:"OnBuild"`
	Healthcheck  *dockerspec.HealthcheckConfig `json:"Healthcheck,omitempty"`
	Shell        []string                      `json:"Shell,omitempty"`
	Labels       map[string]string             `json:"Labels"`
	StopSignal   string                        `json:"StopSignal,omitempty"`
}

// Id answers {{.Id}} (the JSON name) on the typed value, so a template
// mixing it with numbers ({{gt .Size 1000}}) keeps the numbers' types.
func (v inspectImage) Id() string { return v.ID }

type inspectDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

type inspectRootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

type inspectMetadata struct {
	LastTagTime string `json:"LastTagTime"`
}

func toInspect(img image.Image, driver string) inspectImage {
	cfg := img.Config
	created := ""
	if t := img.Created(); !t.IsZero() {
		created = t.UTC().Format(time.RFC3339Nano)
	}
	comment := ""
	if n := len(cfg.History); n > 0 {
		comment = cfg.History[n-1].Comment
	}
	layers := []string{}
	for _, d := range cfg.RootFS.DiffIDs {
		layers = append(layers, d.String())
	}
	parent := ""
	if img.Parent != "" {
		parent = img.Parent.String()
	}
	return inspectImage{
		ID: img.ID.String(), RepoTags: img.RepoTags(), RepoDigests: img.RepoDigests(),
		Parent: parent, Comment: comment, Created: created, Author: cfg.Author,
		Config: inspectConfig{
			User: cfg.Config.User, ExposedPorts: cfg.Config.ExposedPorts, Env: cfg.Config.Env,
			Cmd: cfg.Config.Cmd, Volumes: cfg.Config.Volumes, WorkingDir: cfg.Config.WorkingDir,
			Entrypoint: cfg.Config.Entrypoint, Labels: cfg.Config.Labels, StopSignal: cfg.Config.StopSignal,
			Healthcheck: cfg.Config.Healthcheck, OnBuild: cfg.Config.OnBuild, Shell: cfg.Config.Shell,
		},
		Architecture: cfg.Architecture, Variant: cfg.Variant, Os: cfg.OS, Size: img.Size, VirtualSize: img.Size,
		GraphDriver: inspectDriver{Name: driver, Data: map[string]string{}},
		RootFS:      inspectRootFS{Type: cfg.RootFS.Type, Layers: layers},
		Metadata:    inspectMetadata{LastTagTime: "0001-01-01T00:00:00Z"},
	}
}

// inspectLookup finds the object a reference names for inspect.
type inspectLookup func(c *cobra.Command, s *store.Store, ref string) (any, error)

func lookupImage(c *cobra.Command, s *store.Store, ref string) (any, error) {
	img, err := s.Images().Get(c.Context(), ref)
	if err != nil {
		return nil, err
	}
	return toInspect(img, s.Driver()), nil
}

func lookupContainer(c *cobra.Command, s *store.Store, ref string) (any, error) {
	m := container.NewManager(s, defaultRuntime())
	ctr, err := m.Get(c.Context(), ref)
	if err != nil {
		return nil, err
	}
	return toInspectContainer(m, s.Driver(), ctr), nil
}

// newInspectCmd is the top-level inspect: containers first, then images,
// as docker looks them up; --type narrows it.
func newInspectCmd(g *globals) *cobra.Command {
	var typ string
	c := inspectCommand(g, "inspect [OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on containers or images",
		func(c *cobra.Command, s *store.Store, ref string) (any, error) {
			switch typ {
			case "image":
				return lookupImage(c, s, ref)
			case "container":
				return lookupContainer(c, s, ref)
			case "":
			default:
				return nil, usageError{cmd: c.CommandPath(), err: fmt.Errorf("%q is not a valid value for --type", typ)}
			}
			if v, err := lookupContainer(c, s, ref); err == nil || !store.IsNotFound(err) {
				return v, err
			}
			v, err := lookupImage(c, s, ref)
			if store.IsNotFound(err) {
				return nil, errdefs.NotFound("object", ref)
			}
			return v, err
		})
	c.Flags().StringVar(&typ, "type", "", "only inspect objects of the given type (container or image)")
	return c
}

func newImageInspectCmd(g *globals) *cobra.Command {
	return inspectCommand(g, "inspect [OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images", lookupImage)
}

func newContainerInspectCmd(g *globals) *cobra.Command {
	return inspectCommand(g, "inspect [OPTIONS] CONTAINER [CONTAINER...]", "Display detailed information on one or more containers", lookupContainer)
}

func inspectCommand(g *globals, use, short string, lookup inspectLookup) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			var out []any
			var missing error
			for _, ref := range args {
				v, err := lookup(c, s, ref)
				if err != nil {
					if !store.IsNotFound(err) {
						return err
					}
					missing = err
					fmt.Fprintln(c.ErrOrStderr(), "Error:", message(err))
					continue
				}
				out = append(out, v)
			}
			if err := printInspect(c.OutOrStdout(), format, out); err != nil {
				return err
			}
			if missing != nil {
				return exitError{code: 1}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template or 'json'")
	return c
}

// printInspect prints a JSON array, or each object through a template.
func printInspect(w io.Writer, format string, objs []any) error {
	if format == "" || format == "json" {
		if objs == nil {
			objs = []any{}
		}
		// Docker's daemon writes JSON without HTML escaping.
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		return enc.Encode(objs)
	}
	tmpl, _, err := parseFormat(format)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := executeInspect(w, tmpl, o); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

// executeInspect runs tmpl over the typed object, as docker's CLI does, so
// numbers stay integers ({{.Size}}, gt .Size 1000) and maps and structs
// keep their types. A template the typed object cannot satisfy (a JSON
// name such as .Id) runs again over the object's JSON, numbers kept as
// written, where a key the object lacks is an error.
func executeInspect(w io.Writer, tmpl *template.Template, o any) error {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, o); err == nil {
		_, err := w.Write(buf.Bytes())
		return err
	}
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return err
	}
	// Over the JSON a missing key is an error, as in docker's fallback:
	// `{{.State.Health.Status}}` fails for a container without a check.
	strict, err := tmpl.Clone()
	if err != nil {
		return err
	}
	buf.Reset()
	if err := strict.Option("missingkey=error").Execute(&buf, generic); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// historyRow is one line of `history`, with docker's --format names.
type historyRow struct {
	ID           string
	CreatedSince string
	CreatedAt    string
	CreatedBy    string
	Size         string
	Comment      string
}

func newHistoryCmd(g *globals) *cobra.Command {
	var noTrunc, quiet bool
	human := true
	var format string
	c := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			img, err := s.Images().Get(c.Context(), args[0])
			if err != nil {
				return err
			}
			rows, err := historyRows(c, s, img, noTrunc, human)
			if err != nil {
				return err
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(c.OutOrStdout(), r.ID)
				}
				return nil
			}
			return writeRows(c.OutOrStdout(), format,
				"table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
				map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"},
				rows)
		},
	}
	f := c.Flags()
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	f.StringVar(&format, "format", "", "format output using a Go template or 'json'")
	return c
}

// historyRows lists the image's history newest first, with each layer's
// size beside the step that made it.
func historyRows(c *cobra.Command, s *store.Store, img image.Image, noTrunc, human bool) ([]historyRow, error) {
	cfg := img.Config
	chain := image.ChainIDs(cfg.RootFS.DiffIDs)
	layerOf := image.HistoryLayers(cfg)
	var rows []historyRow
	for i := len(cfg.History) - 1; i >= 0; i-- {
		h := cfg.History[i]
		var size int64
		if li := layerOf[i]; li >= 0 {
			l, err := s.Layers().Get(c.Context(), chain[li])
			if err != nil {
				return nil, err
			}
			size = l.Size
		}
		id := "<missing>"
		if i == len(cfg.History)-1 {
			id = img.ID.String()
			if !noTrunc {
				id = image.ShortID(img.ID)
			}
		}
		var t time.Time
		if h.Created != nil {
			t = *h.Created
		}
		by := h.CreatedBy
		if !noTrunc {
			by = ellipsis(by, 45)
		}
		r := historyRow{ID: id, CreatedBy: by, Comment: h.Comment, CreatedAt: t.Format(time.RFC3339)}
		if human {
			r.CreatedSince, r.Size = since(t), humanSize(size)
		} else {
			r.CreatedSince, r.Size = t.Format(time.RFC3339), fmt.Sprint(size)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
