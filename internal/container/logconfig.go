package container

import (
	"fmt"
	"sort"
	"strconv"

	units "github.com/docker/go-units"
)

// Log drivers strata has: docker's default json-file, and none.
const (
	LogDriverJSONFile = "json-file"
	LogDriverNone     = "none"
)

// LogConfig is `--log-driver` and `--log-opt`.
type LogConfig struct {
	Driver string            `json:"driver,omitempty"` // "" is json-file
	Opts   map[string]string `json:"opts,omitempty"`
}

// jsonFileOpts are the json-file options strata honours.
type jsonFileOpts struct {
	maxSize int64 // bytes per file before it is rotated; 0: never
	maxFile int   // files kept, the current one included
}

// Validate checks the driver and its options with docker's messages.
func (l LogConfig) Validate() error {
	switch l.Driver {
	case "", LogDriverJSONFile:
		_, err := l.jsonFile()
		return err
	case LogDriverNone:
		if len(l.Opts) > 0 {
			return fmt.Errorf("failed to initialize logging driver: the none log driver takes no options")
		}
		return nil
	}
	return fmt.Errorf("failed to initialize logging driver: log driver %q is not supported (use %q or %q)", l.Driver, LogDriverJSONFile, LogDriverNone)
}

func (l LogConfig) jsonFile() (jsonFileOpts, error) {
	o := jsonFileOpts{maxFile: 1}
	keys := make([]string, 0, len(l.Opts))
	for k := range l.Opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := l.Opts[k]
		switch k {
		case "max-size":
			n, err := units.RAMInBytes(v)
			if err != nil || n < 0 {
				return o, fmt.Errorf("failed to initialize logging driver: invalid size: '%s'", v)
			}
			o.maxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, fmt.Errorf("failed to initialize logging driver: invalid max-file: '%s'", v)
			}
			if n < 1 {
				return o, fmt.Errorf("failed to initialize logging driver: max-file cannot be less than 1")
			}
			o.maxFile = n
		default:
			return o, fmt.Errorf("failed to initialize logging driver: unknown log opt '%s' for json-file log driver", k)
		}
	}
	return o, nil
}
