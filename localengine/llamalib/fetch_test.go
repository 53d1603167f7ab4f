package llamalib

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// entry is one tar entry of a test tarball.
type entry struct {
	name, body string
	typ        byte   // tar.TypeReg when zero
	link       string // for links
	size       int64  // header size when not len(body)
}

// tarball is a gzipped tar of entries.
func tarball(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Linkname: e.link, Size: int64(len(e.body))}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if hdr.Size > 0 {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// goodEntries look like the pinned package: its libraries, and files
// that are not libraries.
var goodEntries = []entry{
	{name: "package/package.json", body: `{"name":"@node-llama-cpp/linux-x64"}`},
	{name: "package/bins/linux-x64/llama-addon.node", body: "node addon"},
	{name: "package/bins/linux-x64/_nlcBuildMetadata.json", body: "{}"},
	{name: "package/bins/linux-x64/" + LlamaLib, body: "llama"},
	{name: "package/bins/linux-x64/" + GGMLLib, body: "ggml"},
	{name: "package/bins/linux-x64/libggml-base.so", body: "ggml-base"},
	{name: "package/bins/linux-x64/libggml-cpu-x64.so", body: "ggml-cpu"},
}

func integrity(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// registry serves body over HTTPS at /pkg.tgz, counting requests.
type registry struct {
	*httptest.Server
	hits atomic.Int32
}

func serve(t *testing.T, h http.HandlerFunc) *registry {
	t.Helper()
	r := &registry{}
	r.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func serveBytes(t *testing.T, b []byte) *registry {
	return serve(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})
}

func (r *registry) source(b []byte) source {
	return source{url: r.URL + "/pkg.tgz", integrity: integrity(b), size: int64(len(b)), pin: "@test/pkg@1.0.0"}
}

func (r *registry) fetch(t *testing.T, dir string, src source) (Result, error) {
	t.Helper()
	return fetch(context.Background(), dir, src, Options{Client: r.Client()})
}

// nothingLeft asserts that parent holds only want (no staging directory
// left behind).
func nothingLeft(t *testing.T, parent string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, want, names)
}

func TestFetchInstallsAndShortCircuits(t *testing.T) {
	tgz := tarball(t, goodEntries...)
	reg := serveBytes(t, tgz)
	src := reg.source(tgz)
	parent := t.TempDir()
	dir := filepath.Join(parent, "llama", "lib")

	res, err := reg.fetch(t, dir, src)
	require.NoError(t, err)
	assert.False(t, res.Already)
	assert.Equal(t, []string{"libggml-base.so", "libggml-cpu-x64.so", "libggml.so", GGMLLib, "libllama.so", LlamaLib}, res.Files)
	b, err := os.ReadFile(filepath.Join(dir, "libllama.so"))
	require.NoError(t, err)
	assert.Equal(t, "llama", string(b), "libllama.so leads to the versioned library")
	target, err := os.Readlink(filepath.Join(dir, "libggml.so"))
	require.NoError(t, err)
	assert.Equal(t, GGMLLib, target, "a relative link")
	v, err := os.ReadFile(filepath.Join(dir, VersionFile))
	require.NoError(t, err)
	assert.Equal(t, "@test/pkg@1.0.0\n", string(v))
	_, err = os.Stat(filepath.Join(dir, "llama-addon.node"))
	assert.ErrorIs(t, err, os.ErrNotExist, "only libraries are unpacked")
	nothingLeft(t, filepath.Join(parent, "llama"), "lib")
	assert.Equal(t, int32(1), reg.hits.Load())

	st, found := Inspect(dir)
	assert.Equal(t, Other, st, "not the real pin")
	assert.Equal(t, "@test/pkg@1.0.0", found)

	// Already there: nothing is downloaded.
	res, err = reg.fetch(t, dir, src)
	require.NoError(t, err)
	assert.True(t, res.Already)
	assert.Len(t, res.Files, 6)
	assert.Equal(t, int32(1), reg.hits.Load())
}

// Into a directory that holds another build and files of its own: the
// build is replaced, the other files stay.
func TestFetchReplacesAnOlderBuild(t *testing.T) {
	tgz := tarball(t, goodEntries...)
	reg := serveBytes(t, tgz)
	dir := t.TempDir()
	for name, body := range map[string]string{"libllama.so": "old", LlamaLib: "old", "libggml-cuda.so": "mine", VersionFile: "@test/pkg@0.9.0\n"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	_, err := reg.fetch(t, dir, reg.source(tgz))
	require.NoError(t, err)
	b, _ := os.ReadFile(filepath.Join(dir, "libllama.so"))
	assert.Equal(t, "llama", string(b))
	b, _ = os.ReadFile(filepath.Join(dir, "libggml-cuda.so"))
	assert.Equal(t, "mine", string(b))
	b, _ = os.ReadFile(filepath.Join(dir, VersionFile))
	assert.Equal(t, "@test/pkg@1.0.0\n", string(b))
	nothingLeft(t, dir, "libllama.so", LlamaLib, "libggml.so", GGMLLib, "libggml-base.so", "libggml-cpu-x64.so", "libggml-cuda.so", VersionFile)
}

func TestFetchRefuses(t *testing.T) {
	good := tarball(t, goodEntries...)
	for _, tc := range []struct {
		name string
		tgz  []byte
		src  func(r *registry, b []byte) source
		h    func(b []byte) http.HandlerFunc
		want string
	}{
		{name: "integrity mismatch", tgz: good, want: "integrity mismatch",
			src: func(r *registry, b []byte) source {
				s := r.source(b)
				s.integrity = integrity([]byte("another tarball"))
				return s
			}},
		{name: "truncated download", tgz: good, want: "unexpected EOF",
			h: func(b []byte) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Length", strconv.Itoa(len(b)))
					_, _ = w.Write(b[:len(b)/2]) // the server then closes the connection
				}
			}},
		{name: "truncated without a length", tgz: good, want: "truncated: got",
			h: func(b []byte) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) {
					_, _ = w.Write(b[:len(b)/2])
				}
			}},
		{name: "longer than pinned", tgz: good, want: "too long",
			h: func(b []byte) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) {
					_, _ = w.Write(append(append([]byte{}, b...), make([]byte, 1<<16)...))
				}
			}},
		{name: "not found", tgz: good, want: "the registry answered 404 Not Found",
			h: func([]byte) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }
			}},
		{name: "path traversal", want: `entry "package/bins/linux-x64/../../../../evil.so" leads out of the package`,
			tgz: tarball(t, append([]entry{{name: "package/bins/linux-x64/../../../../evil.so", body: "evil"}}, goodEntries...)...)},
		{name: "absolute path", want: `entry "/tmp/evil.so" leads out of the package`,
			tgz: tarball(t, append([]entry{{name: "/tmp/evil.so", body: "evil"}}, goodEntries...)...)},
		{name: "symlink library", want: `entry "package/bins/linux-x64/` + LlamaLib + `" is not a regular file`,
			tgz: tarball(t, entry{name: "package/bins/linux-x64/" + LlamaLib, typ: tar.TypeSymlink, link: "/etc/passwd"}, goodEntries[4])},
		{name: "hard link library", want: `is not a regular file`,
			tgz: tarball(t, entry{name: "package/bins/linux-x64/libggml-cpu.so", typ: tar.TypeLink, link: "/etc/passwd"}, goodEntries[3])},
		{name: "same library twice", want: "file exists",
			tgz: tarball(t, append(goodEntries, goodEntries[3])...)},
		{name: "no libllama", want: "the package has no " + LlamaLib,
			tgz: tarball(t, goodEntries[4], goodEntries[5])},
		{name: "no libraries", want: "no libraries under package/bins/linux-x64/",
			tgz: tarball(t, goodEntries[0])},
		{name: "not gzip", tgz: []byte("not a tarball"), want: "gzip: invalid header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(tc.tgz) }
			if tc.h != nil {
				h = tc.h(tc.tgz)
			}
			reg := serve(t, h)
			src := reg.source(tc.tgz)
			if tc.src != nil {
				src = tc.src(reg, tc.tgz)
			}
			parent := t.TempDir()
			_, err := reg.fetch(t, filepath.Join(parent, "lib"), src)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			nothingLeft(t, parent) // no lib, no staging directory
			_, err = os.Stat("/tmp/evil.so")
			assert.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}

