package builder

// proxyArgs are docker's predefined build args: --build-arg sets them
// without an ARG line. Undeclared, they reach every RUN's environment but
// neither the history nor the cache key, as in docker: they often carry
// credentials, and which proxy fetched a file does not change the layer.
// Declared with ARG they are ordinary args.
var proxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

func isProxyArg(name string) bool {
	for _, p := range proxyArgs {
		if p == name {
			return true
		}
	}
	return false
}

// proxyEnv lists the proxy args given for the build that the stage neither
// declares nor sets with ENV, as KEY=VALUE for a RUN's environment.
func (b *builder) proxyEnv(st *stageState) []string {
	var out []string
	for _, k := range proxyArgs {
		v, ok := b.opts.BuildArgs[k]
		if !ok || hasEnv(st.args, k) || hasEnv(st.cfg.Config.Env, k) {
			continue
		}
		out = append(out, k+"="+v)
	}
	return out
}