// A library bigger than the limit is refused before it is written.
func TestFetchRefusesASizeBomb(t *testing.T) {
	old := maxUnpacked
	maxUnpacked = 1 << 10
	t.Cleanup(func() { maxUnpacked = old })
	tgz := tarball(t, append([]entry{{name: "package/bins/linux-x64/big.so", body: string(make([]byte, 2<<10))}}, goodEntries...)...)
	reg := serveBytes(t, tgz)
	dir := t.TempDir()
	_, err := reg.fetch(t, filepath.Join(dir, "lib"), reg.source(tgz))
	require.ErrorContains(t, err, "the package unpacks to more than 256 files or 0 MiB")
	nothingLeft(t, dir)
}

// A failed fetch into an existing directory leaves it as it was.
func TestFetchFailureLeavesDirAlone(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "libggml-cuda.so"), []byte("mine"), 0o644))
	reg := serveBytes(t, []byte("garbage"))
	src := reg.source([]byte("garbage"))
	src.integrity = integrity([]byte("other"))
	_, err := reg.fetch(t, dir, src)
	require.ErrorIs(t, err, ErrIntegrity)
	nothingLeft(t, dir, "libggml-cuda.so")
}

func TestFetchCancelled(t *testing.T) {
	reg := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fetch(ctx, filepath.Join(t.TempDir(), "lib"), reg.source([]byte("x")), Options{Client: reg.Client()})
	require.ErrorIs(t, err, context.Canceled)
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	st, _ := Inspect(dir)
	assert.Equal(t, Missing, st)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "libllama.so"), nil, 0o644))
	st, _ = Inspect(dir)
	assert.Equal(t, Own, st, "libllama.so without .version: a build of your own")
	require.NoError(t, os.WriteFile(filepath.Join(dir, VersionFile), []byte(Pin+"\n"), 0o644))
	st, found := Inspect(dir)
	assert.Equal(t, Pinned, st)
	assert.Equal(t, Pin, found)
	require.NoError(t, os.WriteFile(filepath.Join(dir, VersionFile), []byte(Package+"@3.20.0\n"), 0o644))
	st, found = Inspect(dir)
	assert.Equal(t, Other, st)
	assert.Equal(t, Package+"@3.20.0", found)
}

func TestPin(t *testing.T) {
	// npm's tarball address: <registry>/<@scope/name>/-/<name>-<version>.tgz
	assert.Equal(t, "https://registry.npmjs.org/@node-llama-cpp/linux-x64/-/linux-x64-3.21.1.tgz", URL)
	assert.NoError(t, supportedOn("linux", "amd64"))
	err := supportedOn("darwin", "arm64")
	require.ErrorIs(t, err, ErrUnsupported)
	assert.Contains(t, err.Error(), "the pinned llama.cpp build runs only on linux/amd64, not darwin/arm64")
}
